"""The Postgres store's schema: numbered migrations, and the version a database is at in `schema_migrations`.

Append a migration, never edit one that shipped. Every node applies what is missing at start-up
in one transaction under the schema lock (an advisory lock), so several nodes starting on a new
database take turns and the second finds nothing left to do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import psycopg
from psycopg.rows import DictRow

from app.errors import SchemaTooNew
from app.names import now_iso
from app.store.base import SCHEMA_LOCK

logger = logging.getLogger(__name__)
Conn = psycopg.AsyncConnection[DictRow]

# Release 256801a's tables, as `CREATE ... IF NOT EXISTS` made them (databases made before the
# versions existed are at version 0 and take this one as a no-op, plus the columns it adds first).
# COLLATE "C": byte order, as SQLite compares, so listings and cursors order the same way;
# `position` orders a thread's runs as they were queued (SQLite's rowid).
BASELINE = """

CREATE TABLE IF NOT EXISTS runs (
    thread_id TEXT COLLATE "C" PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT NOT NULL,
    error TEXT,
    metadata JSONB NOT NULL DEFAULT '{}',
    run_id TEXT
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at DESC, thread_id DESC);
CREATE TABLE IF NOT EXISTS decisions (
    thread_id TEXT NOT NULL,
    interrupt_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    comment TEXT,
    decided_at TEXT COLLATE "C" NOT NULL,
    decided_by TEXT,
    data TEXT
);
CREATE INDEX IF NOT EXISTS decisions_thread ON decisions (thread_id, decided_at);
CREATE TABLE IF NOT EXISTS leases (
    thread_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    digest TEXT PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    role TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_live_name ON tokens (name) WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS approvals (
    thread_id TEXT COLLATE "C" NOT NULL,
    interrupt_id TEXT COLLATE "C" NOT NULL,
    workflow TEXT NOT NULL,
    value TEXT NOT NULL,
    waiting_since TEXT COLLATE "C" NOT NULL,
    deadline DOUBLE PRECISION,
    default_action TEXT,
    PRIMARY KEY (thread_id, interrupt_id)
);
CREATE INDEX IF NOT EXISTS approvals_waiting ON approvals (waiting_since, thread_id, interrupt_id);
CREATE INDEX IF NOT EXISTS approvals_deadline ON approvals (deadline) WHERE deadline IS NOT NULL;
CREATE TABLE IF NOT EXISTS logs (
    thread_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    level TEXT NOT NULL,
    text TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq)
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT COLLATE "C" PRIMARY KEY,
    hook TEXT NOT NULL,
    event TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    body TEXT NOT NULL,
    node TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_created ON webhook_deliveries (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries (node, state);

CREATE TABLE IF NOT EXISTS thread_runs (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    assistant_id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    metadata TEXT NOT NULL,
    multitask_strategy TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    position BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS thread_runs_thread ON thread_runs (thread_id, position);
CREATE INDEX IF NOT EXISTS thread_runs_pending ON thread_runs (thread_id, position) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""
# Stores made before threads held many runs lack two columns of `runs` (appended, as BASELINE has them).
NEW_COLUMNS = {"metadata": "JSONB NOT NULL DEFAULT '{}'", "run_id": "TEXT"}
# Deleting threads (by hand or by retention) needs an audit trail that outlives them, and the
# tables it deletes from indexed by thread.
AUDIT = """
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_thread ON webhook_deliveries (thread_id);
"""

# /admin/runs filters by status or workflow, newest first, and counts what matches.
LISTING = """
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, created_at DESC, thread_id DESC);
CREATE INDEX IF NOT EXISTS runs_workflow ON runs (workflow, created_at DESC, thread_id DESC);
CREATE INDEX IF NOT EXISTS runs_status_workflow ON runs (status, workflow, created_at DESC, thread_id DESC);
"""


async def _baseline(conn: Conn) -> None:
    cur = await conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'runs'"
    )
    have = {row["column_name"] for row in await cur.fetchall()}
    if have:
        for name, spec in NEW_COLUMNS.items():
            if name not in have:
                await conn.execute(f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {name} {spec}")
    await conn.execute(BASELINE)


async def _audit(conn: Conn) -> None:
    await conn.execute(AUDIT)


async def _listing(conn: Conn) -> None:
    await conn.execute(LISTING)


MIGRATIONS: tuple[Callable[[Conn], Awaitable[None]], ...] = (_baseline, _audit, _listing)
VERSION = "SELECT coalesce(max(version), 0) AS v FROM schema_migrations"


async def _version(conn: Conn) -> int | None:
    """The database's version; None before the table exists."""
    cur = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS t")
    row = await cur.fetchone()
    if not row or not row["t"]:
        return None
    row = await (await conn.execute(VERSION)).fetchone()
    return int(row["v"]) if row else 0


async def migrate(conn: Conn, where: str) -> int:
    """Bring the database to the latest version; the version it was at."""
    have = await _version(conn)  # without the lock first: an up-to-date database costs one read
    if have is None or have < len(MIGRATIONS):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            have = await _version(conn) or 0
            for version in range(have + 1, len(MIGRATIONS) + 1):
                await MIGRATIONS[version - 1](conn)
                await conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", (version, now_iso()))
        if have < len(MIGRATIONS):
            logger.info("store %s migrated from schema version %d to %d", where, have, len(MIGRATIONS))
    if have > len(MIGRATIONS):
        raise SchemaTooNew(
            f"the store {where} has schema version {have}, newer than this Beacon's {len(MIGRATIONS)}:"
            " run the Beacon release that wrote it (or restore a backup)"
        )
    return have
