"""Which run the current code belongs to, so plain `logging` calls reach that run's log."""

from __future__ import annotations

from contextvars import ContextVar

current_thread: ContextVar[str | None] = ContextVar("beacon_thread_id", default=None)
