"""The `/logs` fast path (issue 6): the same bytes as python-socketio, every transport, and the fallback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import TOKEN, Beacon, ClientFactory, eventually, make_config, running_beacon
from socketio import packet as sio_packet

from app.realtime.hooks import engineio as engineio_server
from app.realtime.hooks import websocket


async def stats(beacon: Beacon) -> dict[str, Any]:
    async with beacon.http.get(beacon.realtime + "/stats") as resp:
        return dict(await resp.json())


class RawWebsocket:
    """An Engine.IO 4 / Socket.IO 5 client on a bare aiohttp websocket: sees exactly the server's text."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.texts: list[str] = []

    async def connect_logs(self) -> None:
        opened = await self.ws.receive_str(timeout=10)
        assert opened.startswith("0{")
        await self.ws.send_str("40/logs," + json.dumps({"token": TOKEN}))
        assert (await self.ws.receive_str(timeout=10)).startswith("40/logs,")

    async def read_logs(self, count: int) -> list[str]:
        while len(self.texts) < count:
            text = await self.ws.receive_str(timeout=20)
            if text == "2":
                await self.ws.send_str("3")
            elif text.startswith('42/logs,["log",'):
                self.texts.append(text)
        return self.texts


async def test_log_frames_are_what_python_socketio_would_send(beacon: Beacon) -> None:
    # The client offers permessage-deflate as browsers do; Beacon refuses it (memory, see README).
    url = beacon.realtime + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=15) as ws:
        assert ws.compress == 0
        raw = RawWebsocket(ws)
        await raw.connect_logs()
        thread_id = await beacon.start("bench", {"lines": 50, "size": 40})
        texts = await raw.read_logs(50)
    lines = [json.loads(t[len("42/logs,") :])[1] for t in texts]
    assert [line["seq"] for line in lines] == list(range(1, 51))
    for text, line in zip(texts, lines, strict=True):
        assert set(line) == {"text", "thread_id", "level", "timestamp", "seq"} and line["thread_id"] == thread_id
        # Byte for byte what the library's own emit encodes for this event.
        assert text == "4" + sio_packet.Packet(sio_packet.EVENT, namespace="/logs", data=["log", line]).encode()
    s = await stats(beacon)
    assert s["fanout"]["fast_path"] is True and s["fanout"]["direct_frames"] >= 50


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_every_transport_gets_every_line_in_order(
    connect: ClientFactory, beacon: Beacon, transport: str
) -> None:
    # `connect` first, so Beacon shuts down first: a python-socketio polling client's own disconnect
    # waits for the server's next ping (tens of seconds).
    firehose = await connect(beacon.realtime, ("/logs",), transports=[transport])
    follower = await connect(beacon.realtime, ("/logs",), transports=[transport])
    # A bench run logs its lines, then "run completed": 2 lines here, 301 below.
    thread_id = await beacon.start("bench", {"lines": 1, "size": 10})
    await eventually(lambda: len(firehose.logs) == 2 and len(follower.logs) == 2)
    assert (await follower.subscribe(thread_id, since=0))["replayed"] == 2  # replayed lines, then live ones
    other = await beacon.start("bench", {"lines": 300, "size": 50})
    await eventually(lambda: len(firehose.seqs(other)) == 301, 20, message=f"{len(firehose.seqs(other))} of 301")
    assert firehose.seqs(other) == list(range(1, 302))
    assert follower.seqs(thread_id) == [1, 2, 1, 2] and follower.seqs(other) == []
    if transport == "polling":  # long-polling clients take the library's queue
        assert (await stats(beacon))["fanout"]["queued_packets"] >= 301


async def test_untested_library_versions_take_the_plain_library_path(
    tmp_path: Path, connect: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(engineio_server.TESTED, "python-engineio", ("0.0.0",))
    async with running_beacon(make_config(tmp_path)) as beacon:
        client = await connect(beacon.realtime, ("/logs",))
        thread_id = await beacon.start("bench", {"lines": 100, "size": 20})
        await eventually(lambda: len(client.seqs(thread_id)) == 101, 20)
        assert client.seqs(thread_id) == list(range(1, 102))
        s = await stats(beacon)
        fanout = s["fanout"]
        assert fanout["batches"] >= 1
        assert fanout["lines_per_s"] >= 0
        del fanout["batches"], fanout["lines_per_s"]
        assert fanout == {"fast_path": False, "direct_frames": 0, "queued_packets": 0}


def test_frame_headers_follow_rfc6455() -> None:
    assert websocket.text_frame(b"x" * 125)[:2] == b"\x81\x7d"
    assert websocket.text_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert websocket.text_frame(b"x" * 70000)[:10] == b"\x81\x7f" + (70000).to_bytes(8, "big")
