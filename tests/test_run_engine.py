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

from app.errors import NotWaiting, ShuttingDown
from app.names import LOGS_CHANNEL
from app.pubsub import Bus, create_backend
from app.pubsub.outbox import Outbox
from app.runs.logsink import LogSink
from app.runs.manager import RunManager
from app.store import LogLine, Store, open_store
from app.workflows import Workflow

logger = logging.getLogger("app.workflows.engine_test")
entered: Counter[str] = Counter()  # node entries per "thread_id:node"


class State(TypedDict, total=False):
    answer: str
    done: bool


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

    graph = StateGraph(State)
    graph.add_node("ask", ask)
    graph.add_node("finish", finish)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", "finish")
    graph.add_edge("finish", END)
    return Workflow(graph)


def quick() -> Workflow:
    """One node that logs and ends, or fails when asked to."""

    def step(state: dict[str, Any]) -> dict[str, Any]:
        logger.info("step")
        if state.get("fail"):
            raise RuntimeError("asked to fail")
        return {"ok": True}

    graph = StateGraph(dict)
    graph.add_node("step", step)
    graph.add_edge(START, "step")
    graph.add_edge("step", END)
    return Workflow(graph)


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    entered.clear()


class Paused:
    """A store whose named methods can be held at an await: before the call, or after it returns."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._holds: dict[str, tuple[bool, asyncio.Event, asyncio.Event]] = {}

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
            result = await method(*args, **kw)
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
        workflows = {"asking": asking(), "quick": quick()}
        manager = RunManager(store, bus, outbox, saver, workflows, sink, name)  # type: ignore[arg-type]
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
            a.manager.spawn("t3", "asking", None)
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
        assert a.manager.footprint() == {"tasks": 0, "reserved": 0, "locks": 0, "cancelling": 0}


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
