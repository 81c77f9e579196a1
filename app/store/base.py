"""What the rest of Beacon needs from a store: runs, decisions and log lines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict

STATUSES = ("running", "waiting_approval", "completed", "failed", "cancelled")
ACTIVE = ("running", "waiting_approval")


class LogLine(TypedDict):
    text: str
    thread_id: str
    level: str
    timestamp: str
    seq: int


@dataclass(frozen=True, slots=True)
class Run:
    thread_id: str
    workflow: str
    status: str
    input: dict[str, Any]
    created_at: str
    updated_at: str
    error: str | None = None


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
class Page:
    runs: list[Run]
    total: int
    next_cursor: str | None


class Store(Protocol):
    async def create_run(self, thread_id: str, workflow: str, input: dict[str, Any]) -> Run:
        """Insert a new run as `running`; raise ThreadExists if the id is taken."""
        ...

    async def get_run(self, thread_id: str) -> Run | None: ...

    async def set_status(
        self,
        thread_id: str,
        status: str,
        *,
        expect: Sequence[str] | None = None,
        error: str | None = None,
    ) -> bool:
        """Compare-and-set: change the status only if it is one of `expect`."""
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

    async def append_logs(self, lines: Sequence[LogLine]) -> None:
        """Write a batch in one transaction; (thread_id, seq) duplicates are ignored."""
        ...

    async def get_logs(self, thread_id: str, after: int = 0, limit: int = 1000) -> list[LogLine]: ...

    async def last_seq(self, thread_id: str) -> int: ...

    async def claim(self, thread_id: str, owner: str, ttl: float) -> bool:
        """Take or extend the lease to execute a thread; False while another owner's lease lives."""
        ...

    async def renew(self, owner: str, thread_ids: Sequence[str], ttl: float) -> None: ...

    async def release(self, thread_id: str, owner: str) -> None: ...

    async def ping(self) -> None: ...
