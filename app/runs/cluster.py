"""A REST node among others: cancel requests over the bus, execution leases, and taking over the
runs of a node that died (their leases ran out) or of the process before a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Protocol

import orjson

from app.names import CONTROL_CHANNEL
from app.pubsub import Bus
from app.store import Run, Store

logger = logging.getLogger(__name__)

LEASE_TTL = 15.0  # seconds a dead node's runs wait before another node resumes them


class Executor(Protocol):
    """What the cluster side needs of the node that executes runs."""

    @property
    def node(self) -> str: ...

    @property
    def draining(self) -> bool: ...

    @property
    def executing(self) -> Collection[str]: ...

    @property
    def leases(self) -> Collection[str]: ...

    @property
    def holding(self) -> Collection[str]: ...

    def stop_local(self, thread_id: str, *, rollback: bool = False) -> object: ...

    def abandon(self, thread_ids: Collection[str]) -> None: ...

    async def take_over(self, run: Run) -> bool: ...

    async def kick(self, thread_id: str) -> bool: ...


class Cluster:
    def __init__(self, store: Store, bus: Bus, runs: Executor) -> None:
        self.store = store
        self.bus = bus
        self.runs = runs

    async def listen_control(self) -> None:
        """Cancel requests from other REST nodes for runs this node executes."""
        async with self.bus.subscribe(CONTROL_CHANNEL) as queue:
            async for message in queue:
                try:
                    command = orjson.loads(message.data)
                    if command.get("type") == "cancel":
                        self.runs.stop_local(str(command.get("thread_id")), rollback=bool(command.get("rollback")))
                except Exception:
                    logger.warning("ignoring a malformed control message", exc_info=True)

    async def supervise(self) -> None:
        """Renew this node's leases; pick up runs whose node died (their lease ran out)."""
        while True:
            await asyncio.sleep(LEASE_TTL / 3)
            try:
                await self.renew_leases()
                if not self.runs.draining:
                    await self.resume_interrupted()
            except Exception:
                logger.warning("lease renewal or resume scan failed", exc_info=True)

    async def renew_leases(self) -> None:
        """Extend this node's leases; stop what it runs under a lease that lapsed meanwhile (the
        store was away longer than LEASE_TTL, and another node may have taken the run over)."""
        # Only a lease held before the renewal can be lost by it: a reserved thread may be claimed
        # only after the UPDATE ran.
        holding = set(self.runs.holding)
        renewed = await self.store.renew(self.runs.node, list(holding | set(self.runs.leases)), LEASE_TTL)
        self.runs.abandon(holding - renewed)

    async def resume_interrupted(self) -> int:
        """Continue runs that are `running` with no live node executing them, and start the queued
        runs of threads whose node died between two runs."""
        for thread_id in await self.store.queued_threads():
            if thread_id not in self.runs.executing:
                await self.runs.kick(thread_id)
        resumed, cursor = 0, None
        while True:
            page = await self.store.list_runs(status="running", limit=200, cursor=cursor)
            for run in page.runs:
                if run.thread_id not in self.runs.executing and await self.runs.take_over(run):
                    resumed += 1
            if not page.next_cursor:
                return resumed
            cursor = page.next_cursor
