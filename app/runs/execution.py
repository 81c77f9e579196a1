"""Execution: the tasks that run LangGraph graphs on this node, one per thread, under its lease;
a thread's queued runs follow one another in its task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, KeysView
from datetime import UTC, datetime
from typing import Any

from app.background import cancel
from app.errors import StoreUnavailable
from app.runs.deadlines import approvals_for, forget
from app.runs.events import Events, to_json, with_deadlines
from app.runs.jobs import Job, job_of, thread_config
from app.runs.logsink import LogSink
from app.runs.states import States
from app.runs.streams import RunStreams
from app.store import Store, ThreadRun
from app.workflows import Workflow

logger = logging.getLogger(__name__)
# Lines a run's own log shows about the run itself (captured by the sink, unlike app.*).
run_log = logging.getLogger("beacon.run")

HANDOVER = 3.0  # seconds a decision waits for the node whose step began the wait to hand its lease over


class Execution:
    """Runs and resumes threads in tracked tasks. Whoever calls `spawn` has claimed the thread's
    lease; the task keeps it (renewed by the cluster side) and hands it back when the run waits,
    ends or stops."""

    def __init__(
        self,
        store: Store,
        sink: LogSink,
        events: Events,
        streams: RunStreams,
        graphs: dict[str, Any],
        workflows: dict[str, Workflow],
        node: Callable[[], str],
        states: States,
    ) -> None:
        self._store = store
        self._states = states
        self._sink = sink
        self._events = events
        self._streams = streams
        self.graphs = graphs
        self._workflows = workflows
        self._node = node
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelling: set[str] = set()
        self._holding: set[str] = set()  # threads with a task here whose lease this node keeps renewing
        self._abandoned: set[str] = set()  # stopped because their lease lapsed
        self._leased: set[str] = set()  # stopped by shutdown: leases to hand back
        self.draining = False
        self.handover = HANDOVER
        self.after: dict[str, list[Callable[[], None]]] = {}  # called once the thread's task is done
        self._stops: dict[str, asyncio.Future[None]] = {}  # done once the cancelled run has stopped
        self._rollback: set[str] = set()  # threads whose cancelled run is rolled back
        self._claims: dict[str, asyncio.Future[ThreadRun | None]] = {}  # next runs handed out as a stop landed

    def task(self, thread_id: str) -> asyncio.Task[None] | None:
        """The task executing `thread_id` on this node, if any."""
        return self._tasks.get(thread_id)

    @property
    def threads(self) -> KeysView[str]:
        """The threads with a task here."""
        return self._tasks.keys()

    @property
    def holding(self) -> set[str]:
        """The threads this node executes under a lease it keeps renewing."""
        return set(self._holding)

    def footprint(self) -> dict[str, int]:
        """Sizes of the per-thread maps: all 0 once nothing runs."""
        return {
            "tasks": len(self._tasks),
            "cancelling": len(self._cancelling),
            "holding": len(self._holding),
            "abandoned": len(self._abandoned),
            "after": len(self.after),
            "stops": len(self._stops),
            "rollback": len(self._rollback),
        }

    def spawn(self, job: Job) -> None:
        """Run or resume a thread in a task this node tracks; the caller has claimed its lease,
        which the task renews and hands back when the thread waits, ends or stops. Runs queued
        on the thread meanwhile follow in the same task, under the same lease."""
        thread_id = job.thread_id
        if thread_id in self._tasks:
            raise RuntimeError(f"thread {thread_id} already executes on this node")
        task = asyncio.create_task(self._drive(job), name=f"run:{thread_id}")
        self._tasks[thread_id] = task
        self._holding.add(thread_id)

        def done(t: asyncio.Task[None]) -> None:
            del self._tasks[thread_id]
            self._holding.discard(thread_id)
            self._cancelling.discard(thread_id)
            self._abandoned.discard(thread_id)
            self._rollback.discard(thread_id)
            self._claims.pop(thread_id, None)
            self._stopped(thread_id)
            for hook in self.after.pop(thread_id, ()):
                hook()

        task.add_done_callback(done)

    async def _drive(self, first: Job) -> None:
        thread_id = first.thread_id
        job: Job | None = first
        try:
            while job is not None:
                with self._sink.scope(thread_id):  # this task's own context: every log line here is the run's
                    job = await self._execute(job)
        finally:  # also when a cancel lands between two runs
            if thread_id not in self._leased:
                await self._hand_back(thread_id)

    async def _hand_back(self, thread_id: str) -> None:
        """Give up the thread's lease (no longer renewed from here on); a failure lets it lapse."""
        if thread_id not in self._holding:
            return  # handed back already, or lost
        self._holding.discard(thread_id)
        with contextlib.suppress(Exception):
            await self._store.release(thread_id, self._node())

    async def _execute(self, job: Job) -> Job | None:
        """Run the job to its end, a wait or a stop; the thread's next queued run, if it is to follow."""
        thread_id, workflow = job.thread_id, job.workflow
        graph = self.graphs[workflow]
        out = Emitter(self._streams, job)
        out.emit("metadata", {"run_id": job.run_id, "attempt": job.attempt})
        try:
            # A resumed run streams the checkpoint it resumes from again: announce each once.
            payload, seen = job.payload, job.resumes
            if seen is None and not isinstance(payload, dict):  # the saved tuple names it
                saved = await graph.checkpointer.aget_tuple(job.config())
                seen = saved.config["configurable"].get("checkpoint_id") if saved else None
            async for chunk in graph.astream(
                payload,
                job.config(),
                stream_mode=["checkpoints", *job.modes],
                subgraphs=job.subgraphs,
                durability="sync",
                context=job.context,
                interrupt_before=job.interrupt_before,
                interrupt_after=job.interrupt_after,
            ):
                ns, mode, data = chunk if job.subgraphs else ((), *chunk)
                if mode in job.modes:
                    out.emit("|".join((mode, *ns)), data)
                if mode != "checkpoints" or ns:
                    continue
                checkpoint_id = data["config"]["configurable"]["checkpoint_id"]
                if checkpoint_id == seen:
                    continue
                self._events.checkpoint(thread_id, checkpoint_id, data["metadata"])
                if self.draining:
                    self._leased.add(thread_id)
                    return None  # stopped at a saved checkpoint; resumed on the next start-up
                if not await self._still_running(job):
                    out.end("interrupted")
                    return await self.next_job(thread_id)
            return await self._finish(graph, job, out)
        except asyncio.CancelledError:
            if thread_id in self._abandoned:
                run_log.warning("this node lost the run's lease: another node continues it")
                return None
            if thread_id not in self._cancelling:
                self._leased.add(thread_id)
                raise  # shutdown: the run stays `running` and resumes from its checkpoint
            run_log.warning("run cancelled")
            if (task := asyncio.current_task()) is not None:
                task.uncancel()  # the cancel stopped this run; the task goes on with the next one
            self._cancelling.discard(thread_id)
            if thread_id in self._rollback:
                self._rollback.discard(thread_id)
                await roll_back(graph, self._store, job.thread_id, job.run_id)
            else:
                out.end("interrupted")
            self._stopped(thread_id)
            return await self.next_job(thread_id)
        except Exception as exc:
            await self._fail(job, exc, out)
            return await self.next_job(thread_id)

    def _stopped(self, thread_id: str) -> None:
        if (stop := self._stops.pop(thread_id, None)) is not None and not stop.done():
            stop.set_result(None)

    async def next_job(self, thread_id: str) -> Job | None:
        """The thread's oldest queued run, now running (the caller holds the thread's lease)."""
        if self.draining:
            return None
        claim = self._claims.pop(thread_id, None) or asyncio.ensure_future(self._start_next(thread_id))
        try:
            run = await asyncio.shield(claim)
        except asyncio.CancelledError:
            # A stop meant for the run that just ended landed while the store handed out this one:
            # the next_job after the stop takes it, instead of leaving it `running` with no task.
            self._claims[thread_id] = claim
            raise
        except Exception:
            logger.warning("could not start the next queued run of %s: a resume scan will", thread_id, exc_info=True)
            return None
        return None if run is None else job_of(run)

    async def _start_next(self, thread_id: str) -> ThreadRun | None:
        run = await self._store.next_run(thread_id)
        if run is not None:
            await forget(self._store, thread_id)  # new input leaves a pending interrupt unanswered
            self._events.status(thread_id, run.workflow, "running", event="started", run_id=run.run_id)
        return run

    async def _finish(self, graph: Any, job: Job, out: Emitter) -> Job | None:
        thread_id, workflow = job.thread_id, job.workflow
        # Through the cache: the polls and the decision that follow read this same state.
        state = await self._states.current(graph, thread_id)
        if state.interrupts:
            pending = [{"interrupt_id": i.id, "value": to_json(i.value)} for i in state.interrupts]  # as pending()
            # Stored before the status flips, so the queue and the deadline timer see every waiting run.
            since = datetime.now(UTC)
            await self._store.put_approvals(
                thread_id, approvals_for(thread_id, workflow, self._workflows[workflow], pending, since)
            )
            if not await self._store.set_status(thread_id, "waiting_approval", expect=["running"]):
                return await self.next_job(thread_id)
            run_log.info("waiting for approval")
            out.end("interrupted")
            queued = bool(await self._store.list_thread_runs(thread_id, limit=1, status="pending"))
            if not queued:
                # Any node may take the decision, and it numbers its lines after the stored ones:
                # store this run's first (bounded), then hand the lease over before announcing it.
                await self._sink.stored(thread_id, self.handover / 2)
                await self._hand_back(thread_id)
            view = await self._store.thread_view(thread_id)  # the rows as stored (a row kept keeps its times)
            stored = view.approvals if view is not None else []
            pending = with_deadlines(pending, {a.interrupt_id: a for a in stored})
            self._events.status(thread_id, workflow, "waiting_approval", pending=pending, run_id=job.run_id)
            # A run queued behind this one goes on (announced after the wait it ends); one queued
            # from now on is started by whoever queues it, once the lease is free.
            return await self.next_job(thread_id) if queued else None
        if await self._store.set_status(thread_id, "completed", expect=["running"]):
            await forget(self._store, thread_id)
            run_log.info("run completed")
            out.end("success")
            self._events.status(thread_id, workflow, "completed", run_id=job.run_id)
        return await self.next_job(thread_id)

    async def _fail(self, job: Job, exc: Exception, out: Emitter) -> None:
        error = f"{type(exc).__name__}: {exc}"
        run_log.error("run failed: %s", error, exc_info=True)
        try:
            if await self._store.set_status(job.thread_id, "failed", expect=["running"], error=error):
                out.emit("error", {"error": type(exc).__name__, "message": str(exc)})
                out.end("error")
                self._events.status(job.thread_id, job.workflow, "failed", error=error, run_id=job.run_id)
        except Exception:
            logger.exception("could not record the failure of run %s", job.thread_id)

    def stop_local(self, thread_id: str, *, rollback: bool = False) -> asyncio.Future[None] | None:
        """Stop the run this node executes on the thread (rolled back: its record and checkpoints
        go); done once it has stopped, before the thread's next queued run starts."""
        task = self._tasks.get(thread_id)
        if task is None:
            return None
        if rollback:
            self._rollback.add(thread_id)
        if thread_id not in self._cancelling:
            self._cancelling.add(thread_id)
            task.cancel()
        return self._stops.setdefault(thread_id, asyncio.get_running_loop().create_future())

    def abandon(self, thread_ids: Collection[str]) -> None:
        """Stop what this node executes without a lease any more (it lapsed while the store was
        away, and another node may have taken the run over): the run is not cancelled."""
        for thread_id in thread_ids:
            task = self._tasks.get(thread_id)
            if task is not None and thread_id in self._holding:
                logger.warning("lease of run %s lost: stopping it here, another node continues it", thread_id)
                self._holding.discard(thread_id)
                self._abandoned.add(thread_id)
                task.cancel()

    async def drain(self, grace: float, reserved: Callable[[], bool]) -> None:
        """Let each running step reach its next checkpoint, then stop; cancel after `grace`."""
        self.draining = True  # from here on the manager reserves nothing, so nothing new starts
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self._tasks or reserved():
            logger.info("waiting up to %.1fs for %d run(s) to reach a checkpoint", grace, len(self._tasks))
        while (self._tasks or reserved()) and (left := deadline - loop.time()) > 0:
            if self._tasks:
                await asyncio.wait(list(self._tasks.values()), timeout=left)
            else:  # a decision or take-over between its claim and its spawn: a store round trip away
                await asyncio.sleep(min(0.01, left))
        await cancel(*self._tasks.values())

    async def release_all(self) -> None:
        """After a drain: hand the stopped runs' leases back so any node may resume them."""
        if self._leased:
            # Whoever resumes them continues the log numbering from the store: store ours first.
            await self._sink.flushed(1.0)
        for thread_id in list(self._leased):
            with contextlib.suppress(Exception):
                await self._store.release(thread_id, self._node())

    async def _still_running(self, job: Job) -> bool:
        """Cancelled elsewhere? A store that cannot answer right now does not stop the run."""
        try:
            run = await self._store.get_run(job.thread_id)
        except StoreUnavailable:
            return True
        if run is None or run.status != "running" or (job.run_id and run.run_id != job.run_id):
            run_log.warning("run stopped: it is %s", run.status if run else "gone")
            return False
        return True


async def roll_back(graph: Any, store: Store, thread_id: str, run_id: str | None) -> None:
    """Forget a stopped run: the thread's state is again what it was before the run began."""
    try:
        async for snap in graph.aget_state_history(thread_config(thread_id)):
            if snap.metadata.get("run_id") != run_id:
                await graph.aupdate_state(snap.config, None)  # a fork of it becomes the latest
                break
        else:
            await graph.checkpointer.adelete_thread(thread_id)
        if run_id:
            await store.delete_thread_run(run_id)
        run_log.warning("run rolled back")
    except Exception:
        logger.exception("could not roll back run %s of %s", run_id, thread_id)


class Emitter:
    """Numbers one run's events as its task makes them (it alone writes them)."""

    def __init__(self, streams: RunStreams, job: Job) -> None:
        self._streams = streams
        self._run_id = job.run_id
        self.seq = job.seq
        self._ended = False

    def emit(self, event: str, data: Any) -> None:
        if self._run_id is not None:
            self.seq += 1
            self._streams.emit(self._run_id, self.seq, event, data)

    def end(self, status: str) -> None:
        if not self._ended:  # once: a stop can land after the run already ended itself
            self._ended = True
            self.emit("end", {"run_id": self._run_id, "status": status})
