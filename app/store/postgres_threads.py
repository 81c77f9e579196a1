"""The Postgres store's threads: their runs, queued in order, and the server-sent events of each run.

Several processes share the database, so whatever decides from what it read locks the thread's
row in `runs` first (`SELECT ... FOR UPDATE`): two `add_run(exclusive=True)` or two `next_run`
on one thread take turns, and the second sees what the first committed. Locks are always taken
thread row first, then its runs, so no two calls wait for each other in a circle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.rows import DictRow

from app.errors import NotFound, ThreadBusy, ThreadExists
from app.names import now_iso
from app.store.base import Run, RunEvent, ThreadRun, run_row

T = TypeVar("T")
Conn = psycopg.AsyncConnection[DictRow]
Query = Callable[[Conn], Awaitable[T]]
Params = Sequence[Any] | Mapping[str, Any]  # positional %s or named %(name)s

RUN_COLUMNS = (
    "run_id, thread_id, assistant_id, workflow, status, kwargs, metadata, multitask_strategy, created_at, updated_at"
)
INSERT_RUN = f"INSERT INTO thread_runs ({RUN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def pg_text(value: str) -> str:
    """Postgres text cannot hold NUL; SQLite can. Keep the line, mark the byte."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def jsonb(value: Any) -> str:
    """`value` as JSON text that Postgres takes as jsonb, which refuses the escape \\u0000."""
    text = json.dumps(value, default=str)
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396, as SQLite's json_patch: objects merge key by key, a null removes the key."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def thread(row: DictRow) -> Run:
    """A row of `runs` (its metadata jsonb, which psycopg has parsed already)."""
    return Run(**{**row, "input": json.loads(row["input"])})


def _thread_run(row: DictRow) -> ThreadRun:
    return ThreadRun(**{**row, "kwargs": json.loads(row["kwargs"]), "metadata": json.loads(row["metadata"])})


async def _lock_thread(conn: Conn, thread_id: str) -> str | None:
    """Lock the thread's row until the transaction ends; its status, None if there is no thread."""
    row = await (await conn.execute("SELECT status FROM runs WHERE thread_id = %s FOR UPDATE", (thread_id,))).fetchone()
    return None if row is None else str(row["status"])


class PostgresThreads:
    """Mixed into PostgresStore, whose connection helpers it uses (the timeout and StoreUnavailable)."""

    async def _call(self, query: Query[T], timeout: float | None = None) -> T:
        raise NotImplementedError

    async def _fetch(self, sql: str, args: Params = ()) -> list[DictRow]:
        raise NotImplementedError

    async def _execute(self, sql: str, args: Params = ()) -> int:
        raise NotImplementedError

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> Run:
        ts = now_iso()
        try:
            await self._execute(
                "INSERT INTO runs VALUES (%s, '', 'idle', '{}', %s, %s, NULL, %s::jsonb, NULL)",
                (thread_id, ts, ts, jsonb(metadata)),
            )
        except psycopg.errors.UniqueViolation:
            raise ThreadExists(f"thread {thread_id!r} already exists") from None
        return Run(thread_id, "", "idle", {}, ts, ts, None, metadata, None)

    async def update_thread(self, thread_id: str, metadata: dict[str, Any]) -> Run | None:
        async def query(conn: Conn) -> Run | None:
            async with conn.transaction():
                cur = await conn.execute("SELECT metadata FROM runs WHERE thread_id = %s FOR UPDATE", (thread_id,))
                row = await cur.fetchone()
                if row is None:
                    return None
                cur = await conn.execute(
                    "UPDATE runs SET metadata = %s::jsonb, updated_at = %s WHERE thread_id = %s RETURNING *",
                    (jsonb(merge_patch(row["metadata"], metadata)), now_iso(), thread_id),
                )
                updated = await cur.fetchone()
                return None if updated is None else thread(updated)

        return await self._call(query)

    async def search_threads(
        self,
        *,
        metadata: dict[str, Any] | None = None,
        statuses: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[Run]:
        where: list[str] = ["TRUE"]
        args: list[Any] = []
        for key, value in (metadata or {}).items():
            # jsonb equality, not containment (@>): {"a": 1} does not match {"a": 1, "b": 2}.
            where.append("metadata -> %s::text = %s::jsonb")
            args += [key, jsonb(value)]
        if statuses:
            where.append("status = ANY(%s)")
            args.append(list(statuses))
        if ids:
            where.append("thread_id = ANY(%s)")
            args.append(list(ids))
        sql = (
            f"SELECT * FROM runs WHERE {' AND '.join(where)}"
            " ORDER BY created_at DESC, thread_id DESC LIMIT %s OFFSET %s"
        )
        return [thread(r) for r in await self._fetch(sql, [*args, limit, offset])]

    async def add_run(self, run: ThreadRun, *, exclusive: bool) -> None:
        async def query(conn: Conn) -> None:
            async with conn.transaction():
                status = await _lock_thread(conn, run.thread_id)
                if status is None:
                    raise NotFound(f"no thread {run.thread_id!r}")
                if exclusive:
                    cur = await conn.execute(
                        "SELECT 1 FROM thread_runs WHERE thread_id = %s AND status = 'pending' LIMIT 1",
                        (run.thread_id,),
                    )
                    if status == "running" or await cur.fetchone() is not None:
                        raise ThreadBusy(f"thread {run.thread_id!r} is busy", {"multitask_strategy": "reject"})
                await conn.execute(INSERT_RUN, run_row(run))

        await self._call(query)

    async def next_run(self, thread_id: str) -> ThreadRun | None:
        ts = now_iso()

        async def query(conn: Conn) -> ThreadRun | None:
            async with conn.transaction():
                if await _lock_thread(conn, thread_id) in (None, "running"):
                    return None
                while True:  # a queued run cancelled meanwhile (set_run_status) gives way to the next
                    cur = await conn.execute(
                        "SELECT run_id FROM thread_runs WHERE thread_id = %s AND status = 'pending'"
                        " ORDER BY position LIMIT 1",
                        (thread_id,),
                    )
                    oldest = await cur.fetchone()
                    if oldest is None:
                        return None
                    cur = await conn.execute(
                        f"UPDATE thread_runs SET status = 'running', updated_at = %s"
                        f" WHERE run_id = %s AND status = 'pending' RETURNING {RUN_COLUMNS}",
                        (ts, oldest["run_id"]),
                    )
                    row = await cur.fetchone()
                    if row is not None:
                        break
                run = _thread_run(row)
                await conn.execute(
                    "UPDATE runs SET status = 'running', workflow = %s, run_id = %s, error = NULL, updated_at = %s"
                    " WHERE thread_id = %s",
                    (run.workflow, run.run_id, ts, thread_id),
                )
                return run

        return await self._call(query)

    async def get_thread_run(self, run_id: str) -> ThreadRun | None:
        rows = await self._fetch(f"SELECT {RUN_COLUMNS} FROM thread_runs WHERE run_id = %s", (run_id,))
        return _thread_run(rows[0]) if rows else None

    async def list_thread_runs(
        self, thread_id: str, *, limit: int = 10, offset: int = 0, status: str | None = None
    ) -> list[ThreadRun]:
        sql, args = f"SELECT {RUN_COLUMNS} FROM thread_runs WHERE thread_id = %s", [thread_id]
        if status:
            sql += " AND status = %s"
            args.append(status)
        rows = await self._fetch(sql + " ORDER BY position DESC LIMIT %s OFFSET %s", [*args, limit, offset])
        return [_thread_run(r) for r in rows]

    async def set_run_status(self, run_id: str, status: str, *, expect: Sequence[str]) -> bool:
        count = await self._execute(
            "UPDATE thread_runs SET status = %s, updated_at = %s WHERE run_id = %s AND status = ANY(%s)",
            (status, now_iso(), run_id, list(expect)),
        )
        return count == 1

    async def delete_thread_run(self, run_id: str) -> None:
        async def query(conn: Conn) -> None:
            async with conn.transaction():
                await conn.execute("DELETE FROM run_events WHERE run_id = %s", (run_id,))
                await conn.execute("DELETE FROM thread_runs WHERE run_id = %s", (run_id,))

        await self._call(query)

    async def queued_threads(self, limit: int = 100) -> list[str]:
        rows = await self._fetch(
            "SELECT q.thread_id FROM thread_runs q JOIN runs t USING (thread_id)"
            " WHERE q.status = 'pending' AND t.status != 'running'"
            " GROUP BY q.thread_id ORDER BY min(q.position) LIMIT %s",
            (limit,),
        )
        return [r["thread_id"] for r in rows]

    async def append_events(self, events: Sequence[RunEvent]) -> None:
        if not events:
            return
        # One statement for the whole batch: the columns travel as four arrays.
        columns: tuple[list[Any], ...] = ([], [], [], [])
        for e in events:
            values = (e["run_id"], e["seq"], pg_text(e["event"]), pg_text(e["data"]))
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        await self._execute(
            "INSERT INTO run_events SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[])"
            " ON CONFLICT DO NOTHING",
            columns,
        )

    async def get_events(self, run_id: str, after: int = 0, limit: int = 1000) -> list[RunEvent]:
        rows = await self._fetch(
            "SELECT run_id, seq, event, data FROM run_events WHERE run_id = %s AND seq > %s ORDER BY seq LIMIT %s",
            (run_id, after, limit),
        )
        return [RunEvent(run_id=r["run_id"], seq=r["seq"], event=r["event"], data=r["data"]) for r in rows]

    async def last_event(self, run_id: str) -> int:
        rows = await self._fetch("SELECT max(seq) AS m FROM run_events WHERE run_id = %s", (run_id,))
        return int(rows[0]["m"] or 0) if rows else 0
