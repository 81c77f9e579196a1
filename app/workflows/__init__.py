"""Workflow registry: `name = "module:factory"` entries in config.toml become Workflows."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langgraph.graph import StateGraph
from marshmallow import Schema

from app.config import ConfigError


@dataclass(frozen=True)
class Workflow:
    """What a factory returns: an uncompiled graph, the schema of its input, a description."""

    graph: StateGraph[Any]
    input_schema: Schema | None = None
    description: str = ""


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
        workflows[name] = workflow
    return workflows
