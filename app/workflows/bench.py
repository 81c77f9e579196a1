"""Bench: log `lines` lines of `size` bytes at `rate` lines/s, so any client can measure Beacon."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from marshmallow import Schema, fields, validate

from app.workflows import Workflow

logger = logging.getLogger(__name__)


class BenchInput(Schema):
    lines = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10_000_000))
    size = fields.Integer(load_default=100, validate=validate.Range(min=1, max=2_000_000))
    rate = fields.Float(
        load_default=0, validate=validate.Range(min=0), metadata={"description": "lines/s; 0 = flat out"}
    )


class BenchState(TypedDict, total=False):
    lines: int
    size: int
    rate: float
    sent: int


async def emit(state: BenchState) -> dict[str, Any]:
    lines, size, rate = state["lines"], state["size"], state.get("rate", 0)
    started = time.monotonic()
    for i in range(1, lines + 1):
        head = f"line {i} "
        logger.info("%s%s", head, "x" * max(0, size - len(head)))
        if rate:
            ahead = started + i / rate - time.monotonic()
            if ahead > 0.002:
                await asyncio.sleep(ahead)
        elif i % 500 == 0:
            await asyncio.sleep(0)  # let the sink and the sockets run between bursts
    return {"sent": lines}


def build() -> Workflow:
    graph = StateGraph(BenchState)
    graph.add_node("emit", emit)
    graph.add_edge(START, "emit")
    graph.add_edge("emit", END)
    return Workflow(graph, BenchInput(), "Log N lines of a given size at a given rate (for benchmarks).")
