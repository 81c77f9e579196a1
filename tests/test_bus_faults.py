"""Redis bus under faults (TESTPLAN D4–D8 at the bus level): kill -9, CLIENT KILL, SIGSTOP, a
half-open connection, and starting while Redis is down. Two Buses play two Beacon processes:
`node_a` publishes, `node_b` listens. Each test prints the recovery figures it measured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from collections.abc import AsyncIterator

import pytest
from conftest import eventually
from faultproxy import FaultProxy
from servers import RedisServer

from app.pubsub import Bus, Subscription, create_backend

LOGGER = "app.pubsub.redis"


@pytest.fixture(autouse=True)
def bus_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    caplog.set_level(logging.WARNING, logger="app.pubsub.hub")
    return caplog


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def no_hub_errors(caplog: pytest.LogCaptureFixture) -> bool:
    """The backend reconnects by itself: the hub's listener never sees an exception."""
    return not [r for r in caplog.records if r.name == "app.pubsub.hub" and r.levelno >= logging.WARNING]


@contextlib.asynccontextmanager
async def two_nodes(url_a: str, url_b: str | None = None) -> AsyncIterator[tuple[Bus, Bus, Subscription]]:
    async with Bus(create_backend(url_a)) as a, Bus(create_backend(url_b or url_a)) as b:
        async with b.subscribe("logs") as sub:
            assert await delivery_time(a, sub, limit=5) < 5
            yield a, b, sub


async def delivery_time(producer: Bus, sub: Subscription, limit: float) -> float:
    """Publish probes every 50 ms until one arrives; seconds until then (fails after `limit`)."""
    token = f"probe-{random.random()}"
    t0 = time.monotonic()
    for i in range(int(limit / 0.05) + 1):  # bounded in count, and in time below
        with contextlib.suppress(Exception):  # while Redis is down, publishing fails: fine
            await producer.publish(sub.channel, f"{token}-{i}")
        until = time.monotonic() + 0.05
        while (left := until - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(sub.get(), left)
            except TimeoutError:
                break
            if message.data.startswith(token):
                return time.monotonic() - t0
        if time.monotonic() - t0 > limit:
            break
    raise AssertionError(f"no delivery within {limit}s")


@pytest.mark.parametrize("outage", [2.0, pytest.param(10.0, marks=pytest.mark.long)])
async def test_kill_9_and_restart(redis_proc: RedisServer, bus_logs: pytest.LogCaptureFixture, outage: float) -> None:
    async with two_nodes(redis_proc.url) as (a, b, sub):
        redis_proc.kill()
        t0 = time.monotonic()
        with pytest.raises(Exception):
            await a.publish("logs", "while down")
        assert time.monotonic() - t0 < 2.1
        await eventually(lambda: not b.status()["connected"], timeout=2, message="the drop went unnoticed")
        await asyncio.sleep(outage)

        await redis_proc.astart()  # returns once Redis answers PING
        resumed = await delivery_time(a, sub, limit=5)
        print(f"\nredis kill -9 for {outage:g}s: delivery resumed {resumed:.2f}s after Redis accepted connections")
        assert resumed <= 2.0
        assert b.status()["connected"] and b.status()["reconnects"] == 1
    # each node's listener logged the drop once, however many reconnect attempts failed
    assert len(warnings_logged(bus_logs)) == 2, warnings_logged(bus_logs)
    assert no_hub_errors(bus_logs)


@pytest.mark.parametrize(("kills", "gap"), [(5, (0.5, 1.5)), pytest.param(20, (0.5, 3.0), marks=pytest.mark.long)])
async def test_client_kill_pubsub_resubscribes(
    redis_proc: RedisServer, bus_logs: pytest.LogCaptureFixture, kills: int, gap: tuple[float, float]
) -> None:
    recoveries = []
    async with two_nodes(redis_proc.url) as (a, b, sub):
        for _ in range(kills):
            await asyncio.sleep(random.uniform(*gap))
            assert redis_proc.command("CLIENT", "KILL", "TYPE", "pubsub") == ":1\r\n"
            recoveries.append(await delivery_time(a, sub, limit=5))
        assert b.status()["reconnects"] == kills
    shown = ", ".join(f"{r:.2f}" for r in recoveries)
    print(f"\nCLIENT KILL TYPE pubsub x{kills}: resubscribed and delivering after {shown}s")
    assert max(recoveries) <= 2.0
    assert len(warnings_logged(bus_logs)) == kills
    assert no_hub_errors(bus_logs)


async def test_sigstop_never_blocks_publish(redis_proc: RedisServer, bus_logs: pytest.LogCaptureFixture) -> None:
    async with two_nodes(redis_proc.url) as (a, b, sub):
        redis_proc.send(signal.SIGSTOP)
        try:
            waits, failures = [], 0
            t0 = time.monotonic()
            for i in range(100):  # bounded; the loop ends after 5 s of stop
                if time.monotonic() - t0 > 5:
                    break
                started = time.monotonic()
                try:
                    await a.publish("logs", f"during stop {i}")
                except Exception:
                    failures += 1
                waits.append(time.monotonic() - started)
        finally:
            redis_proc.send(signal.SIGCONT)
        resumed = await delivery_time(a, sub, limit=5)
        print(
            f"\nredis SIGSTOP 5s: {len(waits)} publishes, longest {max(waits):.2f}s, {failures} failed;"
            f" delivery {resumed:.2f}s after SIGCONT"
        )
        assert max(waits) <= 2.1 and failures > 0
        assert a.status()["publish_failures"] == failures
        assert resumed <= 2.0
    assert no_hub_errors(bus_logs)


async def test_half_open_connection_is_noticed(redis_proc: RedisServer, bus_logs: pytest.LogCaptureFixture) -> None:
    async with FaultProxy(redis_proc.port) as proxy:
        async with two_nodes(redis_proc.url, f"redis://127.0.0.1:{proxy.port}/0") as (a, b, sub):
            proxy.flowing.clear()
            t0 = time.monotonic()
            await eventually(lambda: not b.status()["connected"], timeout=15, interval=0.05, message="half-open missed")
            noticed = time.monotonic() - t0
            await asyncio.sleep(1)  # still stalled: reconnect attempts through the proxy hang too
            assert not b.status()["connected"]

            proxy.flowing.set()
            resumed = await delivery_time(a, sub, limit=5)
            print(f"\nhalf-open bus connection: noticed after {noticed:.2f}s; delivery {resumed:.2f}s after it resumed")
            assert noticed <= 15 and resumed <= 2.0
            assert b.status()["connected"]
    assert len(warnings_logged(bus_logs)) == 1
    assert no_hub_errors(bus_logs)


async def test_start_while_redis_is_down(redis_proc: RedisServer, bus_logs: pytest.LogCaptureFixture) -> None:
    redis_proc.kill()
    t0 = time.monotonic()
    async with Bus(create_backend(redis_proc.url)) as b:
        up_in = time.monotonic() - t0
        assert up_in < 5 and not b.status()["connected"]
        async with b.subscribe("logs") as sub:
            await asyncio.sleep(1)
            await redis_proc.astart()
            async with Bus(create_backend(redis_proc.url)) as a:
                resumed = await delivery_time(a, sub, limit=5)
        print(f"\nstarted while Redis was down: up in {up_in:.2f}s; delivering {resumed:.2f}s after Redis started")
        assert resumed <= 2.0 and b.status()["reconnects"] == 0
    assert len(warnings_logged(bus_logs)) == 1
    assert no_hub_errors(bus_logs)
