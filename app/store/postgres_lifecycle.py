"""The Postgres store's data lifecycle: erasing a thread, pruning finished ones in short statements.

Postgres gives space back by itself (autovacuum marks deleted rows reusable); nothing here takes
more than row locks, so retention never stalls other nodes.
"""

from __future__ import annotations

import json
import time

from psycopg.rows import DictRow

from app.store.base import FINISHED, AuditEntry, Then
from app.store.postgres_threads import Conn, Params, Query, T

# Every table but `runs` that names a thread, for erasing one; run_events hang off thread_runs.
THREAD_TABLES = ("decisions", "leases", "approvals", "logs", "webhook_deliveries", "thread_runs")
ELIGIBLE = (
    "status = ANY(%(finished)s) AND updated_at < %(before)s"
    " AND NOT EXISTS (SELECT 1 FROM thread_runs q WHERE q.thread_id = runs.thread_id AND q.status = 'pending')"
)
ERASE_TIMEOUT = 30.0  # seconds: a thread of many lines takes longer than one request's budget


class PostgresLifecycle:
    """Mixed into PostgresStore, whose connection helpers it uses."""

    async def _call(self, query: Query[T], timeout: float | None = None) -> T:
        raise NotImplementedError

    async def _fetch(self, sql: str, args: Params = ()) -> list[DictRow]:
        raise NotImplementedError

    async def _execute(self, sql: str, args: Params = ()) -> int:
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
        args = {"id": thread_id, "finished": list(FINISHED), "before": finished_before}
        where = "thread_id = %(id)s" + ("" if finished_before is None else f" AND {ELIGIBLE}")

        async def query(conn: Conn) -> dict[str, int] | None:
            async with conn.transaction():
                # The thread's row first, locked: an add_run or next_run holding it finishes before,
                # and none starts on the thread until this commits (and finds no thread).
                cur = await conn.execute(f"SELECT 1 FROM runs WHERE {where} FOR UPDATE", args)  # noqa: S608
                if await cur.fetchone() is None:
                    return None
                cur = await conn.execute(
                    "DELETE FROM run_events WHERE run_id IN (SELECT run_id FROM thread_runs WHERE thread_id = %s)",
                    (thread_id,),
                )
                removed = {"run_events": cur.rowcount}
                for table in (*THREAD_TABLES, "runs"):
                    cur = await conn.execute(f"DELETE FROM {table} WHERE thread_id = %s", (thread_id,))  # noqa: S608
                    removed[table] = cur.rowcount
                if audit is not None:
                    detail = json.dumps({**audit.detail, "removed": removed})
                    await conn.execute(
                        "INSERT INTO audit (at, actor, action, thread_id, detail) VALUES (%s, %s, %s, %s, %s)",
                        (audit.at, audit.actor, audit.action, thread_id, detail),
                    )
                if then is not None:
                    await then(conn)
            return removed

        return await self._call(query, ERASE_TIMEOUT)

    async def finished_threads(
        self, before: str, *, after: str = "", limit: int = 100, with_logs: bool = False
    ) -> list[str]:
        logs = " AND EXISTS (SELECT 1 FROM logs WHERE logs.thread_id = runs.thread_id)" if with_logs else ""
        rows = await self._fetch(
            f"SELECT thread_id FROM runs WHERE thread_id > %(after)s AND {ELIGIBLE}{logs}"  # noqa: S608
            " ORDER BY thread_id LIMIT %(limit)s",
            {"after": after, "finished": list(FINISHED), "before": before, "limit": limit},
        )
        return [r["thread_id"] for r in rows]

    async def delete_logs(self, thread_id: str, before: str, limit: int = 5000) -> int:
        return await self._execute(
            "DELETE FROM logs WHERE thread_id = %(id)s AND seq IN (SELECT seq FROM logs WHERE thread_id = %(id)s"
            f" ORDER BY seq LIMIT %(limit)s) AND EXISTS (SELECT 1 FROM runs WHERE thread_id = %(id)s AND {ELIGIBLE})",
            {"id": thread_id, "limit": limit, "finished": list(FINISHED), "before": before},
        )

    async def reclaim(self) -> int:
        return 0  # autovacuum's job; VACUUM FULL would lock the tables

    async def audit_log(self, *, thread_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        where, args = ("WHERE thread_id = %s", [thread_id]) if thread_id else ("", [])
        rows = await self._fetch(f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT %s", [*args, limit])  # noqa: S608
        return [AuditEntry(r["at"], r["actor"], r["action"], r["thread_id"], json.loads(r["detail"])) for r in rows]

    async def lease_holder(self, thread_id: str) -> str | None:
        rows = await self._fetch(
            "SELECT owner FROM leases WHERE thread_id = %s AND expires >= %s", (thread_id, time.time())
        )
        return str(rows[0]["owner"]) if rows else None
