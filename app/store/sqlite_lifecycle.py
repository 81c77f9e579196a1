"""The SQLite store's data lifecycle: erasing a thread, pruning finished ones, giving space back."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from app.store.base import FINISHED, AuditEntry, Then
from app.store.sqlite_conn import Connection

# Every table that names a thread, for erasing one; run_events hang off thread_runs.
THREAD_TABLES = ("decisions", "leases", "approvals", "logs", "webhook_deliveries", "thread_runs", "runs")
_FINISHED = ",".join(f"'{s}'" for s in FINISHED)
# A thread retention may prune: finished before the cutoff, nothing queued on it.
ELIGIBLE = (
    f"status IN ({_FINISHED}) AND updated_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM thread_runs q WHERE q.thread_id = runs.thread_id AND q.status = 'pending')"
)
VACUUM_STEP = 2000  # pages per incremental_vacuum: each holds the write lock for milliseconds


class SqliteLifecycle:
    """Mixed into SqliteStore, whose connection helpers it uses."""

    _db: Connection

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        raise NotImplementedError

    async def _write(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        raise NotImplementedError

    async def delete_thread(self, thread_id: str) -> bool:
        return await self.erase_thread(thread_id) is not None

    async def erase_thread(
        self,
        thread_id: str,
        *,
        audit: AuditEntry | None = None,
        finished_before: str | None = None,
        then: Then | None = None,
    ) -> dict[str, int] | None:
        async with self._transaction() as db:
            where, args = "thread_id = ?", [thread_id]
            if finished_before is not None:
                where, args = f"{where} AND {ELIGIBLE}", [thread_id, finished_before]
            if not list(await db.execute_fetchall(f"SELECT 1 FROM runs WHERE {where}", args)):  # noqa: S608
                return None
            cur = await db.execute(
                "DELETE FROM run_events WHERE run_id IN (SELECT run_id FROM thread_runs WHERE thread_id = ?)",
                (thread_id,),
            )
            removed = {"run_events": cur.rowcount}
            for table in THREAD_TABLES:
                cur = await db.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))  # noqa: S608
                removed[table] = cur.rowcount
            if audit is not None:
                await db.execute(
                    "INSERT INTO audit (at, actor, action, thread_id, detail) VALUES (?, ?, ?, ?, ?)",
                    (audit.at, audit.actor, audit.action, thread_id, json.dumps({**audit.detail, "removed": removed})),
                )
            if then is not None:
                await then(db)
        return removed

    async def finished_threads(
        self, before: str, *, after: str = "", limit: int = 100, with_logs: bool = False
    ) -> list[str]:
        logs = " AND EXISTS (SELECT 1 FROM logs WHERE logs.thread_id = runs.thread_id)" if with_logs else ""
        rows = await self._fetch(
            f"SELECT thread_id FROM runs WHERE thread_id > ? AND {ELIGIBLE}{logs} ORDER BY thread_id LIMIT ?",  # noqa: S608
            (after, before, limit),
        )
        return [r[0] for r in rows]

    async def delete_logs(self, thread_id: str, before: str, limit: int = 5000) -> int:
        cur = await self._write(
            "DELETE FROM logs WHERE thread_id = ? AND seq IN (SELECT seq FROM logs WHERE thread_id = ? ORDER BY seq"
            f" LIMIT ?) AND EXISTS (SELECT 1 FROM runs WHERE thread_id = ? AND {ELIGIBLE})",  # noqa: S608
            (thread_id, thread_id, limit, thread_id, before),
        )
        return int(cur.rowcount)

    async def reclaim(self) -> int:
        """Incremental vacuum in steps, other writes between them; then truncate the WAL if no reader holds it."""
        freed = 0
        while True:
            [(free,)] = await self._fetch("PRAGMA freelist_count")
            if not free:
                break
            await self._write(f"PRAGMA incremental_vacuum({VACUUM_STEP})")
            [(left,)] = await self._fetch("PRAGMA freelist_count")
            if left >= free:  # auto_vacuum is off for this file: freed pages are reused, not returned
                break
            freed += free - left
        await self._write("PRAGMA wal_checkpoint(TRUNCATE)")
        return freed

    async def audit_log(self, *, thread_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        where, args = ("WHERE thread_id = ?", [thread_id]) if thread_id else ("", [])
        rows = await self._fetch(f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?", [*args, limit])  # noqa: S608
        return [AuditEntry(r["at"], r["actor"], r["action"], r["thread_id"], json.loads(r["detail"])) for r in rows]

    async def lease_holder(self, thread_id: str) -> str | None:
        rows = await self._fetch(
            "SELECT owner FROM leases WHERE thread_id = ? AND expires >= ?", (thread_id, time.time())
        )
        return str(rows[0][0]) if rows else None
