"""Graphs from a LangGraph CLI langgraph.json: every attr form, dependencies, env, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, make_config, running_beacon
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel

from app.config import ConfigError, load_config
from app.workflows import Workflow, compile_graph
from app.workflows.langgraph_json import load_all, load_graphs, parse_dotenv

# A graph file as a LangGraph CLI project has it. Future annotations: StateGraph reads the state's
# type hints through sys.modules, so this also checks that the file is imported under a module name.
GRAPHS = """
from __future__ import annotations

import os
from typing import TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from app.workflows import Workflow


class State(TypedDict, total=False):
    topic: str
    answer: dict


def ask(state: State) -> State:
    return {"answer": interrupt({"question": f"Publish {state.get('topic')}?"})}


def builder() -> StateGraph:
    graph = StateGraph(State)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", END)
    return graph


GREETING = os.environ.get("LGJ_GREETING", "")  # read at import: langgraph.json's env must be set by then
compiled = builder().compile()
own_saver = builder().compile(checkpointer=InMemorySaver())
uncompiled = builder()
not_a_graph = 42


def sync_factory():
    return builder()


async def async_factory():
    return builder().compile()


def config_factory(config):
    assert config == {"configurable": {}}, config
    return builder().compile()


def workflow_factory():
    return Workflow(builder(), description="From a factory")


def raising_factory():
    raise RuntimeError("no model key")


def wrong_factory():
    return "a string"


def broken():
    return StateGraph(State)  # no entry point: does not compile
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What a load adds to sys.path, sys.modules (modules under tmp_path) and os.environ goes away after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    environ = set(os.environ)
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
    for key in set(os.environ) - environ:
        del os.environ[key]


def project(tmp_path: Path, graphs: dict[str, Any], **extra: Any) -> Path:
    """A langgraph.json in tmp_path/project beside agent.py (the GRAPHS file)."""
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    (folder / "agent.py").write_text(GRAPHS)
    path = folder / "langgraph.json"
    path.write_text(json.dumps({"graphs": graphs, **extra}))
    return path


def graph_module() -> Any:
    """The module agent.py was imported as (one, whichever graphs of the file were loaded)."""
    [module] = [m for name, m in sys.modules.items() if name.startswith("_graph_agent_")]
    return module


async def run_to_interrupt(workflow: Workflow) -> dict[str, Any]:
    """Compile with a fresh saver and run to the interrupt: that only works with the saver bound."""
    saver = InMemorySaver()
    graph = compile_graph(workflow, saver)
    assert graph.checkpointer is saver
    config = {"configurable": {"thread_id": "t1"}}
    result = await graph.ainvoke({"topic": "Q3"}, config)
    assert saver.get_tuple(config) is not None
    return dict(result)


@pytest.mark.parametrize(
    "attr", ["compiled", "own_saver", "uncompiled", "sync_factory", "async_factory", "config_factory"]
)
async def test_each_attr_form_runs_with_beacons_checkpointer(tmp_path: Path, attr: str) -> None:
    workflows = await load_graphs(project(tmp_path, {"g": f"./agent.py:{attr}"}))
    result = await run_to_interrupt(workflows["g"])
    [pending] = result["__interrupt__"]
    assert pending.value == {"question": "Publish Q3?"}


async def test_a_compiled_graph_is_copied_not_changed(tmp_path: Path) -> None:
    workflows = await load_graphs(project(tmp_path, {"a": "./agent.py:compiled", "b": "./agent.py:own_saver"}))
    before = {name: (wf.graph.checkpointer, dict(wf.graph.channels)) for name, wf in workflows.items()}
    await run_to_interrupt(workflows["a"])
    await run_to_interrupt(workflows["b"])
    for name, wf in workflows.items():
        assert (wf.graph.checkpointer, dict(wf.graph.channels)) == before[name]
    assert before["a"][0] is None and isinstance(before["b"][0], InMemorySaver)
    graph_module()  # one file, imported once


async def test_factory_may_return_a_workflow_and_the_long_form_has_a_description(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        {"w": "./agent.py:workflow_factory", "d": {"path": "./agent.py:uncompiled", "description": "Asks first"}},
    )
    workflows = await load_graphs(path)
    assert workflows["w"].description == "From a factory"
    assert workflows["d"].description == "Asks first"


async def test_package_module_form_through_dependencies(tmp_path: Path) -> None:
    package = tmp_path / "project" / "src" / "lgj_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "flows.py").write_text(GRAPHS)
    (tmp_path / "project" / "lgj_top.py").write_text("from lgj_pkg.flows import compiled as graph\n")
    path = project(
        tmp_path,
        {"pkg": "lgj_pkg.flows:sync_factory", "top": "lgj_top:graph"},
        dependencies=[".", "./src", "langchain-openai"],  # a package requirement is left to the installer
    )
    workflows = await load_graphs(path)
    assert sys.path[:2] == [str(tmp_path / "project"), str(tmp_path / "project" / "src")]
    for workflow in workflows.values():
        assert (await run_to_interrupt(workflow))["__interrupt__"]


async def test_env_as_a_dict_is_set_before_the_graphs_import(tmp_path: Path) -> None:
    path = project(tmp_path, {"g": "./agent.py:compiled"}, env={"LGJ_GREETING": "hello"})
    workflows = await load_graphs(path)
    assert os.environ["LGJ_GREETING"] == "hello"
    assert graph_module().GREETING == "hello"
    assert (await run_to_interrupt(workflows["g"]))["__interrupt__"]


async def test_env_as_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = project(tmp_path, {"g": "./agent.py:compiled"}, env=".env")
    (path.parent / ".env").write_text(
        "# model settings\n"
        "export LGJ_GREETING='hi there'\n"
        'LGJ_QUOTED="a # not a comment"\n'
        "LGJ_PLAIN=plain value  # a comment\n"
        "LGJ_EQUALS=a=b\n"
        "LGJ_SET=from the file\n"
    )
    monkeypatch.setenv("LGJ_SET", "from the process")
    await load_graphs(path)
    assert graph_module().GREETING == "hi there"
    assert os.environ["LGJ_QUOTED"] == "a # not a comment"
    assert os.environ["LGJ_PLAIN"] == "plain value"
    assert os.environ["LGJ_EQUALS"] == "a=b"
    assert os.environ["LGJ_SET"] == "from the process"  # the process environment wins


def test_parse_dotenv_skips_blank_and_comment_lines() -> None:
    assert parse_dotenv("\n# x=1\nA=1\nnot a pair\nB=\n") == {"A": "1", "B": ""}


async def test_keys_of_the_langgraph_cli_that_do_not_apply_are_ignored(tmp_path: Path) -> None:
    extra = {
        "python_version": "3.12",
        "dockerfile_lines": ["RUN true"],
        "http": {"cors": {}},
        "store": {"index": {}},
        "auth": {"path": "./auth.py:auth"},
        "ui": {"agent": "./ui.tsx"},
        "checkpointer": {"ttl": {}},
        "image_distro": "wolfi",
    }
    workflows = await load_graphs(project(tmp_path, {"g": "./agent.py:compiled"}, **extra))
    assert list(workflows) == ["g"]


async def test_merged_with_the_workflows_table(tmp_path: Path) -> None:
    path = project(tmp_path, {"asker": "./agent.py:compiled"})
    cfg, _ = load_config(None, {}, {"graphs.config": str(path)})
    workflows = await load_all(cfg.workflows, cfg.graphs.config)
    assert set(workflows) == {"review", "deploy", "bench", "agent", "asker"}


async def test_a_name_in_both_is_an_error_unless_the_entry_is_dropped(tmp_path: Path) -> None:
    path = project(tmp_path, {"review": "./agent.py:compiled"})
    cfg, _ = load_config(None, {}, {"graphs.config": str(path)})
    with pytest.raises(ConfigError, match=r"graph 'review' is also a \[workflows\] entry"):
        await load_all(cfg.workflows, cfg.graphs.config)
    cfg, _ = load_config(None, {"BEACON_WORKFLOWS_REVIEW": ""}, {"graphs.config": str(path)})
    workflows = await load_all(cfg.workflows, cfg.graphs.config)
    assert isinstance(workflows["review"].graph, Pregel) and "deploy" in workflows  # the graph took the name


def test_the_key_comes_from_flag_environment_and_file(tmp_path: Path) -> None:
    toml = tmp_path / "config.toml"
    toml.write_text('[graphs]\nconfig = "from-file.json"\n')
    assert load_config(toml, {})[0].graphs.config == "from-file.json"
    assert load_config(toml, {"BEACON_GRAPHS_CONFIG": "env.json"})[0].graphs.config == "env.json"
    cfg, _ = load_config(toml, {"BEACON_GRAPHS_CONFIG": "env.json"}, {"graphs.config": "flag.json"})
    assert cfg.graphs.config == "flag.json"


BAD_GRAPHS = [
    ({"g": "./absent.py:graph"}, "graphs.g='./absent.py:graph': file "),
    ({"g": "no_such_package.flows:graph"}, "cannot import no_such_package.flows (ModuleNotFoundError"),
    ({"g": "./agent.py:missing"}, "graphs.g='./agent.py:missing': ./agent.py has no attribute 'missing'"),
    ({"g": "./agent.py:raising_factory"}, "graphs.g='./agent.py:raising_factory': the factory raised RuntimeError: no"),
    ({"g": "./agent.py:not_a_graph"}, "graphs.g='./agent.py:not_a_graph': expected a compiled graph, a StateGraph"),
    ({"g": "./agent.py:wrong_factory"}, "expected a compiled graph, a StateGraph or a Workflow, got str"),
    ({"g": "./agent.py:broken"}, "graphs.g='./agent.py:broken': the graph does not compile (ValueError"),
    ({"g": "./agent.py"}, """graphs.g='./agent.py': expected "./file.py:attr" or "package.module:attr\""""),
    ({"g": 3}, "graphs.g=3: expected"),
]


@pytest.mark.parametrize(("graphs", "message"), BAD_GRAPHS)
async def test_a_bad_graph_is_named_in_one_line(tmp_path: Path, graphs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await load_graphs(project(tmp_path, {"fine": "./agent.py:compiled", **graphs}))
    assert message in str(caught.value) and "\n" not in str(caught.value)


async def test_an_error_inside_the_graph_module_is_named(tmp_path: Path) -> None:
    path = project(tmp_path, {"g": "./oops.py:graph"})
    (path.parent / "oops.py").write_text("import no_such_dependency\n")
    with pytest.raises(ConfigError, match=r"graphs.g='./oops.py:graph': cannot import ./oops.py \(ModuleNotFound"):
        await load_graphs(path)
    assert not [m for m in sys.modules if m.startswith("_graph_oops")]  # a half-imported module is not kept


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "graphs.config='{path}': file not found"),
        ("{not json", "{path}: invalid JSON: Expecting property name"),
        ('{"dependencies": ["."]}', '{path}: expected "graphs": {{"<id>": "./file.py:attr"'),
        ('{"graphs": ["./agent.py:graph"]}', '{path}: expected "graphs"'),
        ('["graphs"]', '{path}: expected "graphs"'),
        ('{"graphs": {}, "env": 3}', '{path}: "env" must be an object of strings or the path of a .env file'),
        ('{"graphs": {}, "env": {"A": 1}}', '{path}: "env" must be an object of strings'),
        ('{"graphs": {}, "dependencies": "."}', '{path}: "dependencies" must be a list of folders'),
        ('{"graphs": {}, "dependencies": ["./gone"]}', "{path}: dependency './gone': folder "),
    ],
)
async def test_a_bad_file_stops_with_one_line(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "langgraph.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        await load_graphs(path)
    assert message.format(path=path) in str(caught.value) and "\n" not in str(caught.value)


def test_run_py_prints_the_error_as_one_line(tmp_path: Path) -> None:
    path = project(tmp_path, {"agent": "./agent.py:missing"})
    result = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--graphs", str(path), "--rest-port", "0", "--socketio-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"beacon: configuration error: {path}: graphs.agent='./agent.py:missing': ./agent.py has no attribute 'missing'"
    ]


async def test_a_graph_from_langgraph_json_runs_in_beacon(tmp_path: Path) -> None:
    path = project(tmp_path, {"asker": "./agent.py:compiled", "maker": "./agent.py:async_factory"})
    async with running_beacon(make_config(tmp_path, **{"graphs.config": str(path)})) as b:
        status, body = await b.call("GET", "/admin/workflows")
        assert status == 200 and {"asker", "maker", "review"} <= {w["name"] for w in body["workflows"]}
        thread_id = await b.start("asker", {"topic": "Q3"})
        waiting = await b.wait_status(thread_id, "waiting_approval")
        [pending] = waiting["pending"]
        assert pending["value"] == {"question": "Publish Q3?"}
        status, body = await b.call("POST", f"/approve/{thread_id}", {"decision": "approve", "comment": "go"})
        assert status == 200, body
        done = await b.wait_status(thread_id, "completed")
        assert done["values"]["answer"]["decision"] == "approve"
        assert done["values"]["answer"]["comment"] == "go"
