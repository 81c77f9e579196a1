"""Execution: the tasks that run LangGraph graphs on this node, one per thread, under its lease."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, KeysView
from datetime import UTC, datetime
from typing import Any

from langchain_core.runnables import RunnableConfig

from app.background import cancel
from app.errors import StoreUnavailable
from app.runs.deadlines import approvals_for, forget
from app.runs.events import Events, to_json, with_deadlines
from app.runs.logsink import LogSink
from app.store import Store
from app.workflows import Workflow

logger = logging.getLogger(__name__)
# Lines a run's own log shows about the run itself (captured by the sink, unlike app.*).
run_log = logging.getLogger("beacon.run")

HANDOVER = 3.0  # seconds a decision waits for the node whose step began the wait to hand its lease over


def thread_config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


class Execution:
    """Runs and resumes threads in tracked tasks. Whoever calls `spawn` has claimed the thread's
    lease; the task keeps it (renewed by the cluster side) and hands it back when the run waits,
    ends or stops."""

    def __init__(
        self,
        store: Store,
        sink: LogSink,
        events: Events,
        graphs: dict[str, Any],
        workflows: dict[str, Workflow],
        node: Callable[[], str],
    ) -> None:
        self._store = store
        self._sink = sink
        self._events = events
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
        }

    def spawn(self, thread_id: str, workflow: str, payload: Any) -> None:
        """Run or resume a thread in a task this node tracks; the caller has claimed its lease,
        which the task renews and hands back when the run waits, ends or stops."""
        if thread_id in self._tasks:
            raise RuntimeError(f"thread {thread_id} already executes on this node")
        task = asyncio.create_task(self._drive(thread_id, workflow, payload), name=f"run:{thread_id}")
        self._tasks[thread_id] = task
        self._holding.add(thread_id)

        def done(t: asyncio.Task[None]) -> None:
            del self._tasks[thread_id]
            self._holding.discard(thread_id)
            self._cancelling.discard(thread_id)
            self._abandoned.discard(thread_id)

        task.add_done_callback(done)

    async def _drive(self, thread_id: str, workflow: str, payload: Any) -> None:
        with self._sink.scope(thread_id):  # this task's own context: every log line here is the run's
            await self._execute(thread_id, workflow, payload)
        if thread_id not in self._leased:
            await self._hand_back(thread_id)

    async def _hand_back(self, thread_id: str) -> None:
        """Give up the thread's lease (no longer renewed from here on); a failure lets it lapse."""
        if thread_id not in self._holding:
            return  # handed back already, or lost
        self._holding.discard(thread_id)
        with contextlib.suppress(Exception):
            await self._store.release(thread_id, self._node())

    async def _execute(self, thread_id: str, workflow: str, payload: Any) -> None:
        graph = self.graphs[workflow]
        try:
            # A resumed run streams the checkpoint it resumes from again: announce each once.
            seen = None
            if not isinstance(payload, dict):
                seen = (await graph.aget_state(thread_config(thread_id))).config["configurable"].get("checkpoint_id")
            async for chunk in graph.astream(
                payload, thread_config(thread_id), stream_mode="checkpoints", durability="sync"
            ):
                checkpoint_id = chunk["config"]["configurable"]["checkpoint_id"]
                if checkpoint_id == seen:
                    continue
                self._events.checkpoint(thread_id, checkpoint_id, chunk["metadata"])
                if self.draining:
                    self._leased.add(thread_id)
                    return  # stopped at a saved checkpoint; resumed on the next start-up
                if not await self._still_running(thread_id):
                    break
            else:
                await self._finish(graph, thread_id, workflow)
        except asyncio.CancelledError:
            if thread_id in self._abandoned:
                run_log.warning("this node lost the run's lease: another node continues it")
                return
            if thread_id not in self._cancelling:
                self._leased.add(thread_id)
                raise  # shutdown: the run stays `running` and resumes from its checkpoint
            run_log.warning("run cancelled")
        except Exception as exc:
            await self._fail(thread_id, workflow, exc)

    async def _finish(self, graph: Any, thread_id: str, workflow: str) -> None:
        state = await graph.aget_state(thread_config(thread_id))
        if state.interrupts:
            pending = [{"interrupt_id": i.id, "value": to_json(i.value)} for i in state.interrupts]  # as pending()
            # Stored before the status flips, so the queue and the deadline timer see every waiting run.
            since = datetime.now(UTC)
            await self._store.put_approvals(
                thread_id, approvals_for(thread_id, workflow, self._workflows[workflow], pending, since)
            )
            if await self._store.set_status(thread_id, "waiting_approval", expect=["running"]):
                run_log.info("waiting for approval")
                # Any node may take the decision, and it numbers its lines after the stored ones:
                # store this run's first (bounded), then hand the lease over before announcing it.
                await self._sink.stored(thread_id, self.handover / 2)
                await self._hand_back(thread_id)
                stored = (await self._store.list_approvals(thread_id=thread_id)).approvals
                pending = with_deadlines(pending, {a.interrupt_id: a for a in stored})
                self._events.status(thread_id, workflow, "waiting_approval", pending=pending)
        elif await self._store.set_status(thread_id, "completed", expect=["running"]):
            await forget(self._store, thread_id)
            run_log.info("run completed")
            self._events.status(thread_id, workflow, "completed")

    async def _fail(self, thread_id: str, workflow: str, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        run_log.error("run failed: %s", error, exc_info=True)
        try:
            if await self._store.set_status(thread_id, "failed", expect=["running"], error=error):
                self._events.status(thread_id, workflow, "failed", error=error)
        except Exception:
            logger.exception("could not record the failure of run %s", thread_id)

    def stop_local(self, thread_id: str) -> asyncio.Task[None] | None:
        task = self._tasks.get(thread_id)
        if task is not None:
            self._cancelling.add(thread_id)
            task.cancel()
        return task

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

    async def _still_running(self, thread_id: str) -> bool:
        """Cancelled elsewhere? A store that cannot answer right now does not stop the run."""
        try:
            run = await self._store.get_run(thread_id)
        except StoreUnavailable:
            return True
        if run is None or run.status != "running":
            run_log.warning("run stopped: it is %s", run.status if run else "gone")
            return False
        return True
