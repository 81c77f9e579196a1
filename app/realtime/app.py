"""Factory for the realtime aiohttp app with the python-socketio server attached."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import socketio
from aiohttp import web
from socketio import packet as socketio_packet

from app.background import background
from app.keys import config_key, head_timers_key, services_key, started_key
from app.listener import HeadTimers
from app.metrics import metrics_handler
from app.names import SECURITY_HEADERS
from app.realtime.bridge import Bridge
from app.realtime.engineio_server import EngineIO
from app.realtime.fanout import Fanout
from app.realtime.guard import Guard
from app.realtime.health import allow_origins, health, stats, viewer_only
from app.realtime.keys import admin_ns_key, bridge_key, front_key, logs_ns_key, sio_key
from app.realtime.namespaces import AdminNamespace, LogsNamespace
from app.realtime.subscriptions import Subscriptions
from app.realtime.websocket import Front
from app.services import Services

logger = logging.getLogger(__name__)

# What a client may send (Socket.IO v5): CONNECT, DISCONNECT, EVENT, ACK and their binary forms.
ACCEPTED_PACKETS = frozenset(
    (
        socketio_packet.CONNECT,
        socketio_packet.DISCONNECT,
        socketio_packet.EVENT,
        socketio_packet.ACK,
        socketio_packet.BINARY_EVENT,
        socketio_packet.BINARY_ACK,
    )
)


def _library_logger(name: str) -> logging.Logger:
    # python-socketio logs every emit at INFO; keep it to warnings unless configured otherwise.
    lib = logging.getLogger(name)
    if lib.level == logging.NOTSET:
        lib.setLevel(logging.WARNING)
    return lib


class Server(socketio.AsyncServer):
    def __init__(self, *, connect_timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connect_timeout = connect_timeout

    def _engineio_server_class(self) -> type[EngineIO]:
        return EngineIO

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> None:
        await super()._handle_eio_connect(eio_sid, environ)
        asyncio.get_running_loop().call_later(self.connect_timeout, self._check_joined, eio_sid, environ)

    def _check_joined(self, eio_sid: str, environ: dict[str, Any]) -> None:
        """A connection that joined no namespace in time holds a socket for nothing: close it."""
        if self.environ.get(eio_sid) is not environ:
            return  # gone already
        if not any(self.manager.sid_from_eio_sid(eio_sid, ns) for ns in self.namespace_handlers):
            self.logger.info("closing %s: no namespace joined within %ss", eio_sid, self.connect_timeout)
            self.start_background_task(self.eio.disconnect, eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: object) -> None:
        await super()._handle_eio_disconnect(eio_sid, reason)
        if reason == self.reason.CLIENT_DISCONNECT:  # the client's CLOSE packet
            self.eio.end_websocket(eio_sid)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: object) -> None:
        if (namespace or "/") not in self.namespace_handlers:  # Socket.IO v5: the error is an object
            error = {"message": "Invalid namespace"}
            pkt = self.packet_class(socketio_packet.CONNECT_ERROR, data=error, namespace=namespace or "/")
            await self._send_packet(eio_sid, pkt)
            return
        await super()._handle_connect(eio_sid, namespace, data)

    async def _handle_eio_message(self, eio_sid: str, data: object) -> None:
        # Decoded here first, so that a packet the library cannot read closes its connection with
        # one warning instead of a traceback per packet.
        if isinstance(data, str):  # bytes are the attachments of a binary packet the library holds
            try:
                pkt = self.packet_class(encoded_packet=data)
            except Exception:
                await self._malformed(eio_sid, "undecodable")
                return
            if pkt.packet_type not in ACCEPTED_PACKETS:
                await self._malformed(eio_sid, "unexpected type")
                return
        await super()._handle_eio_message(eio_sid, data)

    async def _handle_event(self, eio_sid: str, namespace: str, id: int | None, data: object) -> None:
        # A client may not fire `connect`/`disconnect` handlers itself, nor name an event with a non-string.
        if not isinstance(data, list) or not data or not isinstance(data[0], str) or data[0] in self.reserved_events:
            await self._malformed(eio_sid, "not an event")
            return
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _malformed(self, eio_sid: str, what: str) -> None:
        environ = self.environ.pop(eio_sid, None)
        if environ is None:  # closed already, for a packet that came before this one
            return
        self.logger.warning("closing %s from %s: malformed packet (%s)", eio_sid, environ.get("REMOTE_ADDR"), what)
        # Not awaited here: closing a polling socket waits for its next GET, and this runs in a POST.
        self.start_background_task(self.eio.disconnect, eio_sid)


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
        logger=_library_logger("app.realtime.socketio"),
        engineio_logger=_library_logger("app.realtime.engineio"),
    )
    timers = HeadTimers(cfg.head_timeout)
    app = web.Application(middlewares=[timers.middleware()])
    sio.attach(app)
    app.router.add_route("*", "/socket.io/", sio.handle_request)  # other methods: Engine.IO's 400, not 405

    fanout = Fanout(sio, services.metrics, limit=cfg.send_buffer_bytes)
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
    app[bridge_key] = Bridge(sio, services.bus, subs, fanout, services.metrics)
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
