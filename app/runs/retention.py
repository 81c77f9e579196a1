"""Retention: finished threads older than `store.retention_days` are erased, the log lines of those
older than `store.log_retention_days` deleted, in small batches, by one node at a time.

The pass holds a lease in the store's leases table under a name no thread can have; every batch
is its own short transaction, so requests and the log sink's writes interleave with it. Waiting,
running and queued threads are never touched: the store checks that in each batch's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from app.background import background
from app.config import StoreConfig
from app.names import now_iso
from app.runs.erase import erase
from app.store import Store

logger = logging.getLogger(__name__)

LEASE = "~retention"  # never a thread id (those begin with a letter or digit)
LEASE_TTL = 60.0  # renewed after every batch; a node that died mid-pass hands over within a minute
EVERY = 600.0  # seconds between passes
FIRST_AFTER = 30.0  # the first pass waits out start-up
BATCH = 100  # threads read per query
LOG_CHUNK = 5000  # log lines per DELETE


@dataclass
class Totals:
    """What retention removed since this process started, and how its last pass went."""

    passes: int = 0
    threads: int = 0
    log_lines: int = 0
    pages_freed: int = 0
    last_pass_at: str | None = None
    last_pass_seconds: float | None = None
    last_pass_node: str | None = None


def cutoff(days: float) -> str | None:
    """ISO 8601 time `days` ago (as the store's timestamps are written); None: keep forever."""
    return (datetime.now(UTC) - timedelta(days=days)).isoformat() if days > 0 else None


class Retention:
    def __init__(
        self, cfg: StoreConfig, store: Store, checkpointer: BaseCheckpointSaver[Any], node: Callable[[], str]
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.checkpointer = checkpointer
        self.node = node
        self.totals = Totals()

    @property
    def enabled(self) -> bool:
        return self.cfg.retention_days > 0 or self.cfg.log_retention_days > 0

    def stats(self) -> dict[str, Any]:
        days = {"retention_days": self.cfg.retention_days, "log_retention_days": self.cfg.log_retention_days}
        return {"enabled": self.enabled, **days, **asdict(self.totals)}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Retention]:
        if not self.enabled:
            yield self
            return
        async with background(retention=self._loop()):
            yield self

    async def _loop(self) -> None:
        await asyncio.sleep(FIRST_AFTER)
        while True:
            try:
                await self.prune()
            except Exception:
                logger.warning("retention pass failed; the next one tries again", exc_info=True)
            await asyncio.sleep(EVERY)

    async def prune(self) -> Totals | None:
        """One pass; what it removed, or None while another node holds the pass's lease."""
        node = self.node()
        if not await self.store.claim(LEASE, node, LEASE_TTL):
            return None
        loop = asyncio.get_running_loop()
        began, done = loop.time(), Totals(passes=1, last_pass_node=node)
        try:
            if before := cutoff(self.cfg.retention_days):
                await self._threads(before, done, node)
            if before := cutoff(self.cfg.log_retention_days):
                await self._logs(before, done, node)
            done.pages_freed = await self.store.reclaim()
        finally:
            with contextlib.suppress(Exception):
                await self.store.release(LEASE, node)
        done.last_pass_at, done.last_pass_seconds = now_iso(), round(loop.time() - began, 3)
        t = self.totals
        t.passes, t.threads, t.log_lines = t.passes + 1, t.threads + done.threads, t.log_lines + done.log_lines
        t.pages_freed += done.pages_freed
        t.last_pass_at, t.last_pass_seconds, t.last_pass_node = done.last_pass_at, done.last_pass_seconds, node
        if done.threads or done.log_lines:
            logger.info("retention removed %d thread(s) and %d log line(s)", done.threads, done.log_lines)
        return done

    async def _batches(self, before: str, node: str, *, with_logs: bool = False) -> AsyncIterator[list[str]]:
        after = ""
        while batch := await self.store.finished_threads(before, after=after, limit=BATCH, with_logs=with_logs):
            yield batch
            after = batch[-1]
            if not await self.store.claim(LEASE, node, LEASE_TTL):
                logger.warning("retention lease lost mid-pass; another node carries on")
                return

    async def _threads(self, before: str, done: Totals, node: str) -> None:
        async for batch in self._batches(before, node):
            for thread_id in batch:
                removed = await erase(
                    self.store, self.checkpointer, thread_id, actor="retention", action="retention",
                    detail={"finished_before": before}, finished_before=before,
                )  # fmt: skip
                if removed is not None:
                    done.threads += 1
                    done.log_lines += removed.get("logs", 0)

    async def _logs(self, before: str, done: Totals, node: str) -> None:
        async for batch in self._batches(before, node, with_logs=True):
            for thread_id in batch:
                while (n := await self.store.delete_logs(thread_id, before, LOG_CHUNK)) > 0:
                    done.log_lines += n
                    if n < LOG_CHUNK:
                        break
