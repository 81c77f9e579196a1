"""Postgres store: psycopg 3 async through a psycopg_pool pool, every call bounded by a timeout.

Same semantics as the SQLite store; a connection failure or a call slower than `timeout`
(1.5 s, so a REST request still answers 503 within 2 s) raises StoreUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from app.errors import LastAdmin, StoreUnavailable, ThreadExists, TokenExists
from app.names import now_iso
from app.store.base import (
    RUN_STATUS_OF,
    Approval,
    ApprovalPage,
    Decision,
    Delivery,
    LogLine,
    Page,
    Run,
    ThreadRun,
    ThreadView,
    TokenRecord,
    approval_row,
)
from app.store.cursor import APPROVALS, DELIVERIES, RUNS
from app.store.postgres_check import check_at_rest
from app.store.postgres_lifecycle import PostgresLifecycle
from app.store.postgres_schema import migrate
from app.store.postgres_threads import (
    INSERT_RUN,
    Conn,
    Params,
    PostgresThreads,
    Query,
    T,
    jsonb,
    run_row,
)
from app.store.postgres_threads import pg_text as _text
from app.store.postgres_threads import thread as _run

logger = logging.getLogger(__name__)

RETRY_AFTER = 0.5  # while the server is down, seconds between calls that try it again

# What a dead, unreachable or stalled server looks like to psycopg (PoolTimeout included).
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, TimeoutError)


# A run with its decisions and, while it waits, its approvals: one statement, one round trip (each
# costs psycopg ~70 µs of CPU). The rows travel as JSON: every column of the two tables is TEXT but
# `deadline`, a float8, which JSON carries exactly.
THREAD_VIEW = """
SELECT r.*,
    (SELECT coalesce(json_agg(d ORDER BY d.decided_at), '[]') FROM decisions d WHERE d.thread_id = r.thread_id)
        AS view_decisions,
    (SELECT coalesce(json_agg(a ORDER BY a.waiting_since, a.interrupt_id), '[]') FROM approvals a
        WHERE a.thread_id = r.thread_id AND r.status = 'waiting_approval') AS view_approvals
FROM runs r WHERE r.thread_id = %s
"""


def _approval(row: DictRow) -> Approval:
    return Approval(**{**row, "value": json.loads(row["value"])})


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark an abandoned task's outcome as seen (no "exception was never retrieved")."""
    if not task.cancelled():
        task.exception()


def describe(url: str) -> str:
    """host:port/db of a URL, without credentials, for messages."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


class PostgresStore(PostgresThreads, PostgresLifecycle):
    def __init__(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]], timeout: float) -> None:
        self._pool = pool
        self._timeout = timeout
        self._checking: asyncio.Task[None] | None = None
        self._abandoned: set[asyncio.Task[Any]] = set()
        self._failed_at: float | None = None
        self._last_error = ""
        self._probing = False

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, url: str, *, timeout: float = 1.5, startup_timeout: float = 10.0, max_size: int = 10
    ) -> AsyncIterator[PostgresStore]:
        """Connect (waiting up to `startup_timeout`), create the schema, close the pool on exit."""
        pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] = AsyncConnectionPool(
            url,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 2, "application_name": "beacon"},
            min_size=1,
            max_size=max_size,
            open=False,
            name="beacon-store",
            timeout=timeout,
            check=check_at_rest,  # no round trip per checkout (see postgres_check)
            # Give up on a dead server's slot quickly, so the next request starts a fresh
            # attempt instead of waiting out the pool's exponential backoff after a restart.
            reconnect_timeout=2.0,
        )
        try:
            await pool.open(wait=True, timeout=startup_timeout)
            async with pool.connection() as conn:
                await migrate(conn, describe(url))
        except UNAVAILABLE as exc:
            await pool.close(timeout=1)
            raise StoreUnavailable(f"cannot open the postgres store at {describe(url)}: {exc}") from exc
        store = cls(pool, timeout)
        try:
            yield store
        finally:
            for task in (store._checking, *store._abandoned):
                if task:
                    task.cancel()
            await asyncio.gather(*store._abandoned, *filter(None, [store._checking]), return_exceptions=True)
            await pool.close(timeout=5)

    async def _call(self, query: Query[T], timeout: float | None = None) -> T:
        """Run `query` on a pooled connection; StoreUnavailable if that fails or takes too long.

        The query runs in its own task: when psycopg is cancelled mid-query it tries to cancel
        the query server-side for up to 10 s, which a stalled server never answers. The caller
        gets its answer at the deadline; the abandoned task is cut short in the background.
        While the server is known to be down, one call at a time probes it (at most every
        `RETRY_AFTER` s) and the others fail at once instead of each waiting out the timeout.
        """
        loop = asyncio.get_running_loop()
        if self._failed_at is not None and (self._probing or loop.time() - self._failed_at < RETRY_AFTER):
            raise StoreUnavailable(f"store unavailable: {self._last_error}")
        self._probing = self._failed_at is not None
        task = asyncio.create_task(self._on_connection(query))
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout or self._timeout)
        except asyncio.CancelledError:
            task.cancel()  # the caller gave up: psycopg cancels the query cleanly, in the background
            self._track(task)
            raise
        finally:
            self._probing = False
        if not done:
            self._abandon(task)
            raise self._failed(f"no answer within {timeout or self._timeout:g}s")
        try:
            result = task.result()
        except UNAVAILABLE as exc:
            raise self._failed(f"{type(exc).__name__}: {exc}".strip()) from exc
        if self._failed_at is not None:
            logger.info("postgres store available again")
            self._failed_at = None
        return result

    def _failed(self, reason: str) -> StoreUnavailable:
        if self._failed_at is None:
            logger.warning("postgres store unavailable: %s", reason)
        self._failed_at = asyncio.get_running_loop().time()
        self._last_error = reason
        self._check_soon()
        return StoreUnavailable(f"store unavailable: {reason}")

    async def _on_connection(self, query: Query[T]) -> T:
        async with self._pool.connection(timeout=self._timeout) as conn:
            return await query(conn)

    def _abandon(self, task: asyncio.Task[Any]) -> None:
        # The first cancel makes psycopg cancel the query server-side; if that has not worked a
        # second later (a stalled server), the second makes it close the connection instead.
        task.cancel()
        asyncio.get_running_loop().call_later(1.0, task.cancel)
        self._track(task)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)
        task.add_done_callback(_retrieve)

    def _check_soon(self) -> None:
        """After a failure, weed out every broken pooled connection at once, in the background."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check(), name="store-pool-check")

    async def _check(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5 * self._timeout):
                await self._pool.check()

    async def _fetch(self, sql: str, args: Params = ()) -> list[DictRow]:
        async def query(conn: Conn) -> list[DictRow]:
            cur = await conn.execute(sql, args)
            return await cur.fetchall() if cur.description else []

        return await self._call(query)

    async def _counted(
        self, count_sql: str, count_args: Sequence[Any], sql: str, args: Sequence[Any]
    ) -> tuple[int, list[DictRow]]:
        """A listing's total (`count_sql`, its count as `n`) and its page (`sql`), on one connection."""

        async def query(conn: Conn) -> tuple[int, list[DictRow]]:
            total = await (await conn.execute(count_sql, count_args)).fetchone()
            rows = await (await conn.execute(sql, args)).fetchall()
            return int(total["n"] if total else 0), rows

        return await self._call(query)

    async def _execute(self, sql: str, args: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""

        async def query(conn: Conn) -> int:
            return (await conn.execute(sql, args)).rowcount

        return await self._call(query)

    async def create_run(
        self, thread_id: str, workflow: str, input: dict[str, Any], first: ThreadRun | None = None
    ) -> Run:
        ts = now_iso()
        metadata = first.metadata if first else {}
        run = Run(thread_id, workflow, "running", input, ts, ts, None, metadata, first.run_id if first else None)

        async def query(conn: Conn) -> None:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO runs VALUES (%s, %s, %s, %s, %s, %s, NULL, %s::jsonb, %s)",
                    (thread_id, workflow, run.status, json.dumps(input), ts, ts, jsonb(metadata), run.run_id),
                )
                if first is not None:
                    await conn.execute(INSERT_RUN, run_row(first))

        try:
            await self._call(query)
        except psycopg.errors.UniqueViolation:
            raise ThreadExists(f"thread {thread_id!r} already exists") from None
        return run

    async def get_run(self, thread_id: str) -> Run | None:
        rows = await self._fetch("SELECT * FROM runs WHERE thread_id = %s", (thread_id,))
        return _run(rows[0]) if rows else None

    async def set_status(
        self,
        thread_id: str,
        status: str,
        *,
        expect: Sequence[str] | None = None,
        error: str | None = None,
        begin: ThreadRun | None = None,
    ) -> bool:
        ts = now_iso()
        sql = "UPDATE runs SET status = %s, updated_at = %s, error = %s, run_id = coalesce(%s, run_id)"
        sql += " WHERE thread_id = %s"
        args: list[Any] = [status, ts, None if error is None else _text(error), begin and begin.run_id, thread_id]
        if expect is not None:
            sql += " AND status = ANY(%s)"
            args.append(list(expect))

        async def query(conn: Conn) -> bool:
            async with conn.transaction():
                row = await (await conn.execute(sql + " RETURNING run_id", args)).fetchone()
                if row is None:
                    return False
                if begin is not None:
                    await conn.execute(INSERT_RUN, run_row(begin))
                elif row["run_id"] is not None and status in RUN_STATUS_OF:
                    await conn.execute(
                        "UPDATE thread_runs SET status = %s, updated_at = %s WHERE run_id = %s",
                        (RUN_STATUS_OF[status], ts, row["run_id"]),
                    )
            return True

        return await self._call(query)

    async def list_runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        where, args = ["TRUE"], []
        if status:
            where.append("status = %s")
            args.append(status)
        if workflow:
            where.append("workflow = %s")
            args.append(workflow)
        after = RUNS.after(cursor)
        count_sql = f"SELECT count(*) AS n FROM runs WHERE {' AND '.join(where)}"
        count_args = list(args)
        if after:
            where.append("(created_at, thread_id) < (%s, %s)")
            args += after
        sql = f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY created_at DESC, thread_id DESC LIMIT %s"
        total, rows = await self._counted(count_sql, count_args, sql, [*args, limit + 1])
        runs, next_cursor = RUNS.page([_run(r) for r in rows], limit)
        return Page(runs, total, next_cursor)

    async def count_by_status(self) -> dict[str, int]:
        rows = await self._fetch("SELECT status, count(*) AS n FROM runs GROUP BY status")
        return {row["status"]: int(row["n"]) for row in rows}

    async def record_decision(self, d: Decision) -> None:
        await self._execute(
            "INSERT INTO decisions VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                d.thread_id,
                d.interrupt_id,
                d.decision,
                d.comment and _text(d.comment),
                d.decided_at,
                d.decided_by,
                json.dumps(d.data),
            ),
        )

    async def decisions(self, thread_id: str) -> list[Decision]:
        rows = await self._fetch("SELECT * FROM decisions WHERE thread_id = %s ORDER BY decided_at", (thread_id,))
        return [Decision(**{**row, "data": json.loads(row["data"] or "null")}) for row in rows]

    async def thread_view(self, thread_id: str) -> ThreadView | None:
        async def query(conn: Conn) -> ThreadView | None:
            rows = await (await conn.execute(THREAD_VIEW, (thread_id,))).fetchall()
            if not rows:
                return None
            row = dict(rows[0])
            decided, approvals = row.pop("view_decisions"), row.pop("view_approvals")
            decisions = [Decision(**{**r, "data": json.loads(r["data"] or "null")}) for r in decided]
            return ThreadView(_run(row), decisions, [_approval(r) for r in approvals])

        return await self._call(query)

    async def append_logs(self, lines: Sequence[LogLine]) -> None:
        if not lines:
            return
        # One statement for the whole batch, whatever its size: the columns travel as five arrays.
        columns: tuple[list[Any], ...] = ([], [], [], [], [])
        for ln in lines:
            values = (ln["thread_id"], ln["seq"], ln["level"], _text(ln["text"]), ln["timestamp"])
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        await self._execute(
            "INSERT INTO logs SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[])"
            " ON CONFLICT DO NOTHING",
            columns,
        )

    async def get_logs(self, thread_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]:
        rows = await self._fetch(
            "SELECT text, thread_id, level, timestamp, seq FROM logs WHERE thread_id = %s AND seq > %s"
            " ORDER BY seq LIMIT %s",
            (thread_id, after, limit),
        )
        return [LogLine(**row) for row in rows]  # type: ignore[typeddict-item]

    async def last_seq(self, thread_id: str) -> int:
        rows = await self._fetch("SELECT max(seq) AS m FROM logs WHERE thread_id = %s", (thread_id,))
        return int(rows[0]["m"] or 0) if rows else 0

    async def claim(self, thread_id: str, owner: str, ttl: float) -> bool:
        ts = time.time()
        count = await self._execute(
            "INSERT INTO leases VALUES (%s, %s, %s) ON CONFLICT (thread_id) DO UPDATE"
            " SET owner = EXCLUDED.owner, expires = EXCLUDED.expires"
            " WHERE leases.owner = EXCLUDED.owner OR leases.expires < %s",
            (thread_id, owner, ts + ttl, ts),
        )
        return count == 1

    async def renew(self, owner: str, thread_ids: Sequence[str], ttl: float) -> set[str]:
        if not thread_ids:
            return set()
        rows = await self._fetch(
            "UPDATE leases SET expires = %s WHERE owner = %s AND thread_id = ANY(%s) RETURNING thread_id",
            (time.time() + ttl, owner, list(thread_ids)),
        )
        return {row["thread_id"] for row in rows}

    async def release(self, thread_id: str, owner: str) -> None:
        await self._execute("DELETE FROM leases WHERE thread_id = %s AND owner = %s", (thread_id, owner))

    async def add_token(self, r: TokenRecord) -> None:
        try:
            await self._execute(
                "INSERT INTO tokens VALUES (%s, %s, %s, %s, %s, %s, NULL, NULL)",
                (r.digest, r.name, r.role, r.source, r.created_at, r.created_by),
            )
        except psycopg.errors.UniqueViolation:
            raise TokenExists(f"a token named {r.name!r} exists") from None

    async def revoke_token(self, r: TokenRecord, admins: frozenset[str] | None = None) -> bool:
        async def query(conn: Conn) -> int:
            async with conn.transaction():
                if admins is not None:
                    # Self-conflicting: a second revocation (on any node) waits until this one commits.
                    await conn.execute("LOCK TABLE tokens IN SHARE ROW EXCLUSIVE MODE")
                    cur = await conn.execute(
                        "SELECT digest, role, source, revoked_at FROM tokens WHERE digest <> %s", (r.digest,)
                    )
                    rows = await cur.fetchall()
                    revoked = {row["digest"] for row in rows if row["revoked_at"] is not None}
                    api = [row for row in rows if row["source"] == "api" and row["role"] == "admin"]
                    if not (admins - revoked - {r.digest}) and all(row["revoked_at"] is not None for row in api):
                        raise LastAdmin()
                cur = await conn.execute(
                    "INSERT INTO tokens VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (digest) DO UPDATE"
                    " SET revoked_at = EXCLUDED.revoked_at, revoked_by = EXCLUDED.revoked_by"
                    " WHERE tokens.revoked_at IS NULL",
                    (r.digest, r.name, r.role, r.source, r.created_at, r.created_by, r.revoked_at, r.revoked_by),
                )
                return cur.rowcount

        return await self._call(query) == 1

    async def token_records(self) -> list[TokenRecord]:
        rows = await self._fetch("SELECT * FROM tokens ORDER BY name, created_at")
        return [TokenRecord(**row) for row in rows]

    async def add_delivery(self, d: Delivery) -> None:
        ts = now_iso()
        await self._execute(
            "INSERT INTO webhook_deliveries VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (d.id, d.hook, d.event, d.thread_id, _text(d.body), d.node, d.state, d.attempts, d.status_code,
             d.error and _text(d.error), d.created_at or ts, ts),
        )

    async def update_delivery(
        self, id: str, *, state: str, attempts: int, status_code: int | None, error: str | None
    ) -> None:
        await self._execute(
            "UPDATE webhook_deliveries SET state = %s, attempts = %s, status_code = %s, error = %s, updated_at = %s"
            " WHERE id = %s",
            (state, attempts, status_code, error and _text(error), now_iso(), id),
        )

    async def list_deliveries(self, *, limit: int = 50, cursor: str | None = None) -> tuple[list[Delivery], str | None]:
        after = DELIVERIES.after(cursor)
        where, args = ("(created_at, id) < (%s, %s)", list(after)) if after else ("TRUE", [])
        sql = f"SELECT * FROM webhook_deliveries WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %s"
        return DELIVERIES.page([Delivery(**row) for row in await self._fetch(sql, [*args, limit + 1])], limit)

    async def pending_deliveries(self, node: str) -> list[Delivery]:
        rows = await self._fetch(
            "SELECT * FROM webhook_deliveries WHERE node = %s AND state = 'pending' ORDER BY created_at", (node,)
        )
        return [Delivery(**row) for row in rows]

    async def put_approvals(self, thread_id: str, approvals: Sequence[Approval]) -> None:
        rows = [approval_row(a, _text(json.dumps(a.value, default=str))) for a in approvals]
        keep = [a.interrupt_id for a in approvals]

        async def query(conn: Conn) -> None:
            async with conn.transaction():
                await conn.execute(
                    "DELETE FROM approvals WHERE thread_id = %s AND NOT interrupt_id = ANY(%s)", (thread_id, keep)
                )
                async with conn.cursor() as cur:
                    await cur.executemany(
                        "INSERT INTO approvals VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", rows
                    )

        await self._call(query)

    async def clear_approvals(self, thread_id: str, interrupt_ids: Sequence[str] | None = None) -> None:
        sql = "DELETE FROM approvals WHERE thread_id = %s"
        args: list[Any] = [thread_id]
        if interrupt_ids is not None:
            sql += " AND interrupt_id = ANY(%s)"
            args.append(list(interrupt_ids))
        await self._execute(sql, args)

    async def list_approvals(
        self,
        *,
        workflow: str | None = None,
        thread_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ApprovalPage:
        # Joined with runs: a row a crash left behind never shows once its run moved on.
        where, args = ["r.status = 'waiting_approval'"], []
        if workflow:
            where.append("a.workflow = %s")
            args.append(workflow)
        if thread_id:
            where.append("a.thread_id = %s")
            args.append(thread_id)
        after = APPROVALS.after(cursor)
        base = f"FROM approvals a JOIN runs r USING (thread_id) WHERE {' AND '.join(where)}"
        count_sql, count_args = f"SELECT count(*) AS n {base}", list(args)
        if after:
            base += " AND (a.waiting_since, a.thread_id, a.interrupt_id) > (%s, %s, %s)"
            args += after
        sql = f"SELECT a.* {base} ORDER BY a.waiting_since, a.thread_id, a.interrupt_id LIMIT %s"
        total, rows = await self._counted(count_sql, count_args, sql, [*args, limit + 1])
        approvals, next_cursor = APPROVALS.page([_approval(r) for r in rows], limit)
        return ApprovalPage(approvals, total, next_cursor)

    async def due_approvals(self, until: float, limit: int = 100) -> list[Approval]:
        rows = await self._fetch(
            "SELECT a.* FROM approvals a JOIN runs r USING (thread_id) WHERE r.status = 'waiting_approval'"
            " AND a.deadline IS NOT NULL AND a.deadline <= %s ORDER BY a.deadline LIMIT %s",
            (until, limit),
        )
        return [_approval(r) for r in rows]

    async def approval_stats(self) -> tuple[int, str | None]:
        rows = await self._fetch(
            "SELECT count(*) AS n, min(a.waiting_since) AS oldest FROM approvals a JOIN runs r USING (thread_id)"
            " WHERE r.status = 'waiting_approval'"
        )
        return (int(rows[0]["n"]), rows[0]["oldest"]) if rows else (0, None)

    async def ping(self) -> None:
        await self._execute("SELECT 1")
