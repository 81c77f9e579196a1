"""Store conformance: one suite over SQLite and Postgres, plus Postgres outages (TESTPLAN R5)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import eventually
from servers import PostgresServer

from app.errors import StoreUnavailable, ThreadExists
from app.store import Decision, LogLine, Store, open_store


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.sqlite"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    async with open_store(url) as s:
        yield s


def line(thread_id: str, seq: int, text: str = "", level: str = "INFO") -> LogLine:
    ts = "2026-01-01T00:00:00+00:00"
    return LogLine(text=text or f"line {seq}", thread_id=thread_id, level=level, timestamp=ts, seq=seq)


async def test_create_get_duplicate(store: Store) -> None:
    payload = {"topic": "Q3 ✓", "nested": {"n": [1, 2.5, None, True]}}
    run = await store.create_run("t1", "review", payload)
    assert (run.thread_id, run.workflow, run.status, run.input, run.error) == ("t1", "review", "running", payload, None)
    assert run.created_at == run.updated_at
    assert await store.get_run("t1") == run
    assert await store.get_run("nope") is None
    with pytest.raises(ThreadExists):
        await store.create_run("t1", "deploy", {})
    assert await store.get_run("t1") == run  # the loser changed nothing


async def test_set_status_is_compare_and_set(store: Store) -> None:
    run = await store.create_run("t1", "review", {})
    assert await store.set_status("t1", "waiting_approval", expect=["running"])
    assert not await store.set_status("t1", "completed", expect=["running"])
    assert (await store.get_run("t1")).status == "waiting_approval"  # type: ignore[union-attr]
    assert await store.set_status("t1", "failed", expect=["running", "waiting_approval"], error="boom\nline 2")
    failed = await store.get_run("t1")
    assert failed is not None and (failed.status, failed.error) == ("failed", "boom\nline 2")
    assert failed.updated_at >= run.updated_at and failed.created_at == run.created_at
    assert await store.set_status("t1", "cancelled")  # no expectation: unconditional
    assert not await store.set_status("missing", "cancelled")
    assert not await store.set_status("t1", "running", expect=[])


async def test_concurrent_writers_have_one_winner(store: Store) -> None:
    attempts = (store.create_run("t1", "review", {"n": n}) for n in range(5))
    created = await asyncio.gather(*attempts, return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in created) == 1
    assert all(isinstance(r, ThreadExists) for r in created if isinstance(r, BaseException))
    await store.set_status("t1", "waiting_approval")
    won = await asyncio.gather(*(store.set_status("t1", "running", expect=["waiting_approval"]) for _ in range(20)))
    assert won.count(True) == 1


async def test_list_runs_pages_with_cursor_and_filters(store: Store) -> None:
    ids = [f"r{i:02d}" for i in range(7)]
    for i, thread_id in enumerate(ids):
        await store.create_run(thread_id, "review" if i % 2 else "deploy", {"i": i})
    await store.set_status("r03", "completed")
    await store.set_status("r05", "completed")

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):  # bounded: 7 runs in pages of 3
        page = await store.list_runs(limit=3, cursor=cursor)
        assert page.total == 7 and len(page.runs) <= 3
        seen += [r.thread_id for r in page.runs]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)  # newest first, each once

    review = await store.list_runs(workflow="review", limit=2)
    assert review.total == 3 and [r.thread_id for r in review.runs] == ["r05", "r03"]
    rest = await store.list_runs(workflow="review", limit=2, cursor=review.next_cursor)
    assert [r.thread_id for r in rest.runs] == ["r01"] and rest.next_cursor is None

    done = await store.list_runs(status="completed", workflow="review")
    assert done.total == 2 and {r.thread_id for r in done.runs} == {"r03", "r05"}
    assert (await store.list_runs(status="completed", workflow="deploy")).total == 0
    exact = await store.list_runs(limit=7)
    assert len(exact.runs) == 7 and exact.next_cursor is None
    with pytest.raises(ValueError):
        await store.list_runs(cursor="not-a-cursor")


async def test_count_by_status(store: Store) -> None:
    assert await store.count_by_status() == {}
    for thread_id in ("a", "b", "c"):
        await store.create_run(thread_id, "review", {})
    await store.set_status("c", "completed")
    assert await store.count_by_status() == {"running": 2, "completed": 1}


async def test_decisions(store: Store) -> None:
    await store.create_run("t1", "review", {})
    first = Decision("t1", "i-1", "reject", "needs work", "2026-01-01T00:00:01+00:00", "alice")
    second = Decision("t1", "i-2", "approve", None, "2026-01-01T00:00:02+00:00", None, {"ticket": [1, "a"]})
    await store.record_decision(second)
    await store.record_decision(first)
    assert await store.decisions("t1") == [first, second]
    assert await store.decisions("other") == []


async def test_logs_append_dedupe_and_read(store: Store) -> None:
    assert await store.last_seq("t1") == 0
    await store.append_logs([])
    await store.append_logs([line("t1", 1), line("t1", 2), line("t1", 2, "dup in batch"), line("t2", 1)])
    await store.append_logs([line("t1", 1, "replayed"), line("t1", 3, "a\nb \x1b[31mred\x1b[0m <script>x</script>")])
    got = await store.get_logs("t1")
    assert [ln["seq"] for ln in got] == [1, 2, 3]
    assert got[0] == line("t1", 1)  # first write wins
    assert got[2]["text"] == "a\nb \x1b[31mred\x1b[0m <script>x</script>"  # stored as data
    assert [ln["seq"] for ln in await store.get_logs("t1", after=1)] == [2, 3]
    assert [ln["seq"] for ln in await store.get_logs("t1", after=0, limit=2)] == [1, 2]
    assert await store.get_logs("t1", after=3) == []
    assert await store.last_seq("t1") == 3 and await store.last_seq("t2") == 1


async def test_large_batch_is_one_call(store: Store) -> None:
    await store.append_logs([line("big", seq, "x" * 100) for seq in range(1, 2501)])
    assert await store.last_seq("big") == 2500
    page = await store.get_logs("big", after=1000, limit=1000)
    assert [ln["seq"] for ln in page] == list(range(1001, 2001))


async def test_nul_in_a_line_does_not_lose_it(store: Store) -> None:
    await store.append_logs([line("t", 1, "before\x00after")])
    [stored] = await store.get_logs("t")
    assert stored["text"].startswith("before") and stored["text"].endswith("after")


async def test_ping(store: Store) -> None:
    await store.ping()


async def timed_unavailable(call: object) -> float:
    """Seconds until `call()` raised StoreUnavailable (it must)."""
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await call()  # type: ignore[operator]
    return time.monotonic() - t0


async def test_postgres_killed_then_restarted(postgres_proc: PostgresServer) -> None:
    async with open_store(postgres_proc.url()) as store:
        await store.create_run("before", "review", {})
        await store.append_logs([line("before", 1)])
        postgres_proc.kill()

        calls = [
            store.ping,
            lambda: store.get_run("before"),
            lambda: store.create_run("during", "review", {}),
            lambda: store.list_runs(limit=5),
            lambda: store.append_logs([line("before", 2)]),
            lambda: store.last_seq("before"),
        ]
        waits = [await timed_unavailable(call) for call in calls]
        assert max(waits) < 2, waits

        await asyncio.sleep(1)  # TESTPLAN R5 keeps it down a while
        await postgres_proc.astart()
        t0 = time.monotonic()

        async def works() -> bool:
            try:
                await store.ping()
            except StoreUnavailable:
                return False
            return True

        await eventually(works, timeout=10, interval=0.1, message="store did not come back")
        recovered = time.monotonic() - t0
        shown = ", ".join(f"{w:.2f}" for w in waits)
        print(f"\npostgres killed: 503 after {shown}s; usable {recovered:.2f}s after restart")
        assert (await store.get_run("before")) is not None
        assert [ln["seq"] for ln in await store.get_logs("before")] == [1]
        await store.append_logs([line("before", 2)])
        assert await store.last_seq("before") == 2
        assert recovered < 5


async def test_postgres_stalled_calls_time_out(postgres_proc: PostgresServer) -> None:
    async with open_store(postgres_proc.url()) as store:
        await store.ping()
        postgres_proc.send(signal.SIGSTOP)
        try:
            waits = [await timed_unavailable(store.ping), await timed_unavailable(lambda: store.get_run("x"))]
        finally:
            postgres_proc.send(signal.SIGCONT)
        print(f"\npostgres stopped: 503 after {', '.join(f'{w:.2f}' for w in waits)}s")
        assert max(waits) < 2, waits
        await eventually(lambda: _ping_ok(store), timeout=10, interval=0.1)


async def _ping_ok(store: Store) -> bool:
    try:
        await store.ping()
    except StoreUnavailable:
        return False
    return True
