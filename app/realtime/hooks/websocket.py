"""Engine.IO websockets served straight from asyncio: one protocol object per connection, no task.

Every connection to the realtime port starts at `Conn`. It reads the request head with wsproto (h11
underneath). A websocket upgrade of the Socket.IO path goes to python-engineio as usual (origin check,
handshake, `connect`), whose websocket driver then calls `Conn.accept`: from there this object frames
and parses the websocket itself, the Engine.IO socket's queue writes to the transport (`DirectQueue`),
and received packets go to the socket in order, from a task that exists only while some wait. Any
other request (health, metrics, polling, anything wsproto or this path does not accept) is handed,
bytes and all, to aiohttp's own protocol for that connection, which answers as if it had read them.

Bounds: the request head must arrive within `head_timeout`; a message may be at most the Engine.IO
`max_http_buffer_size`. Back-pressure comes from the transport: past `send_limit` unsent bytes it
calls `pause_writing` (the `/logs` fan-out then skips the client), and `resume_writing` once under a
quarter of that; a client that stops reading is disconnected once `hard_limit` bytes wait unsent.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import struct
import urllib.parse
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp.tcp_helpers import tcp_keepalive
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError

from app.background import Tasks
from app.names import SECURITY_HEADERS

logger = logging.getLogger(__name__)

CONN = "beacon.websocket"  # environ key of the Conn a handshake came through
ACCEPTED = object()  # what the Engine.IO driver returns once a Conn took the websocket
MAX_HEAD = 16 * 1024  # a longer head is aiohttp's to answer (h11's own bound is the same)
MAX_EARLY = 64 * 1024  # bytes a client may send before its handshake is answered
CLOSE_TIMEOUT = 5.0  # seconds a closing websocket waits for the client's close frame
MAX_INBOX = 256  # received packets waiting for their handler before reading pauses
HEADERS = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]  # as wsproto takes them

HEAD_END = re.compile(rb"\n\r?\n")  # the blank line that ends a request head, as h11 finds it

HEAD, HANDSHAKE, PROBE, UPGRADE, OPEN, CLOSING, CLOSED = range(7)


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final websocket text frame (RFC 6455 §5.2), as a server sends it."""
    return _frame(0x81, payload)


def binary_frame(payload: bytes) -> bytes:
    return _frame(0x82, payload)


def _frame(first: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


def packet_frame(pkt: eio_packet.Packet) -> bytes:
    data = pkt.encode()
    return text_frame(data.encode()) if isinstance(data, str) else binary_frame(data)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer Engine.IO gave instead of a websocket (its `make_response` for our requests)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Handshake:
    """The request Engine.IO sees for a websocket upgrade read by a Conn (its `translate_request` input)."""

    def __init__(self, conn: Conn, request: Request) -> None:
        self.conn = conn
        self.request = request

    def environ(self) -> dict[str, Any]:
        target = self.request.target
        path, _, query = target.partition("?")
        peer = self.conn.transport.get_extra_info("peername") if self.conn.transport else None
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "QUERY_STRING": query,
            "RAW_URI": target,
            "PATH_INFO": urllib.parse.unquote(path),
            "SCRIPT_NAME": "",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_SOFTWARE": "beacon",
            "REMOTE_ADDR": str(peer[0]) if peer else "",
            "HTTP_HOST": self.request.host,
            CONN: self.conn,
        }
        for name, value in self.request.extra_headers:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            text = value.decode("latin-1")
            environ[key] = f"{environ[key]},{text}" if key in environ else text
        environ["wsgi.url_scheme"] = environ.get("HTTP_X_FORWARDED_PROTO", "http")
        return environ


class DirectQueue:
    """Stands in for an Engine.IO socket's asyncio.Queue once its websocket is open: a put is a write."""

    __slots__ = ("conn",)

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def put(self, pkt: eio_packet.Packet | None) -> None:
        self.put_nowait(pkt)

    def put_nowait(self, pkt: eio_packet.Packet | None) -> None:
        if pkt is not None:
            self.conn.send_packet(pkt)

    def get_nowait(self) -> None:
        raise asyncio.QueueEmpty

    async def get(self) -> None:  # only a polling GET reads the queue, and it never does once upgraded
        raise asyncio.QueueEmpty

    def task_done(self) -> None:
        pass

    async def join(self) -> None:
        pass

    def empty(self) -> bool:
        return True

    def qsize(self) -> int:
        return 0


class Front:
    """The realtime listener's connection factory and the set of websockets it serves."""

    def __init__(self, sio: Any, hard_limit: int, head_timeout: float = 15.0, path: str = "socket.io") -> None:
        self.sio = sio
        self.eio = sio.eio
        self.send_limit: int = sio.eio.send_limit
        self.hard_limit = hard_limit
        self.head_timeout = head_timeout
        self.path = "/" + path.strip("/") + "/"
        self.conns: set[Conn] = set()
        self.tasks = Tasks()
        self.http: Callable[[], asyncio.Protocol] | None = None  # aiohttp's protocol factory (web.Server)

    def protocol(self) -> Conn:
        return Conn(self)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        return self.tasks.spawn(coro)

    async def close(self) -> None:
        """Close every connection still open (Engine.IO has sent its CLOSE packets by now)."""
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.close()
        await self.tasks.close()


class Conn(asyncio.Protocol):
    __slots__ = ("front", "transport", "state", "raw", "hs", "ws", "socket", "parts", "size", "inbox", "worker",
                 "timer", "warned", "paused")

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: Any = None
        self.state = HEAD
        self.raw: bytearray | None = bytearray()
        self.hs: H11Handshake | None = H11Handshake(ConnectionType.SERVER)
        self.ws: Connection | None = None
        self.socket: Any = None
        self.parts: list[Any] | None = None  # a fragmented message so far
        self.size = 0
        self.inbox: collections.deque[eio_packet.Packet] | None = None
        self.worker: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.warned = False
        self.paused = False  # the transport holds more than its high-water mark unsent

    # -- the connection

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.front.conns.add(self)
        tcp_keepalive(transport)  # as aiohttp does: a peer that vanishes without FIN or RST is found
        self.timer = asyncio.get_running_loop().call_later(self.front.head_timeout, transport.abort)

    def data_received(self, data: bytes) -> None:
        if self.state >= PROBE:
            if self.state != CLOSED and self.ws is not None and self.ws.state != ConnectionState.CLOSED:
                self.ws.receive_data(data)
                self._events()
        elif self.state == HEAD:
            self._head(data)
        else:  # HANDSHAKE: early bytes, read once the websocket is accepted
            assert self.raw is not None
            self.raw += data
            if len(self.raw) > MAX_EARLY:
                self.transport.abort()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = CLOSED
        self._cancel_timer()
        self.front.conns.discard(self)
        socket, self.socket = self.socket, None
        if socket is None:
            return
        if self.front.eio.wires.get(socket.sid) is self:
            del self.front.eio.wires[socket.sid]
        queue = socket.queue
        if not (isinstance(queue, DirectQueue) and queue.conn is self):  # an upgrade that failed: still polling
            socket.upgrading = False
            return
        self.front.spawn(self._gone(socket))

    async def _gone(self, socket: Any) -> None:
        if not socket.closed:
            await socket.close(wait=False, abort=True, reason=self.front.eio.reason.TRANSPORT_CLOSE)
        if self.front.eio.sockets.get(socket.sid) is socket:
            del self.front.eio.sockets[socket.sid]

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- the request head

    def _head(self, data: bytes) -> None:
        assert self.raw is not None and self.hs is not None
        self.raw += data
        try:
            self.hs.receive_data(data)
            request = next((e for e in self.hs.events() if isinstance(e, Request)), None)
        except Exception:  # not a websocket handshake wsproto accepts: aiohttp answers it
            self._hand_off()
            return
        if request is None:
            if len(self.raw) > MAX_HEAD:
                self._hand_off()
            return
        path, _, query = request.target.partition("?")
        if path != self.front.path or urllib.parse.parse_qs(query).get("transport") != ["websocket"]:
            self._hand_off()
            return
        self.state = HANDSHAKE
        end = HEAD_END.search(self.raw)
        self.raw = bytearray(self.raw[end.end() :] if end else b"")  # early frames, read once accepted
        self.front.spawn(self._handshake(request))

    def _hand_off(self) -> None:
        """aiohttp serves this connection from its first byte on."""
        assert self.front.http is not None and self.raw is not None
        self._cancel_timer()
        self.front.conns.discard(self)
        raw, self.raw, self.hs = bytes(self.raw), None, None
        self.state = CLOSED
        http = self.front.http()
        self.transport.set_protocol(http)
        http.connection_made(self.transport)
        if raw:
            http.data_received(raw)

    async def _handshake(self, request: Request) -> None:
        try:
            reply = await self.front.sio.handle_request(Handshake(self, request))
        except Exception:
            logger.exception("websocket handshake failed")
            reply = Reply(500, [("Content-Type", "application/json")], b'{"error": "internal"}')
        if self.state == HANDSHAKE and not self.transport.is_closing():  # not accepted
            if not isinstance(reply, Reply):
                reply = Reply(400, [("Content-Type", "text/plain")], b"Bad Request")
            self._reject(reply)

    def _reject(self, reply: Reply) -> None:
        assert self.hs is not None
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
        headers += [*HEADERS, (b"Content-Length", str(len(reply.body)).encode()), (b"Connection", b"close")]
        data = self.hs.send(RejectConnection(status_code=reply.status, headers=headers, has_body=True))
        data += self.hs.send(RejectData(data=reply.body, body_finished=True))
        self.transport.write(data)
        self.state = CLOSED
        self.transport.close()

    def accept(self, socket: Any) -> None:
        """Engine.IO accepted the websocket for `socket`: answer 101 and take it over."""
        assert self.hs is not None and self.raw is not None
        if self.transport.is_closing():  # the client left during the handshake
            if not socket.connected:
                self.front.spawn(self._gone(socket))
            return
        if socket.upgrading or socket.closed:
            self._reject(Reply(400, [("Content-Type", "text/plain")], b"Bad Request: an upgrade is under way"))
            return
        self.socket = socket
        limit = self.front.send_limit  # pause past the fan-out's bound, resume under a quarter (hysteresis)
        self.transport.set_write_buffer_limits(high=limit, low=limit // 4)
        self.transport.write(self.hs.send(AcceptConnection(extra_headers=HEADERS)))
        self.ws, self.hs = self.hs.connection, None
        self._cancel_timer()
        early, self.raw = bytes(self.raw), None
        if socket.connected:  # polling until now: the probe first (Engine.IO v4 upgrade), in bounded time
            socket.upgrading = True
            self.state = PROBE
            self.timer = asyncio.get_running_loop().call_later(self.front.eio.ping_timeout, self.close)
        else:
            socket.connected = True
            self._open()
        if early:
            self.data_received(early)

    def accept_and_close(self) -> None:
        """Answer 101, then close at once: a websocket for a session that has (or is getting) one."""
        assert self.hs is not None
        self.transport.write(self.hs.send(AcceptConnection(extra_headers=HEADERS)))
        self.ws, self.hs, self.raw = self.hs.connection, None, None
        self._cancel_timer()
        self.state = OPEN  # only for close(): no socket is attached
        self.close(1000)

    def _open(self) -> None:
        socket = self.socket
        self._cancel_timer()
        if socket.closed:  # closed by the server during the upgrade
            self.close(1000)
            return
        socket.upgraded, socket.upgrading = True, False
        held, socket.queue = socket.queue, DirectQueue(self)
        self.state = OPEN
        self.front.eio.wires[socket.sid] = self
        while not held.empty():  # what was sent before (the OPEN packet, or what came during the upgrade)
            pkt = held.get_nowait()
            if pkt is not None:
                self.send_packet(pkt)
        if any(not getter.done() for getter in held._getters):  # a poll still waits: let it end
            held.put_nowait(eio_packet.Packet(eio_packet.NOOP))

    # -- receiving

    def _events(self) -> None:
        try:
            self._read_events()
        except LocalProtocolError:  # wsproto refused what we meant to send: the state is not what we think
            logger.warning("websocket protocol state error with %s", self.transport.get_extra_info("peername"))
            self.transport.abort()

    def _read_events(self) -> None:
        assert self.ws is not None
        for event in self.ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                self._message(event)
            elif isinstance(event, Ping):
                if self.ws.state == ConnectionState.OPEN:  # not once our close is sent
                    self.transport.write(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self.ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                    self.transport.write(self.ws.send(event.response()))
                self.transport.close()
                return
            if self.state == CLOSED or self.transport.is_closing():
                return

    def _message(self, event: TextMessage | BytesMessage) -> None:
        if self.state >= CLOSING:  # closing: only the client's close frame matters now
            return
        self.size += len(event.data)
        if self.size > self.front.eio.max_http_buffer_size:
            self.close(1009)  # message too big
            return
        if not event.message_finished:
            if self.parts is None:
                self.parts = []
            self.parts.append(event.data)
            return
        data: Any = event.data
        if self.parts is not None:
            self.parts.append(data)
            data = "".join(self.parts) if isinstance(data, str) else b"".join(self.parts)
            self.parts = None
        self.size = 0
        try:
            pkt = eio_packet.Packet(encoded_packet=data)
        except Exception:
            self._warn("undecodable Engine.IO packet")
            self.close(1003)
            return
        self._packet(pkt)

    def _packet(self, pkt: eio_packet.Packet) -> None:
        socket = self.socket
        if self.state == PROBE:
            if pkt.packet_type == eio_packet.PING and pkt.data == "probe":
                self.transport.write(packet_frame(eio_packet.Packet(eio_packet.PONG, data="probe")))
                socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
                self.state = UPGRADE
            else:
                self.close(1000)
        elif self.state == UPGRADE:
            if pkt.packet_type == eio_packet.UPGRADE:
                self._open()
            else:
                self.close(1000)
        elif self.state == OPEN:
            if pkt.packet_type == eio_packet.PONG:  # what AsyncSocket.receive does for a PONG, without a task
                socket.schedule_ping()
                return
            if self.inbox is None:
                self.inbox = collections.deque()
            self.inbox.append(pkt)
            if len(self.inbox) >= MAX_INBOX:
                self.transport.pause_reading()
            if self.worker is None:
                self.worker = asyncio.ensure_future(self._work())

    async def _work(self) -> None:
        """Hand received packets to the Engine.IO socket, in order; ends when none wait."""
        inbox = self.inbox
        assert inbox is not None
        try:
            while inbox and self.socket is not None:
                pkt = inbox.popleft()
                if len(inbox) == MAX_INBOX // 2 and not self.transport.is_closing():
                    self.transport.resume_reading()
                try:
                    await self.socket.receive(pkt)
                    if pkt.packet_type == eio_packet.CLOSE:  # the library closes the socket, not the websocket
                        self.close(1000)
                        break
                except eio_exceptions.UnknownPacketError:
                    self._warn("unknown Engine.IO packet type")
                except eio_exceptions.SocketIsClosedError:
                    self.close(1000)
                    break
                except Exception:
                    logger.exception("Engine.IO receive error on %s", getattr(self.socket, "sid", "?"))
        finally:
            self.worker = None
            if self.inbox is not None and not self.inbox:
                self.inbox = None

    def _warn(self, what: str) -> None:
        if not self.warned:  # one line per connection, however much it sends
            self.warned = True
            logger.warning("%s from %s", what, self.transport.get_extra_info("peername"))

    # -- sending

    def ready(self, socket: Any) -> bool:
        """Wire protocol for the fan-out: direct writes keep order once the websocket is open."""
        return self.state == OPEN and not self.transport.is_closing()

    def send_packet(self, pkt: eio_packet.Packet) -> None:
        if self.state != OPEN or self.transport.is_closing():
            return
        self.transport.write(packet_frame(pkt))
        if pkt.packet_type == eio_packet.CLOSE:
            self.close(1000)
        elif self.paused and self.transport.get_write_buffer_size() > self.front.hard_limit:  # sized only when slow
            logger.warning(
                "disconnecting Engine.IO socket %s: over %d bytes unsent (the client stopped reading)",
                self.socket.sid,
                self.front.hard_limit,
            )
            self.transport.abort()

    def expire(self) -> None:
        """The client stopped answering pings: close the socket (if the library did not) and say so."""
        socket = self.socket
        if socket is None or self.state != OPEN:
            return
        if not socket.closed:
            self.front.spawn(socket.close(wait=False, abort=True, reason=self.front.eio.reason.PING_TIMEOUT))
        self.send_packet(eio_packet.Packet(eio_packet.CLOSE))

    def close(self, code: int = 1000) -> None:
        """Start the websocket closing handshake; the client has CLOSE_TIMEOUT to answer."""
        if self.state in (CLOSING, CLOSED) or self.ws is None:
            return
        if self.state in (PROBE, UPGRADE):  # no upgrade: the client goes on polling
            self.socket.upgrading = False
        self.state = CLOSING
        self._cancel_timer()
        self.transport.resume_reading()  # to read the client's close frame even if the inbox paused us
        if self.ws.state == ConnectionState.OPEN and not self.transport.is_closing():
            self.transport.write(self.ws.send(CloseConnection(code=code)))
            self.timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.transport.abort)
        else:
            self.transport.close()
