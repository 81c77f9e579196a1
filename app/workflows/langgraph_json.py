"""Graphs from a LangGraph CLI `langgraph.json`, merged with the `[workflows]` table."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from app.config import ConfigError
from app.workflows import Workflow, as_workflow, is_graph, load_workflows

logger = logging.getLogger(__name__)


async def load_all(workflows: Mapping[str, str], graphs_config: str) -> dict[str, Workflow]:
    """The `[workflows]` table plus the graphs of `graphs_config` (when set); a name in both is an error."""
    loaded = load_workflows(workflows)
    if not graphs_config:
        return loaded
    graphs = await load_graphs(Path(graphs_config))
    both = sorted(graphs.keys() & loaded.keys())
    if both:
        raise ConfigError(
            f"{graphs_config}: graph {both[0]!r} is also a [workflows] entry: rename one, "
            f'or drop the entry with workflows.{both[0]} = ""'
        )
    return {**loaded, **graphs}


async def load_graphs(file: Path) -> dict[str, Workflow]:
    """Read the file, apply its `env` and `dependencies`, then import and check each graph."""
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"graphs.config={str(file)!r}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"graphs.config={str(file)!r}: cannot read it ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: invalid JSON: {exc}") from None
    graphs = data.get("graphs") if isinstance(data, dict) else None
    if not isinstance(graphs, dict):
        raise ConfigError(f'{file}: expected "graphs": {{"<id>": "./file.py:attr" or "package.module:attr"}}')
    base = file.resolve().parent  # paths inside the file are relative to its folder
    _apply_env(data.get("env"), base, file)
    _add_dependencies(data.get("dependencies", []), base, file)
    # Other keys of the LangGraph CLI (python_version, dockerfile_lines, http, store, auth, ui, …) do not apply.
    return {str(graph_id): await _load_graph(str(graph_id), spec, base, file) for graph_id, spec in graphs.items()}


async def _load_graph(graph_id: str, spec: Any, base: Path, file: Path) -> Workflow:
    where = f"{file}: graphs.{graph_id}={spec!r}"
    description = ""
    if isinstance(spec, dict):  # the CLI's long form {"path": …, "description": …}
        description = spec.get("description") or ""
        spec = spec.get("path")
    if not isinstance(spec, str) or ":" not in spec or not isinstance(description, str):
        raise ConfigError(f'{where}: expected "./file.py:attr" or "package.module:attr"')
    source, _, attr = spec.rpartition(":")
    module = _import(source, base, where)
    try:
        value = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{where}: {source} has no attribute {attr!r}") from None
    if callable(value) and not isinstance(value, Workflow) and not is_graph(value):
        value = await _call_factory(value, where)
    workflow = as_workflow(value, where)
    if description and not workflow.description:
        workflow = dataclasses.replace(workflow, description=description)
    return workflow


def _import(source: str, base: Path, where: str) -> ModuleType:
    try:
        if not source.endswith(".py"):
            return importlib.import_module(source)
        path = (base / source).resolve()
        if not path.is_file():
            raise ConfigError(f"{where}: file {path} not found")
        return _import_file(path)
    except ConfigError:
        raise
    except Exception as exc:  # an error in the user's module: one line, not its traceback
        raise ConfigError(f"{where}: cannot import {source} ({type(exc).__name__}: {exc})") from None


def _import_file(path: Path) -> ModuleType:
    # A name that stays the same across restarts: checkpoints may name the module of a state class.
    name = f"_graph_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    if name in sys.modules:  # two graphs of one file share the module
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: typing.get_type_hints looks the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


async def _call_factory(factory: Any, where: str) -> Any:
    """Call it once at start-up, with a RunnableConfig when it takes an argument; await an async one."""
    try:
        params = [
            p
            for p in inspect.signature(factory).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    try:
        result = factory({"configurable": {}}) if params else factory()
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        raise ConfigError(f"{where}: the factory raised {type(exc).__name__}: {exc}") from None
    return result


def _apply_env(env: Any, base: Path, file: Path) -> None:
    """Set the file's variables, unless the process environment already has them (it wins, as elsewhere)."""
    if env is None:
        return
    if isinstance(env, str):
        path = base / env
        if not path.is_file():
            logger.warning("%s: env file %s not found; no variables set from it", file, path)
            return
        env = parse_dotenv(path.read_text())
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f'{file}: "env" must be an object of strings or the path of a .env file')
    for key, value in env.items():
        os.environ.setdefault(key, value)


def _add_dependencies(dependencies: Any, base: Path, file: Path) -> None:
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ConfigError(f'{file}: "dependencies" must be a list of folders')
    for dependency in reversed(dependencies):  # the first listed ends up first on sys.path
        if not dependency.startswith((".", "/")):
            # A package requirement: the CLI pip-installs it into its image; here it must be installed already.
            continue
        folder = (base / dependency).resolve()
        if not folder.is_dir():
            raise ConfigError(f"{file}: dependency {dependency!r}: folder {folder} not found")
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))


def parse_dotenv(text: str) -> dict[str, str]:
    """`KEY=value` lines (`export`, quotes and `#` comments allowed); python-dotenv is not a dependency."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if value[:1] in ("'", '"') and value.find(value[0], 1) > 0:
            value = value[1 : value.find(value[0], 1)]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values
