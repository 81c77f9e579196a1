"""Thin handlers: parse the request, call the run manager or store, serialize."""

from __future__ import annotations

import time

from aiohttp import web

from app.errors import NotFound
from app.keys import services_key, started_key
from app.rest import schemas, views
from app.rest.keys import probe_key, runs_key
from app.rest.middlewares import token_key
from app.rest.parsing import cursor_errors, json_body, query, thread_id
from app.runs.manager import Answer
from app.store.logtext import log_line_for

# Schema instances are reused: they hold no per-request state.
START = schemas.StartRequest()
APPROVE = schemas.ApproveRequest()
RUNS_QUERY = schemas.RunsQuery()
LOGS_QUERY = schemas.LogsQuery()
HISTORY_QUERY = schemas.HistoryQuery()
RUN_OUT = schemas.RunOut()
START_OUT = schemas.StartResponse()


async def start(request: web.Request) -> web.Response:
    body = await json_body(request, START)
    run = await request.app[runs_key].start(body["workflow"], body["input"], body["thread_id"])
    return web.json_response(START_OUT.dump(run), status=202)


async def status(request: web.Request) -> web.Response:
    return web.json_response(views.status(await request.app[runs_key].snapshot(thread_id(request))))


async def approve(request: web.Request) -> web.Response:
    tid = thread_id(request)
    body = await json_body(request, APPROVE)
    runs = request.app[runs_key]
    if "resume" in body:  # the graph's own shape, passed through
        answer = Answer("resume", body["resume"], body["comment"], body["resume"])
        _, [decision] = await runs.resume(tid, {body["interrupt_id"]: answer}, decided_by=request[token_key].name)
    else:
        decision = await runs.decide(
            tid,
            body["decision"],
            comment=body["comment"],
            interrupt_id=body["interrupt_id"],
            data=body["data"],
            decided_by=request[token_key].name,
        )
    return web.json_response(views.approved(tid, decision))


async def cancel(request: web.Request) -> web.Response:
    run = await request.app[runs_key].cancel(thread_id(request), by=request[token_key].name)
    return web.json_response(RUN_OUT.dump(run))


async def list_runs(request: web.Request) -> web.Response:
    q = query(request, RUNS_QUERY)
    store = request.app[services_key].store
    with cursor_errors():
        page = await store.list_runs(**q)
    return web.json_response(
        {
            "runs": RUN_OUT.dump(page.runs, many=True),
            "total": page.total,
            "next_cursor": page.next_cursor,
            "counts": await store.count_by_status(),
        }
    )


async def get_run(request: web.Request) -> web.Response:
    return await status(request)  # the same view; its own name keeps its OpenAPI operationId


async def history(request: web.Request) -> web.Response:
    tid = thread_id(request)
    checkpoints = await request.app[runs_key].checkpoints(tid, query(request, HISTORY_QUERY)["limit"])
    return web.json_response(views.history(tid, checkpoints))


async def logs(request: web.Request) -> web.Response:
    tid = thread_id(request)
    q = query(request, LOGS_QUERY)
    store = request.app[services_key].store
    if await store.get_run(tid) is None:
        raise NotFound(f"no run with thread_id {tid!r}")
    # One row more than asked says whether another page follows; comparing with last_seq instead
    # would call a page with lines stored after it was read "not the last".
    lines = await store.get_logs(tid, after=q["after"], limit=q["limit"] + 1)
    more, lines = len(lines) > q["limit"], lines[: q["limit"]]
    last = max(await store.last_seq(tid), lines[-1]["seq"] if lines else 0)
    next_after = lines[-1]["seq"] if more else None
    full = request[token_key].allows("operator")
    shown = [log_line_for(line, full) for line in lines]
    return web.json_response({"thread_id": tid, "lines": shown, "last_seq": last, "next_after": next_after})


async def workflows(request: web.Request) -> web.Response:
    items = [
        {"name": name, "description": wf.description, "input_schema": schemas.input_json_schema(wf.input_schema)}
        for name, wf in sorted(request.app[runs_key].workflows.items())
    ]
    return web.json_response({"workflows": items})


async def stats(request: web.Request) -> web.Response:
    services = request.app[services_key]
    runs = request.app[runs_key]
    return web.json_response(
        {
            "node": services.node,  # as leases and webhook deliveries name this process
            "uptime_seconds": round(time.monotonic() - request.app[started_key], 3),
            "runs": await services.store.count_by_status(),
            "active_tasks": runs.active,
            "log_lines_written": runs.sink.written,
            "bus": services.bus.status(),
            "retention": services.retention.stats() if services.retention else None,
        }
    )


async def health(request: web.Request) -> web.Response:
    report = request.app[probe_key].report(request)
    return web.json_response(report, status=200 if report["status"] == "healthy" else 503)
