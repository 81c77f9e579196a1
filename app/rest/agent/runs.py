"""Agent Server API: runs on threads (background, streamed, waited for), joins, rejoins and cancels."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from app.errors import Conflict, Invalid, NotFound, ThreadExists
from app.keys import services_key
from app.names import MAX_SEQ
from app.rest.agent import schemas as s
from app.rest.agent import views
from app.rest.agent.threads import graph_of
from app.rest.keys import followers_key, runs_key
from app.rest.middlewares import token_key
from app.rest.parsing import json_body, query, thread_id
from app.runs.manager import assistant_id
from app.store import RunEvent, ThreadRun

RUN_CREATE = s.RunCreate()
RUNS_LIST = s.RunsListQuery()
CANCEL = s.CancelQuery()
JOIN_STREAM = s.JoinStreamQuery()
FINISHED = ("success", "error", "interrupted", "timeout")
STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # nginx passes each event on as it comes
}


async def create_run(request: web.Request) -> web.Response:
    tid = thread_id(request)
    run = await _submit(request, tid, await json_body(request, RUN_CREATE))
    return web.json_response(views.run(run), headers=_locations(run))


async def stream_run(request: web.Request) -> web.StreamResponse:
    run, delete = await _submit_stateless(request)
    try:
        return await _stream(request, run, after=0, modes=None, cancel=run.kwargs.get("on_disconnect") == "cancel")
    finally:
        if delete:
            await _delete_after(request, run)


async def wait_run(request: web.Request) -> web.Response:
    run, delete = await _submit_stateless(request)
    try:
        await _until_end(request, run)
        return web.json_response(await _final(request, run), headers=_locations(run))
    finally:
        if delete:
            await _delete_after(request, run)


async def list_runs(request: web.Request) -> web.Response:
    tid = thread_id(request)
    q = query(request, RUNS_LIST)
    store = request.app[services_key].store
    if await store.get_run(tid) is None:
        raise NotFound(f"no thread {tid!r}")
    runs = await store.list_thread_runs(tid, limit=q["limit"], offset=q["offset"], status=q["status"])
    return web.json_response([views.run(r) for r in runs])


async def get_thread_run(request: web.Request) -> web.Response:
    return web.json_response(views.run(await _run(request)))


async def join_run(request: web.Request) -> web.Response:
    run = await _run(request)
    await _until_end(request, run)
    return web.json_response(await _final(request, run))


async def join_stream(request: web.Request) -> web.StreamResponse:
    run = await _run(request)
    last = request.headers.get("Last-Event-ID")
    q = query(request, JOIN_STREAM)
    modes = {m for m in request.query.getall("stream_mode", ()) if m} or None
    if last is None:  # only what comes from now on; a finished run has nothing more
        after = await _now(request, run)
        if after is None:
            return await _stream(request, run, after=0, modes=modes, ended=True)
    elif last.strip() == "-1":
        after = 0  # everything, from the first event
    else:
        try:
            after = int(last)
            if not 0 <= after <= MAX_SEQ:
                raise ValueError(after)
        except ValueError:
            raise Invalid("Last-Event-ID must be an event id of this run, or -1", {"Last-Event-ID": last}) from None
    return await _stream(request, run, after=after, modes=modes, cancel=q["cancel_on_disconnect"])


async def cancel_run(request: web.Request) -> web.Response:
    run = await _run(request)
    q = query(request, CANCEL)
    await request.app[runs_key].cancel_run(run.thread_id, run.run_id, by=request[token_key].name, action=q["action"])
    if q["wait"]:
        await _until_end(request, run)
    return web.Response(status=204)


# -- internals --------------------------------------------------------------------------


async def _submit(request: web.Request, tid: str, body: dict[str, Any]) -> ThreadRun:
    manager = request.app[runs_key]
    store = request.app[services_key].store
    graph_id = graph_of(manager, body["assistant_id"])
    thread = await store.get_run(tid)
    if thread is None:
        if body["if_not_exists"] != "create":
            raise NotFound(f"no thread {tid!r}", {"if_not_exists": "reject"})
        with contextlib.suppress(ThreadExists):  # another request created it meanwhile: fine
            thread = await store.create_thread(tid, {})
        thread = await store.get_run(tid)
    assistant = body["assistant_id"] if body["assistant_id"] != graph_id else None
    wanted = {"graph_id": graph_id, "assistant_id": assistant or assistant_id(graph_id)}
    if thread is not None and any(thread.metadata.get(k) != v for k, v in wanted.items()):
        await store.update_thread(tid, wanted)  # threads.search by graph_id / assistant_id finds it
    kwargs = {
        k: body[k]
        for k in (
            "input",
            "command",
            "config",
            "context",
            "stream_mode",
            "stream_subgraphs",
            "checkpoint_id",
            "on_completion",
            "on_disconnect",
        )
        if body.get(k) not in (None, False)
    }
    for k in ("interrupt_before", "interrupt_after"):
        if body.get(k):
            kwargs[k] = body[k]
    if body.get("checkpoint") and not kwargs.get("checkpoint_id"):
        kwargs["checkpoint_id"] = body["checkpoint"].get("checkpoint_id")
    return await manager.submit(
        tid,
        graph_id,
        kwargs,
        by=request[token_key].name,
        assistant_id=wanted["assistant_id"],
        metadata=body["metadata"] or {},
        multitask_strategy=body["multitask_strategy"],
    )


async def _submit_stateless(request: web.Request) -> tuple[ThreadRun, bool]:
    """A run on the thread in the path, or (at /runs/...) on a new thread, deleted after it unless
    on_completion is "keep"."""
    if "thread_id" in request.match_info:
        tid = thread_id(request)
        return await _submit(request, tid, await json_body(request, RUN_CREATE)), False
    body = await json_body(request, RUN_CREATE)  # validated before a thread is made for it
    run = await _submit(request, str(uuid.uuid4()), {**body, "if_not_exists": "create"})
    return run, (body["on_completion"] or "delete") == "delete"


async def _delete_after(request: web.Request, run: ThreadRun) -> None:
    with contextlib.suppress(Exception):
        await request.app[runs_key].delete_thread(run.thread_id, by=request[token_key].name)


async def _run(request: web.Request) -> ThreadRun:
    tid = thread_id(request)
    run_id = request.match_info["run_id"]
    run = await request.app[services_key].store.get_thread_run(run_id)
    if run is None or run.thread_id != tid:
        raise NotFound(f"no run {run_id!r} on thread {tid!r}")
    return run


def _locations(run: ThreadRun) -> dict[str, str]:
    base = f"/threads/{run.thread_id}/runs/{run.run_id}"
    return {"Content-Location": base, "Location": f"{base}/stream"}


def _events(request: web.Request, run: ThreadRun, after: int) -> AsyncIterator[RunEvent | None]:
    store = request.app[services_key].store

    async def finished() -> bool:
        current = await store.get_thread_run(run.run_id)
        return current is None or current.status in FINISHED

    return request.app[followers_key].events(store, run.run_id, after, finished)


async def _stream(
    request: web.Request,
    run: ThreadRun,
    *,
    after: int,
    modes: set[str] | None,
    ended: bool = False,
    cancel: bool = False,
) -> web.StreamResponse:
    """The run's events as server-sent events; with `cancel`, a client that goes away cancels the run."""
    response = web.StreamResponse(headers={**STREAM_HEADERS, **_locations(run)})
    await response.prepare(request)
    try:
        async for event in _nothing() if ended else _events(request, run, after):
            if event is None:
                await response.write(b": heartbeat\n\n")
                continue
            name = event["event"]
            if modes and name.split("|", 1)[0] not in modes and name not in ("metadata", "error", "end"):
                continue
            await response.write(f"event: {name}\ndata: {event['data']}\nid: {event['seq']}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        if cancel:
            with contextlib.suppress(Conflict, NotFound):
                await asyncio.shield(
                    request.app[runs_key].cancel_run(run.thread_id, run.run_id, by=request[token_key].name)
                )
        raise
    await response.write_eof()
    return response


async def _now(request: web.Request, run: ThreadRun) -> int | None:
    """The run's last event now, or None when it is over. Read in this order, an unfinished run's
    `end` comes after the seq returned."""
    store = request.app[services_key].store
    last = await store.last_event(run.run_id)
    current = await store.get_thread_run(run.run_id)
    return None if current is None or current.status in FINISHED else last


async def _nothing() -> AsyncIterator[RunEvent | None]:
    return
    yield


async def _until_end(request: web.Request, run: ThreadRun) -> None:
    after = await _now(request, run)
    if after is not None:
        async for _ in _events(request, run, after):
            pass


async def _final(request: web.Request, run: ThreadRun) -> dict[str, Any]:
    manager = request.app[runs_key]
    graph = manager.execution.graphs.get(run.workflow)
    if graph is None:
        return {}
    current = await request.app[services_key].store.get_thread_run(run.run_id)
    snap = await manager.states.current(graph, run.thread_id)  # as the run left it: built once, when it ended
    values = views.final_values(snap)
    if current is not None and current.status == "error":
        error = await _error_of(request, run)
        values = {**values, "__error__": error}
    return values


async def _error_of(request: web.Request, run: ThreadRun) -> dict[str, Any]:
    store = request.app[services_key].store
    events = await store.get_events(run.run_id, after=max(0, await store.last_event(run.run_id) - 3))
    for event in events:
        if event["event"] == "error":
            return orjson.loads(event["data"])  # type: ignore[no-any-return]
    return {"error": "Error", "message": "the run failed"}
