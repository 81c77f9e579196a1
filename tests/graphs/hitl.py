"""Graphs the Agent API tests run, loaded from tests/graphs/langgraph.json as a user's would be."""

from __future__ import annotations

import asyncio
import logging
import operator
from typing import Annotated, Any

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict  # pydantic derives JSON schemas from these on Python 3.11

logger = logging.getLogger("tests.graphs.hitl")


class Chat(TypedDict, total=False):
    messages: Annotated[list[str], operator.add]
    delay: float


async def think(state: Chat) -> dict[str, Any]:
    get_stream_writer()({"thinking": len(state.get("messages", []))})
    logger.info("thinking about %d messages", len(state.get("messages", [])))
    await asyncio.sleep(state.get("delay") or 0)
    return {"messages": [f"draft {len(state.get('messages', []))}"]}


async def ask(state: Chat) -> dict[str, Any]:
    answer = interrupt({"question": "ok?", "draft": state["messages"][-1]})
    return {"messages": [f"answer {answer!r}"]}


def _chat() -> StateGraph[Any]:
    g = StateGraph(Chat)
    g.add_node("think", think)
    g.add_node("ask", ask)
    g.add_edge(START, "think")
    g.add_edge("think", "ask")
    g.add_edge("ask", END)
    return g


chat = _chat().compile()


class Pair(TypedDict, total=False):
    messages: Annotated[list[str], operator.add]


async def left(state: Pair) -> dict[str, Any]:
    return {"messages": [f"left {interrupt('left?')!r}"]}


async def right(state: Pair) -> dict[str, Any]:
    return {"messages": [f"right {interrupt('right?')!r}"]}


def pair() -> StateGraph[Any]:
    g = StateGraph(Pair)
    g.add_node("left", left)
    g.add_node("right", right)
    g.add_edge(START, "left")
    g.add_edge(START, "right")
    g.add_edge("left", END)
    g.add_edge("right", END)
    return g


async def slow_step(state: Chat) -> dict[str, Any]:
    await asyncio.sleep(state.get("delay") or 0)
    return {"messages": [f"step {len(state.get('messages', []))}"]}


def slow() -> StateGraph[Any]:
    g = StateGraph(Chat)
    g.add_node("step", slow_step)
    g.add_edge(START, "step")
    g.add_edge("step", END)
    return g


class Ticks(TypedDict, total=False):
    ticks: Annotated[list[int], operator.add]
    steps: int
    delay: float


async def tick(state: Ticks) -> dict[str, Any]:
    """One of `steps` steps, `delay` s each: a custom event, then the step's updates and values."""
    n = len(state.get("ticks", []))
    get_stream_writer()({"tick": n})
    await asyncio.sleep(state.get("delay") or 0)
    return {"ticks": [n]}


def _more(state: Ticks) -> str:
    return "tick" if len(state.get("ticks", [])) < (state.get("steps") or 1) else END


def ticks() -> StateGraph[Any]:
    """Events spread over time: for streams cut and joined mid-run."""
    g = StateGraph(Ticks)
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", _more, ["tick", END])
    return g


async def explode(state: Chat) -> dict[str, Any]:
    raise ValueError("kaboom")


def boom() -> StateGraph[Any]:
    """A graph that fails in its first step."""
    g = StateGraph(Chat)
    g.add_node("explode", explode)
    g.add_edge(START, "explode")
    g.add_edge("explode", END)
    return g


async def inner_step(state: Chat) -> dict[str, Any]:
    return {"messages": ["inner"]}


def nested() -> StateGraph[Any]:
    """A graph whose one node is a compiled subgraph: its events carry a namespace."""
    inner = StateGraph(Chat)
    inner.add_node("inner_step", inner_step)
    inner.add_edge(START, "inner_step")
    inner.add_edge("inner_step", END)
    g = StateGraph(Chat)
    g.add_node("child", inner.compile())
    g.add_edge(START, "child")
    g.add_edge("child", END)
    return g
