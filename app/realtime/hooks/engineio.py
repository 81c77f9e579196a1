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
import json
import logging
import time
import urllib.parse
from typing import Any, Protocol

import engineio
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from engineio.async_socket import AsyncSocket

from app.background import cancel
from app.realtime.hooks import websocket

logger = logging.getLogger(__name__)

CHECK_SLACK = 0.05  # seconds past the ping timeout before a silent websocket is closed
SEND_LIMIT = 1 << 20  # a websocket's transport pauses (back-pressure) past this many unsent bytes
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

    @property
    def paused(self) -> bool:
        """The transport asked for no more writes: over `send_limit` unsent, not yet back under a quarter."""
        ...

    def ready(self, socket: AsyncSocket) -> bool:
        """True when bytes written now reach the client after every packet sent before them."""
        ...


class AiohttpWire:
    """A websocket on the library's handler: direct writes only while its writer task holds nothing."""

    __slots__ = ("ws", "transport", "protocol")

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, limit: int) -> None:
        transport: Any = request.transport  # not None: the driver checked
        transport.set_write_buffer_limits(high=limit, low=limit // 4)
        self.ws = ws
        self.transport = transport
        self.protocol = request.protocol  # aiohttp's, whose pause_writing/resume_writing set `writing_paused`

    @property
    def paused(self) -> bool:
        return bool(self.protocol.writing_paused)

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
            wires[sid] = AiohttpWire(self._sock, request, self.server.send_limit)
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


class OpenQueue(asyncio.Queue[Any]):
    """A socket's queue that sends the OPEN packet's ping settings in milliseconds, as configured.

    python-engineio 4.15 computes `int(ping_interval) * 1000`: 0.3 s would be announced as 0.
    """

    def __init__(self, interval: float, timeout: float) -> None:
        super().__init__()
        self.interval, self.timeout = interval, timeout

    def put_nowait(self, item: Any) -> None:
        if isinstance(item, eio_packet.Packet) and item.packet_type == eio_packet.OPEN and isinstance(item.data, dict):
            item.data["pingInterval"] = round(self.interval * 1000)
            item.data["pingTimeout"] = round(self.timeout * 1000)
        super().put_nowait(item)


ERRORS = {0: "Transport unknown", 1: "Session ID unknown", 2: "Bad handshake method", 3: "Bad request"}


def _describe(request: Any) -> tuple[str, dict[str, str], bool]:
    """(method, query, whether it asks for a websocket) of an aiohttp request or a Conn's handshake."""
    if isinstance(request, websocket.Handshake):
        query = urllib.parse.parse_qs(request.request.target.partition("?")[2])
        return "GET", {k: v[0] for k, v in query.items()}, True
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    return request.method, {k: request.query[k] for k in request.query}, upgrade


def _refuse(request: Any, code: int) -> Any:
    """Node's engine.io error answer: 400 and `{"code", "message"}`."""
    body = json.dumps({"code": code, "message": ERRORS[code]}).encode()
    if isinstance(request, websocket.Handshake):
        return websocket.Reply(400, [("Content-Type", "application/json")], body)
    return web.Response(status=400, body=body, content_type="application/json")


async def _accept_and_close(request: Any) -> Any:
    if isinstance(request, websocket.Handshake):
        request.conn.accept_and_close()
        return websocket.ACCEPTED
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close()
    return ws


def queued_bytes(socket: AsyncSocket) -> int:
    """The text and binary bytes waiting in a socket's asyncio.Queue (its `_queue` deque)."""
    return sum(len(p.data) for p in socket.queue._queue if isinstance(p.data, (str, bytes)))


def end_websocket(socket: AsyncSocket) -> None:
    """Close a closed socket's websocket on the library's handler (a Conn closes its own).

    python-engineio 4.15 sends CLOSE and then keeps reading until the client hangs up or a ping
    times out; ending its writer task closes the websocket now, as Engine.IO v4 expects.
    """
    if socket.upgraded and not isinstance(socket.queue, websocket.DirectQueue):
        socket.queue.put_nowait(None)


def _expire(socket: AsyncSocket) -> None:
    queue = socket.queue
    if isinstance(queue, websocket.DirectQueue):
        queue.conn.expire()


class EngineIO(engineio.AsyncServer):  # type: ignore[misc]
    def __init__(self, fast_path: bool = True, send_limit: int = SEND_LIMIT, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.send_limit = send_limit
        self.wires: dict[str, Wire] = {}
        self.pings = Pings(self.ping_interval, self.ping_timeout)
        self.why_not = usable(self) if fast_path else "realtime.fast_path is off"
        if self.why_not is None:
            hooks: dict[str, Any] = getattr(self, "_async")  # noqa: B009 - the library's table, untyped
            self._async = {
                **hooks,
                "translate_request": translate_request,
                "make_response": make_response,
                "websocket": Driver,
            }
        elif fast_path:
            logger.warning("Engine.IO on the library's own path (a task per socket and ping): %s", self.why_not)

    def socket_count(self) -> int:
        return len(self.sockets)

    @property
    def lean(self) -> bool:
        return self.why_not is None

    def create_queue(self, *args: Any, **kwargs: Any) -> asyncio.Queue[Any]:
        return OpenQueue(self.ping_interval, self.ping_timeout)

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        """Engine.IO v4 where python-engineio 4.15 answers otherwise; the rest is the library's."""
        request = args[0]
        method, query, upgrade = _describe(request)
        sid = query.get("sid")
        socket = self.sockets.get(sid) if sid else None
        if method not in ("GET", "POST", "OPTIONS"):
            return _refuse(request, 3 if sid else 2)  # "Bad request" / "Bad handshake method"
        if method == "OPTIONS":
            return await super().handle_request(*args, **kwargs)
        if sid is None and "transport" not in query:
            return _refuse(request, 0)  # "Transport unknown", where the library assumes polling
        if socket is not None and socket.closed:  # closed by a ping timeout or the client: gone
            del self.sockets[sid]
            return _refuse(request, 1)  # "Session ID unknown"
        if socket is not None and upgrade and (socket.upgraded or socket.upgrading):
            return await _accept_and_close(request)  # as Node's engine.io does with a second websocket
        if method == "POST" and isinstance(request, web.Request):
            if (request.content_length or 0) > self.max_http_buffer_size:
                return await self._too_large(request.query.get("sid", ""))
        response = await super().handle_request(*args, **kwargs)
        if method == "POST" and socket is not None and socket.closed:
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # the client's CLOSE: a pending poll ends
        return response

    async def disconnect(self, sid: str | None = None) -> None:
        socket = self.sockets.get(sid) if sid is not None else None
        await super().disconnect(sid)
        if socket is not None:
            end_websocket(socket)

    def end_websocket(self, sid: str) -> None:
        socket = self.sockets.get(sid)
        if socket is not None:
            end_websocket(socket)

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
