"""Deploy: plan → approval → build, test, migrate, rollout, verify (each logs its progress)."""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from marshmallow import Schema, fields, validate

from app.workflows import Workflow

logger = logging.getLogger(__name__)

STEPS = ("build", "test", "migrate", "rollout", "verify")
DAY = 86400.0


class DeployInput(Schema):
    service = fields.String(load_default="api", validate=validate.Regexp(r"^[a-z0-9-]{1,40}$(?!\n)"))
    environment = fields.String(load_default="staging", validate=validate.OneOf(["staging", "production"]))
    step_delay = fields.Float(load_default=1.0, validate=validate.Range(min=0, max=60))
    lines_per_step = fields.Integer(load_default=3, validate=validate.Range(min=1, max=10000))
    fail_at = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(STEPS))
    # This run's own approval deadline, instead of the workflow's (a day, then reject).
    approval_deadline = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0, max=DAY * 30))
    default_action = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(["approve", "reject"]))


class DeployState(TypedDict, total=False):
    service: str
    environment: str
    step_delay: float
    lines_per_step: int
    fail_at: str | None
    approval_deadline: float | None
    default_action: str | None
    plan: list[str]
    approved: bool
    done: Annotated[list[str], operator.add]


async def plan(state: DeployState) -> dict[str, Any]:
    steps = [f"{step} {state['service']}" for step in STEPS]
    logger.info("Planning deployment of %s to %s", state["service"], state["environment"])
    for line in steps:
        logger.info("  plan: %s", line)
    return {"plan": steps}


async def approval(state: DeployState) -> Command[Literal["build", "__end__"]]:
    request: dict[str, Any] = {
        "question": f"Deploy {state['service']} to {state['environment']}?",
        "plan": state["plan"],
        "environment": state["environment"],
    }
    if state.get("approval_deadline") is not None:
        request["deadline_seconds"] = state["approval_deadline"]
    if state.get("default_action"):
        request["default_action"] = state["default_action"]
    answer = interrupt(request)
    if answer.get("decision") == "approve":
        return Command(goto="build", update={"approved": True})
    logger.warning("Deployment rejected: %s", answer.get("comment") or "no comment")
    return Command(goto=END, update={"approved": False})  # type: ignore[arg-type]


def step(name: str) -> Callable[[DeployState], Awaitable[dict[str, Any]]]:
    async def run_step(state: DeployState) -> dict[str, Any]:
        logger.info("step %s started", name)
        lines = state.get("lines_per_step", 3)
        for i in range(1, lines + 1):
            await asyncio.sleep(state.get("step_delay", 1.0) / lines)
            logger.info("%s: %d/%d", name, i, lines)
        if state.get("fail_at") == name:
            raise RuntimeError(f"step {name} failed")
        logger.info("step %s done", name)
        return {"done": [name]}

    run_step.__name__ = name
    return run_step


def build() -> Workflow:
    graph = StateGraph(DeployState)
    graph.add_node("plan", plan)
    graph.add_node("approval", approval)
    for name in STEPS:
        graph.add_node(name, step(name))  # type: ignore[arg-type]
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "approval")
    for a, b in zip(STEPS, STEPS[1:], strict=False):
        graph.add_edge(a, b)
    graph.add_edge(STEPS[-1], END)
    return Workflow(
        graph,
        DeployInput(),
        "Plan a deployment, ask for approval, run five logged steps.",
        deadline_seconds=DAY,  # nobody answered in a day: the deployment is off
        default_action="reject",
    )
