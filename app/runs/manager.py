"""The run manager: start, approve or reject, cancel and resume LangGraph runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command, StateSnapshot
from marshmallow import ValidationError

from app.background import background
from app.errors import (
    Conflict,
    Invalid,
    NotFound,
    NotWaiting,
    ShuttingDown,
    StaleInterrupt,
    ThreadExists,
)
from app.names import CONTROL_CHANNEL, now_iso
from app.pubsub import Bus
from app.pubsub.outbox import Outbox
from app.runs.cluster import LEASE_TTL, Cluster
from app.runs.deadlines import Deadlines, forget
from app.runs.events import Events, dumps, to_json
from app.runs.execution import Execution, thread_config
from app.runs.logsink import LogSink
from app.store import ACTIVE, Approval, Decision, Run, Store
from app.workflows import Workflow, compile_graph

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What a run looks like now; the REST side turns it into JSON."""

    run: Run
    state: StateSnapshot | None
    decisions: list[Decision]
    approvals: dict[str, Approval]  # by interrupt id: the queue rows (deadlines) of what it waits for


class RunManager:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        outbox: Outbox,
        checkpointer: BaseCheckpointSaver[Any],
        workflows: dict[str, Workflow],
        sink: LogSink,
        node: str,
    ) -> None:
        self.store = store
        self.bus = bus
        self.outbox = outbox
        self.sink = sink
        # One node executes a thread at a time: it holds the thread's lease in the store. The
        # name must survive a restart of the same listener (host and port), so that a restarted
        # process resumes its own runs at once instead of waiting out the lease.
        self.node = node
        self.workflows = workflows
        graphs = {name: compile_graph(wf, checkpointer) for name, wf in workflows.items()}
        self.events = Events(outbox)
        self.execution = Execution(store, sink, self.events, graphs, workflows, lambda: self.node)
        # Threads this node is about to execute (claiming the lease, flipping the status): no other
        # path of this node may start them meanwhile, and their leases are renewed like running ones.
        self._reserved: set[str] = set()
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # with the number of holders and waiters
        self.cluster = Cluster(store, bus, self)

    # -- public API -------------------------------------------------------------------

    async def start(self, workflow: str, input: dict[str, Any], thread_id: str | None = None) -> Run:
        if self.execution.draining:
            raise ShuttingDown("Beacon is shutting down; start the run again shortly")
        wf = self.workflows.get(workflow)
        if wf is None:
            raise NotFound(f"unknown workflow {workflow!r}", {"workflows": sorted(self.workflows)})
        if wf.input_schema is not None:
            try:
                input = wf.input_schema.load(input)
            except ValidationError as exc:
                raise Invalid("invalid input", {"input": exc.messages}) from None
        thread_id = thread_id or uuid.uuid4().hex
        exists = ThreadExists(f"thread {thread_id!r} already exists")
        with self._reserve(thread_id, exists):
            # The lease first: from the moment the run is `running`, no other node may take it over.
            if not await self.store.claim(thread_id, self.node, LEASE_TTL):
                raise exists
            try:
                run = await self.store.create_run(thread_id, workflow, input)
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.store.release(thread_id, self.node)
                raise
            self.events.status(run.thread_id, workflow, "running", event="started")
            self.spawn(run.thread_id, workflow, input)
        return run

    async def snapshot(self, thread_id: str) -> Snapshot:
        """The run's record, its LangGraph state, decisions and the stored rows of its pending approvals."""
        run = await self._get(thread_id)
        graph = self.execution.graphs.get(run.workflow)
        state = await graph.aget_state(thread_config(thread_id)) if graph else None
        approvals: dict[str, Approval] = {}
        if state is not None and run.status == "waiting_approval" and state.interrupts:
            listed = await self.store.list_approvals(thread_id=thread_id)
            approvals = {a.interrupt_id: a for a in listed.approvals}
        return Snapshot(run, state, await self.store.decisions(thread_id), approvals)

    async def checkpoints(self, thread_id: str, limit: int) -> list[StateSnapshot]:
        """The thread's checkpoint history, newest first (empty for a workflow this node lacks)."""
        run = await self._get(thread_id)
        graph = self.execution.graphs.get(run.workflow)
        if graph is None:
            return []
        return [snap async for snap in graph.aget_state_history(thread_config(thread_id), limit=limit)]

    async def decide(
        self,
        thread_id: str,
        decision: str,
        *,
        comment: str | None = None,
        interrupt_id: str | None = None,
        data: Any = None,
        decided_by: str | None = None,
    ) -> Decision:
        async with self._locked(thread_id):
            run = await self._waiting(thread_id)
            if (finishing := self.execution.task(thread_id)) is not None:
                # The step that began the wait is still ending: let it, or it could hand back the
                # lease this decision takes.
                await asyncio.wait([finishing])
            decided = NotWaiting("someone else already decided", {"status": run.status})
            with self._reserve(thread_id, decided):
                # The lease before the status: a waiting run holds none, and once it is `running`
                # every node's resume scan would take a run whose lease is free.
                await self._claim_waiting(thread_id, decided)
                try:
                    # With the lease held nothing else moves the run: what it waits on now is what
                    # this decision answers (read before the claim, it could have moved on since).
                    run = await self._waiting(thread_id)
                    interrupt_id = await self._pick_interrupt(run, interrupt_id)
                    # The compare-and-set makes exactly one decision win, across processes too.
                    if not await self.store.set_status(thread_id, "running", expect=["waiting_approval"]):
                        raise decided
                except BaseException:
                    with contextlib.suppress(Exception):
                        await self.store.release(thread_id, self.node)
                    raise
                record = Decision(thread_id, interrupt_id, decision, comment, now_iso(), decided_by, data)
                await self.store.record_decision(record)
                await forget(self.store, thread_id, [interrupt_id])
                self.events.decision(record)
                self.events.status(thread_id, run.workflow, "running", event="resumed")
                self.spawn(thread_id, run.workflow, Command(resume={interrupt_id: _resume_value(record)}))
        return record

    async def _waiting(self, thread_id: str) -> Run:
        run = await self._get(thread_id)
        if run.status != "waiting_approval":
            raise NotWaiting(f"run is {run.status}, not waiting for approval", {"status": run.status})
        return run

    async def _pick_interrupt(self, run: Run, interrupt_id: str | None) -> str:
        """The pending interrupt a decision answers: the one named, else the only one."""
        pending = sorted(p["interrupt_id"] for p in await self.pending(run))
        if interrupt_id is not None:
            if interrupt_id not in pending:
                details = {"pending": pending, "interrupt_id": interrupt_id}
                raise StaleInterrupt("that approval is no longer pending", details)
            return interrupt_id
        if len(pending) > 1:
            raise Invalid(
                "several approvals are pending: name one with interrupt_id",
                {"interrupt_id": ["required when several approvals are pending"], "pending": pending},
            )
        if not pending:
            raise NotWaiting("run has no pending approval", {"status": run.status})
        return pending[0]

    async def _claim_waiting(self, thread_id: str, busy: Exception) -> None:
        """Take a waiting thread's lease; the node whose step began the wait may still be handing it back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.execution.handover
        while not await self.store.claim(thread_id, self.node, LEASE_TTL):
            run = await self.store.get_run(thread_id)
            if run is None or run.status != "waiting_approval" or loop.time() > deadline:
                raise busy
            await asyncio.sleep(0.05)

    async def cancel(self, thread_id: str, by: str | None = None, comment: str | None = None) -> Run:
        async with self._locked(thread_id):
            run = await self._get(thread_id)
            if not await self.store.set_status(thread_id, "cancelled", expect=ACTIVE):
                raise Conflict(f"run is {run.status}; only running or waiting runs can be cancelled")
            # Recorded like a decision (no interrupt), so /status shows who cancelled and when.
            record = Decision(thread_id, "", "cancel", comment, now_iso(), by)
            await self.store.record_decision(record)
            await forget(self.store, thread_id)
            task = self.stop_local(thread_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        else:
            # Another node may execute it, or be resuming it right now (it was waiting when read);
            # it also stops at its next checkpoint if this message is lost.
            self.outbox.put(CONTROL_CHANNEL, dumps({"type": "cancel", "thread_id": thread_id}))
        self.events.status(thread_id, run.workflow, "cancelled", cancelled_by=by, decided_at=record.decided_at)
        return await self._get(thread_id)

    def spawn(self, thread_id: str, workflow: str, payload: Any) -> None:
        self.execution.spawn(thread_id, workflow, payload)

    def stop_local(self, thread_id: str) -> asyncio.Task[None] | None:
        return self.execution.stop_local(thread_id)

    def abandon(self, thread_ids: Collection[str]) -> None:
        self.execution.abandon(thread_ids)

    async def drain(self, grace: float) -> None:
        """Let each running step reach its next checkpoint, then stop; cancel after `grace`."""
        await self.execution.drain(grace, reserved=lambda: bool(self._reserved))

    async def release_all(self) -> None:
        await self.execution.release_all()

    @property
    def leases(self) -> set[str]:
        """The threads whose lease this node holds or is taking."""
        return self.execution.holding | self._reserved

    @property
    def holding(self) -> set[str]:
        """The threads this node executes under a lease it keeps renewing."""
        return self.execution.holding

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RunManager]:
        """The manager's background work: cancel requests from other nodes, lease upkeep, deadlines."""
        async with background(
            runs_control=self.cluster.listen_control(),
            runs_supervisor=self.cluster.supervise(),
            runs_deadlines=Deadlines(self.store, self.sink, self).run(),
        ):
            yield self

    @property
    def draining(self) -> bool:
        return self.execution.draining

    @property
    def active(self) -> int:
        return len(self.execution.threads)

    @property
    def executing(self) -> set[str]:
        """The threads this node runs right now, or is about to."""
        return self.execution.threads | self._reserved

    def task(self, thread_id: str) -> asyncio.Task[None] | None:
        """The task executing `thread_id` on this node, if any."""
        return self.execution.task(thread_id)

    def footprint(self) -> dict[str, int]:
        """Sizes of the per-thread maps: all 0 once nothing runs, whatever ran before."""
        return {
            **self.execution.footprint(),
            "reserved": len(self._reserved),
            "locks": len(self._locks),
        }

    async def pending(self, run: Run) -> list[dict[str, Any]]:
        """The interrupts a waiting run waits on: their ids and (JSON-safe) values."""
        state = await self.execution.graphs[run.workflow].aget_state(thread_config(run.thread_id))
        return [{"interrupt_id": i.id, "value": to_json(i.value)} for i in state.interrupts]

    async def take_over(self, run: Run) -> bool:
        """Execute a `running` run that no live node holds (its node died, or this process restarted)."""
        with self._reserve(run.thread_id, None) as free:
            if not free or not await self.store.claim(run.thread_id, self.node, LEASE_TTL):
                return False  # this node already has it, or another live node executes it
            # Listed as running a moment ago; its step may have reached a wait (or been cancelled)
            # and handed its lease back since. Only a run still `running` is taken over.
            current = await self.store.get_run(run.thread_id)
            if current is None or current.status != "running":
                await self.store.release(run.thread_id, self.node)
                return False
            if run.workflow not in self.workflows:
                await self.store.set_status(
                    run.thread_id, "failed", expect=["running"], error=f"workflow {run.workflow!r} is not registered"
                )
                await self.store.release(run.thread_id, self.node)
                return False
            logger.info("resuming run %s (%s) from its last checkpoint", run.thread_id, run.workflow)
            self.spawn(run.thread_id, run.workflow, await self._resume_payload(run))
        return True

    async def _resume_payload(self, run: Run) -> Any:
        """What continues a run from its last checkpoint: its input again if it never wrote one
        (it stopped before its first step was saved), else the decisions it has not applied yet."""
        state = await self.execution.graphs[run.workflow].aget_state(thread_config(run.thread_id))
        if state.created_at is None:
            return run.input
        return await self._unapplied_decisions(run)

    async def _unapplied_decisions(self, run: Run) -> Command[Any] | None:
        """Decisions acknowledged with 200 whose resume never reached a checkpoint (the process died)."""
        pending = {p["interrupt_id"] for p in await self.pending(run)}
        decided = [d for d in await self.store.decisions(run.thread_id) if d.interrupt_id in pending]
        if not decided:
            return None
        return Command(resume={d.interrupt_id: _resume_value(d) for d in decided})

    # -- internals --------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(self, thread_id: str) -> AsyncIterator[None]:
        """One decision or cancel of a thread at a time on this node; the entry goes with its last user."""
        lock, users = self._locks.setdefault(thread_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[thread_id]

    @contextlib.contextmanager
    def _reserve(self, thread_id: str, busy: Exception | None) -> Iterator[bool]:
        """Hold `thread_id` for this block unless this node executes it already (then raise `busy`,
        or yield False when it is None). A `spawn` inside the block keeps the thread. While
        draining nothing is reserved: ShuttingDown, or False."""
        if self.execution.draining and busy is not None:
            raise ShuttingDown("Beacon is shutting down; try again shortly")
        if self.execution.draining or thread_id in self.execution.threads or thread_id in self._reserved:
            if busy is not None:
                raise busy
            yield False
            return
        self._reserved.add(thread_id)
        try:
            yield True
        finally:
            self._reserved.discard(thread_id)

    async def _get(self, thread_id: str) -> Run:
        run = await self.store.get_run(thread_id)
        if run is None:
            raise NotFound(f"no run with thread_id {thread_id!r}")
        return run



def _resume_value(d: Decision) -> dict[str, Any]:
    """What a workflow's `interrupt()` returns for a decision."""
    return {"decision": d.decision, "comment": d.comment, "data": d.data}


__all__: Sequence[str] = ["RunManager"]
