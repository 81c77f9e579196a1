"""Which run the current code belongs to, and which Beacon's sink captures its log lines."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RunScope:
    thread_id: str
    owner: object  # the LogSink of the Beacon that executes the run: another Beacon's sink ignores it


current_run: ContextVar[RunScope | None] = ContextVar("beacon_run", default=None)


def current_thread_id() -> str | None:
    """The thread whose run logs here, if any (for log formatting)."""
    scope = current_run.get()
    return None if scope is None else scope.thread_id
