"""Security round two, the realtime port (TESTPLAN S14, S15, S18, S21, S23–S25): raw clients, real server."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from conftest import AUTH_HEADER, TOKEN, Beacon, Client, ClientFactory, eventually, make_config, running_beacon
from test_websocket import Raw, client_frame

POLLING = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[Beacon]:
    """Short timeouts, so that what a client fails to do shows within a test's patience."""
    cfg = make_config(
        tmp_path, **{"realtime.connect_timeout": 1.0, "realtime.head_timeout": 1.0, "rest.head_timeout": 1.0}
    )
    async with running_beacon(cfg) as beacon:
        yield beacon


async def until_closed(raw: Raw, timeout: float = 10.0) -> str:
    """Read whatever the server sends until it closes the connection: 'close frame' or 'eof'."""

    async def read() -> str:
        while True:
            try:
                opcode, _ = await raw.frame()
            except (asyncio.IncompleteReadError, ConnectionError):
                return "eof"
            if opcode == 8:
                return "close frame"

    return await asyncio.wait_for(read(), timeout)


async def ack(raw: Raw, number: int) -> object:
    """The ack `43/logs,<number>[...]`, skipping everything else."""
    prefix = f"43/logs,{number}["
    while True:
        text = await raw.text()
        if text.startswith(prefix):
            return json.loads(text[len(prefix) - 1 :])[0]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info is not None or "Traceback" in r.getMessage()]


async def test_s14_a_subscribe_flood_across_namespace_reconnects_keeps_one_budget(beacon: Beacon) -> None:
    rate = beacon.cfg.auth.subscribe_rate
    raw = await Raw.open(beacon)
    await raw.upgrade()
    await raw.connect_logs()
    accepted, number, began = 0, 0, time.monotonic()
    closed = False
    for _cycle in range(50):  # bounded: at most 50 leave/re-CONNECT cycles of 40 subscribes
        try:
            for _ in range(40):
                number += 1
                raw.send(client_frame(f'42/logs,{number}["subscribe",{{"thread_id":"t{number}","since":0}}]'.encode()))
                reply = await ack(raw, number)
                accepted += isinstance(reply, dict) and "error" not in reply
            raw.send(client_frame(b"41/logs,"))
            raw.send(client_frame(("40/logs," + json.dumps({"token": TOKEN})).encode()))
            while not (await raw.text()).startswith("40/logs,"):
                pass
        except (AssertionError, asyncio.IncompleteReadError, ConnectionError):
            closed = True  # the server closed the transport on us
            break
    elapsed = time.monotonic() - began
    # The connection's budget: a two-second burst, then `rate` per second, however often it re-CONNECTs.
    assert accepted <= rate * 2 + rate * elapsed + 1, (accepted, elapsed)
    assert closed, "the flood never closed the Engine.IO connection"
    raw.close()


async def test_s15_malformed_packets_before_connect_get_one_warning_and_a_close(
    beacon: Beacon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    raw = await Raw.open(beacon)
    await raw.upgrade()
    assert (await raw.text()).startswith("0{")
    for _ in range(200):
        raw.send(client_frame(b"42["))
    assert await until_closed(raw) in ("close frame", "eof")
    await asyncio.sleep(0)  # what the server logs for them is logged by now: the close came after
    assert tracebacks(caplog) == []
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "malformed" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    raw.close()


async def test_s15_a_huge_since_is_refused_without_a_traceback(
    beacon: Beacon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    raw = await Raw.on_logs(beacon)
    raw.send(client_frame(b'42/logs,1["subscribe",{"thread_id":"t1","since":9223372036854775808}]'))
    assert await ack(raw, 1) == {"error": "invalid since"}  # one past what the store holds
    # 4,000 digits: python-socketio cannot decode the packet at all, so the connection goes
    raw.send(client_frame(('42/logs,2["subscribe",{"thread_id":"t1","since":' + "9" * 4000 + "}]").encode()))
    assert await until_closed(raw) in ("close frame", "eof")
    assert tracebacks(caplog) == []
    raw.close()


async def test_s15_malformed_polling_packets_close_the_session(
    beacon: Beacon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession() as http:
        async with http.get(beacon.realtime + POLLING) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        async with http.post(f"{beacon.realtime}{POLLING}&sid={sid}", data="42[") as resp:
            assert resp.status == 200

        async def gone() -> bool:
            async with http.get(f"{beacon.realtime}{POLLING}&sid={sid}") as resp:
                return resp.status == 400 or "1" == (await resp.text())[:1]

        await eventually(gone, 10)
    assert tracebacks(caplog) == []


async def test_s18_a_token_holding_a_surrogate_is_refused(beacon: Beacon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    raw = await Raw.open(beacon)
    await raw.upgrade()
    assert (await raw.text()).startswith("0{")
    raw.send(client_frame(b'40/logs,{"token":"\\ud800abc"}'))
    reply = await raw.text()
    assert reply.startswith("44/logs,") and "unauthorized" in reply
    assert tracebacks(caplog) == []
    raw.close()


async def test_s21_slow_request_heads_are_closed_on_both_listeners(quick: Beacon) -> None:
    async def slow_head(port: int, keep_alive_first: bool) -> bool:
        """True when the server closed the connection while the head trickled in (one line per 0.4 s)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            if keep_alive_first:
                writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                fields = dict(h.lower().split(b": ", 1) for h in head.strip().split(b"\r\n")[1:])
                await reader.readexactly(int(fields[b"content-length"]))
            writer.write(b"GET /health HTTP/1.1\r\n")
            for i in range(40):  # 16 s at most, against a head timeout of 1 s
                await asyncio.sleep(0.4)
                if reader.at_eof():
                    return True
                try:
                    writer.write(f"X-Slow-{i}: 1\r\n".encode())
                    await writer.drain()
                except ConnectionError:
                    return True
                try:
                    data = await asyncio.wait_for(reader.read(65536), 0.01)
                except TimeoutError:
                    continue
                if not data:
                    return True
            return False
        finally:
            writer.close()

    for port in (quick.running.rest_port, quick.running.realtime_port):
        for keep_alive_first in (False, True):
            assert await slow_head(port, keep_alive_first), (port, keep_alive_first)


async def test_s23_an_oversized_polling_post_is_413_at_once(beacon: Beacon) -> None:
    limit = beacon.cfg.realtime.max_message_bytes
    async with aiohttp.ClientSession() as http:
        async with http.get(beacon.realtime + POLLING) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        body = b"4" + b"x" * (limit + 1024)
        async with http.post(
            f"{beacon.realtime}{POLLING}&sid={sid}", data=body, timeout=aiohttp.ClientTimeout(total=20)
        ) as resp:
            assert resp.status == 413


async def test_s24_metrics_need_a_token_on_both_listeners(beacon: Beacon) -> None:
    async with aiohttp.ClientSession() as http:
        for base in (beacon.rest, beacon.realtime):
            async with http.get(base + "/metrics") as resp:
                assert resp.status == 401, base
                assert (await resp.json())["error"] == "unauthorized"
            async with http.get(base + "/metrics", headers=AUTH_HEADER) as resp:
                assert resp.status == 200, base
                assert "beacon_" in await resp.text()
        async with http.get(beacon.realtime + "/health") as resp:  # the seed's health check stays public
            assert resp.status == 200


async def test_s25_a_connection_that_joins_no_namespace_is_closed(quick: Beacon) -> None:
    raw = await Raw.open(quick)
    await raw.upgrade()
    assert (await raw.text()).startswith("0{")
    assert await until_closed(raw) in ("close frame", "eof")  # connect_timeout is 1 s here
    raw.close()
    async with aiohttp.ClientSession() as http:  # polling too: its next poll finds the session gone
        async with http.get(quick.realtime + POLLING) as resp:
            sid = json.loads((await resp.text())[1:])["sid"]
        async with http.get(f"{quick.realtime}{POLLING}&sid={sid}", timeout=aiohttp.ClientTimeout(total=20)) as resp:
            body = await resp.text()
        assert resp.status == 400 or body.startswith("1"), (resp.status, body)


async def test_s25_connect_to_the_root_namespace_is_refused(beacon: Beacon) -> None:
    raw = await Raw.open(beacon)
    await raw.upgrade()
    assert (await raw.text()).startswith("0{")
    raw.send(client_frame(b"40"))
    reply = await raw.text()
    assert reply.startswith("44{"), reply
    assert "message" in json.loads(reply[2:])
    raw.close()


async def test_s26_the_live_stream_carries_a_tracebacks_last_line_only(beacon: Beacon, connect: ClientFactory) -> None:
    # /logs is open to viewers: a traceback's internal paths stay in the REST logs, for operators.
    live = await connect(beacon.realtime, ("/logs",))
    thread_id = await beacon.start("deploy", {"step_delay": 0, "fail_at": "verify"})
    await beacon.wait_status(thread_id, "waiting_approval")
    await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    await beacon.wait_status(thread_id, "failed")

    def failed_line(client: Client) -> str | None:
        return next((line["text"] for line in client.logs if line["text"].startswith("run failed")), None)

    text = await eventually(lambda: failed_line(live), 10)
    status, page = await beacon.call("GET", f"/admin/runs/{thread_id}/logs")  # an admin: the whole traceback
    [full] = [line["text"] for line in page["lines"] if line["text"].startswith("run failed")]
    assert "Traceback (most recent call last)" in full and "Traceback" not in text and 'File "' not in text
    assert text.splitlines()[-1] == full.splitlines()[-1]
    replaying = await connect(beacon.realtime, ("/logs",))
    assert (await replaying.subscribe(thread_id, since=0))["replayed"] > 0
    assert await eventually(lambda: failed_line(replaying), 10) == text
