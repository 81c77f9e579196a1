"""The store's data lifecycle on both backends: erasing a thread, retention's helpers, migrations."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
import release_256801a
from test_store import committed, event, line, pending, thread_run

from app.errors import NotFound, SchemaTooNew
from app.store import AuditEntry, Decision, Store, open_store
from app.store.base import Delivery
from app.store.urls import sqlite_path


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite"
    return str(request.getfixturevalue("postgres_server").create_database())


OLD = "2026-01-01T00:00:00+00:00"
TABLES = ("runs", "thread_runs", "run_events", "logs", "approvals", "decisions", "leases", "webhook_deliveries")


async def fill(store: Store, thread_id: str, status: str = "completed") -> None:
    """A thread with a row in every table that names it."""
    await store.create_run(thread_id, "review", {"n": 1}, first=thread_run(f"{thread_id}-r1", thread_id, "running"))
    await store.append_events([event(f"{thread_id}-r1", 1), event(f"{thread_id}-r1", 2)])
    await store.append_logs([line(thread_id, seq) for seq in range(1, 8)])
    await store.put_approvals(thread_id, [pending(thread_id, "i1")])
    await store.record_decision(Decision(thread_id, "i1", "approve", None, OLD, "alice"))
    await store.add_delivery(Delivery(f"{thread_id}-d1", "http://hook", "completed", thread_id, "{}", "node-a"))
    assert await store.claim(thread_id, "node-a", 30)
    await store.release(thread_id, "node-a")
    await store.set_status(thread_id, status)


def rows_of(url: str, thread_id: str) -> dict[str, int]:
    counts = {}
    for table in TABLES:
        column = "run_id" if table == "run_events" else "thread_id"
        counts[table] = len(committed(url, f"SELECT 1 FROM {table} WHERE {column} LIKE '{thread_id}%'"))
    return counts


async def test_erase_removes_every_row_of_the_thread_and_audits_it(store_url: str) -> None:
    async with open_store(store_url) as store:
        await fill(store, "t1")
        await fill(store, "t2")
        calls: list[str] = []

        async def then(conn: Any) -> None:
            calls.append("checkpoints")

        audit = AuditEntry("2026-12-01T00:00:00+00:00", "alice", "delete", "t1", {"status": "completed"})
        removed = await store.erase_thread("t1", audit=audit, then=then)
        assert removed is not None and calls == ["checkpoints"]
        assert (removed["runs"], removed["logs"], removed["run_events"], removed["webhook_deliveries"]) == (1, 7, 2, 1)
        assert set(rows_of(store_url, "t1").values()) == {0}
        assert rows_of(store_url, "t2") == {**dict.fromkeys(TABLES, 1), "run_events": 2, "logs": 7, "leases": 0}
        [entry] = await store.audit_log()
        assert (entry.actor, entry.action, entry.thread_id) == ("alice", "delete", "t1")
        assert entry.detail["status"] == "completed" and entry.detail["removed"]["logs"] == 7
        assert await store.erase_thread("t1") is None and not await store.delete_thread("missing")
        assert await store.delete_thread("t2") and await store.audit_log(thread_id="t2") == []


async def test_a_failure_inside_the_erase_keeps_everything(store_url: str) -> None:
    async with open_store(store_url) as store:
        await fill(store, "t1")

        async def then(conn: Any) -> None:
            raise NotFound("the checkpointer failed")

        audit = AuditEntry(OLD, "alice", "delete", "t1", {})
        with pytest.raises(NotFound):
            await store.erase_thread("t1", audit=audit, then=then)
        assert rows_of(store_url, "t1") == {**dict.fromkeys(TABLES, 1), "run_events": 2, "logs": 7, "leases": 0}
        assert await store.audit_log() == []


async def test_retention_sees_only_threads_that_finished_before_the_cutoff(store_url: str) -> None:
    async with open_store(store_url) as store:
        for thread_id, status in (("a-done", "completed"), ("b-failed", "failed"), ("c-wait", "waiting_approval"),
                                  ("d-run", "running"), ("e-cancelled", "cancelled")):
            await fill(store, thread_id, status)
        await store.create_thread("f-idle", {})
        await fill(store, "g-queued")
        await store.add_run(thread_run("g-r2", "g-queued"), exclusive=False)  # pending: it will run
        now = "9999-01-01T00:00:00+00:00"
        assert await store.finished_threads(now) == ["a-done", "b-failed", "e-cancelled"]
        assert await store.finished_threads(now, after="a-done", limit=1) == ["b-failed"]
        assert await store.finished_threads(OLD) == []  # they finished after it

        assert await store.delete_logs("c-wait", now) == 0  # waiting: never pruned
        assert await store.erase_thread("c-wait", finished_before=now) is None
        assert await store.erase_thread("g-queued", finished_before=now) is None
        assert await store.delete_logs("a-done", OLD) == 0
        assert [await store.delete_logs("a-done", now, limit=3) for _ in range(4)] == [3, 3, 1, 0]
        assert await store.get_run("a-done") is not None
        assert await store.erase_thread("b-failed", finished_before=now) is not None
        assert rows_of(store_url, "c-wait")["logs"] == 7


async def test_reclaim_gives_sqlite_space_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.sqlite"
    path = sqlite_path(url)
    async with open_store(url) as store:
        await store.create_run("t1", "review", {})
        await store.append_logs([line("t1", seq, "x" * 500) for seq in range(1, 20001)])
        await store.set_status("t1", "completed")
        await store.reclaim()
        before = path.stat().st_size
        while await store.delete_logs("t1", "9999", limit=5000):
            pass
        assert await store.reclaim() > 0
        assert path.stat().st_size < before / 4
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental


def sqlite_release(url: str) -> None:
    with contextlib.closing(sqlite3.connect(sqlite_path(url))) as db:
        db.executescript(release_256801a.SQLITE)  # as that release created it
        for sql, args in ROWS:
            db.execute(sql.replace("%s", "?"), args)
        db.commit()


def postgres_release(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(release_256801a.POSTGRES)
        for sql, args in ROWS:
            db.execute(sql.replace("NULL, %s, %s)", "NULL, %s::jsonb, %s)"), args)  # runs.metadata is jsonb


ROWS: list[tuple[str, tuple[Any, ...]]] = [
    ("INSERT INTO runs VALUES (%s, %s, %s, %s, %s, %s, NULL, %s, %s)",
     ("old", "review", "waiting_approval", '{"topic": "x"}', OLD, OLD, '{"k": 1}', "r1")),
    ("INSERT INTO runs VALUES (%s, %s, %s, %s, %s, %s, NULL, %s, %s)",
     ("done", "review", "completed", "{}", OLD, OLD, "{}", "r2")),
    ("INSERT INTO thread_runs (run_id, thread_id, assistant_id, workflow, status, kwargs, metadata,"
     " multitask_strategy, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
     ("r1", "old", "a", "review", "interrupted", "{}", "{}", "reject", OLD, OLD)),
    ("INSERT INTO run_events VALUES (%s, %s, %s, %s)", ("r1", 1, "values", '{"v": 1}')),
    ("INSERT INTO logs VALUES (%s, %s, %s, %s, %s)", ("old", 1, "INFO", "first line", OLD)),
    ("INSERT INTO logs VALUES (%s, %s, %s, %s, %s)", ("done", 1, "INFO", "done line", OLD)),
    ("INSERT INTO approvals VALUES (%s, %s, %s, %s, %s, %s, %s)", ("old", "i1", "review", '"ask"', OLD, None, None)),
    ("INSERT INTO decisions VALUES (%s, %s, %s, %s, %s, %s, %s)", ("done", "i0", "approve", "ok", OLD, "bob", "null")),
    ("INSERT INTO tokens VALUES (%s, %s, %s, %s, %s, %s, NULL, NULL)", ("f" * 64, "ci", "operator", "api", OLD, "bob")),
    ("INSERT INTO leases VALUES (%s, %s, %s)", ("old", "node-a", 1.0)),
    ("INSERT INTO webhook_deliveries VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
     ("d1", "http://hook", "completed", "done", "{}", "node-a", "delivered", 1, 200, None, OLD, OLD)),
]
ALL_TABLES = (*TABLES, "tokens")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_database_of_the_previous_release_upgrades_losing_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/release.sqlite"
        sqlite_release(url)
    else:
        url = request.getfixturevalue("postgres_server").create_database()
        postgres_release(url)
    before = {t: sorted(map(repr, committed_rows(url, t))) for t in ALL_TABLES}
    for _ in range(2):  # the second open finds nothing to do
        async with open_store(url) as store:
            assert {t: sorted(map(repr, committed_rows(url, t))) for t in ALL_TABLES} == before
            assert committed(url, "SELECT version FROM schema_migrations ORDER BY version") == [1, 2, 3]
    async with open_store(url) as store:
        old = await store.get_run("old")
        assert old is not None and (old.status, old.input, old.metadata, old.run_id) == (
            "waiting_approval", {"topic": "x"}, {"k": 1}, "r1")
        assert [a.interrupt_id for a in (await store.list_approvals()).approvals] == ["i1"]
        assert [ln["text"] for ln in await store.get_logs("done")] == ["done line"]
        removed = await store.erase_thread("done", audit=AuditEntry(OLD, "alice", "delete", "done", {}))
        assert removed is not None and removed["webhook_deliveries"] == 1 and removed["decisions"] == 1
        assert [e.thread_id for e in await store.audit_log()] == ["done"]


def committed_rows(url: str, table: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(sqlite_path(url))) as db:
            return [tuple(r) for r in db.execute(f"SELECT * FROM {table}")]
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(f"SELECT * FROM {table}")]


async def test_a_newer_database_is_refused_with_one_line(store_url: str) -> None:
    async with open_store(store_url):
        pass
    sql = "INSERT INTO schema_migrations VALUES (99, 'later')"
    if store_url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(sqlite_path(store_url))) as db:
            db.execute(sql)
            db.commit()
    else:
        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute(sql)
    with pytest.raises(SchemaTooNew) as refused:
        async with open_store(store_url):
            pass
    message = str(refused.value)
    assert "\n" not in message and "schema version 99, newer than this Beacon's 3" in message
    assert committed(store_url, "SELECT count(*) FROM runs") == [0]  # nothing touched


def test_run_py_refuses_a_newer_store_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import ROOT, TOKEN_ENTRY

    path = tmp_path / "newer.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        db.execute("INSERT INTO schema_migrations VALUES (7, 'later')")
        db.commit()
    env = {"PATH": "/usr/bin:/bin", "STORE_URL": f"sqlite:///{path}", "REST_API_PORT": "0", "SOCKETIO_PORT": "0",
           "BEACON_AUTH_TOKENS": TOKEN_ENTRY}  # fmt: skip
    done = subprocess.run([sys.executable, "run.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"beacon: the store {path} has schema version 7, newer than this Beacon's 3:"
        " run the Beacon release that wrote it (or restore a backup)"
    ]


async def test_checkpoints_are_erased_in_the_stores_transaction_where_they_share_its_database(
    store_url: str,
) -> None:
    """Postgres: a failure after the checkpoints' delete rolls it back with Beacon's rows. SQLite
    keeps them in another file: they are gone, the thread is still listed and deletes again."""
    from langgraph.checkpoint.base import empty_checkpoint

    from app.runs.checkpoints import delete_checkpoints, open_checkpointer
    from app.runs.erase import erase

    async with open_store(store_url) as store, open_checkpointer(store_url) as saver:
        await fill(store, "t1")
        config: Any = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
        await saver.aput(config, empty_checkpoint(), {}, {})
        assert await saver.aget_tuple(config) is not None

        async def fails_after_the_checkpoints(conn: Any) -> None:
            await delete_checkpoints(saver, "t1", conn)
            raise NotFound("after the checkpoints")

        with pytest.raises(NotFound):
            await store.erase_thread("t1", then=fails_after_the_checkpoints)
        assert await store.get_run("t1") is not None and await store.get_logs("t1")
        kept = await saver.aget_tuple(config)
        assert (kept is not None) == store_url.startswith("postgresql")
        removed = await erase(store, saver, "t1", actor="alice", action="delete")
        assert removed is not None and await saver.aget_tuple(config) is None
        assert await store.get_run("t1") is None
