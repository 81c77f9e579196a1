"""GET /admin/webhooks: the configured hooks (secrets never shown) and the delivery log."""

from __future__ import annotations

from dataclasses import asdict

import orjson
from aiohttp import web

from app.keys import services_key
from app.rest import schemas
from app.rest.parsing import cursor_errors, query
from app.webhooks import redact

QUERY = schemas.WebhooksQuery()


async def webhooks(request: web.Request) -> web.Response:
    q = query(request, QUERY)
    services = request.app[services_key]
    with cursor_errors():
        deliveries, next_cursor = await services.store.list_deliveries(**q)
    hooks = [
        {
            "url": redact(h.url),
            "events": list(h.events),
            "timeout": h.timeout,
            "attempts": h.attempts,
            "backoff": h.backoff,
        }
        for h in services.config.webhooks
    ]
    log = [{**{k: v for k, v in asdict(d).items() if k != "body"}, "payload": orjson.loads(d.body)} for d in deliveries]
    backlog = services.webhooks.backlog if services.webhooks else 0
    return web.json_response({"hooks": hooks, "deliveries": log, "next_cursor": next_cursor, "backlog": backlog})
