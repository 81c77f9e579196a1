"""Factory for the realtime aiohttp app with the python-socketio server attached."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from app.keys import admin_ns_key, bridge_key, config_key, logs_ns_key, services_key, sio_key, started_key
from app.metrics import metrics_handler
from app.realtime.bridge import Bridge
from app.realtime.health import allow_origins, health, stats
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


async def bridge_ctx(app: web.Application) -> AsyncIterator[None]:
    bridge = app[bridge_key]
    tasks = [
        asyncio.create_task(bridge.run_logs(), name="bridge-logs"),
        asyncio.create_task(bridge.run_admin(), name="bridge-admin"),
    ]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await app[logs_ns_key].subs.close()


async def disconnect_clients(app: web.Application) -> None:
    # AsyncServer.shutdown() does not disconnect clients; without this the runner waits.
    sio = app[sio_key]
    for ns in (app[logs_ns_key], app[admin_ns_key]):
        for sid in list(ns.clients):
            with contextlib.suppress(Exception):
                await sio.disconnect(sid, namespace=ns.namespace)
    await sio.eio.disconnect()  # close the Engine.IO transports too, so no websocket handler lingers
    await sio.shutdown()


def create_realtime_app(services: Services) -> web.Application:
    cfg = services.config.realtime
    origins = cfg.cors_origins
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins="*" if "*" in origins else list(origins),
        ping_interval=cfg.ping_interval,
        ping_timeout=cfg.ping_timeout,
        max_http_buffer_size=cfg.max_message_bytes,
        logger=_library_logger("app.realtime.socketio"),
        engineio_logger=_library_logger("app.realtime.engineio"),
    )
    app = web.Application()
    sio.attach(app)

    async def emit_line(sid: str, line: object) -> None:
        await sio.emit("log", line, to=sid, namespace="/logs")

    subs = Subscriptions(services.store, emit_line, services.config.runs.replay_cap)
    logs_ns, admin_ns = LogsNamespace(subs), AdminNamespace()
    sio.register_namespace(logs_ns)
    sio.register_namespace(admin_ns)

    app[config_key] = services.config
    app[services_key] = services
    app[sio_key] = sio
    app[logs_ns_key] = logs_ns
    app[admin_ns_key] = admin_ns
    app[bridge_key] = Bridge(sio, services.bus, subs, services.metrics)
    app[started_key] = time.monotonic()
    app.router.add_get("/health", health)
    app.router.add_get("/stats", stats)
    app.on_response_prepare.append(allow_origins(origins))
    app.router.add_get("/metrics", metrics_handler(services.metrics))
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
