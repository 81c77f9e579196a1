"""Engine.IO websockets on `websocket.Conn` (issue 6, memory): the protocol edges, and aiohttp's share.

Raw sockets here speak RFC 6455 by hand, so malformed frames can be sent on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import TOKEN, Beacon, ClientFactory, eventually, make_config, running_beacon

PATH = "/socket.io/?EIO=4&transport=websocket"


async def stats(beacon: Beacon) -> dict[str, Any]:
    async with beacon.http.get(beacon.realtime + "/stats") as resp:
        return dict(await resp.json())


async def served(beacon: Beacon) -> tuple[int, int]:
    """Websockets on Conn, and on python-engineio's own handler."""
    ws = (await stats(beacon))["websockets"]
    return ws["direct"], ws["library"]


def client_frame(payload: bytes, opcode: int = 1, fin: bool = True, masked: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        length = bytes([n])
    else:
        length = bytes([126]) + struct.pack("!H", n) if n < 65536 else bytes([127]) + struct.pack("!Q", n)
    if not masked:
        return head + length + payload
    key = os.urandom(4)
    length = bytes([length[0] | 0x80]) + length[1:]
    return head + length + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Raw:
    """One TCP connection to the realtime port."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, beacon: Beacon) -> Raw:
        return cls(*await asyncio.open_connection("127.0.0.1", beacon.running.realtime_port))

    @classmethod
    async def on_logs(cls, beacon: Beacon) -> Raw:
        """A websocket connected to /logs."""
        raw = await cls.open(beacon)
        await raw.upgrade()
        await raw.connect_logs()
        return raw

    async def upgrade(self, path: str = PATH, extra: str = "") -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n".encode()
        )
        return await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)

    async def frame(self) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 10)
        n = second & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return first & 0x0F, await self.reader.readexactly(n)

    async def text(self) -> str:
        while True:
            opcode, payload = await self.frame()
            if opcode == 1 and payload != b"6":  # Engine.IO NOOPs (an upgrade's) carry nothing
                return payload.decode()
            assert opcode != 8, f"closed: {payload!r}"

    async def close_code(self) -> int:
        """Read until the server's close frame; its status code."""
        while True:
            opcode, payload = await self.frame()
            if opcode == 8:
                return int(struct.unpack("!H", payload[:2])[0])

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def connect_logs(self) -> None:
        assert (await self.text()).startswith("0{")
        self.send(client_frame(("40/logs," + json.dumps({"token": TOKEN})).encode()))
        assert (await self.text()).startswith("40/logs,")

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def raw(beacon: Beacon) -> AsyncIterator[Raw]:
    conn = await Raw.open(beacon)
    yield conn
    conn.close()


async def test_a_new_websocket_is_served_by_conn_and_gets_its_lines(beacon: Beacon, raw: Raw) -> None:
    head = await raw.upgrade()
    assert head.startswith(b"HTTP/1.1 101 ") and b"X-Content-Type-Options: nosniff" in head
    await raw.connect_logs()
    assert await served(beacon) == (1, 0)
    thread_id = await beacon.start("bench", {"lines": 20, "size": 10})
    seqs = []
    while len(seqs) < 21:
        text = await raw.text()
        if text.startswith('42/logs,["log",'):
            line = json.loads(text[len("42/logs,") :])[1]
            assert line["thread_id"] == thread_id
            seqs.append(line["seq"])
    assert seqs == list(range(1, 22))


async def test_other_requests_on_the_port_are_aiohttps_keep_alive_included(beacon: Beacon) -> None:
    # One connection for everything: /health, /stats, a polling handshake, then a websocket upgrade,
    # which aiohttp serves on the library's handler (the connection is already aiohttp's).
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as http:
        for path in ("/health", "/stats", "/health"):
            async with http.get(beacon.realtime + path) as resp:
                assert resp.status == 200 and resp.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(beacon.realtime + "/socket.io/?EIO=4&transport=polling") as resp:
            assert resp.status == 200 and (await resp.text()).startswith("0{")
        async with http.ws_connect(beacon.realtime + PATH) as ws:
            assert (await ws.receive_str(timeout=10)).startswith("0{")
            await ws.send_str("40/logs," + json.dumps({"token": TOKEN}))
            assert (await ws.receive_str(timeout=10)).startswith("40/logs,")
            assert await served(beacon) == (0, 1)
    async with beacon.http.get(beacon.realtime + "/nope") as resp:
        assert resp.status == 404


@pytest.mark.parametrize("transports", [["polling", "websocket"], ["websocket"]])
async def test_python_socketio_clients_upgrade_onto_conn(
    beacon: Beacon, connect: ClientFactory, transports: list[str]
) -> None:
    client = await connect(beacon.realtime, ("/logs",), transports=transports)
    await eventually(lambda: client.sio.transport() == "websocket", 10)
    s = await stats(beacon)
    assert s["websockets"]["direct"] + s["websockets"]["library"] == 1
    thread_id = await beacon.start("bench", {"lines": 50, "size": 10})
    await eventually(lambda: len(client.seqs(thread_id)) == 51, 20)
    assert client.seqs(thread_id) == list(range(1, 52))


@pytest.mark.parametrize("probe", [b"2probe", b"2nope"])
async def test_an_upgrade_from_polling(beacon: Beacon, probe: bytes) -> None:
    url = beacon.realtime + "/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        raw = await Raw.open(beacon)
        assert (await raw.upgrade(path=f"{PATH}&sid={sid}")).startswith(b"HTTP/1.1 101 ")
        raw.send(client_frame(probe))
        if probe == b"2probe":
            assert await raw.text() == "3probe"
            async with http.get(f"{url}&sid={sid}") as resp:  # the pending poll ends with a NOOP
                assert await resp.text() == "6"
            raw.send(client_frame(b"5"))
            raw.send(client_frame(("40/logs," + json.dumps({"token": TOKEN})).encode()))
            assert (await raw.text()).startswith("40/logs,")
            assert await served(beacon) == (1, 0)
        else:  # a failed upgrade closes the websocket; the client goes on polling
            assert await raw.close_code() == 1000
            connect = "40/logs," + json.dumps({"token": TOKEN})
            async with http.post(f"{url}&sid={sid}", data=connect) as resp:
                assert resp.status == 200
            async with http.get(f"{url}&sid={sid}") as resp:
                assert (await resp.text()).startswith("40/logs,")
        raw.close()


async def test_one_upgrade_at_a_time_and_a_probe_in_bounded_time(tmp_path: Path) -> None:
    async with running_beacon(make_config(tmp_path, **{"realtime.ping_timeout": 0.5})) as beacon:
        url = beacon.realtime + "/socket.io/?EIO=4&transport=polling"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        first, second = await Raw.open(beacon), await Raw.open(beacon)
        assert (await first.upgrade(path=f"{PATH}&sid={sid}")).startswith(b"HTTP/1.1 101 ")
        # a second websocket while one upgrades: accepted, then closed (as Node's engine.io does)
        assert (await second.upgrade(path=f"{PATH}&sid={sid}")).startswith(b"HTTP/1.1 101 ")
        assert await asyncio.wait_for(second.close_code(), 5) == 1000
        # the first never sends its probe: closed after ping_timeout
        assert await asyncio.wait_for(first.close_code(), 5) == 1000
        first.close()
        second.close()


async def test_a_frame_sent_with_the_handshake_is_read(raw: Raw) -> None:
    connect = client_frame(("40/logs," + json.dumps({"token": TOKEN})).encode())
    key = base64.b64encode(os.urandom(16)).decode()
    raw.send(
        f"GET {PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        + connect
    )
    assert (await raw.reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
    assert (await raw.text()).startswith("0{")
    assert (await raw.text()).startswith("40/logs,")


async def test_fragments_and_websocket_pings(raw: Raw) -> None:
    await raw.upgrade()
    assert (await raw.text()).startswith("0{")
    connect = ("40/logs," + json.dumps({"token": TOKEN})).encode()
    raw.send(client_frame(connect[:5], fin=False))
    raw.send(client_frame(b"ping me", opcode=9))  # a control frame may come between fragments
    raw.send(client_frame(connect[5:], opcode=0))
    assert await raw.frame() == (10, b"ping me")
    assert (await raw.text()).startswith("40/logs,")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (client_frame(b"3", masked=False), 1002),  # clients must mask
        (bytes([0x81 | 0x40, 0x81]) + os.urandom(4) + b"x", 1002),  # RSV1 without an extension
        (client_frame(b"\xff\xfe"), 1007),  # not UTF-8
        (client_frame(b"x"), 1003),  # not an Engine.IO packet
        (client_frame(b"4" + b"x" * 2000), 1009),  # over max_message_bytes (1,024 here)
    ],
    ids=["unmasked", "rsv1", "utf8", "engineio", "too-big"],
)
async def test_bad_frames_close_the_connection_with_the_right_code(
    tmp_path: Path, frame: bytes, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_beacon(make_config(tmp_path, **{"realtime.max_message_bytes": 1024})) as beacon:
        raw = await Raw.on_logs(beacon)
        with caplog.at_level(logging.WARNING):
            # A second offence on the way out logs nothing more; a ping after our close gets no pong.
            raw.send(frame + client_frame(b"p", opcode=9) + frame)
            assert await raw.close_code() == code
            raw.close()
            async with beacon.http.get(beacon.realtime + "/health") as resp:  # still serving
                assert resp.status == 200
            await eventually(lambda: _logs_empty(beacon), 5)
        assert sum("websocket" in r.name for r in caplog.records) <= 1
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def _logs_empty(beacon: Beacon) -> bool:
    async with beacon.http.get(beacon.realtime + "/stats") as resp:
        return bool((await resp.json())["namespaces"]["/logs"]["connections"] == 0)


async def test_refused_handshakes_get_an_http_answer(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, **{"realtime.cors_origins": "http://ui.example"})
    async with running_beacon(cfg) as beacon:
        raw = await Raw.open(beacon)
        head = await raw.upgrade(extra="Origin: http://evil.example\r\n")
        body = await raw.reader.read()  # then the server closes
        raw.close()
        assert head.startswith(b"HTTP/1.1 400 ") and b"X-Content-Type-Options: nosniff" in head
        assert b"not an accepted origin" in body
        raw = await Raw.open(beacon)
        assert (await raw.upgrade(path="/socket.io/?EIO=3&transport=websocket")).startswith(b"HTTP/1.1 400 ")
        raw.close()
        raw = await Raw.open(beacon)
        assert (await raw.upgrade(extra="Origin: http://ui.example\r\n")).startswith(b"HTTP/1.1 101 ")
        raw.close()


async def test_a_slow_request_head_is_dropped(tmp_path: Path) -> None:
    async with running_beacon(make_config(tmp_path, **{"realtime.head_timeout": 0.3})) as beacon:
        raw = await Raw.open(beacon)
        raw.send(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n")
        assert await asyncio.wait_for(raw.reader.read(), 5) == b""  # closed without an answer
        raw.close()


async def test_a_client_that_stops_answering_pings_is_closed(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, **{"realtime.ping_interval": 0.3, "realtime.ping_timeout": 0.3})
    async with running_beacon(cfg) as beacon:
        raw = await Raw.on_logs(beacon)
        texts = []
        while True:  # never answers "2" with "3"
            opcode, payload = await asyncio.wait_for(raw.frame(), 10)
            if opcode == 8:
                break
            texts.append(payload.decode())
        assert "2" in texts and texts[-1] == "1"  # pinged, then Engine.IO CLOSE before the websocket close
        raw.close()
        await eventually(lambda: _logs_empty(beacon), 5)
        assert await served(beacon) == (0, 0)


async def test_pings_answered_keep_a_connection_open(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, **{"realtime.ping_interval": 0.2, "realtime.ping_timeout": 0.5})
    async with running_beacon(cfg) as beacon:
        raw = await Raw.on_logs(beacon)
        pings = 0
        while pings < 5:
            if await raw.text() == "2":
                pings += 1
                raw.send(client_frame(b"3"))
        assert (await stats(beacon))["namespaces"]["/logs"]["connections"] == 1
        raw.close()


async def test_shutdown_closes_websockets(tmp_path: Path) -> None:
    async with running_beacon(make_config(tmp_path)) as beacon:
        raw = await Raw.on_logs(beacon)
    # Socket.IO DISCONNECT, Engine.IO CLOSE, then the websocket close frame.
    assert await asyncio.wait_for(raw.close_code(), 10) == 1000
    raw.close()


async def test_a_client_that_stops_reading_is_disconnected_past_the_hard_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 1 KiB fan-out bound → 4 KiB hard limit for everything else, here /admin events, which the
    # fan-out does not carry. The client never reads; its receive buffer is as small as Linux allows.
    async with running_beacon(make_config(tmp_path, **{"realtime.send_buffer_bytes": 1024})) as beacon:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", beacon.running.realtime_port))
        raw = Raw(*await asyncio.open_connection(sock=sock))
        await raw.upgrade()
        assert (await raw.text()).startswith("0{")
        raw.send(client_frame(("40/admin," + json.dumps({"token": TOKEN})).encode()))
        assert (await raw.text()).startswith("40/admin,")
        event = json.dumps({"type": "run_status", "data": {"text": "x" * 10_000}})
        with caplog.at_level(logging.WARNING):
            for _ in range(400):  # at most ~4 MB; the kernel's buffers take a few hundred KiB
                await beacon.running.services.bus.publish("admin", event)
                await asyncio.sleep(0.005)
                if (await stats(beacon))["namespaces"]["/admin"]["connections"] == 0:
                    break
        assert (await stats(beacon))["namespaces"]["/admin"]["connections"] == 0
        assert any("the client stopped reading" in r.getMessage() for r in caplog.records)
        raw.close()


async def test_connections_that_come_and_go_leave_nothing_behind(beacon: Beacon) -> None:
    clients = [await Raw.on_logs(beacon) for _ in range(60)]
    assert await served(beacon) == (60, 0)
    for i, raw in enumerate(clients):
        if i % 3 == 0:
            raw.send(client_frame(b"\x03\xe8", opcode=8))  # a close frame (1000), then wait for the answer
            assert await raw.close_code() == 1000
            raw.close()
        elif i % 3 == 1:
            raw.writer.transport.abort()  # RST, no close frame
        else:
            raw.close()  # FIN, no close frame

    async def all_gone() -> bool:
        s = await stats(beacon)
        return bool(s["namespaces"]["/logs"]["connections"] == 0 and s["websockets"]["engineio_sockets"] == 0)

    await eventually(all_gone, 10)
    assert await served(beacon) == (0, 0)
