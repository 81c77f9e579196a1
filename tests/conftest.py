"""Fixtures: a real Beacon through serve() on port 0, HTTP and Socket.IO clients, polling."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from app.config import Config, load_config
from app.server import Running, serve
from app.store import Store, open_store

ROOT = Path(__file__).resolve().parent.parent
# Every Beacon the suite starts knows this admin token; clients send it (auth stays on in tests).
TOKEN = "test-admin-token-0123456789abcdef"
TOKEN_ENTRY = f"test-admin:admin:{TOKEN}"
AUTH_HEADER = {"Authorization": f"Bearer {TOKEN}"}
IN_CI = os.environ.get("CI", "").lower() == "true"


def need_binary(name: str) -> str:
    """Path of a server binary; a missing one skips locally and fails in CI (CI=true)."""
    path = shutil.which(name) or next((str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}")), None)
    if path:
        return path
    if IN_CI:
        pytest.fail(f"{name} is not installed; .ci/run must install it")
    pytest.skip(f"{name} is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(
    condition: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02, message: str = ""
) -> Any:
    """Poll until `condition()` (sync or async) is truthy; fail with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    base = {
        "rest.port": 0,
        "realtime.port": 0,
        "store.url": f"sqlite:///{tmp_path}/beacon.sqlite",
        "runs.grace_period": 2.0,
        "auth.tokens": TOKEN_ENTRY,
    }
    if os.environ.get("BEACON_TEST_FAST_PATH") == "off":  # `make test` runs the realtime tests so once
        base["realtime.fast_path"] = False
    cfg, _ = load_config(None, {}, {**base, **overrides})
    return cfg


class RestClient:
    """REST helpers for anything with an HTTP session (`http`) and a base URL (`rest`)."""

    http: aiohttp.ClientSession
    rest: str

    async def call(self, method: str, path: str, json: Any = None, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(method, self.rest + path, json=json, **kw) as resp:
            body = await resp.json(content_type=None) if resp.content_length != 0 else None
            return resp.status, body

    async def start(self, workflow: str = "review", input: dict[str, Any] | None = None, **kw: Any) -> str:
        status, body = await self.call("POST", "/start", {"workflow": workflow, "input": input or {}, **kw})
        assert status == 202, body
        return str(body["thread_id"])

    async def status(self, thread_id: str) -> dict[str, Any]:
        status, body = await self.call("GET", f"/status/{thread_id}")
        assert status == 200, body
        return dict(body)

    async def wait_status(self, thread_id: str, wanted: str, timeout: float = 10.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            body = await self.status(thread_id)
            return body if body["status"] == wanted else None

        result = await eventually(check, timeout, 0.05, f"{thread_id} never reached {wanted}")
        return dict(result)


@dataclass
class Beacon(RestClient):
    """A Beacon running in this process (serve()) plus an HTTP session aimed at its REST listener."""

    cfg: Config
    running: Running
    http: aiohttp.ClientSession

    @property
    def rest(self) -> str:  # type: ignore[override]
        return f"http://127.0.0.1:{self.running.rest_port}"

    @property
    def realtime(self) -> str:
        return f"http://127.0.0.1:{self.running.realtime_port}"


@contextlib.asynccontextmanager
async def running_beacon(cfg: Config) -> AsyncIterator[Beacon]:
    watchdog: asyncio.Task[None] | None = None
    try:
        async with serve(cfg) as running, aiohttp.ClientSession(headers=AUTH_HEADER) as http:
            try:
                yield Beacon(cfg, running, http)
            finally:
                watchdog = asyncio.create_task(_report_slow_shutdown(30))
    finally:
        if watchdog is not None:
            watchdog.cancel()


async def _report_slow_shutdown(after: float) -> None:
    """A shutdown should take seconds; past `after`, print what is still pending (for a hang in CI)."""
    await asyncio.sleep(after)
    current = asyncio.current_task()
    print(f"\nserve() still shutting down after {after:.0f}s; pending tasks:", flush=True)
    for task in asyncio.all_tasks():
        if task is not current:
            task.print_stack(limit=8)


@pytest.fixture
async def beacon(tmp_path: Path) -> AsyncIterator[Beacon]:
    async with running_beacon(make_config(tmp_path)) as b:
        yield b


@pytest.fixture(params=["embedded", "redis+postgres"])
def stack(request: pytest.FixtureRequest) -> dict[str, str]:
    """Config overrides for one test body run on both stacks: memory+SQLite, and Redis+Postgres."""
    if request.param == "embedded":
        return {}
    redis = request.getfixturevalue("redis_server")
    postgres = request.getfixturevalue("postgres_server")
    return {"pubsub.url": redis.url, "store.url": postgres.create_database()}


@pytest.fixture
async def stack_beacon(tmp_path: Path, stack: dict[str, str]) -> AsyncIterator[Beacon]:
    async with running_beacon(make_config(tmp_path, **stack)) as b:
        yield b


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """One store of each backend, for conformance tests."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/store.sqlite"
    else:
        url = request.getfixturevalue("postgres_server").create_database()
    async with open_store(url) as s:
        yield s


@dataclass
class Client:
    """A python-socketio client that records what each namespace receives."""

    sio: socketio.AsyncClient
    logs: list[dict[str, Any]] = field(default_factory=list)
    admin: list[dict[str, Any]] = field(default_factory=list)

    async def subscribe(self, thread_id: str, since: int | None = None, **extra: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {"thread_id": thread_id, **extra}
        if since is not None:
            payload["since"] = since
        return dict(await self.sio.call("subscribe", payload, namespace="/logs", timeout=10))

    def seqs(self, thread_id: str) -> list[int]:
        return [line["seq"] for line in self.logs if line["thread_id"] == thread_id]


ClientFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    clients: list[Client] = []

    async def factory(url: str, namespaces: tuple[str, ...] = ("/logs", "/admin"), **kw: Any) -> Client:
        client = Client(socketio.AsyncClient(reconnection=kw.pop("reconnection", False)))
        kw["auth"] = {"token": TOKEN, **(kw.get("auth") or {})}
        if "/logs" in namespaces:
            client.sio.on("log", client.logs.append, namespace="/logs")
        if "/admin" in namespaces:
            client.sio.on("admin_event", client.admin.append, namespace="/admin")
        await client.sio.connect(url, namespaces=list(namespaces), wait_timeout=10, **kw)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        with contextlib.suppress(Exception):
            await client.sio.disconnect()


# Real server fixtures (redis-server, Postgres) shared by every module; servers.py imports
# helpers from this module, hence the import at the end.
from servers import postgres_proc, postgres_server, redis_proc, redis_server  # noqa: E402, F401
