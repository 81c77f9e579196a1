"""The Postgres checkpointer that decodes in place reads and writes exactly what LangGraph's own does."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from servers import PostgresServer

from app.runs.checkpoints import open_checkpointer
from app.runs.postgres_saver import WRITTEN_AGAINST, InPlacePostgresSaver, usable


class State(TypedDict, total=False):
    topic: str
    notes: list[str]  # not a primitive: stored as a blob
    answer: Any


def graph(saver: Any) -> Any:
    def ask(state: State) -> State:
        return {"answer": interrupt({"question": state["topic"], "nested": [1, 2.5, None]})}

    builder = StateGraph(State)
    builder.add_node("note", lambda s: {"notes": [*s.get("notes", []), "noted ✓"]})
    builder.add_node("ask", ask)
    builder.add_edge(START, "note")
    builder.add_edge("note", "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


def test_it_is_used_with_the_version_it_was_written_against() -> None:
    assert usable() is None, f"{usable()}: compare the saver's _load_checkpoint_tuple and aput_writes, then update"
    print("in-place Postgres saver written against langgraph-checkpoint-postgres", WRITTEN_AGAINST)


async def test_reads_and_writes_match_the_stock_saver_and_stay_on_the_loop(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.create_database()
    threads: set[str] = set()
    real = asyncio.to_thread

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        threads.add(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    async with open_checkpointer(url) as saver:
        assert type(saver) is InPlacePostgresSaver
        stock = AsyncPostgresSaver(saver.conn, serde=saver.serde)
        ours = graph(saver)
        config = {"configurable": {"thread_id": "t1"}}
        with monkeypatch.context() as patch:
            patch.setattr(asyncio, "to_thread", counted)
            await ours.ainvoke({"topic": "ship it?"}, config)  # stops at the interrupt: pending writes
            waiting = await saver.aget_tuple(config)
        assert waiting is not None and waiting.pending_writes
        assert waiting == await stock.aget_tuple(config)
        assert "_load_writes" not in threads and "_dump_writes" not in threads, threads

        state = await ours.aget_state(config)
        assert [i.value for i in state.interrupts] == [{"question": "ship it?", "nested": [1, 2.5, None]}]
        assert state == await graph(stock).aget_state(config)

        await ours.ainvoke(Command(resume={"decision": "approve"}), config)
        done = await saver.aget_tuple(config)
        assert done == await stock.aget_tuple(config)
        assert done is not None and done.checkpoint["channel_values"]["answer"] == {"decision": "approve"}
        assert done.checkpoint["channel_values"]["notes"] == ["noted ✓"]
        history = [t async for t in saver.alist(config)]
        assert history == [t async for t in stock.alist(config)] and len(history) >= 4
