"""A client that stops reading costs bounded memory and is told what it missed (TESTPLAN D9)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TOKEN, Beacon, ClientFactory, eventually, make_config, running_beacon

LIMIT = 64 * 1024  # realtime.send_buffer_bytes in these tests


class StalledClient:
    """A raw Engine.IO / Socket.IO websocket client with a tiny receive buffer that reads only when told."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> StalledClient:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small TCP window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        client = cls(reader, writer)
        assert (await client.receive()).startswith("0{")
        client.send("40/logs," + json.dumps({"token": TOKEN}))
        assert (await client.receive()).startswith("40/logs,")
        return client

    def send(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        self.writer.write(bytes((0x81, 0x80 | len(payload))) + mask + masked)

    async def receive(self) -> str:
        first, second = await self.reader.readexactly(2)
        assert first == 0x81 and second < 0x80, (first, second)  # final text frames, unmasked
        n = second
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return (await self.reader.readexactly(n)).decode()

    def close(self) -> None:
        self.writer.close()


@contextlib.asynccontextmanager
async def stalled(port: int) -> AsyncIterator[StalledClient]:
    client = await StalledClient.open(port)
    try:
        yield client
    finally:
        client.close()


async def stats(beacon: Beacon) -> dict[str, Any]:
    async with beacon.http.get(beacon.realtime + "/stats") as resp:
        return dict(await resp.json())


@pytest.mark.fast_path  # the skipping and `dropped` notices are the fan-out's direct writes
async def test_a_client_that_stops_reading_is_skipped_then_told(tmp_path: Path, connect: ClientFactory) -> None:
    cfg = make_config(tmp_path, **{"realtime.send_buffer_bytes": LIMIT, "realtime.ping_interval": 120.0})
    async with running_beacon(cfg) as beacon, stalled(beacon.running.realtime_port) as slow:
        healthy = await connect(beacon.realtime, ("/logs",))
        lines = 2000  # 20 MB: far more than the bound plus the kernel's socket buffers (≤ 4 MiB on loopback)
        # Paced so the healthy client (on this test's event loop, beside the server) keeps up.
        thread_id = await beacon.start("bench", {"lines": lines, "size": 10_000, "rate": 500})
        total = lines + 1  # and "run completed"
        await eventually(lambda: len(healthy.seqs(thread_id)) == total, 60, 0.1, "the healthy client fell behind")
        assert healthy.seqs(thread_id) == list(range(1, total + 1))
        s = await stats(beacon)
        assert s["slow_consumers"]["clients_lagging"] == 1 and s["slow_consumers"]["lines_dropped"] > 0
        dropped_total = s["slow_consumers"]["lines_dropped"]
        async with beacon.http.get(beacon.realtime + "/metrics") as resp:
            metrics = await resp.text()
        assert re.search(rf"^beacon_socketio_lines_dropped_total {dropped_total}\.0$", metrics, re.M), metrics[-800:]

        # It reads again: first what was already on its way, then one `dropped` per thread it missed.
        received: list[int] = []
        notices: list[dict[str, Any]] = []

        async def read() -> bool:
            while sum(n["count"] for n in notices) + len(received) < total:
                text = await slow.receive()
                event, data = json.loads(text[len("42/logs,") :])
                assert data["thread_id"] == thread_id
                (received if event == "log" else notices).append(data["seq"] if event == "log" else data)
            return True

        await asyncio.wait_for(read(), 60)
        assert received == sorted(received) and len(set(received)) == len(received)
        assert sum(n["count"] for n in notices) == dropped_total and notices
        missed = {seq for n in notices for seq in range(n["first_seq"], n["last_seq"] + 1)}
        assert all(n["count"] == n["last_seq"] - n["first_seq"] + 1 for n in notices)
        assert missed.isdisjoint(received) and missed | set(received) == set(range(1, total + 1))
        # Bounded: of 20 MB, only the bound, one piece and the kernel's buffers were on their way to it.
        assert len(received) * 10_000 < 4 * 2**20 + LIMIT + 2**20
        s = await stats(beacon)
        assert s["slow_consumers"]["clients_lagging"] == 0 and s["slow_consumers"]["notices_sent"] == len(notices)


async def test_a_replay_waits_for_room_instead_of_skipping(tmp_path: Path, connect: ClientFactory) -> None:
    cfg = make_config(tmp_path, **{"realtime.send_buffer_bytes": LIMIT})
    async with running_beacon(cfg) as beacon:
        thread_id = await beacon.start("bench", {"lines": 1000, "size": 10_000})  # 10 MB, ~150× the bound
        await beacon.wait_status(thread_id, "completed", 30)

        async def all_stored() -> bool:  # "run completed" is logged after the status flips
            status, body = await beacon.call("GET", f"/admin/runs/{thread_id}/logs?after=1000")
            return status == 200 and body["last_seq"] == 1001

        await eventually(all_stored, 10, message="the run's 1,001 lines were never all stored")
        client = await connect(beacon.realtime, ("/logs",), auth={"firehose": False})
        ack = await client.subscribe(thread_id, since=0)
        assert ack["replayed"] == 1001 and ack["recovered"] is True
        await eventually(lambda: len(client.seqs(thread_id)) == 1001, 30)
        assert client.seqs(thread_id) == list(range(1, 1002))
        assert (await stats(beacon))["slow_consumers"]["lines_dropped"] == 0


STALLED_CLIENT = """
import asyncio, json, os, sys
import socketio

url, token, out = sys.argv[1:4]
state = {"connected": False, "lines": 0, "seqs_ok": True, "last_seq": {}, "dropped": []}

def save():
    with open(out + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(out + ".tmp", out)

async def main():
    sio = socketio.AsyncClient(reconnection=False)

    @sio.on("log", namespace="/logs")
    def log(line):
        last = state["last_seq"].get(line["thread_id"], 0)
        state["seqs_ok"] &= line["seq"] > last
        state["last_seq"][line["thread_id"]] = line["seq"]
        state["lines"] += 1

    @sio.on("dropped", namespace="/logs")
    def dropped(notice):
        state["dropped"].append(notice)
        save()

    await sio.connect(url, namespaces=["/logs"], auth={"token": token}, transports=["websocket"])
    state["connected"] = True
    for _ in range(1200):  # at most ~10 minutes
        save()
        await asyncio.sleep(0.5)
        if not sio.connected:
            break
    await sio.disconnect()

asyncio.run(main())
"""


def load_bench() -> Any:
    """bench/run.py's load-generator processes (raw Engine.IO clients with latency histograms)."""
    bench = Path(__file__).resolve().parent.parent / "bench"
    if str(bench) not in sys.path:
        sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location("bench_run", bench / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.long
@pytest.mark.timeout(400)
async def test_d9_one_sigstopped_client_among_fifty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """D9: 2,000 lines/s for 30 s to 50 healthy clients and one SIGSTOPped one, Beacon in its own process."""
    rate, seconds, healthy_clients = 2000, 30, 50
    lines = rate * seconds
    bench = load_bench()
    # Pings every 60 s: the stopped client outlives its 30 s stop (past ping_interval + ping_timeout
    # without a pong, Engine.IO disconnects it, and it would resubscribe with `since` on reconnect).
    monkeypatch.setenv("BEACON_REALTIME_PING_INTERVAL", "60")
    srv = bench.Server("beacon", tmp_path, ["--log-level", "WARNING"])  # run.py, as `make bench` starts it
    await asyncio.to_thread(srv.start)
    realtime = f"http://127.0.0.1:{srv.sio_port}"
    state_file = tmp_path / "stalled.json"
    script = tmp_path / "stalled.py"
    script.write_text(STALLED_CLIENT)
    stalled_proc = subprocess.Popen(
        [sys.executable, str(script), realtime, srv.token, str(state_file)], stdin=subprocess.DEVNULL
    )
    gens = None
    try:
        await eventually(lambda: state_file.exists() and json.loads(state_file.read_text())["connected"], 30)
        gens = bench.Generators(3, True)
        connected = await asyncio.to_thread(gens.connect, srv, healthy_clients, False, 50, 60)
        assert connected["connected"] == healthy_clients, connected

        os.kill(stalled_proc.pid, signal.SIGSTOP)
        rss0 = peak = srv.rss()
        thread_id = "d9-" + uuid.uuid4().hex[:8]
        await asyncio.to_thread(gens.expect, thread_id, lines, rate)  # bench lines, not "run completed"
        await asyncio.to_thread(srv.trigger, thread_id, lines, 300, rate)
        waiting = asyncio.ensure_future(asyncio.to_thread(gens.wait, time.time() + seconds + 60, 20))
        while not waiting.done():
            peak = max(peak, srv.rss())
            await asyncio.sleep(0.5)
        replies = waiting.result()
        _, during = await asyncio.to_thread(bench.http, "GET", realtime + "/stats")
        os.kill(stalled_proc.pid, signal.SIGCONT)

        # Healthy clients: every line, in time; the server's memory bounded.
        hist = [sum(col) for col in zip(*(r["hist"] for r in replies), strict=True)]
        missing = sum(r["missing"] for r in replies)
        p99 = bench.histogram_quantile(hist, 0.99, missing)
        received = sum(r["received"] for r in replies)
        assert missing == 0 and received == healthy_clients * lines, (missing, received)
        assert p99 < 250, f"healthy clients' p99 {p99:.0f} ms"
        assert peak - rss0 < 100 * 2**20, f"server RSS grew {(peak - rss0) / 2**20:.0f} MiB"
        assert during["slow_consumers"]["lines_dropped"] > 0 and during["slow_consumers"]["clients_lagging"] == 1

        # The stalled client, running again, is told what it missed: with what it got, every line.
        def settled() -> dict[str, Any] | None:
            state = json.loads(state_file.read_text())
            told = sum(n["count"] for n in state["dropped"])
            return state if told and state["lines"] + told == lines + 1 else None

        state = await eventually(settled, 120, 0.5, "the stalled client never accounted for every line")
        assert state["seqs_ok"] and {n["thread_id"] for n in state["dropped"]} == {thread_id}
        assert sum(n["count"] for n in state["dropped"]) == during["slow_consumers"]["lines_dropped"]
        print(  # the figures, for `pytest -s`
            f"D9: healthy p99 {p99:.1f} ms, server RSS +{(peak - rss0) / 2**20:.1f} MiB, "
            f"stalled client got {state['lines']} lines and dropped notices for {lines + 1 - state['lines']}"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stalled_proc.pid, signal.SIGCONT)
        stalled_proc.terminate()
        stalled_proc.wait(10)
        if gens is not None:
            await asyncio.to_thread(gens.stop)
        await asyncio.to_thread(srv.stop)
