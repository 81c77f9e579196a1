"""Deleting a thread and exporting everything Beacon keeps of it (what retention will remove)."""

from __future__ import annotations

import dataclasses

import orjson
from aiohttp import web

from app.keys import services_key
from app.names import now_iso
from app.rest import schemas, views
from app.rest.keys import runs_key
from app.rest.middlewares import token_key
from app.rest.parsing import query, thread_id

EXPORT_PAGE = 5000  # log lines read and written per step: a thread of millions streams in bounded memory
EXPORT_CHECKPOINTS = 100_000
AUDIT_QUERY = schemas.AuditQuery()
AUDIT_OUT = schemas.AuditEntryOut()


async def delete_run(request: web.Request) -> web.Response:
    tid = thread_id(request)
    removed = await request.app[runs_key].delete_thread(tid, by=request[token_key].name)
    return web.json_response({"thread_id": tid, "deleted": removed})


async def export_run(request: web.Request) -> web.StreamResponse:
    """One JSON document, streamed: the run, its runs, decisions, checkpoint history, then its log lines."""
    tid = thread_id(request)
    runs = request.app[runs_key]
    store = request.app[services_key].store
    snapshot = await runs.snapshot(tid)  # NotFound before anything is sent
    head = {
        "thread_id": tid,
        "exported_at": now_iso(),
        "run": views.status(snapshot),
        "runs": [dataclasses.asdict(r) for r in await store.list_thread_runs(tid, limit=100_000)],
        "decisions": views.status(snapshot)["decisions"],
        "checkpoints": views.history(tid, await runs.checkpoints(tid, EXPORT_CHECKPOINTS))["checkpoints"],
    }
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.headers["Content-Disposition"] = f'attachment; filename="{tid}.json"'
    await response.prepare(request)
    await response.write(orjson.dumps(head, default=str)[:-1] + b',"logs":[')
    after, first = 0, True
    while lines := await store.get_logs(tid, after=after, limit=EXPORT_PAGE):
        chunk = b",".join(orjson.dumps(line) for line in lines)
        await response.write(chunk if first else b"," + chunk)
        after, first = lines[-1]["seq"], False
    await response.write(b"]}")
    await response.write_eof()
    return response


async def audit(request: web.Request) -> web.Response:
    q = query(request, AUDIT_QUERY)
    entries = await request.app[services_key].store.audit_log(thread_id=q.get("thread_id"), limit=q["limit"])
    return web.json_response({"entries": AUDIT_OUT.dump(entries, many=True)})
