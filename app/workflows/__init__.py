"""Workflow registry: `name = "module:factory"` entries in config.toml become Workflows."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from marshmallow import Schema

from app.config import ConfigError

DEFAULT_ACTIONS = ("approve", "reject")
Graph = StateGraph[Any] | Pregel[Any, Any, Any, Any]  # uncompiled, or compiled (CompiledStateGraph, @entrypoint)


@dataclass(frozen=True)
class Workflow:
    """What a factory returns: a graph (compiled or not), the schema of its input, a description.

    `deadline_seconds`, when set, bounds how long each approval of the workflow waits: then
    `default_action` applies as if decided. An approval request (the interrupt value) may carry
    its own `deadline_seconds` and `default_action`, which win.
    """

    graph: Graph
    input_schema: Schema | None = None
    description: str = ""
    deadline_seconds: float | None = None
    default_action: str = "reject"


def compile_graph(workflow: Workflow, checkpointer: BaseCheckpointSaver[Any] | None) -> Pregel[Any, Any, Any, Any]:
    """The workflow's graph compiled with Beacon's checkpointer; a compiled graph is copied, not changed."""
    graph = workflow.graph
    if isinstance(graph, StateGraph):
        return graph.compile(checkpointer=checkpointer)
    # Pregel.__init__ writes its tasks channel into the channels dict it gets: give it its own.
    return graph.copy({"checkpointer": checkpointer, "channels": dict(graph.channels)})


def is_graph(value: Any) -> bool:
    return isinstance(value, StateGraph | Pregel)


def as_workflow(value: Any, where: str) -> Workflow:
    """A factory's result as a checked Workflow; ConfigError (naming `where`) if it is no graph or does not compile."""
    workflow = Workflow(value) if is_graph(value) else value
    if not isinstance(workflow, Workflow):
        raise ConfigError(f"{where}: expected a compiled graph, a StateGraph or a Workflow, got {type(value).__name__}")
    if workflow.default_action not in DEFAULT_ACTIONS or (workflow.deadline_seconds or 0) < 0:
        raise ConfigError(f"{where}: default_action must be approve or reject, deadline_seconds >= 0")
    try:
        compile_graph(workflow, None)
    except Exception as exc:  # whatever compile raises is the graph's fault: one line, no traceback
        raise ConfigError(f"{where}: the graph does not compile ({type(exc).__name__}: {exc})") from None
    return workflow


def load_workflows(entries: Mapping[str, str]) -> dict[str, Workflow]:
    workflows = {}
    for name, target in entries.items():
        module_name, _, attr = target.partition(":")
        where = f"workflows.{name}={target!r}"
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{where}: cannot load it ({exc})") from None
        try:
            value = factory()
        except Exception as exc:
            raise ConfigError(f"{where}: the factory raised {type(exc).__name__}: {exc}") from None
        workflows[name] = as_workflow(value, where)
    return workflows
