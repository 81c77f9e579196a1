"""Store conformance: one suite over SQLite and Postgres, plus Postgres outages (TESTPLAN R5)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import eventually
from servers import PostgresServer

from app.errors import NotFound, StoreUnavailable, ThreadBusy, ThreadExists, TokenExists
from app.store import Approval, Decision, LogLine, RunEvent, Store, ThreadRun, TokenRecord, open_store
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


async def test_thread_view_reads_record_decisions_and_approvals(store: Store) -> None:
    assert await store.thread_view("nope") is None
    await store.create_run("t1", "review", {"x": 1})
    await store.put_approvals("t1", [Approval("t1", "i1", "review", {"q": 1}, "2026-01-01T00:00:01+00:00")])
    view = await store.thread_view("t1")
    assert view is not None and view.run == await store.get_run("t1")
    assert view.decisions == [] and view.approvals == []  # running: its row is not pending yet
    assert await store.set_status("t1", "waiting_approval", expect=["running"])
    view = await store.thread_view("t1")
    assert view is not None and [a.interrupt_id for a in view.approvals] == ["i1"]
    assert view.approvals == (await store.list_approvals(thread_id="t1")).approvals
    decision = Decision("t1", "i1", "approve", "ok", "2026-01-01T00:00:02+00:00", "me", {"d": 2})
    await store.record_decision(decision)
    view = await store.thread_view("t1")
    assert view is not None and view.decisions == [decision] == await store.decisions("t1")


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


async def test_a_connection_the_server_closed_is_replaced_before_a_call_uses_it(
    postgres_server: PostgresServer,
) -> None:
    """The pool's check costs no round trip, yet a connection the server ended is never handed out."""
    url = postgres_server.create_database()
    database = url.rsplit("/", 1)[1]
    async with open_store(url) as store:
        await store.create_run("t", "review", {})
        with psycopg.connect(postgres_server.url(), autocommit=True, connect_timeout=5) as admin:
            mine = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'beacon'"
            pids = [pid for (pid,) in admin.execute(mine, (database,)).fetchall()]
            assert pids, "the store holds no connection at rest"
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

            def ended() -> bool:
                return not admin.execute(mine, (database,)).fetchall()

            await eventually(ended, timeout=10, interval=0.05, message="the backends did not end")
        for _ in range(3):  # no 503: the ended connection is dropped, a new one answers
            assert (await store.get_run("t")) is not None


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


# Threads and their runs (LangGraph's model): a thread holds many runs, queued in order.

TS = "2026-01-01T00:00:00+00:00"


def thread_run(run_id: str, thread_id: str = "t1", status: str = "pending", workflow: str = "review") -> ThreadRun:
    """A run as the run manager queues it; every one has the same created_at, so only the queue orders them."""
    kwargs = {"input": {"ask": run_id}, "stream_mode": ["values"], "config": {"tags": ["x"]}}
    return ThreadRun(run_id, thread_id, "agent", workflow, status, kwargs, {"by": run_id}, "enqueue", TS, TS)


def event(run_id: str, seq: int, data: str = "") -> RunEvent:
    return RunEvent(run_id=run_id, seq=seq, event="values", data=data or f'{{"n": {seq}}}')


async def test_create_thread_and_duplicate(store: Store) -> None:
    metadata = {"owner": "alice ✓", "n": 1, "nested": {"k": [1, None, True]}}
    created = await store.create_thread("t1", metadata)
    assert (created.thread_id, created.workflow, created.status, created.input) == ("t1", "", "idle", {})
    assert (created.metadata, created.run_id, created.error) == (metadata, None, None)
    assert await store.get_run("t1") == created
    with pytest.raises(ThreadExists):
        await store.create_thread("t1", {"other": True})
    with pytest.raises(ThreadExists):
        await store.create_run("t1", "review", {})
    assert await store.get_run("t1") == created  # the losers changed nothing
    await store.create_run("t2", "review", {})
    with pytest.raises(ThreadExists):
        await store.create_thread("t2", {})


async def test_update_thread_merges_metadata(store: Store) -> None:
    created = await store.create_thread("t1", {"a": 1, "b": "x", "n": {"x": 1, "y": 2}})
    updated = await store.update_thread("t1", {"b": "y", "c": [1, 2]})
    assert updated is not None and updated.metadata == {"a": 1, "b": "y", "n": {"x": 1, "y": 2}, "c": [1, 2]}
    assert updated.updated_at >= created.updated_at and updated.created_at == created.created_at
    assert await store.get_run("t1") == updated
    # A merge patch (RFC 7396, SQLite's json_patch): objects merge key by key, null removes a key.
    patched = await store.update_thread("t1", {"n": {"y": None, "z": 3}, "a": None})
    assert patched is not None and patched.metadata == {"b": "y", "n": {"x": 1, "z": 3}, "c": [1, 2]}
    unchanged = await store.update_thread("t1", {})
    assert unchanged is not None and unchanged.metadata == patched.metadata
    assert await store.update_thread("missing", {"a": 1}) is None
    assert await store.get_run("missing") is None


async def test_search_threads_by_metadata_status_and_id(store: Store) -> None:
    await store.create_thread("t0", {"env": "prod", "n": 1, "ok": True, "tags": {"team": "a", "k": [1, 2]}})
    await store.create_thread("t1", {"env": "prod", "n": "1", "ok": False})
    await store.create_thread("t2", {"env": "dev", "n": 1, "ok": True, "tags": {"team": "a"}})
    await store.create_run("t3", "review", {})
    await store.create_thread("t4", {})
    await store.set_status("t3", "waiting_approval")

    async def found(**filters: Any) -> list[str]:
        return [r.thread_id for r in await store.search_threads(**filters)]

    assert await found() == ["t4", "t3", "t2", "t1", "t0"]  # newest first
    assert await found(metadata={"env": "prod"}) == ["t1", "t0"]
    assert await found(metadata={"n": 1}) == ["t2", "t0"]  # the string "1" is not the number 1
    assert await found(metadata={"n": "1"}) == ["t1"]
    assert await found(metadata={"ok": True}) == ["t2", "t0"]
    assert await found(metadata={"ok": False}) == ["t1"]
    assert await found(metadata={"ok": 1}) == []  # true is not 1
    assert await found(metadata={"env": "prod", "n": 1}) == ["t0"]  # every pair
    assert await found(metadata={"env": "prod", "n": 2}) == []
    assert await found(metadata={"tags": {"team": "a", "k": [1, 2]}}) == ["t0"]
    assert await found(metadata={"tags": {"team": "a"}}) == ["t2"]  # equal, not contained
    assert await found(metadata={"missing": None}) == []
    assert await found(metadata={"env": "prod"}, statuses=["idle"]) == ["t1", "t0"]
    assert await found(statuses=["waiting_approval", "running"]) == ["t3"]
    assert await found(statuses=["completed"]) == []
    assert await found(ids=["t0", "t3", "nope"]) == ["t3", "t0"]
    assert await found(ids=["t0", "t3"], statuses=["idle"]) == ["t0"]
    assert await found(limit=2) == ["t4", "t3"]
    assert await found(limit=2, offset=2) == ["t2", "t1"]
    assert await found(limit=2, offset=4) == ["t0"]
    assert await found(limit=2, offset=5) == []
    [t0] = await store.search_threads(ids=["t0"])
    assert t0 == await store.get_run("t0")


async def test_add_run_needs_a_thread_and_exclusive_rejects_a_busy_one(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.add_run(thread_run("r0", "missing"), exclusive=False)
    with pytest.raises(NotFound):
        await store.add_run(thread_run("r0", "missing"), exclusive=True)
    assert await store.get_thread_run("r0") is None

    await store.create_run("busy", "review", {})  # running
    with pytest.raises(ThreadBusy) as busy:
        await store.add_run(thread_run("r1", "busy"), exclusive=True)
    assert busy.value.details == {"multitask_strategy": "reject"}
    await store.add_run(thread_run("r2", "busy"), exclusive=False)  # enqueue: waits its turn

    await store.create_thread("idle", {})
    await store.add_run(thread_run("r3", "idle"), exclusive=True)
    with pytest.raises(ThreadBusy):  # idle, but a run is queued
        await store.add_run(thread_run("r4", "idle"), exclusive=True)
    assert [r.run_id for r in await store.list_thread_runs("busy")] == ["r2"]
    assert [r.run_id for r in await store.list_thread_runs("idle")] == ["r3"]
    assert await store.get_thread_run("r3") == thread_run("r3", "idle")


async def test_concurrent_exclusive_add_run_accepts_one(store_url: str) -> None:
    # Two stores on one database: two processes, as far as the database can tell.
    async with open_store(store_url) as one, open_store(store_url) as two:
        await one.create_thread("t1", {})
        tries = [(one, two)[n % 2].add_run(thread_run(f"r{n}"), exclusive=True) for n in range(20)]
        results = await asyncio.gather(*tries, return_exceptions=True)
        assert sum(r is None for r in results) == 1, results
        assert all(isinstance(r, ThreadBusy) for r in results if r is not None), results
        assert len(await two.list_thread_runs("t1", limit=100)) == 1


async def test_next_run_starts_the_oldest_queued_run(store: Store) -> None:
    assert await store.next_run("missing") is None
    await store.create_thread("t1", {"m": 1})
    assert await store.next_run("t1") is None  # nothing queued
    for n in range(5):
        await store.add_run(thread_run(f"r{n}", workflow=f"w{n}"), exclusive=False)
    for n in range(5):
        run = await store.next_run("t1")
        assert run is not None and run == replace(thread_run(f"r{n}", workflow=f"w{n}"), status="running",
                                                  updated_at=run.updated_at)
        assert await store.get_thread_run(run.run_id) == run
        thread = await store.get_run("t1")
        assert thread is not None and (thread.status, thread.run_id, thread.workflow) == ("running", f"r{n}", f"w{n}")
        assert thread.metadata == {"m": 1} and thread.input == {}
        assert await store.next_run("t1") is None  # one at a time
        pending = await store.list_thread_runs("t1", status="pending", limit=10)
        assert [r.run_id for r in pending] == [f"r{i}" for i in reversed(range(n + 1, 5))]
        assert await store.set_status("t1", "completed" if n % 2 else "failed", expect=["running"], error="e")
    assert await store.next_run("t1") is None
    statuses = [(r.run_id, r.status) for r in await store.list_thread_runs("t1")]
    assert statuses == [(f"r{n}", "success" if n % 2 else "error") for n in reversed(range(5))]
    failed = await store.get_run("t1")
    assert failed is not None and failed.error == "e"
    await store.add_run(thread_run("r5"), exclusive=True)
    assert (await store.next_run("t1")) is not None
    cleared = await store.get_run("t1")
    assert cleared is not None and cleared.error is None  # a new run starts clean


async def test_next_run_waits_for_a_waiting_thread_to_run_nothing(store: Store) -> None:
    await store.create_thread("t1", {})
    await store.add_run(thread_run("r0"), exclusive=False)
    await store.add_run(thread_run("r1"), exclusive=False)
    assert (await store.next_run("t1")) is not None
    assert await store.set_status("t1", "waiting_approval", expect=["running"])
    assert (await store.get_thread_run("r0")).status == "interrupted"  # type: ignore[union-attr]
    run = await store.next_run("t1")  # an interrupted thread runs nothing: the queue moves on
    assert run is not None and run.run_id == "r1"


async def test_concurrent_next_run_has_one_winner(store_url: str) -> None:
    async with open_store(store_url) as one, open_store(store_url) as two:
        await one.create_thread("t1", {})
        await one.add_run(thread_run("r0"), exclusive=False)
        results = await asyncio.gather(*((one, two)[n % 2].next_run("t1") for n in range(20)))
        assert [r.run_id for r in results if r is not None] == ["r0"]
        thread = await two.get_run("t1")
        assert thread is not None and (thread.status, thread.run_id) == ("running", "r0")


async def test_set_status_moves_the_current_run(store: Store) -> None:
    await store.create_thread("t1", {})
    await store.add_run(thread_run("r1"), exclusive=False)
    await store.next_run("t1")

    async def status_of(run_id: str) -> str | None:
        run = await store.get_thread_run(run_id)
        return run and run.status

    assert await store.set_status("t1", "waiting_approval", expect=["running"])
    assert await status_of("r1") == "interrupted"
    begin = thread_run("r2", status="running")
    assert not await store.set_status("t1", "running", expect=["running"], begin=begin)
    assert await store.get_thread_run("r2") is None  # refused: nothing of `begin` stays
    assert await store.set_status("t1", "running", expect=["waiting_approval"], begin=begin)
    assert await store.get_thread_run("r2") == begin and await status_of("r1") == "interrupted"
    thread = await store.get_run("t1")
    assert thread is not None and (thread.status, thread.run_id) == ("running", "r2")
    assert await store.set_status("t1", "completed", expect=["running"])
    assert (await status_of("r2"), await status_of("r1")) == ("success", "interrupted")

    assert await store.set_status("t1", "running", begin=thread_run("r3", status="running"))
    assert await store.set_status("t1", "failed", error="boom")
    assert await status_of("r3") == "error"
    assert await store.set_status("t1", "running", begin=thread_run("r4", status="running"))
    assert await store.set_status("t1", "cancelled")
    assert await status_of("r4") == "interrupted"
    assert [r.run_id for r in await store.list_thread_runs("t1")] == ["r4", "r3", "r2", "r1"]

    await store.create_run("old", "review", {})  # a thread with no run of its own: only its status moves
    assert await store.set_status("old", "completed")
    assert (await store.get_run("old")).run_id is None  # type: ignore[union-attr]


async def test_create_run_with_its_first_run(store: Store) -> None:
    first = replace(thread_run("f1", "t1", status="running"), metadata={"owner": "bob", "n": 2})
    run = await store.create_run("t1", "review", {"x": 1}, first=first)
    assert (run.status, run.run_id, run.metadata, run.input) == ("running", "f1", {"owner": "bob", "n": 2}, {"x": 1})
    assert await store.get_run("t1") == run
    assert await store.get_thread_run("f1") == first
    assert await store.list_thread_runs("t1") == [first]
    with pytest.raises(ThreadExists):
        await store.create_run("t1", "review", {}, first=thread_run("f2", "t1", status="running"))
    assert await store.get_thread_run("f2") is None  # one transaction: the loser's run is gone too
    assert await store.set_status("t1", "waiting_approval")
    assert (await store.get_thread_run("f1")).status == "interrupted"  # type: ignore[union-attr]


async def test_list_thread_runs_newest_first(store: Store) -> None:
    await store.create_thread("t1", {})
    await store.create_thread("t2", {})
    for n in range(4):
        await store.add_run(thread_run(f"r{n}"), exclusive=False)
    await store.add_run(thread_run("other", "t2"), exclusive=False)
    await store.next_run("t1")
    assert await store.set_run_status("r2", "interrupted", expect=["pending"])

    async def listed(**kw: Any) -> list[str]:
        return [r.run_id for r in await store.list_thread_runs("t1", **kw)]

    assert await listed() == ["r3", "r2", "r1", "r0"]
    assert await listed(limit=2) == ["r3", "r2"]
    assert await listed(limit=2, offset=3) == ["r0"]
    assert await listed(status="pending") == ["r3", "r1"]
    assert await listed(status="running") == ["r0"]
    assert await listed(status="pending", limit=1, offset=1) == ["r1"]
    assert await listed(status="success") == []
    assert await store.list_thread_runs("missing") == []


async def test_set_run_status_is_compare_and_set(store: Store) -> None:
    await store.create_thread("t1", {})
    await store.add_run(thread_run("r1"), exclusive=False)
    assert not await store.set_run_status("r1", "running", expect=["running", "interrupted"])
    assert await store.set_run_status("r1", "interrupted", expect=["pending"])
    assert not await store.set_run_status("r1", "interrupted", expect=["pending"])
    assert not await store.set_run_status("missing", "interrupted", expect=["pending"])
    run = await store.get_thread_run("r1")
    assert run is not None and run.status == "interrupted" and run.updated_at >= TS
    assert await store.next_run("t1") is None  # no longer queued
    assert not await store.set_run_status("r1", "pending", expect=[])


async def test_delete_thread_run_and_its_events(store: Store) -> None:
    await store.create_thread("t1", {})
    await store.add_run(thread_run("r1"), exclusive=False)
    await store.add_run(thread_run("r2"), exclusive=False)
    await store.append_events([event("r1", 1), event("r1", 2), event("r2", 1)])
    await store.delete_thread_run("r1")
    await store.delete_thread_run("r1")  # again: nothing to do
    await store.delete_thread_run("missing")
    assert await store.get_thread_run("r1") is None and await store.get_events("r1") == []
    assert await store.last_event("r1") == 0
    assert [r.run_id for r in await store.list_thread_runs("t1")] == ["r2"]
    assert await store.get_events("r2") == [event("r2", 1)]


async def test_queued_threads_are_those_that_run_nothing(store: Store) -> None:
    assert await store.queued_threads() == []
    await store.create_thread("idle", {})
    await store.create_thread("empty", {})
    await store.create_run("busy", "review", {})
    await store.create_run("done", "review", {})
    await store.set_status("done", "completed")
    await store.create_thread("cancelled", {})
    for thread_id in ("idle", "busy", "done", "cancelled"):
        await store.add_run(thread_run(f"r-{thread_id}", thread_id), exclusive=False)
    await store.add_run(thread_run("r-idle-2", "idle"), exclusive=False)
    assert await store.set_run_status("r-cancelled", "interrupted", expect=["pending"])
    assert sorted(await store.queued_threads()) == ["done", "idle"]
    assert len(await store.queued_threads(limit=1)) == 1
    await store.next_run("idle")  # it runs now (its second run still queued)
    assert await store.queued_threads() == ["done"]


async def test_events_append_dedupe_and_page(store: Store) -> None:
    assert await store.get_events("r1") == [] and await store.last_event("r1") == 0
    await store.append_events([])
    await store.append_events([event("r1", 1), event("r1", 2), event("r1", 2, '"dup in batch"'), event("r2", 1)])
    await store.append_events([event("r1", 1, '"replayed"'), event("r1", 3, '{"text": "a\\nb ✓ \\u0000"}')])
    got = await store.get_events("r1")
    assert [e["seq"] for e in got] == [1, 2, 3]
    assert got[:2] == [event("r1", 1), event("r1", 2)]  # the first write wins
    assert got[2] == event("r1", 3, '{"text": "a\\nb ✓ \\u0000"}')
    assert [e["seq"] for e in await store.get_events("r1", after=1)] == [2, 3]
    assert [e["seq"] for e in await store.get_events("r1", after=0, limit=2)] == [1, 2]
    assert await store.get_events("r1", after=3) == []
    assert await store.last_event("r1") == 3 and await store.last_event("r2") == 1
    await store.append_events([event("big", seq) for seq in range(1, 1201)])  # more than one chunk
    assert [e["seq"] for e in await store.get_events("big", after=1000)] == list(range(1001, 1201))


async def test_delete_thread_removes_everything_of_it(store_url: str) -> None:
    async with open_store(store_url) as store:
        for thread_id in ("t1", "t2"):
            await store.create_run(thread_id, "review", {}, first=thread_run(f"{thread_id}-r1", thread_id, "running"))
            await store.add_run(thread_run(f"{thread_id}-r2", thread_id), exclusive=False)
            await store.append_events([event(f"{thread_id}-r1", 1), event(f"{thread_id}-r2", 1)])
            await store.append_logs([line(thread_id, 1)])
            await store.put_approvals(thread_id, [pending(thread_id, "i1")])
            await store.record_decision(Decision(thread_id, "i0", "approve", None, TS, "alice"))
            assert await store.claim(thread_id, "node-a", 30)
        assert await store.delete_thread("t1")
        assert not await store.delete_thread("t1")
        assert not await store.delete_thread("missing")

        assert await store.get_run("t1") is None and await store.list_thread_runs("t1") == []
        assert await store.get_events("t1-r1") == [] and await store.get_events("t1-r2") == []
        assert await store.get_logs("t1") == [] and await store.decisions("t1") == []
        assert await store.claim("t1", "node-b", 30)  # the lease went too
        await store.release("t1", "node-b")
        tables = {
            "runs": "thread_id",
            "thread_runs": "thread_id",
            "run_events": "run_id",
            "logs": "thread_id",
            "approvals": "thread_id",
            "decisions": "thread_id",
            "leases": "thread_id",
        }
        for table, column in tables.items():  # what another process sees: committed, t2's rows only
            assert set(committed(store_url, f"SELECT DISTINCT {column} FROM {table}")) <= {"t2", "t2-r1", "t2-r2"}
            assert committed(store_url, f"SELECT count(*) FROM {table}") != [0], table
        assert await store.get_thread_run("t2-r2") is not None and len(await store.get_events("t2-r1")) == 1


async def test_nul_in_metadata_does_not_lose_it(store: Store) -> None:
    await store.create_thread("t1", {"k": "before\x00after", "list": ["\x00"], "a\\u0000": "\\\x00"})
    stored = await store.get_run("t1")
    assert stored is not None and stored.metadata["k"].startswith("before") and stored.metadata["k"].endswith("after")
    assert stored.metadata["a\\u0000"].startswith("\\") and len(stored.metadata["list"][0]) == 1
    assert [r.thread_id for r in await store.search_threads(metadata={"k": stored.metadata["k"]})] == ["t1"]
    updated = await store.update_thread("t1", {"more": "x\x00"})
    assert updated is not None and updated.metadata["more"].startswith("x")


OLD_RUNS = (
    "CREATE TABLE runs (thread_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, status TEXT NOT NULL,"
    " input TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, error TEXT)"
)
OLD_ROW = ("old", "review", "waiting_approval", '{"topic": "x"}', TS, TS, None)


async def check_migrated(url: str) -> None:
    """A store made before threads held many runs opens, reads its runs and takes the new calls."""
    for _ in range(2):  # a second open finds nothing to migrate
        async with open_store(url) as store:
            old = await store.get_run("old")
            assert old is not None and (old.status, old.input, old.metadata, old.run_id) == (
                "waiting_approval",
                {"topic": "x"},
                {},
                None,
            )
            assert [r.thread_id for r in (await store.list_runs()).runs][-1] == "old"
    async with open_store(url) as store:
        begin = thread_run("r1", "old", "running")
        assert await store.set_status("old", "running", expect=["waiting_approval"], begin=begin)
        assert (await store.get_run("old")).run_id == "r1"  # type: ignore[union-attr]
        updated = await store.update_thread("old", {"k": 1})
        assert updated is not None and updated.metadata == {"k": 1}
        assert [r.thread_id for r in await store.search_threads(metadata={"k": 1})] == ["old"]
        await store.create_thread("new", {"k": 2})
        assert {r.thread_id for r in await store.search_threads()} == {"old", "new"}


async def test_old_sqlite_store_migrates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite"
    with contextlib.closing(sqlite3.connect(sqlite_path(url))) as db:
        db.execute(OLD_RUNS)
        db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", OLD_ROW)
        db.commit()
    await check_migrated(url)


async def test_old_postgres_store_migrates(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(OLD_RUNS.replace("thread_id TEXT", 'thread_id TEXT COLLATE "C"'))
        db.execute("INSERT INTO runs VALUES (%s, %s, %s, %s, %s, %s, %s)", OLD_ROW)
    await check_migrated(url)
