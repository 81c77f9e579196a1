"""Durable records: runs, approval decisions and log lines."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from app.store.base import (
    ACTIVE,
    FINISHED,
    RUN_STATUS_OF,
    RUN_STATUSES,
    STATUSES,
    Approval,
    ApprovalPage,
    AuditEntry,
    Decision,
    LogLine,
    Page,
    Run,
    RunEvent,
    Store,
    ThreadRun,
    ThreadView,
    TokenRecord,
)

__all__ = [
    "ACTIVE",
    "FINISHED",
    "RUN_STATUSES",
    "RUN_STATUS_OF",
    "STATUSES",
    "Approval",
    "AuditEntry",
    "ApprovalPage",
    "Decision",
    "LogLine",
    "Page",
    "Run",
    "RunEvent",
    "Store",
    "ThreadRun",
    "ThreadView",
    "TokenRecord",
    "open_store",
]


@contextlib.asynccontextmanager
async def open_store(url: str) -> AsyncIterator[Store]:
    """Open the store named by `url` (scheme picks the backend) for the block's lifetime."""
    scheme = url.split("://", 1)[0]
    if scheme == "sqlite":
        from app.store.sqlite import SqliteStore

        async with SqliteStore.open(url) as store:
            yield store
    elif scheme in ("postgresql", "postgres"):
        from app.store.postgres import PostgresStore  # type: ignore[import-not-found,unused-ignore]

        async with PostgresStore.open(url) as store:
            yield store
    else:
        raise ValueError(f"unknown store backend: {scheme!r}")
