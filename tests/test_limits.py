"""Size limits (TESTPLAN S5, S8): oversized Socket.IO messages and a gzip bomb to the REST API."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import json
import resource

import aiohttp
import psutil
from conftest import TOKEN, Beacon, ClientFactory, eventually

LIMIT = 65536  # realtime.max_message_bytes and rest.max_body_bytes (the defaults)


async def healthy(beacon: Beacon) -> None:
    async with aiohttp.ClientSession() as http:
        for url in (beacon.rest + "/health", beacon.realtime + "/health"):
            async with http.get(url) as resp:
                assert resp.status == 200, (url, await resp.text())


async def raw_logs_socket(http: aiohttp.ClientSession, beacon: Beacon) -> aiohttp.ClientWebSocketResponse:
    """A raw Engine.IO websocket, connected to /logs with the token."""
    ws = await http.ws_connect(beacon.realtime + "/socket.io/?EIO=4&transport=websocket", max_msg_size=0)
    opened = await ws.receive_str(timeout=5)
    assert opened.startswith("0{"), opened
    await ws.send_str("40/logs," + json.dumps({"token": TOKEN}))
    connected = await ws.receive_str(timeout=5)
    assert connected.startswith("40/logs,{"), connected
    return ws


def oversized_event(size: int) -> str:
    head, tail = '42/logs,["subscribe",{"thread_id":"x1","pad":"', '"}]'
    frame = head + "x" * (size - len(head) - len(tail)) + tail
    assert len(frame.encode()) == size
    return frame


async def test_s5_websocket_message_over_64kb_closes_only_that_connection(
    beacon: Beacon, connect: ClientFactory
) -> None:
    other = await connect(beacon.realtime, ("/logs",))
    async with aiohttp.ClientSession() as http:
        # Just under the limit: answered, the socket stays.
        ws = await raw_logs_socket(http, beacon)
        await ws.send_str(oversized_event(LIMIT - 16).replace("42/logs,", "42/logs,7", 1))
        ack = await ws.receive_str(timeout=5)
        assert ack.startswith("43/logs,7["), ack[:200]
        # 64 KB + 1: the connection is closed.
        await ws.send_str(oversized_event(LIMIT + 1))
        closed = False
        for _ in range(10):  # bounded: a ping or two may come first
            msg = await ws.receive(timeout=5)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                closed = True
                break
        assert closed, msg
        await ws.close()

    await healthy(beacon)
    assert other.sio.connected
    thread_id = await beacon.start("bench", {"lines": 3})
    # 3 bench lines and the run's own "run completed" line
    await eventually(lambda: len(other.seqs(thread_id)) == 4, 10, message="the other client got no lines")
    assert other.seqs(thread_id) == [1, 2, 3, 4]


async def test_s5_oversized_polling_post_is_refused(beacon: Beacon, connect: ClientFactory) -> None:
    other = await connect(beacon.realtime, ("/logs",))
    base = beacon.realtime + "/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.get(base) as resp:
            assert resp.status == 200
            opened = await resp.text()
        sid = json.loads(opened[opened.index("{") :])["sid"]
        url = f"{base}&sid={sid}"
        async with http.post(url, data="40/logs," + json.dumps({"token": TOKEN})) as resp:
            assert resp.status == 200
        # As a real client does, keep a long-poll GET open: the server closes the socket through it.
        async with http.get(url) as resp:  # drain what is queued (the connect answer)
            assert resp.status == 200
        poll = asyncio.ensure_future(http.get(url))
        await asyncio.sleep(0.2)
        body = oversized_event(LIMIT + 1)
        try:
            async with http.post(url, data=body, headers={"Content-Type": "text/plain;charset=UTF-8"}) as resp:
                assert resp.status == 413, (resp.status, await resp.text())  # S23: at once, not 400
        except aiohttp.ClientError:  # or the connection is closed: also a refusal
            pass
        with contextlib.suppress(aiohttp.ClientError):
            resp = await asyncio.wait_for(poll, 10)
            text = await resp.text()
            resp.release()
            assert resp.status == 400 or "1" in text, (resp.status, text)  # closed: a CLOSE packet or an error
        async with http.post(url, data="2") as resp:  # the session is gone
            assert resp.status == 400, resp.status

    await healthy(beacon)
    assert other.sio.connected
    thread_id = await beacon.start("bench", {"lines": 2})
    await eventually(lambda: len(other.seqs(thread_id)) == 3, 10, message="the other client got no lines")


def rss_bytes() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


async def test_s8_gzip_bomb_is_refused_without_memory_growth(beacon: Beacon) -> None:
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < LIMIT  # small on the wire; only decoding makes it big
    json_bomb = gzip.compress(b'{"workflow":"review","input":{"topic":"' + b"a" * (10 * 1024 * 1024) + b'"}}', 9)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    await beacon.call("GET", "/health")  # warm up
    rss, peak = rss_bytes(), peak_rss_bytes()
    for payload in (bomb, json_bomb, bomb):
        async with beacon.http.post(beacon.rest + "/start", data=payload, headers=headers) as resp:
            text = await resp.text()
            assert resp.status in (400, 413), (resp.status, text[:500])
            assert json.loads(text)["error"] in ("too_large", "bad_request"), text[:500]
    grown, peak_grown = rss_bytes() - rss, peak_rss_bytes() - peak
    assert grown < 50 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MB"
    assert peak_grown < 50 * 1024 * 1024, f"peak RSS grew by {peak_grown / 2**20:.1f} MB"
    await healthy(beacon)
    status, runs = await beacon.call("GET", "/admin/runs")
    assert status == 200 and runs["total"] == 0, runs  # nothing was started
    await asyncio.sleep(0)
