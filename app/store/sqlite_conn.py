"""The store's SQLite connection on a thread of its own, with aiosqlite's calls plus `run`.

aiosqlite hops to its thread once per execute, commit and rollback: a three-statement
transaction is five hops. `run` executes a whole function there in one.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

from app.store.dbthread import DbThread

T = TypeVar("T")


class Connection:
    """One sqlite3 connection, only ever used on its DbThread (autocommit: transactions are explicit)."""

    def __init__(self, conn: sqlite3.Connection, thread: DbThread) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._thread = thread

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, path: str) -> AsyncIterator[Connection]:
        async with DbThread.running("store") as thread:
            db = cls(await thread.call(_connect, path), thread)
            try:
                yield db
            finally:
                await db.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` on the connection's thread."""
        return await self._thread.call(self._apply, fn, args)

    def _apply(self, fn: Callable[..., T], args: Sequence[Any]) -> T:
        if self._conn is None:
            raise ValueError("no active connection")  # as aiosqlite says it once the store is closing
        return fn(self._conn, *args)

    async def atomic(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` in BEGIN IMMEDIATE ... COMMIT, rolled back if it raises: one hop.

        Once queued it runs to its end even if the caller is cancelled meanwhile (the calls
        after it on this thread wait for it).
        """
        return await self.run(_atomic, fn, args)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return await self.run(_execute, sql, args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return await self.run(_executemany, sql, list(rows))

    async def execute_fetchall(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self.run(_fetchall, sql, args)

    async def commit(self) -> None:
        await self.run(_commit)

    async def rollback(self) -> None:
        await self.run(_rollback)

    async def close(self) -> None:
        await self.run(_close)
        self._conn = None


def _connect(path: str) -> sqlite3.Connection:
    # Autocommit (transactions are explicit); made here, used only here, closed here.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def _atomic(conn: sqlite3.Connection, fn: Callable[..., T], args: Sequence[Any]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return result


def _commit(conn: sqlite3.Connection) -> None:
    conn.commit()


def _execute(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
    return conn.execute(sql, args)


def _executemany(conn: sqlite3.Connection, sql: str, rows: list[Sequence[Any]]) -> sqlite3.Cursor:
    return conn.executemany(sql, rows)


def _fetchall(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
    return conn.execute(sql, args).fetchall()


def _rollback(conn: sqlite3.Connection) -> None:
    conn.rollback()  # a no-op when BEGIN never ran


def _close(conn: sqlite3.Connection) -> None:
    conn.close()
