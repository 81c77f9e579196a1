"""Agent Server API: assistants (one per graph), threads and their state."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from langgraph.types import StateSnapshot

from app.errors import Invalid, NotFound, ThreadExists
from app.keys import services_key
from app.rest.agent import schemas as s
from app.rest.agent import views
from app.rest.keys import runs_key
from app.rest.middlewares import token_key
from app.rest.parsing import json_body, thread_id
from app.runs.events import to_json
from app.runs.jobs import thread_config
from app.runs.manager import RunManager, assistant_id
from app.store import Run

THREAD_CREATE = s.ThreadCreate()
THREAD_PATCH = s.ThreadPatch()
THREAD_SEARCH = s.ThreadSearch()
ASSISTANT_SEARCH = s.AssistantSearch()
STATE_UPDATE = s.StateUpdate()
STATE_AT = s.StateAt()
HISTORY = s.HistoryRequest()


def graph_of(manager: RunManager, assistant: str) -> str:
    """The graph an assistant id names: a graph id, or the id of a graph's default assistant."""
    if assistant in manager.workflows:
        return assistant
    for graph_id in manager.workflows:
        if assistant_id(graph_id) == assistant:
            return graph_id
    raise NotFound(f"no assistant {assistant!r}", {"graphs": sorted(manager.workflows)})


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def info(request: web.Request) -> web.Response:
    return web.json_response({"version": "beacon", "flags": {"assistants": True, "crons": False, "langsmith": False}})


async def search_assistants(request: web.Request) -> web.Response:
    body = await json_body(request, ASSISTANT_SEARCH)
    manager = request.app[runs_key]
    every = [views.assistant(g, wf, manager.started_at) for g, wf in sorted(manager.workflows.items())]
    wanted = body["metadata"] or {}
    found = [
        a
        for a in every
        if body["graph_id"] in (None, a["graph_id"]) and all(a["metadata"].get(k) == v for k, v in wanted.items())
    ]
    return web.json_response(found[body["offset"] : body["offset"] + body["limit"]])


async def get_assistant(request: web.Request) -> web.Response:
    manager = request.app[runs_key]
    graph_id = graph_of(manager, request.match_info["assistant_id"])
    return web.json_response(views.assistant(graph_id, manager.workflows[graph_id], manager.started_at))


async def assistant_graph(request: web.Request) -> web.Response:
    manager = request.app[runs_key]
    graph = manager.execution.graphs[graph_of(manager, request.match_info["assistant_id"])]
    xray = request.query.get("xray", "false").lower() in ("1", "true")
    return web.json_response(to_json((await graph.aget_graph(xray=xray)).to_json()))


async def assistant_schemas(request: web.Request) -> web.Response:
    manager = request.app[runs_key]
    graph_id = graph_of(manager, request.match_info["assistant_id"])
    graph = manager.execution.graphs[graph_id]

    def schema(get: Any) -> Any:
        try:
            return to_json(get())
        except Exception:  # a state type JSON Schema cannot describe
            return None

    return web.json_response(
        {
            "graph_id": graph_id,
            "input_schema": schema(graph.get_input_jsonschema),
            "output_schema": schema(graph.get_output_jsonschema),
            "state_schema": schema(graph.get_output_jsonschema),  # a StateGraph's output is its state
            "config_schema": schema(graph.get_config_jsonschema),
            "context_schema": schema(graph.get_context_jsonschema),
        }
    )


async def create_thread(request: web.Request) -> web.Response:
    body = await json_body(request, THREAD_CREATE)
    store = request.app[services_key].store
    tid = body["thread_id"] or str(uuid.uuid4())
    try:
        run = await store.create_thread(tid, body["metadata"] or {})
    except ThreadExists:
        if body["if_exists"] != "do_nothing":
            raise
        run = await _thread(request, tid)
    return web.json_response(views.thread(run, await _state(request, run)))


async def get_thread(request: web.Request) -> web.Response:
    run = await _thread(request, thread_id(request))
    return web.json_response(views.thread(run, await _state(request, run)))


async def patch_thread(request: web.Request) -> web.Response:
    tid = thread_id(request)
    body = await json_body(request, THREAD_PATCH)
    run = await request.app[services_key].store.update_thread(tid, body["metadata"])
    if run is None:
        raise NotFound(f"no thread {tid!r}")
    return web.json_response(views.thread(run, await _state(request, run)))


async def delete_thread(request: web.Request) -> web.Response:
    await request.app[runs_key].delete_thread(thread_id(request), by=request[token_key].name)
    return web.Response(status=204)


async def search_threads(request: web.Request) -> web.Response:
    body = await json_body(request, THREAD_SEARCH)
    runs = await request.app[services_key].store.search_threads(
        metadata=body["metadata"],
        statuses=views.STATUSES_OF[body["status"]] if body["status"] else None,
        ids=body["ids"],
        limit=body["limit"],
        offset=body["offset"],
    )
    return web.json_response([views.thread(r) for r in runs])


async def get_state(request: web.Request) -> web.Response:
    run = await _thread(request, thread_id(request))
    checkpoint_id = request.match_info.get("checkpoint_id")
    return web.json_response(views.state(await _snapshot(request, run, checkpoint_id)))


async def get_state_at(request: web.Request) -> web.Response:
    run = await _thread(request, thread_id(request))
    body = await json_body(request, STATE_AT)
    return web.json_response(views.state(await _snapshot(request, run, body["checkpoint"].get("checkpoint_id"))))


async def update_state(request: web.Request) -> web.Response:
    run = await _thread(request, thread_id(request))
    body = await json_body(request, STATE_UPDATE)
    manager = request.app[runs_key]
    config = await manager.update_state(run, body["values"], body["as_node"], _checkpoint_id(body))
    return web.json_response({"checkpoint": views.checkpoint(config)})


async def thread_history(request: web.Request) -> web.Response:
    run = await _thread(request, thread_id(request))
    body = await json_body(request, HISTORY)
    graph = _graph(request, run)
    if graph is None:
        return web.json_response([])
    before = body["before"]
    if isinstance(before, str):
        before = {"configurable": {"checkpoint_id": before}}
    elif isinstance(before, dict) and "configurable" not in before:
        before = {"configurable": before}
    config = thread_config(run.thread_id)
    if cid := _checkpoint_id(body):
        config["configurable"]["checkpoint_id"] = cid
    history = graph.aget_state_history(config, limit=body["limit"], before=before, filter=body["metadata"])
    return web.json_response([views.state(snap) async for snap in history])


def _checkpoint_id(body: dict[str, Any]) -> str | None:
    return body.get("checkpoint_id") or (body.get("checkpoint") or {}).get("checkpoint_id")


async def _thread(request: web.Request, tid: str) -> Run:
    run = await request.app[services_key].store.get_run(tid)
    if run is None:
        raise NotFound(f"no thread {tid!r}")
    return run


def _graph(request: web.Request, run: Run) -> Any:
    return request.app[runs_key].execution.graphs.get(run.workflow)


async def _state(request: web.Request, run: Run) -> StateSnapshot | None:
    graph = _graph(request, run)
    return None if graph is None else await request.app[runs_key].states.current(graph, run.thread_id)


async def _snapshot(request: web.Request, run: Run, checkpoint_id: str | None) -> StateSnapshot:
    graph = _graph(request, run)
    if graph is None:
        raise Invalid(f"thread {run.thread_id!r} has no graph yet: run it first")
    if not checkpoint_id:  # the current state: as cached while the thread has not moved
        return await request.app[runs_key].states.current(graph, run.thread_id)
    config = thread_config(run.thread_id)
    config["configurable"]["checkpoint_id"] = checkpoint_id
    snap: StateSnapshot = await graph.aget_state(config)
    if checkpoint_id and snap.created_at is None:  # LangGraph answers an empty state for an unknown id
        raise NotFound(f"no checkpoint {checkpoint_id!r} on thread {run.thread_id!r}")
    return snap
