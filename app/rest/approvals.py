"""GET /admin/approvals: every pending approval across threads, oldest first."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from app.keys import services_key
from app.rest import schemas
from app.rest.parsing import cursor_errors, query
from app.store import Approval

APPROVALS_QUERY = schemas.ApprovalsQuery()


async def list_approvals(request: web.Request) -> web.Response:
    q = query(request, APPROVALS_QUERY)
    with cursor_errors():
        page = await request.app[services_key].store.list_approvals(**q)
    now = time.time()
    return web.json_response(
        {"approvals": [_out(a, now) for a in page.approvals], "total": page.total, "next_cursor": page.next_cursor}
    )


def _out(a: Approval, now: float) -> dict[str, Any]:
    return {
        "thread_id": a.thread_id,
        "workflow": a.workflow,
        "interrupt_id": a.interrupt_id,
        "value": a.value,
        "waiting_since": a.waiting_since,
        "deadline": a.deadline_at,
        "default_action": a.default_action,
        # Relative to this answer, so a client with a wrong clock still counts down correctly.
        "seconds_left": None if a.deadline is None else round(max(0.0, a.deadline - now), 3),
    }
