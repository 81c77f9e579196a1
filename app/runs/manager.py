"""The run manager: start, approve or reject, cancel and resume LangGraph runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command, StateSnapshot
from marshmallow import ValidationError

from app.background import Tasks, background
from app.errors import (
    Conflict,
    Invalid,
    NotFound,
    NotWaiting,
    ShuttingDown,
    StaleInterrupt,
    ThreadBusy,
    ThreadExists,
)
from app.names import CONTROL_CHANNEL, now_iso
from app.pubsub import Bus
from app.pubsub.outbox import Outbox
from app.runs.cluster import LEASE_TTL, Cluster
from app.runs.deadlines import Deadlines, forget
from app.runs.erase import erase
from app.runs.events import Events, dumps, to_json
from app.runs.execution import Execution, roll_back
from app.runs.jobs import ASKED, Job, job_of, payload_of, thread_config
from app.runs.logsink import LogSink
from app.runs.states import States
from app.runs.streams import RunStreams
from app.store import ACTIVE, Approval, Decision, Run, Store, ThreadRun
from app.workflows import Workflow, compile_graph

logger = logging.getLogger(__name__)

ERASE_WAIT = LEASE_TTL + 5.0  # seconds a delete waits for another node to stop the thread (or its lease to lapse)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a decision sends to one interrupt: `value` reaches `interrupt()`; the rest is audited."""

    decision: str
    value: Any
    comment: str | None = None
    data: Any = None


def new_run(thread_id: str, workflow: str, kwargs: dict[str, Any], status: str, **extra: Any) -> ThreadRun:
    ts = now_iso()
    return ThreadRun(
        run_id=str(uuid.uuid4()),
        thread_id=thread_id,
        assistant_id=extra.get("assistant_id") or assistant_id(workflow),
        workflow=workflow,
        status=status,
        kwargs=kwargs,
        metadata=extra.get("metadata") or {},
        multitask_strategy=extra.get("multitask_strategy") or "reject",
        created_at=ts,
        updated_at=ts,
    )


def assistant_id(graph_id: str) -> str:
    """A graph's default assistant: the id LangGraph's own server gives it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, graph_id))


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
        streams: RunStreams,
        node: str,
    ) -> None:
        self.store = store
        self.bus = bus
        self.outbox = outbox
        self.sink = sink
        self.streams = streams
        # One node executes a thread at a time: it holds the thread's lease in the store. The
        # name must survive a restart of the same listener (host and port), so that a restarted
        # process resumes its own runs at once instead of waiting out the lease.
        self.node = node
        self.workflows = workflows
        graphs = {name: compile_graph(wf, checkpointer) for name, wf in workflows.items()}
        self.checkpointer = checkpointer
        self.events = Events(outbox)
        self.states = States()  # threads' current snapshots, rebuilt when their checkpoint moves
        self.execution = Execution(store, sink, self.events, streams, graphs, workflows, lambda: self.node, self.states)
        # Threads this node is about to execute (claiming the lease, flipping the status): no other
        # path of this node may start them meanwhile, and their leases are renewed like running ones.
        self._reserved: set[str] = set()
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # with the number of holders and waiters
        self._kicks = Tasks()  # queued runs started once the task before them is done
        self.started_at = now_iso()  # the default assistants' creation time
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
        first = new_run(thread_id, workflow, {"input": input}, "running")
        with self._reserve(thread_id, exists):
            # The lease first: from the moment the run is `running`, no other node may take it over.
            if not await self.store.claim(thread_id, self.node, LEASE_TTL):
                raise exists
            try:
                run = await self.store.create_run(thread_id, workflow, input, first)
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.store.release(thread_id, self.node)
                raise
            self.events.status(run.thread_id, workflow, "running", event="started", run_id=first.run_id)
            self.spawn(job_of(first, input))
        return run

    async def snapshot(self, thread_id: str) -> Snapshot:
        """The run's record, its LangGraph state, decisions and the stored rows of its pending approvals."""
        view = await self.store.thread_view(thread_id)  # one round trip for the store's part
        if view is None:
            raise NotFound(f"no run with thread_id {thread_id!r}")
        run = view.run
        graph = self.execution.graphs.get(run.workflow)
        state = await self.states.current(graph, thread_id) if graph else None
        approvals: dict[str, Approval] = {}
        if state is not None and run.status == "waiting_approval" and state.interrupts:
            approvals = {a.interrupt_id: a for a in view.approvals}
        return Snapshot(run, state, view.decisions, approvals)

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
        """Approve or reject: the graph's `interrupt()` gets `{decision, comment, data}`."""
        answer = Answer(decision, {"decision": decision, "comment": comment, "data": data}, comment, data)
        _, [record] = await self.resume(thread_id, {interrupt_id: answer}, decided_by=decided_by)
        return record

    async def resume(
        self,
        thread_id: str,
        answers: dict[str | None, Answer],
        *,
        decided_by: str | None = None,
        kwargs: dict[str, Any] | None = None,
        **extra: Any,
    ) -> tuple[ThreadRun, list[Decision]]:
        """Answer pending interrupts of a waiting thread (None: the only one) in a new run."""
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
                    state = await self.states.current(self.execution.graphs[run.workflow], thread_id)
                    named = _pick_interrupts(run, list(answers), state)
                    resume = {iid: answers[key].value for key, iid in named.items()}
                    args = kwargs if kwargs is not None else {"command": {"resume": resume}}
                    begin = new_run(thread_id, run.workflow, args, "running", **extra)
                    # The compare-and-set makes exactly one decision win, across processes too.
                    if not await self.store.set_status(thread_id, "running", expect=["waiting_approval"], begin=begin):
                        raise decided
                except BaseException:
                    with contextlib.suppress(Exception):
                        await self.store.release(thread_id, self.node)
                    raise
                at = now_iso()
                records = [
                    Decision(thread_id, iid, a.decision, a.comment, at, decided_by, a.data)
                    for a, iid in ((answers[key], iid) for key, iid in named.items())
                ]
                for record in records:
                    await self.store.record_decision(record)
                    self.events.decision(record)
                await forget(self.store, thread_id, list(resume))
                self.events.status(thread_id, run.workflow, "running", event="resumed", run_id=begin.run_id)
                # The command as sent, its goto and update included; the answers by interrupt id.
                asked = payload_of(args)
                goto, update = (asked.goto, asked.update) if isinstance(asked, Command) else ((), None)
                job = job_of(begin, Command(resume=resume, goto=goto, update=update))
                if not {"checkpoint_id", "checkpoint_ns"} & job.configurable.keys():  # from the one just read
                    job = replace(job, resumes=state.config["configurable"]["checkpoint_id"])
                self.spawn(job)
        return begin, records

    async def _waiting(self, thread_id: str) -> Run:
        run = await self._get(thread_id)
        if run.status != "waiting_approval":
            raise NotWaiting(f"run is {run.status}, not waiting for approval", {"status": run.status})
        return run

    async def _claim_waiting(self, thread_id: str, busy: Exception) -> None:
        """Take a waiting thread's lease; the node whose step began the wait may still be handing it back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.execution.handover
        while not await self.store.claim(thread_id, self.node, LEASE_TTL):
            run = await self.store.get_run(thread_id)
            if run is None or run.status != "waiting_approval" or loop.time() > deadline:
                raise busy
            await asyncio.sleep(0.05)

    async def cancel(
        self, thread_id: str, by: str | None = None, comment: str | None = None, *, rollback: bool = False
    ) -> Run:
        """Stop the thread's current run (rolled back: as if it never ran); queued runs follow."""
        async with self._locked(thread_id):
            run = await self._get(thread_id)
            if not await self.store.set_status(thread_id, "cancelled", expect=ACTIVE):
                raise Conflict(f"run is {run.status}; only running or waiting runs can be cancelled")
            # Recorded like a decision (no interrupt), so /status shows who cancelled and when.
            record = Decision(thread_id, "", "cancel", comment, now_iso(), by)
            await self.store.record_decision(record)
            await forget(self.store, thread_id)
            stopped = self.stop_local(thread_id, rollback=rollback)
        if stopped is not None:
            await stopped
        elif run.status == "waiting_approval" and rollback:
            # Nothing executes a waiting run: undo what it made here.
            await roll_back(self.execution.graphs[run.workflow], self.store, thread_id, run.run_id)
        else:
            # Another node may execute it, or be resuming it right now (it was waiting when read);
            # it also stops at its next checkpoint if this message is lost.
            command = {"type": "cancel", "thread_id": thread_id, "rollback": rollback}
            self.outbox.put(CONTROL_CHANNEL, dumps(command))
        self.events.status(
            thread_id, run.workflow, "cancelled", cancelled_by=by, decided_at=record.decided_at, run_id=run.run_id
        )
        await self.kick(thread_id)
        return await self._get(thread_id)

    async def submit(
        self, thread_id: str, workflow: str, kwargs: dict[str, Any], *, by: str | None = None, **extra: Any
    ) -> ThreadRun:
        """A run of the Agent API: queued on the thread, as its `multitask_strategy` says, or a
        resume (`command.resume`: one value, or a map of interrupt ids to values)."""
        if self.execution.draining:
            raise ShuttingDown("Beacon is shutting down; start the run again shortly")
        if workflow not in self.workflows:
            raise NotFound(f"unknown graph {workflow!r}", {"graphs": sorted(self.workflows)})
        command = kwargs.get("command") or {}
        if "resume" in command:
            value = command["resume"]
            answers: dict[str | None, Answer] = (
                {iid: Answer("resume", v, data=v) for iid, v in value.items()}
                if is_interrupt_map(value)
                else {None: Answer("resume", value, data=value)}
            )
            run, _ = await self.resume(thread_id, answers, decided_by=by, kwargs=kwargs, **extra)
            return run
        strategy = extra.get("multitask_strategy") or "reject"
        run = new_run(thread_id, workflow, kwargs, "pending", **extra)
        await self.store.add_run(run, exclusive=strategy == "reject")
        if strategy in ("interrupt", "rollback"):
            current = await self._get(thread_id)
            if current.status == "running":
                with contextlib.suppress(Conflict):  # it ended meanwhile: nothing to stop
                    await self.cancel(thread_id, by, f"multitask_strategy={strategy}", rollback=strategy == "rollback")
        await self.kick(thread_id)
        return await self.store.get_thread_run(run.run_id) or run

    async def delete_thread(self, thread_id: str, by: str | None = None) -> dict[str, int]:
        """Stop what runs on the thread, then erase it (audited): its records, events, logs, webhook
        deliveries and checkpoints. The rows removed per table; Conflict if it still executes
        elsewhere after `ERASE_WAIT` s (a node that cannot reach the store)."""
        run = await self._get(thread_id)
        while queued := await self.store.list_thread_runs(thread_id, limit=100, status="pending"):
            for r in queued:  # none of them starts once the current run stops
                await self._drop_queued(r.run_id)
        if run.status in ACTIVE:
            with contextlib.suppress(Conflict):
                await self.cancel(thread_id, comment="thread deleted")
        if (task := self.execution.task(thread_id)) is not None:
            await asyncio.gather(task, return_exceptions=True)
        # Another node stops at its next checkpoint and hands the lease back once its lines are stored.
        deadline = asyncio.get_running_loop().time() + ERASE_WAIT
        while (holder := await self.store.lease_holder(thread_id)) not in (None, self.node):
            if asyncio.get_running_loop().time() > deadline:
                raise Conflict(f"thread {thread_id!r} still executes on {holder}; delete it again shortly")
            await asyncio.sleep(0.1)
        # No line of it may be written after the erase (it would outlive the thread): a store too
        # slow to take them now makes the delete fail, not leave them behind.
        if not await self.sink.stored(thread_id, 5.0) or not await self.streams.flushed(5.0):
            raise Conflict(f"thread {thread_id!r} still has lines being stored; delete it again shortly")
        detail = {"status": run.status, "workflow": run.workflow, "run_id": run.run_id}
        removed = await erase(self.store, self.checkpointer, thread_id, actor=by, action="delete", detail=detail)
        if removed is None:
            raise NotFound(f"no thread {thread_id!r}")  # deleted meanwhile by another request
        logger.info("thread %s deleted by %s: %s", thread_id, by or "anonymous", removed)
        return removed

    async def update_state(self, run: Run, values: Any, as_node: str | None, checkpoint_id: str | None) -> Any:
        """Write values into the thread's state as `as_node` would; not while a run executes."""
        graph = self.execution.graphs.get(run.workflow)
        if graph is None:
            raise Invalid(f"thread {run.thread_id!r} has no graph yet: run it first")
        if run.status == "running":
            raise ThreadBusy(f"thread {run.thread_id!r} is busy")
        config = thread_config(run.thread_id)
        if checkpoint_id:
            config["configurable"]["checkpoint_id"] = checkpoint_id
        return await graph.aupdate_state(config, values, as_node=as_node)

    async def kick(self, thread_id: str) -> bool:
        """Start the thread's oldest queued run here unless some run of it executes somewhere."""
        with self._reserve(thread_id, None) as free:
            if not free:
                if self.execution.task(thread_id) is not None:
                    # It may have looked for queued runs already: look again once it is done.
                    self.execution.after.setdefault(thread_id, []).append(lambda: self._kick_soon(thread_id))
                return False
            if not await self.store.list_thread_runs(thread_id, limit=1, status="pending"):
                return False  # one read, not a lease taken and given back (a run queued later kicks itself)
            if not await self.store.claim(thread_id, self.node, LEASE_TTL):
                return False  # the node running it starts the next queued run when it ends
            job = await self.execution.next_job(thread_id)
            if job is None:
                await self.store.release(thread_id, self.node)
                return False
            self.spawn(job)
        return True

    def _kick_soon(self, thread_id: str) -> None:
        if not self.execution.draining:
            self._kicks.spawn(self._kick_logged(thread_id))

    async def _kick_logged(self, thread_id: str) -> None:
        try:
            await self.kick(thread_id)
        except Exception:  # the resume scan tries again
            logger.warning("could not start the queued runs of %s", thread_id, exc_info=True)

    async def cancel_run(
        self, thread_id: str, run_id: str, *, by: str | None = None, action: str = "interrupt"
    ) -> None:
        """Cancel one run: the thread's current one, or a queued one (it never starts)."""
        run = await self.store.get_thread_run(run_id)
        if run is None or run.thread_id != thread_id:
            raise NotFound(f"no run {run_id!r} on thread {thread_id!r}")
        if run.status == "pending":
            if await self._drop_queued(run_id):
                if action == "rollback":
                    await self.store.delete_thread_run(run_id)
                return
            run = await self.store.get_thread_run(run_id) or run
        thread = await self._get(thread_id)
        if thread.run_id != run_id or thread.status not in ACTIVE:
            raise Conflict(f"run is {run.status}; only pending, running or interrupted runs can be cancelled")
        await self.cancel(thread_id, by, rollback=action == "rollback")

    async def _drop_queued(self, run_id: str) -> bool:
        """A queued run will not start: it is `interrupted`, and its streams end."""
        if not await self.store.set_run_status(run_id, "interrupted", expect=["pending"]):
            return False  # it started meanwhile
        self.streams.emit(run_id, 1, "end", {"run_id": run_id, "status": "interrupted"})
        return True

    def spawn(self, job: Job) -> None:
        self.execution.spawn(job)

    def stop_local(self, thread_id: str, *, rollback: bool = False) -> asyncio.Future[None] | None:
        return self.execution.stop_local(thread_id, rollback=rollback)

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
            try:
                yield self
            finally:
                await self._kicks.close()

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
            "kicks": len(self._kicks),
        }

    async def pending(self, run: Run) -> list[dict[str, Any]]:
        """The interrupts a waiting run waits on: their ids and (JSON-safe) values."""
        state = await self.states.current(self.execution.graphs[run.workflow], run.thread_id)
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
            state = await self.execution.graphs[run.workflow].aget_state(thread_config(run.thread_id))
            current_run = await self.store.get_thread_run(run.run_id) if run.run_id else None
            if current_run is None:
                # Its input again if it never saved a step, else the decisions it has not applied yet.
                payload = run.input if state.created_at is None else await self._unapplied_decisions(run)
                self.spawn(Job(run.thread_id, run.workflow, payload))
            else:
                # A run of a thread with runs before it may have saved no step of its own (its node died,
                # or a stop meant for the run before landed while the store handed this one out): the
                # last checkpoint is then the earlier run's, and this one starts as it was asked.
                began = state.created_at is not None and (state.metadata or {}).get("run_id") == current_run.run_id
                asked: Any = await self._unapplied_decisions(run) if began else ASKED
                seq = await self.store.last_event(current_run.run_id)
                self.spawn(job_of(current_run, asked, attempt=2, seq=seq))
        return True

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


def _pick_interrupts(run: Run, keys: list[str | None], state: StateSnapshot) -> dict[str | None, str]:
    """The pending interrupt each answer is for: the one named, else the only one."""
    pending = sorted(i.id for i in state.interrupts)
    if stale := sorted(k for k in keys if k is not None and k not in pending):
        details = {"pending": pending, "interrupt_id": stale[0] if len(stale) == 1 else stale}
        raise StaleInterrupt("that approval is no longer pending", details)
    if None not in keys:
        return {k: k for k in keys if k is not None}
    if len(pending) > 1:
        raise Invalid(
            "several approvals are pending: name one with interrupt_id",
            {"interrupt_id": ["required when several approvals are pending"], "pending": pending},
        )
    if not pending:
        raise NotWaiting("run has no pending approval", {"status": run.status})
    return {None: pending[0]}


def _resume_value(d: Decision) -> Any:
    """What a workflow's `interrupt()` returns for a decision: a resume value as it was sent."""
    if d.decision == "resume":
        return d.data
    return {"decision": d.decision, "comment": d.comment, "data": d.data}


def is_interrupt_map(value: Any) -> bool:
    """`{interrupt_id: value, ...}`: every key an interrupt id (LangGraph's are 32 hex digits)."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and len(k) == 32 and all(c in "0123456789abcdef" for c in k) for k in value)
    )


__all__: Sequence[str] = ["RunManager"]
