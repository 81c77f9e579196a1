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


flow = StateGraph(Flow).add_sequence([ask, finish]).add_edge(START, "ask").add_edge("finish", END).compile()
