"""Review: draft → human approval → publish; a rejection revises the draft and asks again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from marshmallow import Schema, fields, validate

from app.workflows import Workflow

logger = logging.getLogger(__name__)


class ReviewInput(Schema):
    topic = fields.String(required=True, validate=validate.Length(min=1, max=200))
    delay = fields.Float(load_default=0.2, validate=validate.Range(min=0, max=10))


class ReviewState(TypedDict, total=False):
    topic: str
    delay: float
    draft: str
    revision: int
    feedback: str | None
    published: bool


async def write_draft(state: ReviewState) -> dict[str, Any]:
    revision = state.get("revision", 0) + 1
    logger.info("Drafting revision %d about %r", revision, state["topic"])
    await asyncio.sleep(state.get("delay", 0.2))
    draft = f"{state['topic']}: summary, figures and outlook (revision {revision})"
    if state.get("feedback"):
        logger.info("Took the reviewer's comment into account: %s", state["feedback"])
        draft += f" — revised after: {state['feedback']}"
    logger.info("Draft ready (%d characters)", len(draft))
    return {"draft": draft, "revision": revision}


async def ask_reviewer(state: ReviewState) -> Command[Literal["publish", "write_draft"]]:
    # Everything before interrupt() runs again on resume, so nothing here has side effects.
    answer = interrupt({"question": "Publish this draft?", "draft": state["draft"], "revision": state["revision"]})
    if answer.get("decision") == "approve":
        return Command(goto="publish")
    logger.warning("Draft rejected: %s", answer.get("comment") or "no comment")
    return Command(goto="write_draft", update={"feedback": answer.get("comment") or "rejected"})


async def publish(state: ReviewState) -> dict[str, Any]:
    await asyncio.sleep(state.get("delay", 0.2))
    logger.info("Published revision %d of %r", state["revision"], state["topic"])
    return {"published": True}


def build() -> Workflow:
    graph = StateGraph(ReviewState)
    graph.add_node("write_draft", write_draft)
    graph.add_node("ask_reviewer", ask_reviewer)
    graph.add_node("publish", publish)
    graph.add_edge(START, "write_draft")
    graph.add_edge("write_draft", "ask_reviewer")
    graph.add_edge("publish", END)
    return Workflow(graph, ReviewInput(), "Draft a report, ask a reviewer, publish or revise.")
