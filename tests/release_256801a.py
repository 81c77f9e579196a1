"""The schema of release 256801a (the last before versioned migrations), copied verbatim from its
app/store/sqlite.py, sqlite_threads.py, postgres.py and postgres_threads.py: upgrade tests build a
database of that release from it."""

SQLITE = """

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

POSTGRES = """

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
