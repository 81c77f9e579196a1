"""Load generator for bench/run.py: processes holding many raw Engine.IO 4 / Socket.IO 5 websocket clients.

Each client speaks the protocol directly over an asyncio.Protocol (no client library): the websocket
upgrade `GET /socket.io/?EIO=4&transport=websocket`, Engine.IO ping `2` → pong `3`, namespace connect
`40/logs,`, and `42/logs,["log",{...}]` events. Server frames are parsed in bulk per read; client
frames are masked. permessage-deflate is offered only when asked (a separate scenario).

For the thread under measurement each client counts lines, seq gaps (lost lines), duplicates, and
records receive time minus the payload's `timestamp` (the logging call) in a log-bucket histogram.
A process is driven by its parent over a multiprocessing Pipe: `connect`, `expect`, `wait`, `close`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import time
import zlib
from datetime import datetime
from typing import Any

try:
    from orjson import loads
except ImportError:  # pragma: no cover - the venv has orjson
    from json import loads  # type: ignore[assignment]

# latency histogram: bucket b holds latencies in [G**b - 1, G**(b+1) - 1) microseconds (2% resolution)
G = 1.02
LOG_G = math.log(G)
BUCKETS = 1200  # up to ~2e10 µs: everything
MAX_LIFETIME = 6 * 3600  # a generator process exits by itself after this long whatever happens
NAMESPACE = "/logs"
EVENT_PREFIX = b"42/logs,"


def bucket_value_ms(b: int) -> float:
    """Representative latency (ms) of bucket b: its geometric middle."""
    return (G ** (b + 0.5) - 1) / 1000


def histogram_quantile(hist: list[int], q: float, overflow: int = 0) -> float | None:
    """q-quantile (0..1) in ms over the histogram plus `overflow` samples counted as infinite."""
    total = sum(hist) + overflow
    if total == 0:
        return None
    rank = q * (total - 1)
    seen = 0
    for b, count in enumerate(hist):
        seen += count
        if seen > rank:
            return bucket_value_ms(b)
    return math.inf


def _mask(payload: bytes) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return key + (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def ws_text_frame(text: bytes) -> bytes:
    """A masked client→server text frame (payloads here are tiny)."""
    n = len(text)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + _mask(text)


PONG = ws_text_frame(b"3")


class Stats:
    """Counters for the thread under measurement, shared by the clients of one process."""

    def __init__(self) -> None:
        self.reset("", 0)

    def reset(self, thread_id: str, expected: int, rate: float = 0.0) -> None:
        self.thread_id = thread_id
        self.rate = rate  # lines/s when paced: line i is due at t0 + (i - 1) / rate
        self.t0: float | None = None  # timestamp of line 1
        self.sched_hist = [0] * BUCKETS  # receive time - due time
        self.sched_max = 0.0
        self.expected = expected
        self.hist = [0] * BUCKETS
        self.received = 0
        self.gaps = 0
        self.dups = 0
        self.other = 0
        self.lat_max = 0.0
        self.lat_sum = 0.0
        self.extra = 0
        self.last_prefix = f"line {expected} "  # the text of the last bench line starts so
        self.first_seq = 0
        self.first_ts: float | None = None  # payload timestamp of the first bench line
        self.last_ts: float | None = None  # payload timestamp of the highest seq seen
        self.max_seq = 0
        self.first_recv: float | None = None
        self.last_recv: float | None = None
        self.done_clients = 0
        self.ts_cache: dict[str, float] = {}


class Client(asyncio.Protocol):
    def __init__(self, gen: Generator, deflate: bool) -> None:
        self.gen = gen
        self.stats = gen.stats
        self.offer_deflate = deflate
        self.deflated = False
        self.inflater: Any = None
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.closed = False
        self.fragments: list[bytes] | None = None
        self.fragment_compressed = False
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.last = 0
        self.done = False

    # -- transport ---------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:  # uvloop's transport is no asyncio.Transport subclass
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        host, port = transport.get_extra_info("peername")[:2]
        lines = [
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.offer_deflate:  # what browsers send
            lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost during handshake: {exc!r}"))
        else:
            self.gen.disconnects += 1

    def send_text(self, text: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_text_frame(text))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            if not head.startswith("HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(f"upgrade refused: {head.splitlines()[0]!r}"))
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded = True
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "sec-websocket-extensions" and "permessage-deflate" in value:
                    self.deflated = True
                    self.no_takeover = "server_no_context_takeover" in value
                    self.inflater = zlib.decompressobj(-15)
        n = len(buf)
        pos = 0
        while n - pos >= 2:
            b0 = buf[pos]
            ln = buf[pos + 1] & 0x7F
            hl = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = (buf[pos + 2] << 8) | buf[pos + 3]
                hl = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hl = 10
            end = pos + hl + ln
            if end > n:
                break
            payload = bytes(buf[pos + hl : end])
            pos = end
            opcode = b0 & 0x0F
            if opcode == 1 or opcode == 2 or opcode == 0:
                fin = b0 & 0x80
                if opcode and fin and self.fragments is None:
                    if b0 & 0x40:
                        payload = self._inflate(payload)
                    self._message(payload, now)
                else:  # fragmented message
                    if opcode:
                        self.fragments = []
                        self.fragment_compressed = bool(b0 & 0x40)
                    if self.fragments is not None:
                        self.fragments.append(payload)
                        if fin:
                            whole = b"".join(self.fragments)
                            self.fragments = None
                            if self.fragment_compressed:
                                whole = self._inflate(whole)
                            self._message(whole, now)
            elif opcode == 9:  # ping → pong with the same payload
                if self.transport is not None and not self.transport.is_closing() and len(payload) < 126:
                    self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + _mask(payload))
            elif opcode == 8:
                self.transport.close()  # type: ignore[union-attr]
        if pos:
            del buf[:pos]

    def _inflate(self, payload: bytes) -> bytes:
        out = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
        if self.no_takeover:
            self.inflater = zlib.decompressobj(-15)
        return out

    # -- Engine.IO / Socket.IO ---------------------------------------------------------------
    def _message(self, p: bytes, now: float) -> None:
        if p[:8] == EVENT_PREFIX:
            event = loads(p[8:])
            if event[0] == "log":
                self._line(event[1], now)
            elif event[0] == "logs":  # an opt-in batched event, if a server sends one
                for line in event[1]:
                    self._line(line, now)
        elif p == b"2":
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(PONG)
        elif p[:1] == b"0":
            self.send_text(self.gen.connect_packet)
        elif p[:7] == b"40/logs":
            if not self.ready.done():
                self.ready.set_result(True)
        elif p[:7] == b"44/logs":
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(f"namespace refused: {p[:200]!r}"))
        elif p[:1] == b"1":
            self.transport.close()  # type: ignore[union-attr]

    def _line(self, line: dict[str, Any], now: float) -> None:
        st = self.stats
        if line["thread_id"] != st.thread_id:
            st.other += 1
            return
        seq = line["seq"]
        last = self.last
        if seq <= last:
            st.dups += 1
            return
        if seq != last + 1:
            st.gaps += seq - last - 1  # every line of the thread counts for the seq check
        self.last = seq
        text = line["text"]
        if not text.startswith("line "):  # a line the server adds to the run (Beacon: "run completed")
            st.extra += 1
            return
        self.count += 1
        st.received += 1
        ts = line["timestamp"]
        t = st.ts_cache.get(ts)
        if t is None:
            t = st.ts_cache[ts] = datetime.fromisoformat(ts).timestamp()
        if st.first_seq == 0 or seq < st.first_seq:
            st.first_seq, st.first_ts = seq, t
        if seq > st.max_seq:
            st.max_seq, st.last_ts = seq, t
        lat = now - t
        if lat < 0:
            lat = 0.0
        st.lat_sum += lat
        if lat > st.lat_max:
            st.lat_max = lat
        b = int(math.log(lat * 1e6 + 1) / LOG_G)
        st.hist[b if b < BUCKETS else BUCKETS - 1] += 1
        if st.rate:  # latency from the schedule: counts a producer that fell behind as late
            if st.t0 is None and text.startswith("line 1 "):
                st.t0 = t
            if st.t0 is not None:
                i = int(text[5 : text.index(" ", 5)])
                lag = now - st.t0 - (i - 1) / st.rate
                if lag > st.sched_max:
                    st.sched_max = lag
                b = int(math.log(max(0.0, lag) * 1e6 + 1) / LOG_G)
                st.sched_hist[b if b < BUCKETS else BUCKETS - 1] += 1
        if st.first_recv is None:
            st.first_recv = now
        st.last_recv = now
        if not self.done and text.startswith(st.last_prefix):
            self.done = True
            st.done_clients += 1
            if st.done_clients >= len(self.gen.clients):
                self.gen.all_done.set()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Generator:
    """One load-generator process: its clients and the command loop."""

    def __init__(self, conn: Any, index: int) -> None:
        self.conn = conn
        self.index = index
        self.stats = Stats()
        self.clients: list[Client] = []
        self.disconnects = 0
        self.all_done = asyncio.Event()
        self.cpu0 = time.process_time()
        self.wall0 = time.monotonic()
        self.expect_wall = time.time()
        self.connect_packet = b"40" + NAMESPACE.encode() + b","

    async def connect(
        self, host: str, port: int, n: int, deflate: bool, concurrency: int, timeout: float, token: str = ""
    ) -> dict:
        # the namespace connect packet, with Socket.IO `auth` {token} when the server wants one
        self.connect_packet = (
            b"40" + NAMESPACE.encode() + b"," + (json.dumps({"token": token}).encode() if token else b"")
        )
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(concurrency)
        failures: list[str] = []
        t0 = time.monotonic()
        deadline = t0 + timeout

        async def one() -> None:
            for attempt in range(3):
                async with sem:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        failures.append("timeout")
                        return
                    client = Client(self, deflate)
                    try:
                        await asyncio.wait_for(loop.create_connection(lambda: client, host, port), left)
                        await asyncio.wait_for(client.ready, max(0.1, deadline - time.monotonic()))
                        self.clients.append(client)
                        return
                    except (TimeoutError, OSError, ConnectionError) as exc:
                        client.close()
                        if attempt == 2:
                            failures.append(repr(exc)[:200])
                            return
                await asyncio.sleep(0.05 * (attempt + 1))

        await asyncio.gather(*(one() for _ in range(n)))
        deflated = sum(1 for c in self.clients if c.deflated)
        return {
            "connected": len(self.clients),
            "failed": len(failures),
            "errors": sorted(set(failures))[:5],
            "deflate_accepted": deflated,
            "seconds": time.monotonic() - t0,
        }

    def expect(self, thread_id: str, lines: int, rate: float = 0.0) -> dict:
        self.stats.reset(thread_id, lines, rate)
        for c in self.clients:
            c.reset()
        self.all_done = asyncio.Event()
        self.disconnects = 0
        self.cpu0 = time.process_time()
        self.wall0 = time.monotonic()
        self.expect_wall = time.time()
        return {"ok": True}

    async def wait(self, deadline_wall: float, idle_timeout: float) -> dict:
        """Until every client has the last line, or `deadline_wall`, or no progress for `idle_timeout`."""
        st = self.stats
        last_progress, last_count = time.monotonic(), -1
        while not self.all_done.is_set() and time.time() < deadline_wall and self.clients:
            if st.received != last_count:
                last_count, last_progress = st.received, time.monotonic()
            elif time.monotonic() - last_progress > idle_timeout:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.all_done.wait(), 0.2)
        end = time.monotonic()
        cpu = time.process_time() - self.cpu0
        # the active window: first to last line received (CPU before and after it is negligible)
        busy = (st.last_recv - st.first_recv) if st.first_recv and st.last_recv else end - self.wall0
        missing = sum(max(0, st.expected - c.count) for c in self.clients)  # bench lines never received
        return {
            "clients": len(self.clients),
            "complete_clients": st.done_clients,
            "received": st.received,
            "gaps": st.gaps,
            "missing": missing,
            "extra": st.extra,
            "first_seq": st.first_seq,
            "dups": st.dups,
            "other": st.other,
            "hist": st.hist,
            "sched_hist": st.sched_hist,
            "sched_max": st.sched_max,
            "lat_sum": st.lat_sum,
            "lat_max": st.lat_max,
            "first_ts": st.first_ts,
            "last_ts": st.last_ts,
            "max_seq": st.max_seq,
            "first_recv": st.first_recv,
            "last_recv": st.last_recv,
            "disconnects": self.disconnects,
            "cpu_s": cpu,
            "wall_s": end - self.wall0,
            "busy_s": max(busy, 0.05),
        }

    async def close(self) -> dict:
        n = len(self.clients)
        for c in self.clients:
            c.close()
        self.clients = []
        await asyncio.sleep(0.05)
        return {"closed": n}

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        def readable() -> None:
            try:
                inbox.put_nowait(self.conn.recv())
            except (EOFError, OSError):
                loop.remove_reader(self.conn.fileno())
                inbox.put_nowait(("quit",))

        loop.add_reader(self.conn.fileno(), readable)
        stop_at = time.monotonic() + MAX_LIFETIME
        while time.monotonic() < stop_at:
            try:
                cmd, *args = await asyncio.wait_for(inbox.get(), 60)
            except TimeoutError:
                continue
            if cmd == "quit":
                break
            try:
                if cmd == "connect":
                    reply = await self.connect(*args)
                elif cmd == "expect":
                    reply = self.expect(*args)
                elif cmd == "wait":
                    reply = await self.wait(*args)
                elif cmd == "close":
                    reply = await self.close()
                elif cmd == "ping":
                    reply = {"pid": os.getpid(), "loop": type(loop).__module__}
                else:
                    reply = {"error": f"unknown command {cmd!r}"}
            except Exception as exc:  # report, keep serving
                reply = {"error": repr(exc)}
            with contextlib.suppress(OSError):
                self.conn.send(reply)
        await self.close()


def generator_main(conn: Any, index: int, use_uvloop: bool) -> None:
    """Entry point of a generator process."""
    loop: asyncio.AbstractEventLoop | None = None
    if use_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            loop = uvloop.new_event_loop()
    loop = loop or asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(Generator(conn, index).serve())
    finally:
        loop.close()


# -- REST load (its own process) --------------------------------------------------------------
def rest_main(
    conn: Any,
    url: str,
    method: str,
    body: bytes | None,
    concurrency: int,
    duration: float,
    warmup: float,
    token: str = "",
) -> None:
    """Closed-loop HTTP load: `concurrency` workers for `duration` s after `warmup` s; send stats back."""
    import aiohttp

    async def run() -> dict:
        hist = [0] * BUCKETS
        codes: dict[int, int] = {}
        errors: list[str] = []
        lat_max = 0.0
        count = 0
        headers = {"content-type": "application/json"} if body is not None else {}
        if token:
            headers["authorization"] = f"Bearer {token}"
        t_start = time.monotonic()
        t_measure = t_start + warmup
        t_end = t_measure + duration
        cpu0 = time.process_time()
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def worker() -> None:
                nonlocal lat_max, count
                for _ in range(10_000_000):
                    t = time.monotonic()
                    if t >= t_end:
                        return
                    try:
                        async with session.request(method, url, data=body, headers=headers) as resp:
                            await resp.read()
                            status = resp.status
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        status = 0
                        if len(errors) < 5:
                            errors.append(repr(exc)[:200])
                    done = time.monotonic()
                    if t >= t_measure and done <= t_end:
                        lat = done - t
                        count += 1
                        codes[status] = codes.get(status, 0) + 1
                        lat_max = max(lat_max, lat)
                        b = int(math.log(lat * 1e6 + 1) / LOG_G)
                        hist[min(b, BUCKETS - 1)] += 1

            async def cpu_mark() -> None:
                nonlocal cpu0
                await asyncio.sleep(warmup)
                cpu0 = time.process_time()

            await asyncio.gather(cpu_mark(), *(worker() for _ in range(concurrency)))
        cpu = time.process_time() - cpu0
        return {
            "requests": count,
            "seconds": duration,
            "codes": {str(k): v for k, v in sorted(codes.items())},
            "errors": errors,
            "hist": hist,
            "lat_max": lat_max,
            "cpu_s": cpu,
        }

    loop = asyncio.new_event_loop()
    try:
        conn.send(loop.run_until_complete(run()))
    except Exception as exc:
        conn.send({"error": repr(exc)})
    finally:
        loop.close()
