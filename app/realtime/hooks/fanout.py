"""The `/logs` fast path: encode a line once, write the same websocket frame to every client, bounded.

python-socketio sends a room emit as one task per recipient that queues the packet for a per-socket
writer task, which wakes and frames it: ~50 µs of CPU per delivery. Server-to-client frames are not
masked, so one line's frame is the same bytes for every recipient. Here a bus batch is encoded once
and each websocket client gets it in one `transport.write` (per ~PIECE bytes). Per-socket order holds: we
write directly only when the socket's `Wire` is ready (a `websocket.Conn` writes every packet
straight away; on the library's handler, its writer must be parked on an empty queue); otherwise the
packets go through the library's queue, behind the rest.

Slow consumers (TESTPLAN D9): back-pressure comes from the transport. A websocket's transport
pauses its protocol once more than `limit` bytes wait unsent (what the kernel did not take; the
Engine.IO server's `send_limit`) and resumes it under a quarter of that, so a client is skipped
while paused, and the lines it misses are counted per thread: its memory is bounded by about `limit`
+ one piece of a bus batch (+ the kernel's socket buffer, up to 4 MiB on Linux, outside our RSS).
Where packets go through the library's queue instead (polling, an upgrade), a client is skipped past
`max_queue` packets holding more than `limit` bytes.
Once it is back under a quarter of the bound it first gets one `dropped` event per thread
`{thread_id, count, first_seq, last_seq}` and can refill with `subscribe {thread_id, since}` (a
replay, which the client asked for, waits up to REPLAY_WAIT for room instead of skipping). A
client that stops reading altogether is disconnected by Engine.IO's ping timeout, or sooner by its
`Conn` once `hard_limit` bytes wait.

Direct writes go to `eio.wires` (see engineio.py); written against python-engineio 4.15.1 and
python-socketio 5.18.1 (its socket fields and queues). With other versions, or realtime.fast_path off,
there are no wires, and every send takes the plain library path, unbounded as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from app.metrics import Metrics
from app.realtime.hooks.engineio import EngineIO, Wire, queued_bytes
from app.realtime.hooks.websocket import text_frame
from app.store import LogLine

logger = logging.getLogger(__name__)

MAX_QUEUE = 1000  # packets in a socket's Engine.IO queue before its lines are skipped
MAX_NOTICES = 100  # `dropped` events per client per drain; the rest are summed in one without thread_id
PIECE = 256 * 1024  # a big bus batch goes out in pieces of about this size, the loop running between them
NOTICE_INTERVAL = 0.5  # how often a drained client with no new lines is checked
REPLAY_WAIT = 10.0  # how long a replay waits for a slow client to drain before its lines are skipped too


@dataclass(eq=False)
class _Out:
    """One encoded packet: the library's Engine.IO packet (its encoding cached) and our frame."""

    pkt: eio_packet.Packet
    frame: bytes


@dataclass(eq=False)
class _Batch:
    """Lines encoded once: their packets, and their frames joined, as every websocket client gets them."""

    lines: Sequence[LogLine]
    outs: list[_Out]
    frames: bytes


@dataclass(eq=False)
class _Lag:
    """What a slow client missed, per thread: [count, first_seq, last_seq]."""

    eio_sid: str
    threads: dict[str | None, list[int]] = field(default_factory=dict)

    def add(self, lines: Sequence[LogLine]) -> None:
        for line in lines:
            thread_id: str | None = line["thread_id"]
            if thread_id not in self.threads and len(self.threads) >= MAX_NOTICES:
                thread_id = None  # past MAX_NOTICES threads, one sum without a thread
            entry = self.threads.get(thread_id)
            if entry is None:
                self.threads[thread_id] = [1, line["seq"], line["seq"]]
            else:
                entry[0] += 1
                entry[2] = line["seq"]

    def notices(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for thread_id, (count, first, last) in self.threads.items():
            if thread_id is None:
                out.append({"thread_id": None, "count": count})
            else:
                out.append({"thread_id": thread_id, "count": count, "first_seq": first, "last_seq": last})
        return out


class Fanout:
    """Sends `log` (and `dropped`) events on one namespace: direct frames when safe, else the library."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        metrics: Metrics,
        namespace: str = "/logs",
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self.sio = sio
        self.metrics = metrics
        self.namespace = namespace
        self.max_queue = max_queue
        self._lag: dict[str, _Lag] = {}  # namespace sid → what it missed
        self._encoded: dict[int, tuple[LogLine, _Out]] = {}  # the current batch, by id(line)
        self.direct = self.queued = self.dropped = self.notices = 0
        eio = sio.eio
        self.wires: dict[str, Wire] = eio.wires if isinstance(eio, EngineIO) else {}
        self.limit: int = eio.send_limit if isinstance(eio, EngineIO) else 0  # bytes in a library queue
        self.enabled = isinstance(eio, EngineIO) and eio.lean
        if not self.enabled:
            logger.warning("log fan-out on the plain python-socketio path (unbounded per client)")

    @property
    def lagging(self) -> int:
        return len(self._lag)

    def _encode(self, event: str, data: Any) -> _Out:
        body = self.sio.packet_class(sio_packet.EVENT, namespace=self.namespace, data=[event, data]).encode()
        pkt = eio_packet.Packet(eio_packet.MESSAGE, body)
        return _Out(pkt, text_frame(pkt.encode().encode()))

    def _line(self, line: LogLine) -> _Out:
        cached = self._encoded.get(id(line))
        if cached is not None and cached[0] is line:
            return cached[1]
        return self._encode("log", line)

    def _pieces(self, lines: Sequence[LogLine], outs: list[_Out]) -> list[_Batch]:
        pieces: list[_Batch] = []
        first = size = 0
        for i, out in enumerate(outs):
            size += len(out.frame)
            if size >= PIECE or i == len(outs) - 1:
                chunk = outs[first : i + 1]
                pieces.append(_Batch(lines[first : i + 1], chunk, b"".join(o.frame for o in chunk)))
                first, size = i + 1, 0
        return pieces

    async def broadcast(self, lines: list[LogLine], room: str) -> None:
        """Every line of a bus batch to every client in `room`, in order."""
        if not self.enabled:
            for line in lines:
                await self.sio.emit("log", line, room=room, namespace=self.namespace)
            return
        outs = [self._encode("log", line) for line in lines]
        self._encoded = {id(line): (line, out) for line, out in zip(lines, outs, strict=True)}
        for n, piece in enumerate(self._pieces(lines, outs)):
            if n:
                await asyncio.sleep(0)  # let the transports flush between pieces of a big batch
            for sid, eio_sid in self.sio.manager.get_participants(self.namespace, room):
                await self._deliver(sid, eio_sid, piece)

    def end_batch(self) -> None:
        self._encoded = {}

    async def send(self, sid: str, lines: Sequence[LogLine], replaying: bool = False) -> None:
        """Lines to one client (subscriptions), in one write; a replay, which the client asked for, waits for room."""
        if not self.enabled:
            for line in lines:
                await self.sio.emit("log", line, to=sid, namespace=self.namespace)
            return
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, self.namespace)
        if eio_sid is None:
            return
        outs = [self._line(line) for line in lines]
        for n, piece in enumerate(self._pieces(lines, outs)):
            if replaying:
                await self._room(eio_sid)
            elif n:
                await asyncio.sleep(0)
            await self._deliver(sid, eio_sid, piece)

    async def _room(self, eio_sid: str) -> None:
        """Wait (bounded) until a client is back under a quarter of its bound."""
        deadline = asyncio.get_running_loop().time() + REPLAY_WAIT
        while asyncio.get_running_loop().time() < deadline:
            socket = self.sio.eio.sockets.get(eio_sid)
            wire = self.wires.get(eio_sid)
            if socket is None or socket.closed:
                return
            if not (wire is not None and wire.paused) and not self._queue_over(socket, 4):
                return
            await asyncio.sleep(0.05)

    def _skip(self, sid: str, eio_sid: str, lines: Sequence[LogLine]) -> None:
        if lines:
            lag = self._lag.get(sid)
            if lag is None:
                lag = self._lag[sid] = _Lag(eio_sid)
            lag.add(lines)
            self.dropped += len(lines)
            self.metrics.lines_dropped.inc(len(lines))

    async def _deliver(self, sid: str, eio_sid: str, batch: _Batch) -> None:
        socket = self.sio.eio.sockets.get(eio_sid)
        if socket is None or socket.closing or socket.closed:
            return
        wire = self.wires.get(eio_sid)
        direct = wire is not None and wire.ready(socket)  # then the library's queue holds nothing
        lag = self._lag.get(sid)
        # Hysteresis: a lagging client resumes under a quarter of the bound, so it does not flap (the
        # transport's own low-water mark is a quarter of its high one).
        if (wire is not None and wire.paused) or (not direct and self._queue_over(socket, 4 if lag else 1)):
            self._skip(sid, eio_sid, batch.lines)
            return
        notices: list[_Out] = []
        if lag is not None:
            del self._lag[sid]
            notices = [self._encode("dropped", n) for n in lag.notices()]
            self.notices += len(notices)
        if direct:
            assert wire is not None
            if notices:
                wire.transport.write(b"".join([*(n.frame for n in notices), batch.frames]))
            elif batch.frames:
                wire.transport.write(batch.frames)
            self.direct += len(notices) + len(batch.outs)
            return
        # The library's queue, behind whatever it holds (polling, upgrading, a busy writer).
        polling = wire is None or not socket.upgraded
        for out in notices + batch.outs:
            await self.sio.eio.send_packet(eio_sid, out.pkt)
            self.queued += 1
            if polling:
                # Let a pending poll answer between lines, as the library's emit does: python-engineio's
                # client refuses a polling payload of more than 16 packets.
                await asyncio.sleep(0)

    def _queue_over(self, socket: Any, share: int) -> bool:
        """More than `max_queue` packets, and more than `limit` bytes, wait in the socket's Engine.IO queue.

        Many packets alone is not slowness: the writer may just not have had its turn yet.
        """
        if socket.queue.qsize() * share <= self.max_queue:
            return False
        return queued_bytes(socket) * share > self.limit

    async def run_notices(self) -> None:
        """Tell drained clients what they missed even when no new line comes to carry the news."""
        while True:
            await asyncio.sleep(NOTICE_INTERVAL)
            for sid, lag in list(self._lag.items()):
                if self.sio.manager.eio_sid_from_sid(sid, self.namespace) != lag.eio_sid:  # gone from /logs
                    self._lag.pop(sid, None)
                    continue
                try:
                    await self._deliver(sid, lag.eio_sid, _Batch((), [], b""))
                except Exception:
                    logger.warning("could not send a dropped notice to %s", sid, exc_info=True)

