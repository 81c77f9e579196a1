"""Token management over REST: create, list, revoke; revocations reach every node (S4 across nodes)."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from conftest import TOKEN, Beacon, ClientFactory, eventually, make_config, running_beacon

from app.server import serve

OPERATOR = "operator-token-0123456789"
TOKENS = f"test-admin:admin:{TOKEN},ops:operator:{OPERATOR}"


async def call(beacon: Beacon, method: str, path: str, secret: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession(headers=headers) as http, http.request(method, beacon.rest + path, json=body) as r:
        return r.status, await r.json()


async def test_an_admin_creates_lists_and_revokes_a_token(tmp_path: Path, connect: ClientFactory) -> None:
    async with running_beacon(make_config(tmp_path, **{"auth.tokens": TOKENS})) as beacon:
        status, created = await call(beacon, "POST", "/admin/tokens", TOKEN, {"name": "ci-bot", "role": "operator"})
        assert status == 201, created
        assert created["created_by"] == "test-admin" and len(created["token"]) >= 32
        secret = created["token"]

        status, body = await call(beacon, "POST", "/start", secret, {"workflow": "bench", "input": {"lines": 1}})
        assert status == 202, body
        status, body = await call(beacon, "GET", "/admin/tokens", secret)
        assert status == 403 and body["error"] == "forbidden"  # operators do not manage tokens

        status, body = await call(beacon, "GET", "/admin/tokens", TOKEN)
        assert status == 200
        rows = {t["name"]: t for t in body["tokens"]}
        assert rows["ci-bot"] == {
            "name": "ci-bot",
            "role": "operator",
            "source": "api",
            "created_at": created["created_at"],
            "created_by": "test-admin",
        }
        assert rows["ops"]["source"] == "config" and rows["test-admin"]["role"] == "admin"
        assert secret not in str(body) and OPERATOR not in str(body)

        bot = await connect(beacon.realtime, ("/logs",), auth={"token": secret})
        status, body = await call(beacon, "DELETE", "/admin/tokens/ci-bot", TOKEN)
        assert status == 200 and body["revoked_by"] == "test-admin", body
        await eventually(lambda: not bot.sio.connected, 5, message="the revoked token's socket is still connected")
        status, body = await call(beacon, "GET", "/admin/runs", secret)
        assert status == 401 and body["message"] == "unknown or revoked token"
        status, body = await call(beacon, "DELETE", "/admin/tokens/ci-bot", TOKEN)
        assert status == 404 and body["error"] == "not_found"


async def test_bad_token_requests_change_nothing(beacon: Beacon) -> None:
    cases = [
        ({"name": "bad name", "role": "viewer"}, 422, "name"),
        ({"name": "x", "role": "root"}, 422, "role"),
        ({"role": "viewer"}, 422, "name"),
        ({"name": "x" * 65, "role": "viewer"}, 422, "name"),
    ]
    for body, code, field in cases:
        status, answer = await call(beacon, "POST", "/admin/tokens", TOKEN, body)
        assert status == code and field in answer["details"], (body, answer)
    status, answer = await call(beacon, "POST", "/admin/tokens", TOKEN, {"name": "test-admin", "role": "viewer"})
    assert status == 409 and answer["error"] == "token_exists"
    status, answer = await call(beacon, "DELETE", "/admin/tokens/bad%20name", TOKEN)
    assert status == 422 and answer["error"] == "validation_error"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            beacon.rest + "/admin/tokens", data=b"{nope", headers={"Authorization": f"Bearer {TOKEN}",
                                                                   "Content-Type": "application/json"}
        ) as resp:
            assert resp.status == 400
    status, answer = await call(beacon, "GET", "/admin/tokens", TOKEN)
    assert [t["name"] for t in answer["tokens"]] == ["test-admin"]


async def test_the_last_admin_token_cannot_be_revoked(beacon: Beacon) -> None:
    status, body = await call(beacon, "DELETE", "/admin/tokens/test-admin", TOKEN)
    assert status == 409 and "last admin token" in body["message"], body
    status, created = await call(beacon, "POST", "/admin/tokens", TOKEN, {"name": "root2", "role": "admin"})
    assert status == 201
    status, body = await call(beacon, "DELETE", "/admin/tokens/test-admin", created["token"])
    assert status == 200, body
    status, body = await call(beacon, "GET", "/admin/tokens", TOKEN)
    assert status == 401


async def test_revocations_and_api_tokens_survive_a_restart(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, **{"auth.tokens": TOKENS})
    async with running_beacon(cfg) as beacon:
        status, created = await call(beacon, "POST", "/admin/tokens", TOKEN, {"name": "later", "role": "viewer"})
        assert status == 201
        status, body = await call(beacon, "DELETE", "/admin/tokens/ops", TOKEN)  # a configured token
        assert status == 200, body
    async with running_beacon(cfg) as beacon:
        status, body = await call(beacon, "GET", "/admin/runs", OPERATOR)
        assert status == 401, "a revoked configured token came back after a restart"
        status, body = await call(beacon, "GET", "/admin/runs", created["token"])
        assert status == 200, body


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path, redis_url: str, database: str) -> AsyncIterator[tuple[Beacon, str]]:
    """A Beacon with both listeners and a realtime-only node beside it; yields it and the other's URL."""
    cfg = make_config(tmp_path, **{"auth.tokens": TOKENS, "pubsub.url": redis_url, "store.url": database})
    async with running_beacon(cfg) as rest_node, serve(cfg, "realtime") as realtime_node:
        yield rest_node, f"http://127.0.0.1:{realtime_node.realtime_port}"


async def socket_with_new_token(rest_node: Beacon, url: str, name: str) -> socketio.AsyncClient:
    """Create a viewer token on one node and connect with it to the other (once that node knows it)."""
    status, created = await call(rest_node, "POST", "/admin/tokens", TOKEN, {"name": name, "role": "viewer"})
    assert status == 201
    client = socketio.AsyncClient(reconnection=False)

    async def connected() -> bool:
        with contextlib.suppress(socketio.exceptions.ConnectionError):
            await client.connect(url, namespaces=["/logs"], auth={"token": created["token"]}, wait_timeout=5)
        return client.connected

    await eventually(connected, 10, message="the realtime node never accepted the new token")
    return client


async def test_a_revoke_on_one_node_disconnects_sockets_on_another(
    tmp_path: Path, redis_server: Any, postgres_server: Any
) -> None:
    """S4 across nodes: a REST node revokes, a realtime-only node drops the socket (told over the bus)."""
    async with two_nodes(tmp_path, redis_server.url, postgres_server.create_database()) as (rest_node, url):
        client = await socket_with_new_token(rest_node, url, "remote")
        try:
            began = time.monotonic()
            status, _ = await call(rest_node, "DELETE", "/admin/tokens/remote", TOKEN)
            assert status == 200
            await eventually(lambda: not client.connected, 5, message="socket on the other node still connected")
            print(f"\nS4 across nodes: disconnected {time.monotonic() - began:.2f}s after the revoke")
        finally:
            await client.disconnect()


async def test_a_node_that_missed_the_bus_message_still_follows_within_the_refresh(
    tmp_path: Path, redis_proc: Any, postgres_server: Any
) -> None:
    """Redis frozen while the revoke happens: the other node re-reads the store (every 5 s)."""
    async with two_nodes(tmp_path, redis_proc.url, postgres_server.create_database()) as (rest_node, url):
        client = await socket_with_new_token(rest_node, url, "later")
        redis_proc.send(signal.SIGSTOP)
        try:
            status, _ = await call(rest_node, "DELETE", "/admin/tokens/later", TOKEN)
            assert status == 200  # the store has it; the bus message is lost
            await eventually(lambda: not client.connected, 10, message="the other node never re-read the tokens")
        finally:
            redis_proc.send(signal.SIGCONT)
            await client.disconnect()


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_smaller_roles_cannot_mint_tokens(tmp_path: Path, role: str) -> None:
    async with running_beacon(make_config(tmp_path, **{"auth.tokens": TOKENS})) as beacon:
        status, created = await call(beacon, "POST", "/admin/tokens", TOKEN, {"name": "small", "role": role})
        assert status == 201
        status, body = await call(beacon, "POST", "/admin/tokens", created["token"], {"name": "big", "role": "admin"})
        assert status == 403, body
