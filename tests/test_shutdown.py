"""A forced exit (a second Ctrl+C, the shutdown deadline) still stores the log lines already logged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from conftest import eventually, make_config
from test_restart import BeaconProcess, beacon_proc  # noqa: F401 (a fixture)
from test_run_engine import Paused

from app.pubsub import Bus, create_backend
from app.pubsub.outbox import Outbox
from app.runs.logsink import LogSink
from app.server import serve
from app.store import open_store

LINES = 5000  # five of the SQLite store's 1,000-row statements, each awaited in turn

# Logs LINES lines, then presses Ctrl+C twice, all in one step of the event loop: the sink's
# flusher has not run yet, so every line is still in its buffer when the second signal is handled.
BURST = f"""
import asyncio, logging, signal
from typing import TypedDict
from langgraph.graph import END, START, StateGraph

logger = logging.getLogger("burst")
logger.setLevel(logging.DEBUG)  # DEBUG lines reach the sink (it takes every level), not the console


class State(TypedDict, total=False):
    n: int


async def burst(state: State) -> State:
    for i in range(1, {LINES} + 1):
        logger.debug("line %d", i)
    signal.raise_signal(signal.SIGINT)
    signal.raise_signal(signal.SIGINT)
    await asyncio.Event().wait()  # never returns: only the forced exit ends the process
    return state


def build() -> StateGraph:
    graph = StateGraph(State)
    graph.add_node("burst", burst)
    graph.add_edge(START, "burst")
    graph.add_edge("burst", END)
    return graph
"""


async def test_second_ctrl_c_stores_what_was_logged(beacon_proc: BeaconProcess, tmp_path: Path) -> None:  # noqa: F811
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    (workflows / "burst.py").write_text(BURST)
    await beacon_proc.launch(env={"PYTHONPATH": str(workflows), "BEACON_WORKFLOWS_BURST": "burst:build"})

    thread_id = "burst-1"
    with contextlib.suppress(aiohttp.ClientError):  # the process may be gone before it answers
        await beacon_proc.start("burst", thread_id=thread_id)
    assert await beacon_proc.wait_exit(10) == 1
    assert "second SIGINT: exiting now" in beacon_proc.outputs[-1].read_text()

    with contextlib.closing(sqlite3.connect(tmp_path / "b.sqlite")) as db:
        texts = [text for (text,) in db.execute("SELECT text FROM logs WHERE thread_id = ? ORDER BY seq", (thread_id,))]
    assert texts == [f"line {i}" for i in range(1, LINES + 1)], f"{len(texts)} of {LINES} lines stored"


@dataclass
class Held:
    """A real log sink holding one line it cannot store until `release` is set."""

    sink: LogSink
    release: asyncio.Event


@pytest.fixture
async def held(tmp_path: Path) -> AsyncIterator[Held]:
    async with contextlib.AsyncExitStack() as stack:
        store = Paused(await stack.enter_async_context(open_store(f"sqlite:///{tmp_path}/held.sqlite")))
        bus = await stack.enter_async_context(Bus(create_backend("memory://"), 100))
        outbox = await stack.enter_async_context(Outbox(bus).running())
        sink = await stack.enter_async_context(LogSink(store, outbox, 4096).installed())  # type: ignore[arg-type]
        reached, release = store.hold("append_logs")
        with sink.scope("t1"):
            logging.getLogger("held").warning("a line")
        await asyncio.wait_for(reached.wait(), 10)
        try:
            yield Held(sink, release)
        finally:
            release.set()


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The codes run.py passes to os._exit, instead of exiting."""
    codes: list[int] = []
    monkeypatch.setattr(os, "_exit", codes.append)
    return codes


async def test_deadline_exits_once_the_sink_has_stored_its_lines(exits: list[int], held: Held) -> None:
    import run

    shutdown = run.Shutdown()
    shutdown.sink = held.sink
    shutdown.on_deadline()
    for _ in range(10):
        await asyncio.sleep(0)
    assert exits == []
    held.release.set()
    await eventually(lambda: exits == [1], 1)


async def test_forced_exit_waits_a_second_at_most(
    exits: list[int], held: Held, monkeypatch: pytest.MonkeyPatch
) -> None:
    import run

    monkeypatch.setattr(run, "FLUSH_SECONDS", 0.05)
    shutdown = run.Shutdown()
    shutdown.sink = held.sink  # never stores, as when the store is down
    shutdown.on_signal("SIGINT")
    assert shutdown.requested.is_set() and exits == []
    shutdown.on_signal("SIGINT")
    await eventually(lambda: exits == [1], 1)


async def test_a_third_signal_exits_without_waiting(exits: list[int], held: Held) -> None:
    import run

    shutdown = run.Shutdown()
    shutdown.sink = held.sink
    for _ in range(3):
        shutdown.on_signal("SIGINT")
    assert exits == [1]
    held.release.set()  # the second signal's exit, still waiting, ends too
    await eventually(lambda: exits == [1, 1], 1)


async def test_a_quiet_shutdown_cleans_up_both_listeners(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # No client ever connected: python-engineio's disconnect() of no sockets raised ValueError, which
    # ended the realtime app's shutdown before its cleanup (its background tasks were left running).
    async with serve(make_config(tmp_path)) as running:
        assert running.realtime_port and running.rest_port
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    leftover = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not [name for name in leftover if name.startswith(("bridge_", "fanout_"))], leftover
