"""The run engine under the races it claims to survive, each made deterministic by a pause
injected into the store at the await where the race lives; and its maps stay flat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import orjson
import pytest
from conftest import eventually, make_config, running_beacon
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from app.errors import NotWaiting, ShuttingDown, StaleInterrupt
from app.names import LOGS_CHANNEL
from app.pubsub import Bus, create_backend
from app.pubsub.outbox import Outbox
from app.runs.jobs import Job, thread_config
from app.runs.logsink import LogSink
from app.runs.manager import RunManager, new_run
from app.runs.streams import RunStreams
from app.services import open_services
from app.store import LogLine, Store, open_store
from app.workflows import Workflow

logger = logging.getLogger("app.workflows.engine_test")
entered: Counter[str] = Counter()  # node entries per "thread_id:node"


class State(TypedDict, total=False):
    answer: str
    done: bool


def chain(state: type, *nodes: Any) -> Workflow:
    """A workflow running `nodes` one after another."""
    graph = StateGraph(state)
    names = [node.__name__ for node in nodes]
    for node in nodes:
        graph.add_node(node.__name__, node)
    for before, after in zip([START, *names], [*names, END], strict=True):
        graph.add_edge(before, after)
    return Workflow(graph)


def asking() -> Workflow:
    """ask (logs, interrupts) -> finish; counts every entry into each node."""

    def ask(state: State, config: RunnableConfig) -> dict[str, Any]:
        entered[f"{config['configurable']['thread_id']}:ask"] += 1
        logger.info("asking")
        answer = interrupt({"question": "go?"})
        return {"answer": answer["decision"]}

    def finish(state: State, config: RunnableConfig) -> dict[str, Any]:
        entered[f"{config['configurable']['thread_id']}:finish"] += 1
        logger.info("finishing")
        return {"done": True}

    return chain(State, ask, finish)


def twice() -> Workflow:
    """Two approvals in a row: first, then second."""

    def first(state: State) -> dict[str, Any]:
        interrupt({"question": "first?"})
        return {}

    def second(state: State) -> dict[str, Any]:
        interrupt({"question": "second?"})
        return {"done": True}

    return chain(State, first, second)


def blocking() -> Workflow:
    """One node that waits for the test's `go` event (a long step)."""

    async def step(state: dict[str, Any]) -> dict[str, Any]:
        logger.info("working")
        await go.wait()
        return {"ok": True}

    return chain(dict, step)


go = asyncio.Event()


def quick() -> Workflow:
    """One node that logs and ends, or fails when asked to."""

    def step(state: dict[str, Any]) -> dict[str, Any]:
        logger.info("step")
        if state.get("fail"):
            raise RuntimeError("asked to fail")
        return {"ok": True}

    return chain(dict, step)


class Marked(TypedDict, total=False):
    mark: str
    ok: bool


def marking() -> Workflow:
    """One node; the state keeps the input's `mark`, so which input a run started from shows."""

    def step(state: Marked) -> dict[str, Any]:
        return {"ok": True}

    return chain(Marked, step)


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    entered.clear()
    go.clear()


class Paused:
    """A store whose named methods can be held at an await: before the call, or after it returns."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._holds: dict[str, tuple[bool, asyncio.Event, asyncio.Event]] = {}
        self.results: dict[str, Any] = {}  # what each held call returned

    def hold(self, name: str, *, after: bool = False) -> tuple[asyncio.Event, asyncio.Event]:
        """The next call to `name` sets the first event and waits for the second."""
        reached, release = asyncio.Event(), asyncio.Event()
        self._holds[name] = (after, reached, release)
        return reached, release

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name not in self._holds:
            return method

        async def held(*args: Any, **kw: Any) -> Any:
            after, reached, release = self._holds.pop(name)
            if not after:
                reached.set()
                await release.wait()
            result = self.results[name] = await method(*args, **kw)
            if after:
                reached.set()
                await release.wait()
            return result

        return held


@dataclass
class Node:
    manager: RunManager
    store: Paused
    sink: LogSink
    bus: Bus


@contextlib.asynccontextmanager
async def node(tmp_path: Path, name: str) -> AsyncIterator[Node]:
    """A run manager of real parts (SQLite store and checkpointer in tmp_path, memory bus)."""
    async with contextlib.AsyncExitStack() as stack:
        store = Paused(await stack.enter_async_context(open_store(f"sqlite:///{tmp_path}/beacon.sqlite")))
        saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")))
        await saver.setup()
        bus = await stack.enter_async_context(Bus(create_backend("memory://"), 1000))
        outbox = await stack.enter_async_context(Outbox(bus).running())
        sink = await stack.enter_async_context(LogSink(store, outbox, 4096).installed())  # type: ignore[arg-type]
        workflows = {
            "asking": asking(), "quick": quick(), "twice": twice(), "blocking": blocking(), "marking": marking()
        }
        streams = await stack.enter_async_context(RunStreams(store, outbox).running())  # type: ignore[arg-type]
        manager = RunManager(store, bus, outbox, saver, workflows, sink, streams, name)  # type: ignore[arg-type]
        yield Node(manager, store, sink, bus)
        await manager.drain(2)


async def settled(n: Node, thread_id: str, status: str) -> None:
    async def check() -> bool:
        run = await n.store.get_run(thread_id)
        return run is not None and run.status == status and thread_id not in n.manager.executing

    await eventually(check, 20, 0.02, f"{thread_id} never settled as {status}")


async def waiting(n: Node, thread_id: str) -> None:
    await n.manager.start("asking", {}, thread_id)
    await settled(n, thread_id, "waiting_approval")


# -- one thread never executes twice ------------------------------------------------------


@pytest.mark.parametrize("nodes", ["one node", "two nodes"])
async def test_a_decision_in_flight_is_not_taken_over(tmp_path: Path, nodes: str) -> None:
    """decide() paused while it records the decision: a resume scan (here or elsewhere) keeps off."""
    async with node(tmp_path, "a:1") as a, node(tmp_path, "b:2") as b:
        scanner = a if nodes == "one node" else b
        await waiting(a, "t1")
        reached, release = a.store.hold("record_decision")
        decision = asyncio.ensure_future(a.manager.decide("t1", "approve"))
        await asyncio.wait_for(reached.wait(), 10)
        resumed = await scanner.manager.cluster.resume_interrupted()
        release.set()
        await decision
        await settled(a, "t1", "completed")
        await settled(scanner, "t1", "completed")
        assert resumed == 0
        assert (entered["t1:ask"], entered["t1:finish"]) == (2, 1)  # first run, then the one resume


@pytest.mark.parametrize("nodes", ["one node", "two nodes"])
async def test_a_start_in_flight_is_not_taken_over(tmp_path: Path, nodes: str) -> None:
    """start() paused right after the run row exists (status running): the scan keeps off."""
    async with node(tmp_path, "a:1") as a, node(tmp_path, "b:2") as b:
        scanner = a if nodes == "one node" else b
        reached, release = a.store.hold("create_run", after=True)
        start = asyncio.ensure_future(a.manager.start("asking", {}, "t2"))
        await asyncio.wait_for(reached.wait(), 10)
        resumed = await scanner.manager.cluster.resume_interrupted()
        release.set()
        await start
        await settled(a, "t2", "waiting_approval")
        assert resumed == 0
        assert entered["t2:ask"] == 1


async def test_a_second_spawn_for_a_thread_is_refused(tmp_path: Path) -> None:
    async with node(tmp_path, "a:1") as a:
        await a.manager.start("asking", {}, "t3")  # returns with the run's task created, not yet run
        with pytest.raises(RuntimeError, match="already executes"):
            a.manager.spawn(Job("t3", "asking", None))
        await settled(a, "t3", "waiting_approval")
        assert entered["t3:ask"] == 1


async def test_a_decision_right_after_the_wait_began_is_accepted(tmp_path: Path) -> None:
    """The run's task is still handing its lease back when the approval comes: wait, then win."""
    async with node(tmp_path, "a:1") as a:
        reached, release = a.store.hold("release")
        await a.manager.start("asking", {}, "t4")
        await asyncio.wait_for(reached.wait(), 10)  # status is waiting_approval, the task not done
        decision = asyncio.ensure_future(a.manager.decide("t4", "approve"))
        await asyncio.sleep(0.05)
        assert not decision.done()  # it waits for the finishing task ...
        release.set()
        await decision  # ... and is not refused as "someone else already decided"
        await settled(a, "t4", "completed")
        assert entered["t4:finish"] == 1


async def test_a_starting_node_refuses_runs_while_shutting_down(tmp_path: Path) -> None:
    async with node(tmp_path, "a:1") as a:
        await a.manager.drain(0)
        with pytest.raises(ShuttingDown):
            await a.manager.start("quick", {})


@pytest.mark.parametrize("nodes", ["one node", "two nodes"])
async def test_a_run_that_began_to_wait_after_the_listing_is_not_taken_over(tmp_path: Path, nodes: str) -> None:
    """The scan lists the run as running; before it claims, the run waits and hands its lease back."""
    async with node(tmp_path, "a:1") as a, node(tmp_path, "b:2") as b:
        scanner = a if nodes == "one node" else b
        stored, store = a.store.hold("put_approvals")  # the run's step is about to wait
        await a.manager.start("asking", {}, "t7")
        await asyncio.wait_for(stored.wait(), 10)
        listed, resume_scan = scanner.store.hold("list_runs", after=True)
        scan = asyncio.ensure_future(scanner.manager.cluster.resume_interrupted())
        await asyncio.wait_for(listed.wait(), 10)  # t7 is on the page as running
        store.set()
        await settled(a, "t7", "waiting_approval")  # its lease is free again
        resume_scan.set()
        assert await scan == 0
        await settled(scanner, "t7", "waiting_approval")
        assert entered["t7:ask"] == 1


async def test_nothing_starts_while_draining_and_drain_waits_for_a_decision_in_flight(tmp_path: Path) -> None:
    async with node(tmp_path, "a:1") as a:
        await waiting(a, "t8")
        await waiting(a, "t8b")
        orphan = await a.store.create_run("t8c", "quick", {})  # running, and no node holds it
        reached, release = a.store.hold("record_decision")
        decision = asyncio.ensure_future(a.manager.decide("t8", "approve"))
        await asyncio.wait_for(reached.wait(), 10)
        drain = asyncio.ensure_future(a.manager.drain(30))
        await waiting_for(lambda: a.manager.draining)
        with pytest.raises(ShuttingDown):
            await a.manager.decide("t8b", "approve")
        assert not await a.manager.take_over(orphan)
        assert not drain.done()  # the decision in flight is still to spawn its run
        release.set()
        await decision
        await drain
        assert a.manager.footprint()["tasks"] == 0


async def test_a_run_stopped_before_its_first_checkpoint_is_taken_over_with_its_input(tmp_path: Path) -> None:
    async with node(tmp_path, "a:1") as a:
        await a.store.create_run("t14", "quick", {"fail": False})  # its node died before the first save
        assert await a.manager.cluster.resume_interrupted() == 1
        await settled(a, "t14", "completed")


async def test_a_later_run_claimed_but_never_started_is_taken_over_with_its_input(tmp_path: Path) -> None:
    """The store handed out a thread's next run, but no step of it was saved (its node died, or a stop meant
    for the run before landed in between): the thread's last checkpoint is the earlier run's, and a
    take-over must start the run as it was asked, not continue that checkpoint (its input would be lost)."""
    async with node(tmp_path, "a:1") as a:
        await a.store.create_thread("t20", {})
        await a.manager.submit("t20", "marking", {"input": {"mark": "first"}})
        await settled(a, "t20", "completed")
        second = new_run("t20", "marking", {"input": {"mark": "second"}}, "pending")
        await a.store.add_run(second, exclusive=False)
        claimed = await a.store.next_run("t20")  # what the interrupted next_job left behind: `running`, no task
        assert claimed is not None and claimed.run_id == second.run_id
        assert await a.manager.cluster.resume_interrupted() == 1
        await settled(a, "t20", "completed")
        state = await a.manager.execution.graphs["marking"].aget_state(thread_config("t20"))
        assert state.values["mark"] == "second" and state.metadata["run_id"] == second.run_id


async def test_a_stop_that_lands_while_the_store_hands_out_the_next_run_does_not_strand_it(tmp_path: Path) -> None:
    """A cancel meant for the run that just ended reaches its task while the store is handing out the
    thread's next run: that run still starts here at once (not `running` with nothing executing it)."""
    async with node(tmp_path, "a:1") as a:
        await a.store.create_thread("t21", {})
        await a.manager.submit("t21", "blocking", {"input": {}})
        await eventually(lambda: "t21" in a.manager.executing, 10, 0.01, "the first run never started")
        await a.manager.submit("t21", "marking", {"input": {"mark": "second"}}, multitask_strategy="enqueue")
        reached, release = a.store.hold("next_run", after=True)
        go.set()  # the first run ends; its task asks the store for the next one, which is handed out...
        await asyncio.wait_for(reached.wait(), 10)
        a.manager.execution.stop_local("t21")  # ...and a stop meant for the first run lands meanwhile
        release.set()
        await settled(a, "t21", "completed")  # no resume scan runs here: the same task started it
        state = await a.manager.execution.graphs["marking"].aget_state(thread_config("t21"))
        assert state.values["mark"] == "second"


async def waiting_for(check: Any) -> None:
    await eventually(check, 10, 0.01)


async def test_a_node_whose_lease_lapsed_stops_the_run_and_another_continues(tmp_path: Path) -> None:
    async with node(tmp_path, "a:1") as a, node(tmp_path, "b:2") as b:
        await a.manager.start("blocking", {}, "t9")
        await waiting_for(lambda: "t9" in a.manager.holding)
        assert await a.store.renew("a:1", ["t9"], -1) == {"t9"}  # as if the store was away 15 s
        assert await b.store.claim("t9", "b:2", 15)  # and b's scan claimed it first
        await a.manager.cluster.renew_leases()
        await waiting_for(lambda: "t9" not in a.manager.executing)
        assert (await a.store.get_run("t9")).status == "running"  # type: ignore[union-attr]  # not cancelled
        await b.store.release("t9", "b:2")
        assert await b.manager.cluster.resume_interrupted() == 1
        go.set()
        await settled(b, "t9", "completed")
        lines = [ln["text"] for ln in await b.store.get_logs("t9")]
        assert "this node lost the run's lease: another node continues it" in lines


async def test_a_decision_elsewhere_waits_for_the_lease_to_be_handed_over(tmp_path: Path) -> None:
    """The run waits on a; a is still releasing its lease when b takes the decision: b waits, then wins."""
    async with node(tmp_path, "a:1") as a, node(tmp_path, "b:2") as b:
        reached, release = a.store.hold("release")
        await a.manager.start("asking", {}, "t10")
        await asyncio.wait_for(reached.wait(), 10)  # status waiting_approval, lease not yet released
        refused, retry = b.store.hold("claim", after=True)
        decision = asyncio.ensure_future(b.manager.decide("t10", "approve"))
        await asyncio.wait_for(refused.wait(), 10)
        assert b.store.results["claim"] is False  # a still holds the lease
        release.set()
        retry.set()
        await decision  # not "someone else already decided"
        await settled(b, "t10", "completed")
        assert entered["t10:finish"] == 1


async def test_a_thread_is_handed_to_another_node_only_once_its_lines_are_stored(tmp_path: Path) -> None:
    """a's lines are not stored yet when its run begins to wait: it keeps the lease until they are,
    so b, deciding meanwhile, numbers its lines after them."""
    async with node(tmp_path, "a:1") as a, node(tmp_path, "b:2") as b:
        for n in (a, b):
            n.manager.execution.handover = 60.0  # bounds far beyond this test's own steps
        reached, release = a.store.hold("append_logs")
        await a.manager.start("asking", {}, "t13")
        await asyncio.wait_for(reached.wait(), 10)

        async def waits() -> bool:
            run = await b.store.get_run("t13")
            return run is not None and run.status == "waiting_approval"

        await eventually(waits, 10, 0.01)
        refused, retry = b.store.hold("claim", after=True)
        decision = asyncio.ensure_future(b.manager.decide("t13", "approve"))
        await asyncio.wait_for(refused.wait(), 10)
        assert b.store.results["claim"] is False  # a keeps the lease while its lines are unstored
        release.set()
        retry.set()
        await decision
        await settled(b, "t13", "completed")
        await a.sink.wait_flushed()
        await b.sink.wait_flushed()
        lines = await b.store.get_logs("t13")
        assert [ln["seq"] for ln in lines] == list(range(1, len(lines) + 1))
        texts = ["asking", "waiting for approval", "asking", "finishing", "run completed"]
        assert [ln["text"] for ln in lines] == texts


async def test_a_decision_for_an_interrupt_that_moved_on_meanwhile_is_refused(tmp_path: Path) -> None:
    """a reads the pending interrupt, then waits for the lease; b decides it and the run waits again."""
    async with node(tmp_path, "a:1") as a, node(tmp_path, "b:2") as b:
        await a.manager.start("twice", {}, "t11")
        await settled(a, "t11", "waiting_approval")
        [first] = await a.manager.pending(await a.store.get_run("t11"))  # type: ignore[arg-type]
        reached, release = a.store.hold("claim")
        late = asyncio.ensure_future(a.manager.decide("t11", "reject", interrupt_id=first["interrupt_id"]))
        await asyncio.wait_for(reached.wait(), 10)
        await b.manager.decide("t11", "approve", interrupt_id=first["interrupt_id"])
        await settled(b, "t11", "waiting_approval")  # now on the second approval
        release.set()
        with pytest.raises(StaleInterrupt):
            await late
        decisions = await a.store.decisions("t11")
        assert [(d.interrupt_id, d.decision) for d in decisions] == [(first["interrupt_id"], "approve")]


async def test_the_manager_starts_its_background_only_once_serve_has_named_the_node(tmp_path: Path) -> None:
    async with open_services(make_config(tmp_path)) as services:
        names = {task.get_name() for task in asyncio.all_tasks()}
        assert not names & {"runs_deadlines", "runs_supervisor", "runs_control"}, names
        assert services.runs is not None


# -- log numbering ------------------------------------------------------------------------


async def test_lines_logged_while_the_position_is_read_are_numbered_after_it(tmp_path: Path) -> None:
    """Another node logged 1-3 on the thread; this node's lines made while it reads that get 4, 5, ..."""
    async with node(tmp_path, "a:1") as a:
        await a.store.append_logs([_line("t5", seq, "elsewhere") for seq in (1, 2, 3)])
        published: list[int] = []

        async def listen() -> None:
            async with a.bus.subscribe(LOGS_CHANNEL) as queue:
                async for message in queue:
                    published.extend(line["seq"] for line in orjson.loads(message.data))

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.05)
        reached, release = a.store.hold("last_seq")
        with a.sink.scope("t5"):
            logger.info("first")
        await asyncio.wait_for(reached.wait(), 10)
        with a.sink.scope("t5"):  # a second writer on the thread (a deadline's note) meanwhile
            logger.info("second")
        release.set()
        await eventually(lambda: len(published) == 2, 10)
        listener.cancel()
        stored = await a.store.get_logs("t5")
        assert [(ln["seq"], ln["text"]) for ln in stored] == [
            (1, "elsewhere"),
            (2, "elsewhere"),
            (3, "elsewhere"),
            (4, "first"),
            (5, "second"),
        ]
        assert published == [4, 5]


async def test_a_thread_continued_elsewhere_is_numbered_from_the_store(tmp_path: Path) -> None:
    """This node logged 1-2, another node 3-4 meanwhile; this node's next scope continues at 5."""
    async with node(tmp_path, "a:1") as a:
        for text in ("one", "two"):
            with a.sink.scope("t6"):
                logger.info(text)
        await a.sink.wait_flushed()
        await a.store.append_logs([_line("t6", seq, "elsewhere") for seq in (3, 4)])
        with a.sink.scope("t6"):
            logger.info("five")
        await a.sink.wait_flushed()
        assert a.sink.tracked == 0
        assert [ln["seq"] for ln in await a.store.get_logs("t6")] == [1, 2, 3, 4, 5]


def _line(thread_id: str, seq: int, text: str) -> LogLine:
    return LogLine(text=text, thread_id=thread_id, level="INFO", timestamp="2026-12-01T00:00:00+00:00", seq=seq)


# -- nothing grows ------------------------------------------------------------------------


async def test_stored_waits_for_a_threads_lines(tmp_path: Path) -> None:
    async with node(tmp_path, "a:1") as a:
        reached, release = a.store.hold("append_logs")
        with a.sink.scope("t12"):
            logger.info("held")
        await asyncio.wait_for(reached.wait(), 10)
        assert not await a.sink.stored("t12", 0.05)
        assert await a.sink.stored("other", 0.05)
        waiter = asyncio.ensure_future(a.sink.stored("t12", 10))
        release.set()
        assert await waiter


async def test_ten_thousand_threads_leave_the_sink_empty(tmp_path: Path) -> None:
    async with node(tmp_path, "a:1") as a:
        for i in range(10_000):
            with a.sink.scope(f"s{i}"):
                logger.info("line")
        await eventually(lambda: a.sink.tracked == 0 and a.sink.written == 10_000, 60)


async def test_finished_runs_leave_the_manager_empty(tmp_path: Path) -> None:
    """Completed, failed, approved, rejected, cancelled while waiting and refused decisions."""
    async with node(tmp_path, "a:1") as a:
        for i in range(25):
            await a.manager.start("quick", {"fail": i % 2 == 1}, f"q{i}")
            await waiting(a, f"w{i}")
            if i % 3 == 0:
                await a.manager.cancel(f"w{i}")
                with pytest.raises(NotWaiting):
                    await a.manager.decide(f"w{i}", "approve")
            else:
                await a.manager.decide(f"w{i}", "approve" if i % 3 == 1 else "reject")
        for i in range(25):
            await settled(a, f"q{i}", "failed" if i % 2 else "completed")
            await settled(a, f"w{i}", "cancelled" if i % 3 == 0 else "completed")
        await eventually(lambda: a.sink.tracked == 0, 10)
        footprint = a.manager.footprint()
        assert {"tasks", "reserved", "locks", "cancelling", "holding", "abandoned"} <= footprint.keys()
        assert set(footprint.values()) == {0}, footprint


@pytest.mark.long
@pytest.mark.timeout(900)
async def test_ten_thousand_finished_runs_leave_every_map_empty(tmp_path: Path) -> None:
    """A week of runs in miniature: 10,000 runs completed, failed, approved and cancelled while waiting."""
    async with node(tmp_path, "a:1") as a:
        for i in range(10_000):
            thread_id = f"r{i}"
            if i % 10 == 0:  # waits, then is cancelled (this once leaked a lock) or decided
                await waiting(a, thread_id)
                if i % 20 == 0:
                    await a.manager.cancel(thread_id)
                else:
                    await a.manager.decide(thread_id, "approve")
            else:
                await a.manager.start("quick", {"fail": i % 2 == 1}, thread_id)
            if len(a.manager.executing) >= 50:  # bounded concurrency
                await asyncio.wait([t for t in (a.manager.task(x) for x in a.manager.executing) if t])
        await waiting_for(lambda: not a.manager.executing)
        await a.sink.wait_flushed()
        assert a.sink.written >= 10_000 and a.sink.tracked == 0
        assert set(a.manager.footprint().values()) == {0}, a.manager.footprint()
        assert (await a.store.list_runs(status="running", limit=1)).runs == []


# -- capture belongs to the Beacon that runs the thread ------------------------------------


async def test_two_beacons_in_one_process_keep_their_own_lines(tmp_path: Path) -> None:
    async with (
        running_beacon(make_config(tmp_path / "a")) as a,
        running_beacon(make_config(tmp_path / "b")) as b,
    ):
        thread_id = await a.start("review", {"topic": "mine", "delay": 0})
        await a.wait_status(thread_id, "waiting_approval")
        await a.running.services.sink.wait_flushed()  # type: ignore[union-attr]
        await b.running.services.sink.wait_flushed()  # type: ignore[union-attr]
        lines = (await a.call("GET", f"/admin/runs/{thread_id}/logs"))[1]["lines"]
        assert lines and [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
        store_b = b.running.services.store
        assert await store_b.get_logs(thread_id) == []
