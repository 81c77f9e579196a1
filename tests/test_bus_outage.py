"""D4 and D5 in one process: a REST node and two realtime nodes over Redis; Redis is killed
(D4) or frozen with SIGSTOP (D5) while a run logs 100 lines/s."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import conftest
import pytest
from conftest import ClientFactory, eventually, make_config
from servers import PostgresServer, RedisServer

from app.server import Running, serve


@contextlib.asynccontextmanager
async def split_nodes(tmp_path: Path, redis: RedisServer, store_url: str) -> AsyncIterator[tuple[Running, ...]]:
    overrides = {"pubsub.url": redis.url, "store.url": store_url}
    async with contextlib.AsyncExitStack() as stack:
        rest = await stack.enter_async_context(serve(make_config(tmp_path, **overrides), "rest"))
        rt_a = await stack.enter_async_context(serve(make_config(tmp_path, **overrides), "realtime"))
        rt_b = await stack.enter_async_context(serve(make_config(tmp_path, **overrides), "realtime"))
        yield rest, rt_a, rt_b


@pytest.mark.parametrize(
    ("fault", "outage"),
    [("kill", 2.0), pytest.param("kill", 10.0, marks=pytest.mark.long), ("sigstop", 10.0)],
)
async def test_redis_outage_while_a_run_logs_d4_d5(
    tmp_path: Path,
    redis_proc: RedisServer,
    postgres_server: PostgresServer,
    connect: ClientFactory,
    fault: str,
    outage: float,
) -> None:
    async with split_nodes(tmp_path, redis_proc, postgres_server.create_database()) as (rest, rt_a, rt_b):
        api = f"http://127.0.0.1:{rest.rest_port}"
        headers = getattr(conftest, "AUTH_HEADER", {})
        clients = [
            await connect(f"http://127.0.0.1:{node.realtime_port}", ("/logs",), auth={"firehose": False})
            for node in (rt_a, rt_b, rt_b)
        ]
        async with aiohttp.ClientSession(headers=headers) as http:
            thread_id = f"{fault}-{int(outage)}"
            for client in clients:
                assert (await client.subscribe(thread_id, since=0))["recovered"] is True
            lines = int(100 * (outage + 4))
            async with http.post(
                f"{api}/start",
                json={"workflow": "bench", "input": {"lines": lines, "rate": 100}, "thread_id": thread_id},
            ) as resp:
                assert resp.status == 202
            await eventually(lambda: all(len(c.seqs(thread_id)) >= 100 for c in clients), 10)

            polls: list[tuple[float, float, int]] = []  # (sent, answered, status) of each /status

            async def poll_rest(until: float) -> None:
                while time.monotonic() < until:
                    started = time.monotonic()
                    async with http.get(f"{api}/status/{thread_id}") as resp:
                        polls.append((started, time.monotonic(), resp.status))
                    await asyncio.sleep(0.05)

            if fault == "kill":
                redis_proc.kill()
            else:
                redis_proc.send(signal.SIGSTOP)
            down = time.monotonic()
            poller = asyncio.create_task(poll_rest(down + outage + 1))
            await asyncio.sleep(outage)
            if fault == "kill":
                await redis_proc.astart()
            else:
                redis_proc.send(signal.SIGCONT)
            back = time.monotonic()
            before = [len(c.seqs(thread_id)) for c in clients]
            await eventually(
                lambda: all(len(c.seqs(thread_id)) > n for c, n in zip(clients, before, strict=True)),
                2.0,
                message="live lines did not flow again within 2 s of Redis accepting connections",
            )
            resumed_after = time.monotonic() - back
            await poller

            async def finished() -> bool:
                async with http.get(f"{api}/status/{thread_id}") as resp:
                    return (await resp.json())["status"] == "completed"

            await eventually(finished, 30, 0.2)
            await eventually(lambda: all(len(c.seqs(thread_id)) == lines + 1 for c in clients), 15)

        for client in clients:
            assert client.seqs(thread_id) == list(range(1, lines + 2)), "a line was lost or doubled"
            assert client.sio.connected
        assert {status for _, _, status in polls} == {200}
        # REST never waits for the bus: requests sent while Redis was down were answered before it came back.
        answered_while_down = [p for p in polls if p[0] >= down and p[1] < back]
        assert answered_while_down, f"no /status was answered during the {outage:g}s outage ({len(polls)} sent)"
        latencies = sorted(answered - sent for sent, answered, _ in polls)
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
        print(
            f"{fault} {outage}s: live again {resumed_after:.2f}s after Redis came back; {len(answered_while_down)}"
            f" of {len(polls)} /status answered while it was down; p99 {p99 * 1000:.0f} ms, max {latencies[-1]:.2f}s"
        )
