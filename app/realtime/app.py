"""Factory for the realtime aiohttp app with the python-socketio server attached."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable

from aiohttp import web

from app.background import background
from app.keys import config_key, head_timers_key, services_key, started_key
from app.listener import HeadTimers
from app.metrics import metrics_handler
from app.names import SECURITY_HEADERS
from app.realtime.bridge import Bridge
from app.realtime.guard import Guard
from app.realtime.health import allow_origins, health, stats, viewer_only
from app.realtime.hooks.fanout import Fanout
from app.realtime.hooks.socketio import Server
from app.realtime.hooks.websocket import Front
from app.realtime.keys import admin_ns_key, bridge_key, front_key, logs_ns_key, sio_key
from app.realtime.namespaces import AdminNamespace, LogsNamespace
from app.realtime.subscriptions import Subscriptions
from app.services import Services

logger = logging.getLogger(__name__)

def _library_logger(name: str) -> logging.Logger:
    # python-socketio logs every emit at INFO; keep it to warnings unless configured otherwise.
    lib = logging.getLogger(name)
    if lib.level == logging.NOTSET:
        lib.setLevel(logging.WARNING)
    return lib


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


async def bridge_ctx(app: web.Application) -> AsyncIterator[None]:
    bridge = app[bridge_key]
    async with background(
        bridge_logs=bridge.run_logs(), bridge_admin=bridge.run_admin(), fanout_notices=bridge.fanout.run_notices()
    ):
        yield
    await app[logs_ns_key].subs.close()
    await app[logs_ns_key].guard.close()


async def disconnect_clients(app: web.Application) -> None:
    # AsyncServer.shutdown() does not disconnect clients; without this the runner waits.
    sio = app[sio_key]
    for ns in (app[logs_ns_key], app[admin_ns_key]):
        for sid in list(ns.clients):
            with contextlib.suppress(Exception):
                await sio.disconnect(sid, namespace=ns.namespace)
    # Close the Engine.IO transports too, so no websocket handler lingers. Bounded: closing a polling
    # socket whose client went away (a page left mid-handshake) waits for a poll that never comes.
    # python-engineio's disconnect() of no sockets raises ValueError (asyncio.wait of nothing).
    if sio.eio.socket_count():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sio.eio.disconnect(), 2.0)
    await sio.shutdown()
    front = app.get(front_key)
    if front is not None:
        await front.close()


def create_realtime_app(services: Services) -> web.Application:
    cfg = services.config.realtime
    # Where no REST listener runs here (realtime only), the REST nodes' configured port.
    origins = services.origins
    if origins.any:
        logger.warning("SOCKETIO_CORS_ORIGINS is '*': any web site may open Socket.IO connections to Beacon")
    sio = Server(
        connect_timeout=cfg.connect_timeout,
        fast_path=cfg.fast_path,
        namespaces=["/logs", "/admin"],
        async_mode="aiohttp",
        cors_allowed_origins=origins,
        ping_interval=cfg.ping_interval,
        ping_timeout=cfg.ping_timeout,
        max_http_buffer_size=cfg.max_message_bytes,
        send_limit=cfg.send_buffer_bytes,
        logger=_library_logger("app.realtime.socketio"),
        engineio_logger=_library_logger("app.realtime.engineio"),
    )
    timers = HeadTimers(cfg.head_timeout)
    app = web.Application(middlewares=[timers.middleware()])
    sio.attach(app)
    app.router.add_route("*", "/socket.io/", sio.handle_request)  # other methods: Engine.IO's 400, not 405

    fanout = Fanout(sio, services.metrics)
    subs = Subscriptions(services.store, fanout.send, services.config.runs.replay_cap)

    async def disconnect(sid: str, namespace: str) -> None:
        await sio.disconnect(sid, namespace=namespace)

    def close_transport(sid: str, namespace: str) -> Awaitable[None]:
        eio_sid = sio.manager.eio_sid_from_sid(sid, namespace)  # now: the client may leave the namespace
        return sio.eio.disconnect(eio_sid) if eio_sid is not None else asyncio.sleep(0)

    auth = services.config.auth
    guard = Guard(services.auth, auth.max_connections_per_token, auth.subscribe_rate, disconnect, close_transport)
    logs_ns, admin_ns = LogsNamespace(subs, guard), AdminNamespace(guard)
    sio.register_namespace(logs_ns)
    sio.register_namespace(admin_ns)

    app[config_key] = services.config
    app[services_key] = services
    app[head_timers_key] = timers
    app[sio_key] = sio
    app[logs_ns_key] = logs_ns
    app[admin_ns_key] = admin_ns
    app[bridge_key] = Bridge(sio, services.bus, subs, fanout, services.metrics, cfg.batch_interval)
    app[started_key] = time.monotonic()
    if sio.eio.lean:  # websockets on `websocket.Conn`; a client may leave 4× the fan-out's bound unsent
        app[front_key] = Front(sio, hard_limit=4 * cfg.send_buffer_bytes, head_timeout=cfg.head_timeout)
    app.router.add_get("/health", health)
    app.router.add_get("/stats", stats)
    app.on_response_prepare.append(allow_origins(origins))
    app.on_response_prepare.append(security_headers)
    app.router.add_get("/metrics", viewer_only(services.auth, metrics_handler(services.metrics)))
    services.metrics.family(
        "gauge",
        "beacon_socketio_connections",
        "Connected Socket.IO clients by namespace",
        "namespace",
        lambda: {"/logs": len(logs_ns.clients), "/admin": len(admin_ns.clients)},
    )
    app.cleanup_ctx.append(bridge_ctx)
    app.on_shutdown.append(disconnect_clients)
    return app
