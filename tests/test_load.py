"""Load rows of TESTPLAN.md with npm socket.io-client connections in a Node process:

L1: 10 threads × 50 lines/s for 60 s to 300 subscribed clients: p99 logging→receipt < 250 ms, no
    seq missing or repeated.
L2: the realtime node restarted under them: all 300 back and resubscribed with `since` ≤ 15 s,
    every line still arrives exactly once, and REST answers with p99 < 500 ms meanwhile.
L3: a soak at half that load with Redis `CLIENT KILL`s (`make soak`; 30 minutes, not in CI).

L1 and L2 are *long* (`make test-long`).

Beacon runs as real processes (`python run.py`): one process for L1; for L2 a REST node and a
realtime node on Redis and Postgres, so the realtime node can restart alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import AUTH_HEADER, ROOT, TOKEN, TOKEN_ENTRY, eventually, free_port, need_binary
from servers import PostgresServer, RedisServer

CLIENTS = 300
THREADS = 10
RATE = 50  # lines per second per thread
SECONDS = 60
CONFIG_ENV = ("REST_API_", "SOCKETIO_", "PUBSUB_URL", "STORE_URL", "BEACON_")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_ENV)}
    # 300 consoles on one token: raise the per-token connection cap (100 by default) for the test.
    limits = {"BEACON_AUTH_MAX_CONNECTIONS_PER_TOKEN": str(CLIENTS)}
    return {**env, "PYTHONUNBUFFERED": "1", "BEACON_AUTH_TOKENS": TOKEN_ENTRY, **limits, **extra}


class Proc:
    """One `python run.py …` child whose output goes to a file (shown when a test fails)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], tmp_path: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, env, tmp_path / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=ROOT, env=self.env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
            )

    async def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)
            await asyncio.wait_for(self.proc.wait(), 30)


async def healthy(http: aiohttp.ClientSession, url: str, proc: Proc) -> None:
    async def up() -> bool:
        assert proc.proc is not None and proc.proc.returncode is None, proc.log.read_text()
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(url) as resp:
                return resp.status == 200
        return False

    await eventually(up, 60, 0.1, f"{proc.name} never became healthy")


@contextlib.asynccontextmanager
async def node_clients(
    realtime: str, threads: list[str], lines: int, seconds: float, clients: int = CLIENTS
) -> AsyncIterator[NodeLoad]:
    need_binary("node")
    proc = await asyncio.create_subprocess_exec(
        "node", str(ROOT / "tests" / "node" / "load.mjs"), realtime, str(clients), ",".join(threads),
        str(lines), str(seconds),
        env={**os.environ, "BEACON_TOKEN": TOKEN}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    load = NodeLoad(proc)
    load.reader = asyncio.create_task(load.read())
    try:
        yield load
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        load.reader.cancel()


class NodeLoad:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out: list[dict[str, Any]] = []
        self.reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.out.append(json.loads(raw))

    async def line(self, key: str, timeout: float) -> dict[str, Any]:
        """The first output line that has `key`, waiting up to `timeout` seconds for it."""

        def found() -> dict[str, Any] | None:
            return next((o for o in self.out if key in o), None)

        return dict(await eventually(found, timeout, 0.05, f"no {key!r} from load.mjs: {self.out[-3:]}"))


async def start_runs(http: aiohttp.ClientSession, rest: str, threads: list[str], lines: int) -> None:
    for thread_id in threads:
        body = {"workflow": "bench", "thread_id": thread_id, "input": {"lines": lines, "rate": RATE, "size": 100}}
        async with http.post(rest + "/start", json=body) as resp:
            assert resp.status == 202, await resp.text()


@pytest.mark.long
@pytest.mark.timeout(300)
async def test_l1_300_clients_10_threads_50_lines_a_second(tmp_path: Path) -> None:
    rest_port, realtime_port = free_port(), free_port()
    rest, realtime = f"http://127.0.0.1:{rest_port}", f"http://127.0.0.1:{realtime_port}"
    argv = [sys.executable, "run.py", "--rest-port", str(rest_port), "--socketio-port", str(realtime_port)]
    beacon = Proc("beacon", [*argv, "--store-url", f"sqlite:///{tmp_path}/b.sqlite"], child_env(), tmp_path)
    threads = [f"l1-{i}" for i in range(THREADS)]
    lines = RATE * SECONDS
    async with aiohttp.ClientSession(headers=AUTH_HEADER, timeout=aiohttp.ClientTimeout(total=10)) as http:
        await beacon.start()
        try:
            await healthy(http, rest + "/health", beacon)
            async with node_clients(realtime, threads, lines, SECONDS + 60) as load:
                await load.line("ready", 60)
                await start_runs(http, rest, threads, lines)
                summary = await load.line("done", SECONDS + 90)
        finally:
            await beacon.stop(signal.SIGTERM)
            print(beacon.log.read_text(errors="replace")[-3000:])
    print("L1:", summary)
    assert summary["done"] and summary["errors"] == [], summary
    assert (summary["missing"], summary["duplicates"]) == (0, 0), summary
    assert summary["lines"] >= CLIENTS * lines
    assert summary["p99_ms"] < 250, summary


@pytest.mark.long
@pytest.mark.timeout(300)
async def test_l2_realtime_restart_under_300_clients(
    tmp_path: Path, redis_server: RedisServer, postgres_server: PostgresServer
) -> None:
    env = child_env(PUBSUB_URL=redis_server.url, STORE_URL=postgres_server.create_database())
    rest_port, realtime_port = free_port(), free_port()
    rest, realtime = f"http://127.0.0.1:{rest_port}", f"http://127.0.0.1:{realtime_port}"
    rest_node = Proc("rest", [sys.executable, "run.py", "rest", "--rest-port", str(rest_port)], env, tmp_path)
    rt_argv = [sys.executable, "run.py", "realtime", "--socketio-port", str(realtime_port)]
    realtime_node = Proc("realtime", rt_argv, env, tmp_path)
    threads = [f"l2-{i}" for i in range(THREADS)]
    lines = RATE * 30
    latencies: list[float] = []
    async with aiohttp.ClientSession(headers=AUTH_HEADER, timeout=aiohttp.ClientTimeout(total=10)) as http:
        await asyncio.gather(rest_node.start(), realtime_node.start())
        try:
            await healthy(http, rest + "/health", rest_node)
            await healthy(http, realtime + "/health", realtime_node)
            async with node_clients(realtime, threads, lines, 120) as load:
                await load.line("ready", 60)
                await start_runs(http, rest, threads, lines)
                stop = asyncio.Event()

                async def poll_rest() -> None:  # REST while the realtime node restarts
                    for i in range(100_000):
                        if stop.is_set():
                            return
                        began = time.perf_counter()
                        async with http.get(f"{rest}/status/{threads[i % THREADS]}") as resp:
                            assert resp.status == 200
                        latencies.append(time.perf_counter() - began)
                        await asyncio.sleep(0.05)

                poller = asyncio.create_task(poll_rest())
                await asyncio.sleep(8)  # mid-run
                await realtime_node.stop(signal.SIGKILL)
                await realtime_node.start()
                back = await load.line("reconnected", 30)
                summary = await load.line("done", 90)
                stop.set()
                await poller
        finally:
            for proc in (rest_node, realtime_node):
                await proc.stop(signal.SIGTERM)
                print(f"--- {proc.name} ---\n{proc.log.read_text(errors='replace')[-4000:]}")
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else None
    print("L2:", back, summary, f"REST p99 {p99}")
    assert back["slowest_ms"] <= 15_000, back  # every client resubscribed within 15 s of losing the node
    assert summary["done"] and (summary["missing"], summary["duplicates"]) == (0, 0), summary
    assert len(latencies) > 50 and p99 is not None and p99 < 0.5, p99


def rss_and_fds(pid: int) -> tuple[float, int]:
    """Resident memory (MB) and open file descriptors of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.soak
@pytest.mark.timeout(0)
async def test_l3_soak_at_half_load_with_client_kills(
    tmp_path: Path, redis_proc: RedisServer, postgres_server: PostgresServer
) -> None:
    """L3 (`make soak`, not in CI): half of L1's load for SOAK_SECONDS (default 30 min), a Redis
    `CLIENT KILL TYPE pubsub` every 5 min; RSS growth after warm-up < 50 MB, open fds ±20."""
    seconds = float(os.environ.get("SOAK_SECONDS", "1800"))
    warm_up, kill_every = min(120.0, seconds / 4), min(300.0, seconds / 3)
    env = child_env(PUBSUB_URL=redis_proc.url, STORE_URL=postgres_server.create_database())
    rest_port, realtime_port = free_port(), free_port()
    rest, realtime = f"http://127.0.0.1:{rest_port}", f"http://127.0.0.1:{realtime_port}"
    nodes = [
        Proc("rest", [sys.executable, "run.py", "rest", "--rest-port", str(rest_port)], env, tmp_path),
        Proc("realtime", [sys.executable, "run.py", "realtime", "--socketio-port", str(realtime_port)], env, tmp_path),
    ]
    threads, rate = [f"l3-{i}" for i in range(THREADS)], RATE // 2
    lines = int(rate * seconds)
    samples: dict[str, list[tuple[float, int]]] = {p.name: [] for p in nodes}
    async with aiohttp.ClientSession(headers=AUTH_HEADER, timeout=aiohttp.ClientTimeout(total=10)) as http:
        await asyncio.gather(*(p.start() for p in nodes))
        try:
            await healthy(http, rest + "/health", nodes[0])
            await healthy(http, realtime + "/health", nodes[1])
            async with node_clients(realtime, threads, lines, seconds + 120, clients=CLIENTS // 2) as load:
                await load.line("ready", 60)
                for thread_id in threads:
                    body = {"workflow": "bench", "thread_id": thread_id, "input": {"lines": lines, "rate": rate}}
                    async with http.post(rest + "/start", json=body) as resp:
                        assert resp.status == 202, await resp.text()
                began = time.monotonic()
                kills = 0
                while (elapsed := time.monotonic() - began) < seconds:  # bounded by SOAK_SECONDS
                    await asyncio.sleep(5)
                    if any("done" in o for o in load.out):
                        break  # the clients have every line and are gone: sockets closed is no leak
                    if elapsed >= warm_up:
                        for p in nodes:
                            assert p.proc is not None and p.proc.returncode is None, p.log.read_text()[-3000:]
                            samples[p.name].append(rss_and_fds(p.proc.pid))
                    if elapsed >= (kills + 1) * kill_every:
                        assert redis_proc.command("CLIENT", "KILL", "TYPE", "pubsub").startswith(":")
                        kills += 1
                summary = await load.line("done", 120)
        finally:
            for p in nodes:
                await p.stop(signal.SIGTERM)
    print("L3:", summary, {n: (s[0], s[-1], max(x[0] for x in s)) for n, s in samples.items() if s})
    assert summary["done"] and (summary["missing"], summary["duplicates"]) == (0, 0), summary
    for name, series in samples.items():
        (rss0, fds0), (rss1, fds1) = series[0], series[-1]
        assert rss1 - rss0 < 50, f"{name}: RSS grew {rss1 - rss0:.1f} MB after warm-up"
        assert abs(fds1 - fds0) <= 20, f"{name}: open fds {fds0} → {fds1}"
