"""SQLite reads by key on the loop's own connection: no hop to the store's thread, committed rows
only, and a busy reader hands the read to the thread (which waits) instead of failing or blocking."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from app.runs.checkpoints import open_checkpointer
from app.store import open_store
from app.store.sqlite_reads import Busy, LoopReads


@contextlib.contextmanager
def held(run: Any) -> Iterator[threading.Event]:
    """The connection's thread kept busy in `run` until the block ends (or 10 s pass)."""
    release, started = threading.Event(), threading.Event()

    def hold(*args: Any) -> None:
        started.set()
        release.wait(10)

    task = asyncio.ensure_future(run(hold))
    try:
        yield started
    finally:
        release.set()
        del task


class BusyReads(LoopReads):
    """A reader that always finds the database busy (a WAL recovery under way, say)."""

    asked = 0

    def read(self, fn: Any, *args: Any) -> Any:
        self.asked += 1
        raise Busy("database is locked")


def test_only_a_busy_database_is_busy_and_the_snapshot_ends_either_way(tmp_path: Path) -> None:
    with LoopReads.open(str(tmp_path / "r.sqlite")) as reads:

        def locked(conn: sqlite3.Connection) -> None:
            conn.execute("SELECT 1").fetchall()
            exc = sqlite3.OperationalError("database is locked")
            exc.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise exc

        with pytest.raises(Busy):
            reads.read(locked)
        assert not reads.conn.in_transaction
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            reads.read(lambda conn: conn.execute("SELECT * FROM nowhere"))
        assert not reads.conn.in_transaction
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reads.read(lambda conn: conn.execute("CREATE TABLE t (x)"))
        assert reads.read(lambda conn: conn.execute("SELECT 2").fetchone()[0]) == 2


async def test_a_run_is_read_while_the_store_thread_is_busy_and_a_write_in_flight_is_not_seen(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path / 'b.sqlite'}") as store:
        await store.create_run("t1", "wf", {"n": 1})
        db: Any = store._db  # type: ignore[attr-defined]

        def half_written(conn: sqlite3.Connection, *args: Any) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE runs SET status = 'failed' WHERE thread_id = 't1'")
            hold(*args)
            conn.execute("ROLLBACK")

        release, started = threading.Event(), threading.Event()

        def hold(*_: Any) -> None:
            started.set()
            release.wait(10)

        writing = asyncio.ensure_future(db.run(half_written))
        try:
            assert await asyncio.to_thread(started.wait, 10)
            # The store's thread is inside an uncommitted write: the read is answered anyway, as committed.
            run = await asyncio.wait_for(store.get_run("t1"), 5)
            view = await asyncio.wait_for(store.thread_view("t1"), 5)
            assert run is not None and run.status == "running"
            assert view is not None and view.run.status == "running" and view.decisions == []
        finally:
            release.set()
            await writing
        run = await store.get_run("t1")
        assert run is not None and run.status == "running"  # rolled back


async def test_a_busy_reader_hands_the_read_to_the_store_thread(tmp_path: Path) -> None:
    async with open_store(f"sqlite:///{tmp_path / 'b.sqlite'}") as store:
        await store.create_run("t1", "wf", {"n": 1})
        busy = BusyReads(store._reads.conn)  # type: ignore[attr-defined]
        store._reads = busy  # type: ignore[attr-defined]
        run, view = await store.get_run("t1"), await store.thread_view("t1")
        assert run is not None and view is not None and view.run == run and busy.asked == 2


async def test_the_latest_checkpoint_is_read_while_the_saver_thread_is_busy_and_there_when_busy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.sqlite'}"
    async with open_checkpointer(url) as saver:
        config: Any = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}
        saved = await saver.aput(config, empty_checkpoint(), {"step": 0}, {})
        thread: Any = saver._thread  # type: ignore[attr-defined]
        with held(thread.call) as started:
            assert await asyncio.to_thread(started.wait, 10)
            got = await asyncio.wait_for(saver.aget_tuple(config), 5)  # the saver's thread is busy
        assert got is not None and got.config["configurable"]["checkpoint_id"] == saved["configurable"]["checkpoint_id"]
        busy = BusyReads(saver._reads.conn)  # type: ignore[attr-defined]
        saver._reads = busy  # type: ignore[attr-defined]
        again = await saver.aget_tuple(config)  # on the saver's thread
        assert again is not None and again.metadata["step"] == 0 and busy.asked == 1
