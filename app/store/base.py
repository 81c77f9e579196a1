"""What the rest of Beacon needs from a store: runs, decisions and log lines."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from app.names import iso

# A thread's status, in the seed's words for its latest run; `idle`: created, never run.
STATUSES = ("idle", "running", "waiting_approval", "completed", "failed", "cancelled")
ACTIVE = ("running", "waiting_approval")
FINISHED = ("completed", "failed", "cancelled")  # what retention may prune
# One run's status (LangGraph's), and what the thread's status makes of its current run.
RUN_STATUSES = ("pending", "running", "success", "error", "interrupted", "timeout")
RUN_STATUS_OF = {
    "running": "running",
    "waiting_approval": "interrupted",
    "completed": "success",
    "failed": "error",
    "cancelled": "interrupted",
}

# Postgres advisory lock keys that serialize start-up migrations of several processes ("beacon").
SCHEMA_LOCK = 0x6265_6163_6F6E  # the store's tables
# LangGraph's checkpointer migrations take their own key: they build indexes CONCURRENTLY, which
# wait for every open transaction, and a node waiting for SCHEMA_LOCK sits in one.
CHECKPOINTS_LOCK = SCHEMA_LOCK + 1


class LogLine(TypedDict):
    text: str
    thread_id: str
    level: str
    timestamp: str
    seq: int


@dataclass(frozen=True, slots=True)
class Run:
    """A thread, with the status of its latest run (what the seed's API calls a run)."""

    thread_id: str
    workflow: str
    status: str
    input: dict[str, Any]
    created_at: str
    updated_at: str
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None  # the thread's latest run


@dataclass(frozen=True, slots=True)
class ThreadRun:
    """One run on a thread: new input or a resume, executed after the thread's earlier runs."""

    run_id: str
    thread_id: str
    assistant_id: str
    workflow: str
    status: str  # RUN_STATUSES
    kwargs: dict[str, Any]  # what it was asked: input or command, stream modes, config
    metadata: dict[str, Any]
    multitask_strategy: str
    created_at: str
    updated_at: str


def run_row(r: ThreadRun) -> tuple[Any, ...]:
    """A run in the stores' column order, its JSON columns serialized."""
    return (
        r.run_id,
        r.thread_id,
        r.assistant_id,
        r.workflow,
        r.status,
        json.dumps(r.kwargs, default=str),
        json.dumps(r.metadata, default=str),
        r.multitask_strategy,
        r.created_at,
        r.updated_at,
    )


class RunEvent(TypedDict):
    """One server-sent event of a run, numbered from 1; `data` is its JSON text."""

    run_id: str
    seq: int
    event: str
    data: str


@dataclass(frozen=True, slots=True)
class Decision:
    thread_id: str
    interrupt_id: str
    decision: str
    comment: str | None
    decided_at: str
    decided_by: str | None
    data: Any = None  # the approver's optional payload, replayed if a restart loses the resume


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token created over the API, or the revocation of any token, keyed by its secret's SHA-256."""

    digest: str
    name: str
    role: str
    source: str  # api | config | file
    created_at: str
    created_by: str | None = None
    revoked_at: str | None = None
    revoked_by: str | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    """A pending interrupt of a run that waits for approval, with its optional deadline."""

    thread_id: str
    interrupt_id: str
    workflow: str
    value: Any
    waiting_since: str
    deadline: float | None = None  # epoch seconds; then `default_action` applies as a decision
    default_action: str | None = None

    @property
    def deadline_at(self) -> str | None:
        """The deadline as ISO 8601 (UTC), as the API shows it."""
        return None if self.deadline is None else iso(self.deadline)


def approval_row(a: Approval, value: str) -> tuple[Any, ...]:
    """An approval in the stores' column order, its value already serialized."""
    return (a.thread_id, a.interrupt_id, a.workflow, value, a.waiting_since, a.deadline, a.default_action)


@dataclass(frozen=True, slots=True)
class ApprovalPage:
    approvals: list[Approval]
    total: int
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook notification and how its delivery went (the log behind /admin/webhooks)."""

    id: str  # also the X-Beacon-Delivery header: receivers dedupe by it
    hook: str  # the hook's URL, credentials redacted
    event: str
    thread_id: str
    body: str  # the exact JSON sent, so a restart re-sends the same bytes
    node: str  # the process that delivers it (and re-queues it after a restart)
    state: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    status_code: int | None = None
    error: str | None = None
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who removed which thread and when; kept when the thread's own records are gone."""

    at: str
    actor: str | None  # a token's name, or "retention"
    action: str  # delete | retention
    thread_id: str
    detail: dict[str, Any]  # rows removed per table


# What `erase_thread` runs inside its transaction before the commit (the checkpointer's delete),
# given the store's connection in that transaction (a psycopg connection, or the SQLite store's own).
Then = Callable[[Any], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class ThreadView:
    """What a thread's status shows from the store, read in one round trip."""

    run: Run
    decisions: list[Decision]
    approvals: list[Approval]  # the queue rows of what it waits for (empty unless waiting)


@dataclass(frozen=True, slots=True)
class Page:
    runs: list[Run]
    total: int
    next_cursor: str | None


class Store(Protocol):
    async def create_run(
        self, thread_id: str, workflow: str, input: dict[str, Any], first: ThreadRun | None = None
    ) -> Run:
        """Insert a new thread as `running` (with `first` as its running run); ThreadExists if the id is taken."""
        ...

    async def create_thread(self, thread_id: str, metadata: dict[str, Any]) -> Run:
        """Insert an `idle` thread with no run; raise ThreadExists if the id is taken."""
        ...

    async def update_thread(self, thread_id: str, metadata: dict[str, Any]) -> Run | None:
        """Merge `metadata` into the thread's; None if there is no such thread."""
        ...

    async def delete_thread(self, thread_id: str) -> bool:
        """Forget the thread and everything Beacon stored of it; False if there was none."""
        ...

    async def erase_thread(
        self,
        thread_id: str,
        *,
        audit: AuditEntry | None = None,
        finished_before: str | None = None,
        then: Then | None = None,
    ) -> dict[str, int] | None:
        """Delete the thread and all its rows in one transaction, writing `audit` (its detail: the
        rows removed per table) in it, and running `then(connection)` before the commit: a failure
        of either keeps everything. With `finished_before` only a thread that finished before then and has
        nothing queued (retention). The rows removed per table; None when nothing was removed."""
        ...

    async def finished_threads(
        self, before: str, *, after: str = "", limit: int = 100, with_logs: bool = False
    ) -> list[str]:
        """Ids above `after` of threads that finished before `before` (and, `with_logs`, still have log
        lines), in id order (a keyset cursor)."""
        ...

    async def delete_logs(self, thread_id: str, before: str, limit: int = 5000) -> int:
        """Delete up to `limit` of the oldest log lines of a thread that finished before `before`."""
        ...

    async def reclaim(self) -> int:
        """Give the space of deleted rows back to the file system where that is cheap; pages freed."""
        ...

    async def audit_log(self, *, thread_id: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Deletions, newest first."""
        ...

    async def lease_holder(self, thread_id: str) -> str | None:
        """The node whose live lease executes the thread, if any."""
        ...

    async def search_threads(
        self,
        *,
        metadata: dict[str, Any] | None = None,
        statuses: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[Run]:
        """Threads whose metadata holds every pair of `metadata` (equal JSON), newest first."""
        ...

    async def add_run(self, run: ThreadRun, *, exclusive: bool) -> None:
        """Queue `run` (pending) on its thread; with `exclusive`, raise ThreadBusy when the thread
        runs or has queued runs. NotFound if the thread is gone."""
        ...

    async def next_run(self, thread_id: str) -> ThreadRun | None:
        """Start the thread's oldest queued run unless it runs one: the run and the thread become `running`."""
        ...

    async def get_thread_run(self, run_id: str) -> ThreadRun | None: ...

    async def list_thread_runs(
        self, thread_id: str, *, limit: int = 10, offset: int = 0, status: str | None = None
    ) -> list[ThreadRun]:
        """The thread's runs, newest first."""
        ...

    async def set_run_status(self, run_id: str, status: str, *, expect: Sequence[str]) -> bool:
        """Compare-and-set one run's status (a queued run cancelled, say)."""
        ...

    async def delete_thread_run(self, run_id: str) -> None: ...

    async def queued_threads(self, limit: int = 100) -> list[str]:
        """Threads with queued runs that run nothing now (their node may have died between runs)."""
        ...

    async def append_events(self, events: Sequence[RunEvent]) -> None:
        """Write a batch in one statement; (run_id, seq) duplicates are ignored."""
        ...

    async def get_events(self, run_id: str, after: int = 0, limit: int = 1000) -> list[RunEvent]: ...

    async def last_event(self, run_id: str) -> int:
        """The seq of the run's last stored event (0: none)."""
        ...

    async def get_run(self, thread_id: str) -> Run | None: ...

    async def set_status(
        self,
        thread_id: str,
        status: str,
        *,
        expect: Sequence[str] | None = None,
        error: str | None = None,
        begin: ThreadRun | None = None,
    ) -> bool:
        """Compare-and-set: change the status only if it is one of `expect`. The thread's current
        run follows (RUN_STATUS_OF); `begin` (a running run) becomes its current run instead."""
        ...

    async def list_runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page: ...

    async def count_by_status(self) -> dict[str, int]: ...

    async def record_decision(self, decision: Decision) -> None: ...

    async def decisions(self, thread_id: str) -> list[Decision]: ...

    async def thread_view(self, thread_id: str) -> ThreadView | None:
        """The thread's record with its decisions and, while it waits, its approval rows."""
        ...

    async def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Write a batch in one transaction; (thread_id, seq) duplicates are ignored."""
        ...

    async def get_logs(self, thread_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]: ...

    async def last_seq(self, thread_id: str) -> int: ...

    async def claim(self, thread_id: str, owner: str, ttl: float) -> bool:
        """Take or extend the lease to execute a thread; False while another owner's lease lives."""
        ...

    async def renew(self, owner: str, thread_ids: Sequence[str], ttl: float) -> set[str]:
        """Extend `owner`'s leases of `thread_ids`; the ones it still held (and so renewed)."""
        ...

    async def release(self, thread_id: str, owner: str) -> None: ...

    async def add_token(self, record: TokenRecord) -> None:
        """Insert a live token; raise TokenExists if a live token has the same name."""
        ...

    async def revoke_token(self, record: TokenRecord, admins: frozenset[str] | None = None) -> bool:
        """Mark `record.digest` revoked (inserting the row for a config token); False if it already was.

        With `admins` (the digests of the admin tokens from outside the store: config, token file),
        raise LastAdmin unless another admin, of those or the store's API tokens, stays live; the
        check and the write are one transaction, so two admins revoking each other leave one.
        """
        ...

    async def token_records(self) -> list[TokenRecord]: ...

    async def put_approvals(self, thread_id: str, approvals: Sequence[Approval]) -> None:
        """Make these the thread's pending approvals; ones already stored keep their times."""
        ...

    async def clear_approvals(self, thread_id: str, interrupt_ids: Sequence[str] | None = None) -> None:
        """Forget the named pending approvals of a thread, or all of them."""
        ...

    async def list_approvals(
        self,
        *,
        workflow: str | None = None,
        thread_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> ApprovalPage:
        """Pending approvals of waiting runs, oldest first; ValueError for a foreign cursor."""
        ...

    async def due_approvals(self, until: float, limit: int = 100) -> list[Approval]:
        """Pending approvals of waiting runs whose deadline is at or before `until`, soonest first."""
        ...

    async def approval_stats(self) -> tuple[int, str | None]:
        """How many approvals wait, and the oldest one's waiting_since."""
        ...

    async def add_delivery(self, delivery: Delivery) -> None: ...

    async def update_delivery(
        self, id: str, *, state: str, attempts: int, status_code: int | None, error: str | None
    ) -> None: ...

    async def list_deliveries(self, *, limit: int = 50, cursor: str | None = None) -> tuple[list[Delivery], str | None]:
        """Newest first, with the cursor of the next page; ValueError for a foreign cursor."""
        ...

    async def pending_deliveries(self, node: str) -> list[Delivery]:
        """`node`'s deliveries still pending (a restart sends them again), oldest first."""
        ...

    async def ping(self) -> None: ...
