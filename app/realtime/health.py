"""`GET /health` (the seed's JSON, exactly) and `GET /stats` on the realtime listener."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from app.auth import Auth, Denied, request_secret
from app.keys import services_key, started_key
from app.origins import Origins
from app.realtime.hooks.engineio import EngineIO
from app.realtime.hooks.websocket import Conn
from app.realtime.keys import admin_ns_key, bridge_key, logs_ns_key, sio_key


def _port(request: web.Request) -> int:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else 0


async def health(request: web.Request) -> web.Response:
    logs, admin = len(request.app[logs_ns_key].clients), len(request.app[admin_ns_key].clients)
    # The seed's keys, exactly; only `status` (and the code) change while the bus is down.
    healthy = request.app[services_key].bus.status().get("connected", False)
    return web.json_response(
        {
            "status": "healthy" if healthy else "degraded",
            "service": "socketio",
            "port": _port(request),
            "connections": {
                "log_connections": logs,
                "admin_connections": admin,
                "total_connections": logs + admin,
            },
        },
        status=200 if healthy else 503,
    )


async def stats(request: web.Request) -> web.Response:
    app = request.app
    logs, admin, bridge = app[logs_ns_key], app[admin_ns_key], app[bridge_key]
    retention = app[services_key].retention
    return web.json_response(
        {
            "node": app[services_key].node,
            "port": _port(request),
            "uptime_seconds": round(time.monotonic() - app[started_key], 3),
            "namespaces": {
                "/logs": {
                    "connections": len(logs.clients),
                    "subscriptions": logs.subs.count(),
                    "firehose": sum(
                        1 for sid in logs.clients if not logs.subs.has(sid) and sid not in logs.no_firehose
                    ),
                },
                "/admin": {"connections": len(admin.clients)},
            },
            "events_sent": {"log_lines": bridge.lines, "admin_events": bridge.admin_events},
            "gaps_filled": logs.subs.gaps_filled,
            # /logs delivery: direct frames vs the library's queue; lines skipped for clients that stopped reading
            "fanout": {
                "fast_path": bridge.fanout.enabled,
                "batches": bridge.batches,  # fast lines go out in batches, one per realtime.batch_interval
                "lines_per_s": round(bridge.rate(), 1),  # lately: above two per interval they are batched
                "direct_frames": bridge.fanout.direct,
                "queued_packets": bridge.fanout.queued,
            },
            # websockets on `websocket.Conn` vs on python-engineio's own handler (a reused keep-alive connection)
            "websockets": _websockets(app[sio_key].eio),
            "slow_consumers": {
                "lines_dropped": bridge.fanout.dropped,
                "clients_lagging": bridge.fanout.lagging,
                "notices_sent": bridge.fanout.notices,
            },
            "bus_lag_ms": None if bridge.lag_ms is None else round(bridge.lag_ms, 3),
            "bus": app[services_key].bus.status(),
            # What this process's retention passes removed (None on a realtime-only process: no runs here).
            "retention": retention.stats() if retention else None,
        }
    )


def _websockets(eio: EngineIO) -> dict[str, int]:
    direct = sum(1 for wire in eio.wires.values() if isinstance(wire, Conn))
    return {
        "direct": direct,
        "library": len(eio.wires) - direct,
        "engineio_sockets": eio.socket_count(),  # every transport, open or closing
        "pings_scheduled": len(eio.pings),
    }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def viewer_only(auth: Auth, handler: Handler) -> Handler:
    """The REST listener's rule for `/metrics`, here too: a viewer token (or above) when auth is on."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            auth.check(request_secret(request.headers), "viewer")
        except Denied as exc:
            status, message = (401, "a viewer token is required") if exc.reason == "unauthorized" else (403, "")
            body = {"error": exc.reason, "message": message or "this needs the viewer role or above"}
            return web.json_response(body, status=status, headers={"WWW-Authenticate": 'Bearer realm="beacon"'})
        return await handler(request)

    return guarded


def allow_origins(origins: Origins) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """Let the admin UI, served from another origin, read /health and /stats."""

    async def allow(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin and request.path in ("/health", "/stats") and origins(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"

    return allow
