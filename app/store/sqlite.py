"""SQLite store (the embedded default): one aiosqlite connection, WAL, batched writes."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from app.errors import StoreUnavailable, ThreadExists
from app.store.base import Decision, LogLine, Page, Run
from app.store.cursor import decode_cursor, encode_cursor

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    thread_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at DESC, thread_id DESC);
CREATE TABLE IF NOT EXISTS decisions (
    thread_id TEXT NOT NULL,
    interrupt_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    comment TEXT,
    decided_at TEXT NOT NULL,
    decided_by TEXT,
    data TEXT
);
CREATE TABLE IF NOT EXISTS leases (
    thread_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS logs (
    thread_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    level TEXT NOT NULL,
    text TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq)
) WITHOUT ROWID;
"""


def now() -> str:
    return datetime.now(UTC).isoformat()


def sqlite_path(url: str) -> Path:
    """`sqlite:///rel/path` is relative to the working directory, `sqlite:////abs` absolute."""
    return Path(url.split("://", 1)[1][1:] or "beacon.sqlite")


def _run(row: sqlite3.Row) -> Run:
    return Run(
        thread_id=row["thread_id"],
        workflow=row["workflow"],
        status=row["status"],
        input=json.loads(row["input"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        error=row["error"],
    )


@contextlib.contextmanager
def _guard() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError:
        raise
    except (sqlite3.OperationalError, sqlite3.DatabaseError, ValueError) as exc:
        # ValueError: aiosqlite's "no active connection" once the store is closing.
        raise StoreUnavailable(f"store unavailable: {exc}") from exc


class SqliteStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[SqliteStore]:
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(path, isolation_level=None) as db:
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.executescript(SCHEMA)
            yield cls(db)

    async def create_run(self, thread_id: str, workflow: str, input: dict[str, Any]) -> Run:
        ts = now()
        run = Run(thread_id, workflow, "running", input, ts, ts)
        with _guard():
            try:
                await self._db.execute(
                    "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, NULL)",
                    (thread_id, workflow, run.status, json.dumps(input), ts, ts),
                )
            except sqlite3.IntegrityError:
                raise ThreadExists(f"thread {thread_id!r} already exists") from None
        return run

    async def get_run(self, thread_id: str) -> Run | None:
        with _guard():
            async with self._db.execute("SELECT * FROM runs WHERE thread_id = ?", (thread_id,)) as cur:
                row = await cur.fetchone()
        return _run(row) if row else None

    async def set_status(
        self,
        thread_id: str,
        status: str,
        *,
        expect: Sequence[str] | None = None,
        error: str | None = None,
    ) -> bool:
        sql = "UPDATE runs SET status = ?, updated_at = ?, error = ? WHERE thread_id = ?"
        args: list[Any] = [status, now(), error, thread_id]
        if expect is not None:
            sql += f" AND status IN ({','.join('?' * len(expect))})"
            args += list(expect)
        with _guard():
            cur = await self._db.execute(sql, args)
        return cur.rowcount == 1

    async def list_runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        where, args = ["1=1"], []
        if status:
            where.append("status = ?")
            args.append(status)
        if workflow:
            where.append("workflow = ?")
            args.append(workflow)
        after = decode_cursor(cursor) if cursor else None  # ValueError for a foreign cursor
        with _guard():
            async with self._db.execute(f"SELECT count(*) FROM runs WHERE {' AND '.join(where)}", args) as cur:
                total = (await cur.fetchone())[0]  # type: ignore[index]
            if after:
                where.append("(created_at, thread_id) < (?, ?)")
                args += list(after)
            sql = f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY created_at DESC, thread_id DESC LIMIT ?"
            async with self._db.execute(sql, [*args, limit + 1]) as cur:
                rows = [_run(r) for r in await cur.fetchall()]
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, total, encode_cursor(rows[-1]) if more else None)

    async def count_by_status(self) -> dict[str, int]:
        with _guard():
            async with self._db.execute("SELECT status, count(*) FROM runs GROUP BY status") as cur:
                return {row[0]: row[1] for row in await cur.fetchall()}

    async def record_decision(self, d: Decision) -> None:
        with _guard():
            await self._db.execute(
                "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (d.thread_id, d.interrupt_id, d.decision, d.comment, d.decided_at, d.decided_by, json.dumps(d.data)),
            )

    async def decisions(self, thread_id: str) -> list[Decision]:
        with _guard():
            async with self._db.execute(
                "SELECT * FROM decisions WHERE thread_id = ? ORDER BY decided_at", (thread_id,)
            ) as cur:
                return [
                    Decision(**{**dict(row), "data": json.loads(row["data"] or "null")}) for row in await cur.fetchall()
                ]

    async def append_logs(self, lines: Sequence[LogLine]) -> None:
        # One multi-row statement per chunk is one implicit transaction, and needs no
        # BEGIN/COMMIT pair that other coroutines' statements could slip into.
        with _guard():
            for i in range(0, len(lines), 1000):
                chunk = lines[i : i + 1000]
                await self._db.execute(
                    "INSERT OR IGNORE INTO logs VALUES " + ",".join(["(?, ?, ?, ?, ?)"] * len(chunk)),
                    [v for ln in chunk for v in (ln["thread_id"], ln["seq"], ln["level"], ln["text"], ln["timestamp"])],
                )

    async def get_logs(self, thread_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]:
        with _guard():
            async with self._db.execute(
                "SELECT text, thread_id, level, timestamp, seq FROM logs"
                " WHERE thread_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (thread_id, after, limit),
            ) as cur:
                return [LogLine(**dict(row)) for row in await cur.fetchall()]  # type: ignore[typeddict-item]

    async def last_seq(self, thread_id: str) -> int:
        with _guard():
            async with self._db.execute("SELECT max(seq) FROM logs WHERE thread_id = ?", (thread_id,)) as cur:
                row = await cur.fetchone()
        return int(row[0] or 0) if row else 0

    async def claim(self, thread_id: str, owner: str, ttl: float) -> bool:
        ts = time.time()
        with _guard():
            cur = await self._db.execute(
                "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (thread_id) DO UPDATE"
                " SET owner = excluded.owner, expires = excluded.expires"
                " WHERE leases.owner = excluded.owner OR leases.expires < ?",
                (thread_id, owner, ts + ttl, ts),
            )
        return cur.rowcount == 1

    async def renew(self, owner: str, thread_ids: Sequence[str], ttl: float) -> None:
        if thread_ids:
            marks = ",".join("?" * len(thread_ids))
            with _guard():
                await self._db.execute(
                    f"UPDATE leases SET expires = ? WHERE owner = ? AND thread_id IN ({marks})",
                    (time.time() + ttl, owner, *thread_ids),
                )

    async def release(self, thread_id: str, owner: str) -> None:
        with _guard():
            await self._db.execute("DELETE FROM leases WHERE thread_id = ? AND owner = ?", (thread_id, owner))

    async def ping(self) -> None:
        with _guard():
            await self._db.execute("SELECT 1")
