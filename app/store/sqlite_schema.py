"""The SQLite store's schema: numbered migrations, and the version a file is at in `schema_migrations`.

Append a migration, never edit one that shipped: a file records how many it has applied.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from app.errors import SchemaTooNew
from app.names import now_iso
from app.store.sqlite_conn import Connection

logger = logging.getLogger(__name__)

# Release 256801a's tables, as `CREATE ... IF NOT EXISTS` made them (files made before the
# versions existed are at version 0 and take this one as a no-op, plus the columns `_baseline` adds first).
BASELINE = """
CREATE TABLE IF NOT EXISTS runs (
    thread_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    error TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    run_id TEXT
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
CREATE TABLE IF NOT EXISTS tokens (
    digest TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS tokens_live_name ON tokens (name) WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS approvals (
    thread_id TEXT NOT NULL,
    interrupt_id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    value TEXT NOT NULL,
    waiting_since TEXT NOT NULL,
    deadline REAL,
    default_action TEXT,
    PRIMARY KEY (thread_id, interrupt_id)
);
CREATE INDEX IF NOT EXISTS approvals_waiting ON approvals (waiting_since, thread_id, interrupt_id);
CREATE INDEX IF NOT EXISTS approvals_deadline ON approvals (deadline) WHERE deadline IS NOT NULL;
CREATE TABLE IF NOT EXISTS logs (
    thread_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    level TEXT NOT NULL,
    text TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY,
    hook TEXT NOT NULL,
    event TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    body TEXT NOT NULL,
    node TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    created_at TEXT NOT NULL,
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
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS thread_runs_thread ON thread_runs (thread_id, status);
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""
# Deleting threads (by hand or by retention) needs an audit trail that outlives them, and the
# tables it deletes from indexed by thread.
AUDIT = """
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_thread ON decisions (thread_id, decided_at);
CREATE INDEX IF NOT EXISTS webhook_deliveries_thread ON webhook_deliveries (thread_id);
"""
# /admin/runs filters by status or workflow, newest first, and counts what matches: at 100,000
# runs a scan of `runs` per page is what these save.
LISTING = """
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, created_at DESC, thread_id DESC);
CREATE INDEX IF NOT EXISTS runs_workflow ON runs (workflow, created_at DESC, thread_id DESC);
CREATE INDEX IF NOT EXISTS runs_status_workflow ON runs (status, workflow, created_at DESC, thread_id DESC);
"""
# Below this size an existing file without incremental auto-vacuum is converted at open (VACUUM
# rewrites it: fast when small); a larger one reuses freed pages but keeps its size on disk.
CONVERT_BELOW = 16 * 1024 * 1024


async def _script(db: Connection, sql: str) -> None:
    # Statement by statement: executescript() would COMMIT the migration's transaction first.
    for statement in filter(str.strip, sql.split(";")):
        await db.execute(statement)


async def _baseline(db: Connection) -> None:
    # A store made before threads held many runs lacks two columns of `runs`.
    columns = {row[1] for row in await db.execute_fetchall("PRAGMA table_info(runs)")}
    if columns and "metadata" not in columns:
        await db.execute("ALTER TABLE runs ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'")
    if columns and "run_id" not in columns:
        await db.execute("ALTER TABLE runs ADD COLUMN run_id TEXT")
    await _script(db, BASELINE)


async def _audit(db: Connection) -> None:
    await _script(db, AUDIT)


async def _listing(db: Connection) -> None:
    await _script(db, LISTING)


MIGRATIONS: tuple[Callable[[Connection], Awaitable[None]], ...] = (_baseline, _audit, _listing)


async def migrate(db: Connection, path: Path) -> int:
    """Bring the file to the latest version in one transaction; the version it was at.

    BEGIN IMMEDIATE is the schema lock: a second process opening the file waits for the first.
    """
    await _auto_vacuum(db, path)
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        [(have,)] = await db.execute_fetchall("SELECT coalesce(max(version), 0) FROM schema_migrations")
        if have > len(MIGRATIONS):
            raise SchemaTooNew(
                f"the store {path} has schema version {have}, newer than this Beacon's {len(MIGRATIONS)}:"
                " run the Beacon release that wrote it (or restore a backup)"
            )
        for version in range(have + 1, len(MIGRATIONS) + 1):
            await MIGRATIONS[version - 1](db)
            await db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, now_iso()))
        await db.commit()
    except BaseException:
        await db.rollback()
        raise
    if have < len(MIGRATIONS):
        logger.info("store %s migrated from schema version %d to %d", path, have, len(MIGRATIONS))
    return int(have)


async def _auto_vacuum(db: Connection, path: Path) -> None:
    """Incremental auto-vacuum, so that retention gives space back; set before the first table."""
    [(mode,)] = await db.execute_fetchall("PRAGMA auto_vacuum")
    if mode == 2:
        return
    [(tables,)] = await db.execute_fetchall("SELECT count(*) FROM sqlite_master")
    size = path.stat().st_size if path.exists() else 0
    if tables and size >= CONVERT_BELOW:
        logger.info(
            "store %s: freed pages are reused but the file does not shrink; to let it shrink, stop Beacon and run"
            " sqlite3 %s 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM'",
            path,
            path,
        )
        return
    await db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    await db.execute("VACUUM")  # what makes the mode take effect (in WAL mode even on an empty file)
