"""A REST node among others: cancel requests over the bus, execution leases, and taking over the
runs of a node that died (its leases ran out) or of the process before a restart."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson
from langgraph.types import Command

from app.names import CONTROL_CHANNEL
from app.store import Run

if TYPE_CHECKING:
    from app.runs.manager import RunManager

logger = logging.getLogger(__name__)

LEASE_TTL = 15.0  # seconds a dead node's runs wait before another node resumes them


class Cluster:
    def __init__(self, runs: RunManager) -> None:
        self.runs = runs

    async def listen_control(self) -> None:
        """Cancel requests from other REST nodes for runs this node executes."""
        async with self.runs.bus.subscribe(CONTROL_CHANNEL) as queue:
            async for message in queue:
                try:
                    command = orjson.loads(message.data)
                    if command.get("type") == "cancel":
                        self.runs.stop_local(str(command.get("thread_id")))
                except Exception:
                    logger.warning("ignoring a malformed control message", exc_info=True)

    async def supervise(self) -> None:
        """Renew this node's leases; pick up runs whose node died (their lease ran out)."""
        while True:
            await asyncio.sleep(LEASE_TTL / 3)
            try:
                await self.runs.store.renew(self.runs.node, self.runs.executing, LEASE_TTL)
                if not self.runs.draining:
                    await self.resume_interrupted()
            except Exception:
                logger.warning("lease renewal or resume scan failed", exc_info=True)

    async def resume_interrupted(self) -> int:
        """Continue runs that were `running` when the last process stopped."""
        resumed, cursor = 0, None
        while True:
            page = await self.runs.store.list_runs(status="running", limit=200, cursor=cursor)
            for run in page.runs:
                if run.thread_id in self.runs.executing:
                    continue
                if not await self.runs.store.claim(run.thread_id, self.runs.node, LEASE_TTL):
                    continue  # another live node executes it
                if run.workflow not in self.runs.workflows:
                    await self.runs.store.set_status(
                        run.thread_id,
                        "failed",
                        expect=["running"],
                        error=f"workflow {run.workflow!r} is not registered",
                    )
                    continue
                logger.info("resuming run %s (%s) from its last checkpoint", run.thread_id, run.workflow)
                self.runs.spawn(run.thread_id, run.workflow, await self._unapplied_decisions(run))
                resumed += 1
            if not page.next_cursor:
                return resumed
            cursor = page.next_cursor

    async def _unapplied_decisions(self, run: Run) -> Command[Any] | None:
        """Decisions acknowledged with 200 whose resume never reached a checkpoint (the process died)."""
        pending = await self.runs.interrupt_ids(run)
        decided = [d for d in await self.runs.store.decisions(run.thread_id) if d.interrupt_id in pending]
        if not decided:
            return None
        resume = {d.interrupt_id: {"decision": d.decision, "comment": d.comment, "data": d.data} for d in decided}
        return Command(resume=resume)
