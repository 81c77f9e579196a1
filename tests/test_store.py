"""Store conformance: one suite over SQLite and Postgres, plus Postgres outages (TESTPLAN R5)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from conftest import eventually
from servers import PostgresServer

from app.errors import StoreUnavailable, ThreadExists, TokenExists
from app.store import Approval, Decision, LogLine, Store, TokenRecord, open_store
from app.store.urls import sqlite_path


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


async def test_tokens_live_names_are_unique_and_revocations_stick(store: Store) -> None:
    ts = "2026-01-01T00:00:00+00:00"
    bot = TokenRecord("d1", "bot", "viewer", "api", ts, "root")
    await store.add_token(bot)
    with pytest.raises(TokenExists):
        await store.add_token(TokenRecord("d2", "bot", "admin", "api", ts, "root"))
    assert await store.revoke_token(replace(bot, revoked_at=ts, revoked_by="root"))
    assert not await store.revoke_token(replace(bot, revoked_at="later", revoked_by="x"))  # first revoke wins
    await store.add_token(TokenRecord("d3", "bot", "admin", "api", ts, "root"))  # the name is free again
    configured = TokenRecord("d4", "ops", "operator", "config", ts, None, ts, "root")
    assert await store.revoke_token(configured)  # a config token's revocation is a new row
    records = {r.digest: r for r in await store.token_records()}
    assert records["d1"].revoked_by == "root" and records["d3"].revoked_at is None
    assert records["d4"] == configured and set(records) == {"d1", "d3", "d4"}


async def test_approvals_queue_deadlines_and_cleanup(store: Store) -> None:
    def at(second: int) -> str:
        return f"2026-01-01T00:00:{second:02d}+00:00"

    value = {"question": "Ship ✓?", "plan": ["a", None, 2.5]}
    for tid, wf in [("t1", "review"), ("t2", "deploy"), ("t3", "review"), ("t4", "review")]:
        await store.create_run(tid, wf, {})
    await store.put_approvals("t1", [Approval("t1", "i1", "review", value, at(1), 100.0, "approve")])
    await store.put_approvals("t2", [Approval("t2", "i2", "deploy", None, at(0))])
    t3 = [Approval("t3", "b", "review", 1, at(2), 50.0, "reject"), Approval("t3", "a", "review", "x", at(2))]
    await store.put_approvals("t3", t3)
    await store.put_approvals("t4", [Approval("t4", "i4", "review", {}, at(0), 1.0, "reject")])
    for tid in ("t1", "t2", "t3"):  # t4 stays running: its row is not a pending approval yet
        assert await store.set_status(tid, "waiting_approval", expect=["running"])

    first = await store.list_approvals(limit=2)
    assert [(a.thread_id, a.interrupt_id) for a in first.approvals] == [("t2", "i2"), ("t1", "i1")]
    assert first.total == 4 and first.next_cursor
    assert first.approvals[1] == Approval("t1", "i1", "review", value, at(1), 100.0, "approve")
    rest = await store.list_approvals(limit=2, cursor=first.next_cursor)
    assert [(a.thread_id, a.interrupt_id) for a in rest.approvals] == [("t3", "a"), ("t3", "b")]
    assert rest.next_cursor is None and rest.total == 4
    only = await store.list_approvals(workflow="deploy")
    assert [a.thread_id for a in only.approvals] == ["t2"] and only.total == 1
    for bad in ("garbage", first.next_cursor[:-4], "WyJhIl0="):  # the last: a valid key of the wrong size
        with pytest.raises(ValueError):
            await store.list_approvals(cursor=bad)
    assert await store.approval_stats() == (4, at(0))

    assert [(a.thread_id, a.deadline) for a in await store.due_approvals(100.0)] == [("t3", 50.0), ("t1", 100.0)]
    assert [a.thread_id for a in await store.due_approvals(99.0)] == ["t3"]
    assert await store.due_approvals(10.0) == []

    # Put again: a row that stays keeps its time and deadline; one that is gone is dropped.
    await store.put_approvals("t3", [Approval("t3", "b", "review", 1, at(9), 70.0, "approve")])
    assert [a for a in (await store.list_approvals()).approvals if a.thread_id == "t3"] == [t3[0]]
    await store.clear_approvals("t3", ["b"])
    await store.clear_approvals("t1")
    assert [a.thread_id for a in (await store.list_approvals()).approvals] == ["t2"]
    assert await store.set_status("t2", "running", expect=["waiting_approval"])
    assert (await store.list_approvals()).total == 0 and await store.approval_stats() == (0, None)
    assert await store.set_status("t4", "waiting_approval", expect=["running"])
    assert [a.thread_id for a in await store.due_approvals(1.0)] == ["t4"]
    await store.put_approvals("t4", [])  # nothing pending any more
    assert await store.due_approvals(1e12) == [] and (await store.list_approvals()).total == 0


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of each backend, for tests that reach the database beside the store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite"
    return str(request.getfixturevalue("postgres_server").create_database())


def refuse_approval(url: str, interrupt_id: str) -> None:
    """Make the database itself reject inserting that approval (a constraint, as a real fault would)."""
    if url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(sqlite_path(url))) as db:
            db.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON approvals WHEN NEW.interrupt_id = '{interrupt_id}'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
    else:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END $$"
            )
            db.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON approvals FOR EACH ROW"
                f" WHEN (NEW.interrupt_id = '{interrupt_id}') EXECUTE FUNCTION refuse()"
            )


def committed(url: str, sql: str) -> list[str]:
    """The first column of `sql` as another process reads it now: only what was committed."""
    if url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(sqlite_path(url))) as db:
            return [row[0] for row in db.execute(sql)]
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(sql)]


def committed_approvals(url: str) -> list[str]:
    return committed(url, "SELECT interrupt_id FROM approvals ORDER BY interrupt_id")


def pending(thread_id: str, interrupt_id: str) -> Approval:
    return Approval(thread_id, interrupt_id, "review", {"ask": interrupt_id}, "2026-01-01T00:00:00+00:00")


async def test_put_approvals_that_fails_keeps_the_queue(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.create_run("t1", "review", {})
        await store.set_status("t1", "waiting_approval")
        await store.put_approvals("t1", [pending("t1", "i1")])
        refuse_approval(store_url, "i2")

        # i1 gives way to i2, whose insert the database refuses: nothing of the put may stay,
        # and a write another caller makes meanwhile is not rolled back with it.
        put = asyncio.create_task(store.put_approvals("t1", [pending("t1", "i2")]))
        await asyncio.sleep(0)  # the put is under way
        await store.create_run("t2", "review", {})
        with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)):
            await put
        assert (await store.list_approvals()).approvals == [pending("t1", "i1")]
        assert committed_approvals(store_url) == ["i1"]
        assert committed(store_url, "SELECT thread_id FROM runs ORDER BY thread_id") == ["t1", "t2"]

        # The store is not left inside a transaction: the next writes commit.
        await store.put_approvals("t1", [pending("t1", "i1"), pending("t1", "i3")])
        await store.create_run("t3", "review", {})
        assert committed_approvals(store_url) == ["i1", "i3"]
        assert committed(store_url, "SELECT thread_id FROM runs ORDER BY thread_id") == ["t1", "t2", "t3"]


async def test_put_approvals_cancelled_keeps_the_queue(store_url: str) -> None:
    async with open_store(store_url) as store:
        await store.create_run("t1", "review", {})
        await store.set_status("t1", "waiting_approval")
        await store.put_approvals("t1", [pending("t1", "i1")])

        # Cancelled at its first await (a request or run cancelled at shutdown): all or nothing.
        put = asyncio.create_task(store.put_approvals("t1", [pending("t1", "i2")]))
        await asyncio.sleep(0)
        put.cancel()
        with pytest.raises(asyncio.CancelledError):
            await put
        await store.ping()  # whatever the cancelled call had queued has run by now
        assert committed_approvals(store_url) in (["i1"], ["i2"])
        assert [a.interrupt_id for a in (await store.list_approvals()).approvals] == committed_approvals(store_url)


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
