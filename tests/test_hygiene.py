"""S9 and S11: smuggling vectors get 400 and a closed connection; an internal error shows no
internals."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from conftest import Beacon, eventually, free_port

SMUGGLING = {
    "CL+TE": b"POST /start HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate CL": b"POST /start HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "bare LF": b"GET /health HTTP/1.1\nHost: x\n\n",
    "NUL in header": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
}


@pytest.mark.parametrize("vector", SMUGGLING)
async def test_s9_smuggling_vectors_get_400_and_a_closed_connection(beacon: Beacon, vector: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", beacon.running.rest_port)
    try:
        writer.write(SMUGGLING[vector])
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)  # read() to EOF: the server closed it
    finally:
        writer.close()
    status_line = answer.split(b"\r\n", 1)[0]
    # aiohttp's parser answers before any handler runs: a plain-text 400 (HTTP/1.0 status line).
    assert status_line in (b"HTTP/1.0 400 Bad Request", b"HTTP/1.1 400 Bad Request"), answer[:200]
    head, _, rest = answer.partition(b"\r\n\r\n")
    length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")).split(b":")[1])
    assert len(rest) == length, "bytes after the 400: the request was split into a second response"
    status, _ = await beacon.call("GET", "/admin/runs")
    assert status == 200


async def test_s11_internal_error_shows_no_internals(
    beacon: Beacon, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Fault injection, not a mock: the real store, with one method made to break like a bug would.
    store = beacon.running.services.store

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(store, "count_by_status", broken)
    async with beacon.http.get(beacon.rest + "/admin/runs") as resp:
        body = await resp.json()
        headers = resp.headers
    assert resp.status == 500
    assert body["error"] == "internal" and body["request_id"] == headers["X-Request-Id"]
    assert "secret" not in json.dumps(body) and "Traceback" not in json.dumps(body)
    assert headers["X-Content-Type-Options"] == "nosniff"
    logged = [r for r in caplog.records if r.levelno == logging.ERROR and body["request_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None, "the server log keeps the traceback, with the request id"


async def read_until_idle(reader: asyncio.StreamReader, idle: float = 1.0) -> bytes:
    """What a peer sends until it closes or goes quiet (nginx may keep the connection alive)."""
    data = b""
    for _ in range(100):
        try:
            chunk = await asyncio.wait_for(reader.read(65536), idle)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


async def test_s9_through_nginx_no_desync(beacon: Beacon, tmp_path: Path) -> None:
    from test_cluster import NGINX_CONF, nginx_binary, render_nginx

    rest, realtime, port = beacon.running.rest_port, beacon.running.realtime_port, free_port()
    (tmp_path / "temp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx(NGINX_CONF.read_text(), tmp_path, port, [rest, rest], [realtime, realtime]))
    flags = f"daemon off; pid {tmp_path}/nginx.pid; error_log stderr;"
    nginx = await asyncio.create_subprocess_exec(
        nginx_binary(),
        "-e",
        "stderr",
        "-c",
        str(conf),
        "-p",
        str(tmp_path),
        "-g",
        flags,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:

        async def listening() -> bool:
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            w.close()
            return True

        await eventually(listening, 10)
        for vector, raw in SMUGGLING.items():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(raw.replace(b"/start", b"/api/start").replace(b"/health", b"/api/health"))
                await writer.drain()
                answer = await read_until_idle(reader)
            finally:
                writer.close()
            head, _, rest_bytes = answer.partition(b"\r\n\r\n")
            status_line = head.split(b"\r\n", 1)[0]
            # nginx normalizes bare-LF line ends (and may answer it); everything else is refused.
            allowed = (b" 400 ", b" 200 ") if vector == "bare LF" else (b" 400 ",)
            assert any(code in status_line for code in allowed), (vector, answer[:300])
            lengths = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")]
            if lengths:
                assert len(rest_bytes) == int(lengths[0].split(b":")[1]), (vector, "a second response: desync")
        async with beacon.http.get(f"http://127.0.0.1:{port}/api/health") as resp:
            assert resp.status == 200
    finally:
        nginx.terminate()
        await asyncio.wait_for(nginx.wait(), 10)
