"""The SQLite store's threads: their runs, queued in order, and the server-sent events of each run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from app.errors import NotFound, ThreadBusy, ThreadExists
from app.names import now_iso
from app.store.base import Run, RunEvent, ThreadRun, run_row
from app.store.sqlite_conn import Connection

T = TypeVar("T")
INSERT_RUN = "INSERT INTO thread_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def _thread_run(row: sqlite3.Row) -> ThreadRun:
    return ThreadRun(**{**dict(row), "kwargs": json.loads(row["kwargs"]), "metadata": json.loads(row["metadata"])})


def _thread(row: sqlite3.Row) -> Run:
    return Run(**{**dict(row), "input": json.loads(row["input"]), "metadata": json.loads(row["metadata"])})


class SqliteThreads:
    """Mixed into SqliteStore, whose connection helpers it uses."""

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    async def _fetch_by_key(self, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        raise NotImplementedError

    async def _write(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def _atomic(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> Run:
        ts = now_iso()
        run = Run(thread_id, "", "idle", {}, ts, ts, None, metadata, None)
        try:
            await self._write(
                "INSERT INTO runs VALUES (?, '', 'idle', '{}', ?, ?, NULL, ?, NULL)",
                (thread_id, ts, ts, json.dumps(metadata, default=str)),
            )
        except sqlite3.IntegrityError:
            raise ThreadExists(f"thread {thread_id!r} already exists") from None
        return run

    async def update_thread(self, thread_id: str, metadata: dict[str, Any]) -> Run | None:
        rows = await self._update_returning(
            "UPDATE runs SET metadata = json_patch(metadata, ?), updated_at = ? WHERE thread_id = ? RETURNING *",
            (json.dumps(metadata, default=str), now_iso(), thread_id),
        )
        return _thread(rows[0]) if rows else None

    async def _update_returning(self, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        async with self._transaction() as db:
            return list(await db.execute_fetchall(sql, args))

    async def search_threads(
        self,
        *,
        metadata: dict[str, Any] | None = None,
        statuses: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[Run]:
        where, args = ["1=1"], []
        for key, value in (metadata or {}).items():
            # Compared as minified JSON text, so 1 and "1" differ as they do in the metadata.
            where.append("metadata -> ('$.' || json_quote(?)) = json(?)")
            args += [key, json.dumps(value)]
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args += list(statuses)
        if ids:
            where.append(f"thread_id IN ({','.join('?' * len(ids))})")
            args += list(ids)
        sql = f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY created_at DESC, thread_id DESC"
        sql += " LIMIT ? OFFSET ?"
        return [_thread(r) for r in await self._fetch(sql, [*args, limit, offset])]

    async def add_run(self, run: ThreadRun, *, exclusive: bool) -> None:
        def insert(db: sqlite3.Connection) -> None:
            rows = db.execute("SELECT status FROM runs WHERE thread_id = ?", (run.thread_id,)).fetchall()
            if not rows:
                raise NotFound(f"no thread {run.thread_id!r}")
            if exclusive:
                queued = db.execute(
                    "SELECT 1 FROM thread_runs WHERE thread_id = ? AND status = 'pending' LIMIT 1", (run.thread_id,)
                ).fetchall()
                if rows[0][0] == "running" or queued:
                    raise ThreadBusy(f"thread {run.thread_id!r} is busy", {"multitask_strategy": "reject"})
            db.execute(INSERT_RUN, run_row(run))

        await self._atomic(insert)

    async def next_run(self, thread_id: str) -> ThreadRun | None:
        ts = now_iso()

        def take(db: sqlite3.Connection) -> ThreadRun | None:
            rows = db.execute(
                "SELECT q.* FROM thread_runs q JOIN runs t USING (thread_id) WHERE q.thread_id = ?"
                " AND q.status = 'pending' AND t.status != 'running' ORDER BY q.rowid LIMIT 1",
                (thread_id,),
            ).fetchall()
            if not rows:
                return None
            run = _thread_run(rows[0])
            db.execute("UPDATE thread_runs SET status = 'running', updated_at = ? WHERE run_id = ?", (ts, run.run_id))
            db.execute(
                "UPDATE runs SET status = 'running', workflow = ?, run_id = ?, error = NULL, updated_at = ?"
                " WHERE thread_id = ?",
                (run.workflow, run.run_id, ts, thread_id),
            )
            return run

        run = await self._atomic(take)
        return None if run is None else dataclasses.replace(run, status="running", updated_at=ts)

    async def get_thread_run(self, run_id: str) -> ThreadRun | None:
        rows = await self._fetch_by_key("SELECT * FROM thread_runs WHERE run_id = ?", (run_id,))
        return _thread_run(rows[0]) if rows else None

    async def list_thread_runs(
        self, thread_id: str, *, limit: int = 10, offset: int = 0, status: str | None = None
    ) -> list[ThreadRun]:
        sql, args = "SELECT * FROM thread_runs WHERE thread_id = ?", [thread_id]
        if status:
            sql += " AND status = ?"
            args.append(status)
        rows = await self._fetch(sql + " ORDER BY rowid DESC LIMIT ? OFFSET ?", [*args, limit, offset])
        return [_thread_run(r) for r in rows]

    async def set_run_status(self, run_id: str, status: str, *, expect: Sequence[str]) -> bool:
        cur = await self._write(
            f"UPDATE thread_runs SET status = ?, updated_at = ? WHERE run_id = ? AND status IN"
            f" ({','.join('?' * len(expect))})",
            (status, now_iso(), run_id, *expect),
        )
        return cur.rowcount == 1

    async def delete_thread_run(self, run_id: str) -> None:
        async with self._transaction() as db:
            await db.execute("DELETE FROM run_events WHERE run_id = ?", (run_id,))
            await db.execute("DELETE FROM thread_runs WHERE run_id = ?", (run_id,))

    async def queued_threads(self, limit: int = 100) -> list[str]:
        rows = await self._fetch(
            "SELECT DISTINCT q.thread_id FROM thread_runs q JOIN runs t USING (thread_id)"
            " WHERE q.status = 'pending' AND t.status != 'running' LIMIT ?",
            (limit,),
        )
        return [r[0] for r in rows]

    async def append_events(self, events: Sequence[RunEvent]) -> None:
        for i in range(0, len(events), 500):
            chunk = events[i : i + 500]
            await self._write(
                "INSERT OR IGNORE INTO run_events VALUES " + ",".join(["(?, ?, ?, ?)"] * len(chunk)),
                [v for e in chunk for v in (e["run_id"], e["seq"], e["event"], e["data"])],
            )

    async def get_events(self, run_id: str, after: int = 0, limit: int = 1000) -> list[RunEvent]:
        rows = await self._fetch(
            "SELECT run_id, seq, event, data FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (run_id, after, limit),
        )
        return [RunEvent(run_id=r[0], seq=r[1], event=r[2], data=r[3]) for r in rows]

    async def last_event(self, run_id: str) -> int:
        [(seq,)] = await self._fetch_by_key("SELECT max(seq) FROM run_events WHERE run_id = ?", (run_id,))
        return int(seq or 0)
