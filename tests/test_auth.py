"""Tokens and roles on both listeners (TESTPLAN S1–S4, S7), the generated admin token, and who decided."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pty
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from conftest import ROOT, TOKEN, Beacon, ClientFactory, eventually, free_port, make_config, running_beacon

from app.auth import digest
from app.config import ConfigError, load_config
from app.rest.app import EXTRA_ROLES
from app.rest.routes import ROUTES

VIEWER, OPERATOR = "viewer-token-0123456789", "operator-token-0123456789"
TOKENS = f"test-admin:admin:{TOKEN},ops:operator:{OPERATOR},eve:viewer:sha256:{digest(VIEWER)}"
RANK = {"public": -1, "viewer": 0, "operator": 1, "admin": 2}


@pytest.fixture
async def roles_beacon(tmp_path: Path) -> Any:
    async with running_beacon(make_config(tmp_path, **{"auth.tokens": TOKENS})) as b:
        yield b


def concrete(path: str) -> str:
    return re.sub(r"{\w+}", "some-thread", path)


async def raw(beacon: Beacon, method: str, path: str, token: str | None) -> tuple[int, dict[str, Any], Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as http:  # no default header: exactly what is given here
        async with http.request(method, beacon.rest + path, headers=headers, json={}) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if resp.content_type == "application/json" else {}, resp.headers


def test_every_route_has_a_role() -> None:
    for route in ROUTES:
        assert route.role in RANK, f"{route.method} {route.path}: role {route.role!r}"
    assert set(EXTRA_ROLES.values()) <= set(RANK)


# The table comes from the route table: a new route is covered (and needs a role to exist at all).
CASES = [(r.method, r.path, r.role) for r in ROUTES if r.role != "public"]


@pytest.mark.parametrize(("method", "path", "role"), CASES, ids=[f"{m} {p}" for m, p, _ in CASES])
async def test_s3_rest_route_without_token_or_with_too_small_a_role(
    roles_beacon: Beacon, method: str, path: str, role: str
) -> None:
    for token in (None, "garbage-token-that-nobody-has", ""):
        status, body, headers = await raw(roles_beacon, method, concrete(path), token)
        assert status == 401 and body["error"] == "unauthorized" and body["request_id"], body
        assert headers["WWW-Authenticate"].startswith("Bearer")
    for name, token in (("viewer", VIEWER), ("operator", OPERATOR)):
        status, body, _ = await raw(roles_beacon, method, concrete(path), token)
        if RANK[name] < RANK[role]:
            assert status == 403 and body["error"] == "forbidden" and body["details"] == {"role": role}, body
        else:
            assert status not in (401, 403), body
    status, body, _ = await raw(roles_beacon, method, concrete(path), TOKEN)
    assert status not in (401, 403), body


async def test_public_routes_answer_without_a_token(roles_beacon: Beacon) -> None:
    for path in ("/health", "/openapi.json", "/ui/config.json"):
        status, _, _ = await raw(roles_beacon, "GET", path, None)
        assert status == 200, path
    status, _, _ = await raw(roles_beacon, "GET", "/metrics", None)
    assert status == 401
    status, _, _ = await raw(roles_beacon, "GET", "/metrics", VIEWER)
    assert status == 200


async def try_connect(beacon: Beacon, namespace: str, auth: Any) -> str | None:
    """None when connected; otherwise the refusal's message."""
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append, namespace=namespace)
    try:
        await client.connect(beacon.realtime, namespaces=[namespace], auth=auth, wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        await client.disconnect()
        return str(errors[0]["message"]) if errors else "refused"
    await client.disconnect()
    return None


async def test_s2_socketio_connect_refused_without_a_good_token(roles_beacon: Beacon) -> None:
    cases = [
        ("/logs", None, "unauthorized"),
        ("/logs", {"token": "garbage-garbage-garbage"}, "unauthorized"),
        ("/logs", {"token": 5}, "unauthorized"),
        ("/logs", {"firehose": False}, "unauthorized"),
        ("/admin", {"token": VIEWER}, "forbidden"),
        ("/admin", {"token": OPERATOR}, "forbidden"),
        ("/logs", {"token": VIEWER, "firehose": False}, None),
        ("/admin", {"token": TOKEN}, None),
    ]
    for namespace, auth, expected in cases:
        assert await try_connect(roles_beacon, namespace, auth) == expected, (namespace, auth)
    async with aiohttp.ClientSession() as http, http.get(roles_beacon.realtime + "/health") as resp:
        assert (await resp.json())["connections"]["total_connections"] == 0  # refused ones never counted


async def test_refused_client_gets_no_events(roles_beacon: Beacon, connect: ClientFactory) -> None:
    stranger = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []
    stranger.on("admin_event", got.append, namespace="/admin")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await stranger.connect(roles_beacon.realtime, namespaces=["/admin"], auth={"token": VIEWER}, wait_timeout=5)
    watcher = await connect(roles_beacon.realtime, ("/admin",))
    thread_id = await roles_beacon.start("bench", {"lines": 2})
    await eventually(lambda: any(e["data"].get("thread_id") == thread_id for e in watcher.admin))
    assert got == []
    await stranger.disconnect()


async def test_s4_revoked_token_is_disconnected_within_5s(roles_beacon: Beacon, connect: ClientFactory) -> None:
    ops = await connect(roles_beacon.realtime, ("/logs",), auth={"token": OPERATOR})
    admin = await connect(roles_beacon.realtime, ("/logs", "/admin"))
    status, body = await roles_beacon.call("DELETE", "/admin/tokens/ops")
    assert status == 200, body
    await eventually(lambda: not ops.sio.connected, 5, message="revoked socket still connected")
    assert admin.sio.connected
    status, body, _ = await raw(roles_beacon, "GET", "/admin/runs", OPERATOR)
    assert status == 401, body
    assert await try_connect(roles_beacon, "/logs", {"token": OPERATOR}) == "unauthorized"


async def test_s7_subscribe_flood_is_refused_then_disconnected(roles_beacon: Beacon, connect: ClientFactory) -> None:
    client = await connect(roles_beacon.realtime, ("/logs",))

    async def call(i: int) -> Any:
        return await client.sio.call("subscribe", {"thread_id": f"t{i}"}, namespace="/logs", timeout=3)

    answers = await asyncio.gather(*(call(i) for i in range(1000)), return_exceptions=True)
    acks = [a for a in answers if isinstance(a, dict)]
    subscribed = [a for a in acks if "recovered" in a]
    limited = [a for a in acks if a.get("error", "").startswith("rate limited")]
    assert limited, "no subscribe was rate limited"
    assert len(subscribed) <= 45, len(subscribed)  # a 2 s burst at 20/s, and little more
    await eventually(lambda: not client.sio.connected, 5, message="a flooding client stays connected")
    other = await connect(roles_beacon.realtime, ("/logs",))  # the server is fine
    assert (await other.subscribe("x1"))["recovered"] is True


async def test_s7_connections_per_token_are_capped(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, **{"auth.max_connections_per_token": 5})
    async with running_beacon(cfg) as beacon:
        clients = []
        try:
            for _ in range(5):
                client = socketio.AsyncClient(reconnection=False)
                await client.connect(beacon.realtime, namespaces=["/logs"], auth={"token": TOKEN}, wait_timeout=5)
                clients.append(client)
            message = await try_connect(beacon, "/logs", {"token": TOKEN})
            assert message is not None and message.startswith("too many connections"), message
            await clients.pop().disconnect()

            async def slot_freed() -> bool:  # the server has seen the disconnect and let its slot go
                async with beacon.http.get(beacon.realtime + "/health") as resp:
                    return bool((await resp.json())["connections"]["log_connections"] == 4)

            await eventually(slot_freed, 5, message="the server still counts the closed connection")
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(beacon.realtime, namespaces=["/logs"], auth={"token": TOKEN}, wait_timeout=5)
            clients.append(client)  # the freed slot is taken again
            message = await try_connect(beacon, "/logs", {"token": TOKEN})
            assert message is not None and message.startswith("too many connections"), message
        finally:
            for client in clients:
                await client.disconnect()


async def test_s1_origin_is_checked_with_a_valid_token(beacon: Beacon) -> None:
    url = beacon.realtime + "/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Origin": "https://evil.example"}) as resp:
            assert resp.status == 400
            assert "is not an accepted origin" in await resp.text()
        async with http.get(url, headers={"Origin": beacon.rest}) as resp:  # the default: the bound REST port
            assert resp.status == 200
    evil = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await evil.connect(
            beacon.realtime, namespaces=["/logs"], auth={"token": TOKEN}, headers={"Origin": "https://evil.example"}
        )
    await evil.disconnect()


async def test_rest_cors_preflight_for_the_ui_origin(beacon: Beacon) -> None:
    headers = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    async with aiohttp.ClientSession() as http:
        async with http.options(beacon.rest + "/start", headers=headers) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
        async with http.options(beacon.rest + "/start", headers={**headers, "Origin": "https://evil.example"}) as resp:
            assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers


async def test_decisions_and_cancel_record_the_token_name(roles_beacon: Beacon, connect: ClientFactory) -> None:
    watcher = await connect(roles_beacon.realtime, ("/admin",))
    headers = {"Authorization": f"Bearer {OPERATOR}"}
    thread_id = await roles_beacon.start("review", {"topic": "who", "delay": 0})
    await roles_beacon.wait_status(thread_id, "waiting_approval")
    status, body = await roles_beacon.call(
        "POST", f"/approve/{thread_id}", {"decision": "reject", "comment": "no"}, headers=headers
    )
    assert status == 200 and body["decision"]["decided_by"] == "ops", body
    await eventually(lambda: len(_decisions_waiting(watcher.admin, thread_id)) == 2)
    status, body = await roles_beacon.call("POST", f"/admin/runs/{thread_id}/cancel", headers=headers)
    assert status == 200, body
    done = await roles_beacon.status(thread_id)
    assert [(d["decision"], d["decided_by"]) for d in done["decisions"]] == [("reject", "ops"), ("cancel", "ops")]
    approval = next(e for e in watcher.admin if e["type"] == "approval")
    assert approval["data"]["decided_by"] == "ops"

    def cancelled() -> list[dict[str, Any]]:
        return [e for e in watcher.admin if e["type"] == "run_status" and e["data"]["status"] == "cancelled"]

    [event] = await eventually(cancelled)
    assert event["data"]["cancelled_by"] == "ops"


def _decisions_waiting(events: list[dict[str, Any]], thread_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["type"] == "run_status"
        and e["data"]["thread_id"] == thread_id
        and e["data"]["status"] == "waiting_approval"
    ]


def test_token_config_is_validated() -> None:
    for entry, needle in (
        ("x:root:0123456789abcdef", "role must be one of"),
        ("x:admin:short", "at least 16 characters"),
        ("bad name:admin:0123456789abcdef", "expected name:role:secret"),
        ("x:admin:sha256:nothex", "64 lowercase hex"),
        ("x:admin:0123456789abcdef,x:viewer:0123456789abcdef", "used twice"),
    ):
        with pytest.raises(ConfigError, match=needle) as exc:
            load_config(None, {"BEACON_AUTH_TOKENS": entry})
        assert "0123456789abcdef" not in str(exc.value)  # secrets are never echoed


async def test_first_start_generates_a_0600_admin_token(tmp_path: Path) -> None:
    cfg, _ = load_config(None, {}, {"rest.port": 0, "realtime.port": 0, "store.url": f"sqlite:///{tmp_path}/b.sqlite"})
    async with running_beacon(cfg) as beacon:
        path = tmp_path / "beacon.token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = path.read_text().strip()
        assert beacon.running.services.login_token == secret
        status, _, _ = await raw(beacon, "GET", "/admin/stats", secret)
        assert status == 200
    async with running_beacon(cfg) as again:  # the same token on the next start
        assert again.running.services.login_token == secret


def run_py(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30, tty: bool = False
) -> str:
    """Start `python run.py` (stdout a pipe, or a terminal), return what it printed once it is up
    (or its error), then stop it."""
    master, terminal = pty.openpty() if tty else (-1, -1)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "--rest-port", str(free_port()), "--socketio-port", "0", *args],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=terminal if tty else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = []
    try:
        if tty:
            os.close(terminal)
        stream = open(master, errors="replace", closefd=True) if tty else proc.stdout  # noqa: SIM115
        assert stream is not None
        for line in stream:
            out.append(line.replace("\r\n", "\n"))
            if line.startswith("Store ") or "configuration error" in line:
                break
    finally:
        proc.terminate()
        proc.communicate(timeout=timeout)
        if tty:
            stream.close()
    return "".join(out)


def test_run_py_prints_a_login_url_with_the_token(tmp_path: Path) -> None:
    out = run_py(tmp_path, tty=True)  # on a terminal only (S26): see test_s26_login_url_only_on_a_terminal
    secret = (tmp_path / "data" / "beacon.token").read_text().strip()
    assert re.search(rf"http://127\.0\.0\.1:\d+/ui/\?token={re.escape(secret)}", out), out


def test_auth_off_is_refused_off_loopback_unless_insecure(tmp_path: Path) -> None:
    env = {"BEACON_AUTH_ENABLED": "false"}
    out = run_py(tmp_path, "--rest-host", "0.0.0.0", env=env)
    assert "configuration error: auth.enabled=false while listening on 0.0.0.0" in out, out
    out = run_py(tmp_path, "--rest-host", "0.0.0.0", "--insecure", env=env)
    assert "INSECURE: auth is disabled" in out and "Beacon REST API" in out, out
    out = run_py(tmp_path, env=env)  # loopback: allowed, with a warning
    assert "auth is disabled" in out and "Beacon REST API" in out, out


async def test_s11_nosniff_on_both_listeners(beacon: Beacon) -> None:
    async with aiohttp.ClientSession() as http:
        for url in (
            beacon.rest + "/health",
            beacon.rest + "/admin/runs",  # 401
            beacon.rest + "/nowhere",
            beacon.realtime + "/health",
            beacon.realtime + "/stats",
            beacon.realtime + "/socket.io/?EIO=4&transport=polling",
            beacon.realtime + "/nowhere",
        ):
            async with http.get(url) as resp:
                assert resp.headers.get("X-Content-Type-Options") == "nosniff", url


async def test_s6_malformed_packets_leave_the_server_alive(
    beacon: Beacon, connect: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    bystander = await connect(beacon.realtime, ("/logs",))
    deep = "[" * 10_000 + "]" * 10_000
    packets = [
        "42[",
        "9",
        '40/logs,{"token":"' + TOKEN + '"}',
        "42/logs,12345678901234567890" + '["subscribe",{"thread_id":"x"}]',
        "40/nowhere,",
        "42/logs," + deep,
        '42/logs,["disconnect"]',
        '42/logs,[5, {"thread_id": "x"}]',
        '42/logs,{"not": "a list"}',
    ]
    async with aiohttp.ClientSession() as http:
        for packet in packets:
            ws = await http.ws_connect(beacon.realtime + "/socket.io/?EIO=4&transport=websocket")
            await ws.receive(timeout=5)  # the open packet
            await ws.send_str('40/logs,{"token":"' + TOKEN + '"}')
            await ws.receive(timeout=5)
            await ws.send_str(packet)
            await asyncio.sleep(0.05)
            await ws.close()
    async with aiohttp.ClientSession() as http, http.get(beacon.realtime + "/health") as resp:
        assert resp.status == 200
    assert (await bystander.subscribe("still-here"))["recovered"] is True
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(noisy) <= len(packets), [r.getMessage()[:120] for r in noisy]  # at most one line per connection


def test_s13_dependency_floor() -> None:
    from importlib.metadata import version

    from packaging.version import Version

    floors = {
        "aiohttp": "3.14.4",
        "python-socketio": "5.14",
        "python-engineio": "4.15.1",
        "langgraph-checkpoint": "4.1.1",
        "langgraph-checkpoint-sqlite": "3.0.1",
    }
    for name, floor in floors.items():
        assert Version(version(name)) >= Version(floor), f"{name} {version(name)} is below the floor {floor}"
