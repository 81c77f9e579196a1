"""Short reads by key, answered on the event loop's own thread from a second, read-only connection.

A hop to a connection's thread costs more CPU than such a read: the thread wakes, the GIL
changes hands twice, a self-pipe write wakes the loop again (strace of the flow benchmark:
about 2,000 futex calls per flow with every read hopping). WAL lets a second connection read
while the writer writes, and it sees only committed rows: a run's row, a thread's view or its
latest checkpoint is read here in tens of microseconds. Writes, and reads that may scan, stay
on the connection's thread. A reader that finds the database busy (a WAL recovery, another
process's checkpoint restart) answers `Busy`, and the caller asks its thread instead, which waits.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class Busy(Exception):
    """The reader could not read right now without waiting: ask the connection's thread."""


class LoopReads:
    """A read-only connection, only ever used on the thread that opened it (the loop's)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    @contextlib.contextmanager
    def open(cls, path: str, *, rows: bool = True) -> Iterator[LoopReads]:
        conn = sqlite3.connect(path, isolation_level=None)  # autocommit: the snapshot is explicit
        try:
            if rows:
                conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only=1")
            conn.execute("PRAGMA busy_timeout=0")  # never block the loop: Busy instead
            yield cls(conn)
        finally:
            conn.close()

    def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` in one read transaction: its statements see one committed snapshot."""
        conn = self.conn
        try:
            conn.execute("BEGIN")
            try:
                return fn(conn, *args)
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")  # ends the snapshot (a read transaction has nothing to write)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise Busy(str(exc)) from exc
            raise
