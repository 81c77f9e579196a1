"""A forced exit (a second Ctrl+C) still stores the log lines a run has already logged."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import aiohttp
from test_restart import BeaconProcess, beacon_proc  # noqa: F401 (a fixture)

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
