"""Workflow registry: `name = "module:factory"` entries in config.toml become Workflows."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langgraph.graph import StateGraph
from marshmallow import Schema

from app.config import ConfigError

DEFAULT_ACTIONS = ("approve", "reject")


@dataclass(frozen=True)
class Workflow:
    """What a factory returns: an uncompiled graph, the schema of its input, a description.

    `deadline_seconds`, when set, bounds how long each approval of the workflow waits: then
    `default_action` applies as if decided. An approval request (the interrupt value) may carry
    its own `deadline_seconds` and `default_action`, which win.
    """

    graph: StateGraph[Any]
    input_schema: Schema | None = None
    description: str = ""
    deadline_seconds: float | None = None
    default_action: str = "reject"


def load_workflows(entries: Mapping[str, str]) -> dict[str, Workflow]:
    workflows = {}
    for name, target in entries.items():
        module_name, _, attr = target.partition(":")
        where = f"workflows.{name}={target!r}"
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{where}: cannot load it ({exc})") from None
        workflow = factory()
        if isinstance(workflow, StateGraph):
            workflow = Workflow(workflow)
        if not isinstance(workflow, Workflow):
            raise ConfigError(f"{where}: the factory must return a Workflow or a StateGraph")
        if workflow.default_action not in DEFAULT_ACTIONS or (workflow.deadline_seconds or 0) < 0:
            raise ConfigError(f"{where}: default_action must be approve or reject, deadline_seconds >= 0")
        workflows[name] = workflow
    return workflows
