"""Approval deadlines: which pending approvals have one, and the per-node timer that applies the default.

A deadline comes from the approval request itself (the interrupt value's `deadline_seconds` and
`default_action`) or else from the workflow's definition (`Workflow.deadline_seconds`,
`Workflow.default_action`). It is stored with the approval, so it survives restarts; every REST
node polls the store and applies due defaults through the run manager's `decide`, whose compare-and-set
on the run's status lets exactly one decision win — a human's or the deadline's — in a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from app.errors import Conflict, NotFound, ShuttingDown, StaleInterrupt, StoreUnavailable
from app.runs.logsink import LogSink
from app.store import Approval, Run, Store
from app.workflows import DEFAULT_ACTIONS, Workflow

logger = logging.getLogger(__name__)
run_log = logging.getLogger("beacon.run")

POLL = 1.0  # seconds: the longest this node goes without seeing deadlines other nodes stored
BATCH = 100
DECIDED_BY = "deadline"


def approvals_for(
    thread_id: str, workflow: str, wf: Workflow, pending: Sequence[dict[str, Any]], since: datetime
) -> list[Approval]:
    """The approvals a run now waits for, each with its deadline if the request or workflow sets one."""
    approvals = []
    for item in pending:
        seconds, action = _deadline(item["value"], wf, workflow)
        approvals.append(
            Approval(
                thread_id,
                item["interrupt_id"],
                workflow,
                item["value"],
                since.isoformat(),
                None if seconds is None else since.timestamp() + seconds,
                None if seconds is None else action,
            )
        )
    return approvals


def _deadline(value: Any, wf: Workflow, workflow: str) -> tuple[float | None, str]:
    """The request's own `deadline_seconds` / `default_action` win over the workflow's."""
    own = value if isinstance(value, dict) else {}
    seconds = own.get("deadline_seconds", wf.deadline_seconds)
    action = own.get("default_action", wf.default_action)
    if seconds is None:
        return None, action
    number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if not number or seconds < 0 or action not in DEFAULT_ACTIONS:
        # A workflow bug must not stop the run: it waits for a human, as it would without a deadline.
        logger.warning("ignoring an invalid approval deadline %r / %r in workflow %s", seconds, action, workflow)
        return None, action
    return float(seconds), action


async def forget(store: Store, thread_id: str, interrupt_ids: Sequence[str] | None = None) -> None:
    """Drop a thread's stored approvals; a stale row is harmless (listings join on the run's status)."""
    with contextlib.suppress(StoreUnavailable):
        await store.clear_approvals(thread_id, interrupt_ids)


class Decider(Protocol):
    """What deadlines need of the run manager."""

    @property
    def draining(self) -> bool: ...

    @property
    def workflows(self) -> Mapping[str, Workflow]: ...

    async def pending(self, run: Run) -> list[dict[str, Any]]: ...

    async def decide(
        self, thread_id: str, decision: str, *, comment: str | None, interrupt_id: str | None, decided_by: str | None
    ) -> object: ...


class Deadlines:
    """Sleeps until the next stored deadline (at most POLL s), then applies its default action."""

    def __init__(self, store: Store, sink: LogSink, runs: Decider, poll: float = POLL) -> None:
        self.store = store
        self.sink = sink
        self.runs = runs
        self.poll = poll
        self.applied = 0

    async def run(self) -> None:
        try:
            await self.adopt()
        except Exception:
            logger.warning("could not bring waiting runs into the approval queue", exc_info=True)
        failing = False
        while True:
            try:
                wait = await self.tick()
                failing = False
            except StoreUnavailable as exc:
                if not failing:  # once per outage, not once a second
                    logger.warning("approval deadlines wait for the store: %s", exc)
                failing, wait = True, self.poll
            except Exception:
                logger.exception("approval deadline scan failed")
                wait = self.poll
            await asyncio.sleep(wait)

    async def adopt(self) -> int:
        """Give waiting runs without queue rows (stored before the queue existed) theirs; idempotent.

        Runs every start on every node, so it reads a run's checkpoint only when the run has no row.
        """
        queued: set[str] = set()
        cursor: str | None = None
        while True:
            listed = await self.store.list_approvals(limit=500, cursor=cursor)
            queued.update(a.thread_id for a in listed.approvals)
            if not (cursor := listed.next_cursor):
                break
        adopted = 0
        while True:
            page = await self.store.list_runs(status="waiting_approval", limit=200, cursor=cursor)
            for run in page.runs:
                wf = self.runs.workflows.get(run.workflow)
                if wf is None or run.thread_id in queued:
                    continue
                pending = await self.runs.pending(run)
                since = datetime.fromisoformat(run.updated_at)  # when it began to wait
                # Rows already stored keep their times: only missing ones are added.
                approvals = approvals_for(run.thread_id, run.workflow, wf, pending, since)
                await self.store.put_approvals(run.thread_id, approvals)
                adopted += 1
            if not page.next_cursor:
                return adopted
            cursor = page.next_cursor

    async def tick(self) -> float:
        """Apply what is due; the seconds until the next deadline this node knows of (at most POLL)."""
        if self.runs.draining:
            return self.poll
        upcoming = await self.store.due_approvals(time.time() + self.poll, BATCH)
        for approval in upcoming:
            if approval.deadline is not None and approval.deadline <= time.time():
                await self.fire(approval)
        now = time.time()
        later = [a.deadline - now for a in upcoming if a.deadline is not None and a.deadline > now]
        if len(upcoming) == BATCH and not later:
            return 0.0  # a backlog: keep going
        return max(0.01, min([self.poll, *later]))

    async def fire(self, approval: Approval) -> bool:
        """Decide `approval` by its default action; False when a human (or another node) came first."""
        action = approval.default_action or "reject"
        if approval.workflow not in self.runs.workflows:
            return False  # a node configured without this workflow leaves it to the others
        try:
            await self.runs.decide(
                approval.thread_id,
                action,
                interrupt_id=approval.interrupt_id,
                comment=f"no decision before the deadline: {action} by default",
                decided_by=DECIDED_BY,
            )
        except StaleInterrupt:
            await forget(self.store, approval.thread_id, [approval.interrupt_id])
            return False
        except (Conflict, NotFound):
            return False  # decided or cancelled meanwhile: the row goes when the run moves on
        except ShuttingDown:
            return False  # the next node to start applies it
        self.applied += 1
        with self.sink.scope(approval.thread_id):
            run_log.warning("approval deadline passed: %s applied by default", action)
        return True
