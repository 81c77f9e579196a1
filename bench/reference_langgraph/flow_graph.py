"""The flow benchmark's graph (issue 16), served by Beacon and by `langgraph dev` from langgraph.json.

`ask` logs one line and waits for a human (`interrupt()`); on resume `finish` sets a value. Async
nodes: a sync one would cost both servers a hop to a worker thread per step.
"""

from __future__ import annotations

import logging
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

logger = logging.getLogger("bench.flow")


class Flow(TypedDict, total=False):
    topic: str
    decision: Any
    done: bool


async def ask(state: Flow) -> dict[str, Any]:
    logger.info("asking for approval of %s", state.get("topic"))  # a node re-runs from here on resume
    return {"decision": interrupt({"question": "approve?", "topic": state.get("topic")})}


async def finish(state: Flow) -> dict[str, Any]:
    return {"done": True}


def _flow() -> StateGraph[Any]:
    g = StateGraph(Flow)
    g.add_node("ask", ask)
    g.add_node("finish", finish)
    g.add_edge(START, "ask")
    g.add_edge("ask", "finish")
    g.add_edge("finish", END)
    return g


flow = _flow().compile()
