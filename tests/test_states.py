"""The state cache: one rebuild per change of a thread's checkpoint or pending writes, never a stale state."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest
from langgraph._internal import _serde
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from app.runs.jobs import thread_config
from app.runs.states import States


class S(TypedDict, total=False):
    answer: Any
    done: bool


def ask(state: S) -> dict[str, Any]:
    return {"answer": interrupt({"q": 1})}


def finish(state: S) -> dict[str, Any]:
    return {"done": True}


def graph() -> Any:
    g = StateGraph(S).add_sequence([ask, finish])
    g.add_edge(START, "ask")
    g.add_edge("finish", END)
    return g.compile(checkpointer=InMemorySaver())


async def test_a_state_is_rebuilt_only_when_the_thread_moves() -> None:
    app, states = graph(), States(size=2)
    empty = await states.current(app, "t1")
    assert empty.values == {} and empty.next == ()
    await app.ainvoke({}, thread_config("t1"))
    waiting = await states.current(app, "t1")
    assert waiting == await app.aget_state(thread_config("t1")) and waiting.interrupts
    assert await states.current(app, "t1") is waiting  # nothing moved: the same snapshot
    await app.aupdate_state(thread_config("t1"), {"answer": "x"}, as_node="ask")  # a new checkpoint
    assert (await states.current(app, "t1")).values == {"answer": "x"}
    await app.ainvoke(Command(resume="yes"), thread_config("t1"))
    done = await states.current(app, "t1")
    assert done == await app.aget_state(thread_config("t1")) and done.values["done"] is True


async def test_new_pending_writes_are_a_change_and_the_cache_is_bounded() -> None:
    app, states = graph(), States(size=1)
    await app.ainvoke({}, thread_config("t1"))
    before = await states.current(app, "t1")
    config = (await app.aget_state(thread_config("t1"))).config
    await app.checkpointer.aput_writes(config, [("answer", "written")], "some-task")
    after = await states.current(app, "t1")
    assert after is not before and after == await app.aget_state(thread_config("t1"))
    await app.ainvoke({}, thread_config("t2"))
    await states.current(app, "t2")
    assert list(states._kept) == ["t2"]


class CountedSaver(InMemorySaver):
    reads = 0

    async def aget_tuple(self, config: Any) -> Any:
        self.reads += 1
        return await super().aget_tuple(config)


async def test_a_rebuild_starts_from_the_read_that_found_the_change() -> None:
    saver = CountedSaver()
    g = StateGraph(S).add_sequence([ask, finish])
    g.add_edge(START, "ask")
    app, states = g.compile(checkpointer=saver), States()
    await app.ainvoke({}, thread_config("t1"))
    saver.reads = 0
    waiting = await states.current(app, "t1")
    assert saver.reads == 1, "the snapshot was built from a second read"
    assert waiting == await app.aget_state(thread_config("t1")) and waiting.interrupts
    # A graph with its own config: aget_state merges it first, so it is asked as it is.
    configured = app.with_config({"configurable": {"user": "x"}})
    saver.reads = 0
    again = await States().current(configured, "t1")
    assert saver.reads == 2 and again == waiting


async def test_under_strict_msgpack_the_one_read_decodes_as_aget_state_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """LANGGRAPH_STRICT_MSGPACK: the compiled graph's saver is the allowlisted one, the one aget_state reads with."""
    monkeypatch.setattr(_serde, "STRICT_MSGPACK_ENABLED", True)
    app = graph()
    assert app._state_checkpointer(thread_config("t1")) is app.checkpointer
    await app.ainvoke({}, thread_config("t1"))
    state = await States().current(app, "t1")
    assert state.interrupts and state == await app.aget_state(thread_config("t1"))
