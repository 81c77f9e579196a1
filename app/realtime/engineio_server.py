"""python-engineio's AsyncServer, made cheap per idle socket: pings from one timer, websockets without tasks.

python-engineio 4.15 keeps, per idle websocket, aiohttp's request handler task, a writer task, a
reader task inside `wait_for`, a task sleeping until the next ping and an asyncio.Queue (about 30 KiB
of RSS with aiohttp's request objects). Here:
- every socket's next PING comes from one `Pings` task (python-engineio starts `_send_ping`, a task
  that sleeps one ping interval, per socket per ping);
- a websocket that opens a new connection is served by `websocket.Conn`, an asyncio protocol with no
  task of its own, whose queue writes packets straight to the transport;
- a websocket that arrives on a connection aiohttp already serves (a client reusing a keep-alive
  polling connection) stays on the library's handler, through `AiohttpDriver`.
`wires` maps each websocket's Engine.IO sid to its `Wire`, where the `/logs` fan-out writes directly.

Library internals this relies on are checked in `usable()`; with other versions the hooks stay off
and every socket takes the library's own path.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.metadata
import logging
import time
from typing import Any, Protocol

import engineio
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from engineio.async_socket import AsyncSocket

from app.background import cancel
from app.realtime import websocket

logger = logging.getLogger(__name__)

CHECK_SLACK = 0.05  # seconds past the ping timeout before a silent websocket is closed
TESTED = {"python-engineio": ("4.15.1",), "python-socketio": ("5.18.1",)}


def usable(server: engineio.AsyncServer) -> str | None:
    """None if the library internals used here are the ones this module was written against, else why not."""
    for dist, versions in TESTED.items():
        version = importlib.metadata.version(dist)
        if version not in versions:
            return f"{dist} {version} is not one of the tested versions {versions}"
    if getattr(server, "_async", {}).get("websocket") is not eio_aiohttp.WebSocket:
        return "engineio is not in aiohttp mode"
    if not callable(getattr(AsyncSocket, "_send_ping", None)) or not hasattr(asyncio.Queue(), "_getters"):
        return "engineio socket or asyncio.Queue internals differ"
    return None


class Wire(Protocol):
    """Where the fan-out may write a websocket client's frames itself."""

    transport: Any  # asyncio.WriteTransport

    def ready(self, socket: AsyncSocket) -> bool:
        """True when bytes written now reach the client after every packet sent before them."""
        ...


class AiohttpWire:
    """A websocket on the library's handler: direct writes only while its writer task holds nothing."""

    __slots__ = ("ws", "transport")

    def __init__(self, ws: web.WebSocketResponse, transport: Any) -> None:
        self.ws = ws
        self.transport = transport

    def ready(self, socket: AsyncSocket) -> bool:
        if self.ws.closed or self.transport.is_closing():
            return False
        queue = socket.queue
        if not socket.upgraded or socket.upgrading or not queue.empty():
            return False
        return any(not getter.done() for getter in queue._getters)  # the writer waits on the empty queue


class AiohttpDriver(eio_aiohttp.WebSocket):  # type: ignore[misc]
    """The library's aiohttp websocket driver without permessage-deflate, registering its `Wire`.

    Deflate costs a zlib context per connection (~90 KiB; see README, Performance).
    """

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request: web.Request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        await self._sock.prepare(request)
        self.environ = environ
        socket = getattr(self.handler, "__self__", None)  # the bound AsyncSocket._websocket_handler
        sid = getattr(socket, "sid", None)
        wires: dict[str, Wire] = self.server.wires
        if sid is not None and request.transport is not None:
            wires[sid] = AiohttpWire(self._sock, request.transport)
        try:
            await self.handler(self)
        finally:
            if sid is not None:
                wires.pop(sid, None)
        return self._sock


class Driver:
    """`_async["websocket"]`: accepts on our `Conn` when the request came through one, else aiohttp's driver."""

    def __init__(self, handler: Any, server: EngineIO) -> None:
        self.handler = handler  # the socket's bound AsyncSocket._websocket_handler
        self.server = server

    async def __call__(self, environ: dict[str, Any]) -> Any:
        conn = environ.pop(websocket.CONN, None)
        if conn is None:
            return await AiohttpDriver(self.handler, self.server)(environ)
        conn.accept(self.handler.__self__)
        return websocket.ACCEPTED


def translate_request(request: Any) -> dict[str, Any]:
    if isinstance(request, websocket.Handshake):
        return request.environ()
    return eio_aiohttp.translate_request(request)  # type: ignore[no-any-return]


def make_response(status: str, headers: list[tuple[str, str]], payload: bytes, environ: dict[str, Any]) -> Any:
    if websocket.CONN in environ:
        return websocket.Reply(int(status.split()[0]), headers, payload)
    return eio_aiohttp.make_response(status, headers, payload, environ)


class Pings:
    """Every socket's next PING, and the check that its PONG came, from one task.

    Same behaviour as `AsyncSocket._send_ping`: wait an interval, then (unless the socket is closing)
    stamp `last_ping` and send PING. With one interval (and one timeout) for all sockets, due times
    arrive in the order they are scheduled, so two deques are the whole schedule.

    The check closes a `websocket.Conn` whose client stopped answering: python-engineio's service
    task marks such a socket closed without writing anything, and nothing else would close the
    connection (the library's handler has a read timeout; a Conn has no task to time out).
    """

    def __init__(self, interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self._due: collections.deque[tuple[float, AsyncSocket]] = collections.deque()
        self._checks: collections.deque[tuple[float, AsyncSocket, float]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._nap: asyncio.Future[None] | None = None
        self._until = 0.0
        self._closed = False

    def __len__(self) -> int:
        return len(self._due)

    def add(self, socket: AsyncSocket) -> None:
        if self._closed:
            return
        due = time.monotonic() + self.interval
        self._due.append((due, socket))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="engineio-pings")
        elif due < self._until:
            self._wake()

    def _wake(self) -> None:
        if self._nap is not None and not self._nap.done():
            self._nap.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                await self._ping(self._due.popleft()[1])
            while self._checks and self._checks[0][0] <= now:
                _, socket, stamp = self._checks.popleft()
                if socket.last_ping == stamp or socket.closed:  # no PONG since that PING
                    try:
                        _expire(socket)
                    except Exception:
                        logger.warning("could not close silent Engine.IO socket %s", socket.sid, exc_info=True)
            heads = [queue[0][0] for queue in (self._due, self._checks) if queue]
            self._until = min(heads) if heads else float("inf")
            self._nap = loop.create_future()
            timer = loop.call_later(self._until - time.monotonic(), self._wake) if heads else None
            try:
                await self._nap
            finally:
                if timer is not None:
                    timer.cancel()
                self._nap = None

    async def _ping(self, socket: AsyncSocket) -> None:
        if socket.closing or socket.closed:
            return
        socket.last_ping = stamp = time.time()
        try:
            await socket.send(eio_packet.Packet(eio_packet.PING))
        except Exception:
            logger.warning("could not ping Engine.IO socket %s", socket.sid, exc_info=True)
        self._checks.append((time.monotonic() + self.timeout + CHECK_SLACK, socket, stamp))

    async def close(self) -> None:
        self._closed = True
        await cancel(self._task)
        self._task = None
        self._due.clear()
        self._checks.clear()


def _expire(socket: AsyncSocket) -> None:
    queue = socket.queue
    if isinstance(queue, websocket.DirectQueue):
        queue.conn.expire()


class EngineIO(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wires: dict[str, Wire] = {}
        self.pings = Pings(self.ping_interval, self.ping_timeout)
        self.why_not = usable(self)
        if self.why_not is None:
            hooks: dict[str, Any] = getattr(self, "_async")  # noqa: B009 - the library's table, untyped
            self._async = {
                **hooks,
                "translate_request": translate_request,
                "make_response": make_response,
                "websocket": Driver,
            }
        else:
            logger.warning("Engine.IO on the library's own path (a task per socket and ping): %s", self.why_not)

    @property
    def lean(self) -> bool:
        return self.why_not is None

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        request = args[0] if args else None
        if isinstance(request, web.Request) and request.method == "POST":
            if (request.content_length or 0) > self.max_http_buffer_size:
                return await self._too_large(request.query.get("sid", ""))
        return await super().handle_request(*args, **kwargs)

    async def _too_large(self, sid: str) -> web.Response:
        """413 at once: the library would close the session first, which waits for a poll that never comes."""
        socket = self.sockets.pop(sid, None)
        if socket is not None:
            await socket.close(wait=False, reason=self.reason.TRANSPORT_ERROR)  # a pending poll gets CLOSE
        message = f"a polling payload may be at most {self.max_http_buffer_size} bytes"
        return web.json_response({"error": "too_large", "message": message}, status=413)

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        if self.lean and getattr(target, "__func__", None) is AsyncSocket._send_ping:
            self.pings.add(target.__self__)
            return None  # AsyncSocket.schedule_ping ignores it
        return super().start_background_task(target, *args, **kwargs)

    async def shutdown(self) -> None:
        await super().shutdown()
        await self.pings.close()
