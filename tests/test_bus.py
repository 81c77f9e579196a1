"""Bus conformance: the same bodies over every backend (memory and a real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import eventually

from app.pubsub import Bus, Message, Subscription, create_backend
from app.pubsub.redis import RedisBackend


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    url = "memory://" if request.param == "memory" else request.getfixturevalue("redis_server").url
    async with Bus(create_backend(url)) as b:
        yield b


async def receive(sub: Subscription, n: int, timeout: float = 10.0) -> list[str]:
    async with asyncio.timeout(timeout):
        return [(await sub.get()).data for _ in range(n)]


async def test_round_trip(bus: Bus) -> None:
    async with bus.subscribe("logs") as sub:
        await bus.publish("logs", "hello ✓")
        assert await asyncio.wait_for(sub.get(), 5) == Message("logs", "hello ✓")


async def test_channels_are_separate(bus: Bus) -> None:
    async with bus.subscribe("a") as a, bus.subscribe("b") as b:
        await bus.publish("b", "for b")
        await bus.publish("a", "for a")
        assert await receive(a, 1) == ["for a"]
        assert await receive(b, 1) == ["for b"]


async def test_order_of_5000(bus: Bus) -> None:
    async with bus.subscribe("logs") as sub:
        for i in range(5000):
            await bus.publish("logs", str(i))
        assert await receive(sub, 5000, timeout=30) == [str(i) for i in range(5000)]


async def test_each_subscriber_gets_each_message_once(bus: Bus) -> None:
    async with bus.subscribe("logs") as s1, bus.subscribe("logs") as s2, bus.subscribe("logs") as s3:
        for i in range(100):
            await bus.publish("logs", str(i))
        await bus.publish("logs", "end")
        for sub in (s1, s2, s3):
            assert await receive(sub, 101) == [*map(str, range(100)), "end"]
            assert len(sub._queue) == 0 and sub.dropped == 0


async def test_unsubscribe_stops_delivery(bus: Bus) -> None:
    async with bus.subscribe("marker") as marker:
        async with bus.subscribe("logs"):
            pass
        assert "logs" not in bus.status()["subscribers"]
        await bus.publish("logs", "nobody listens")
        # One backend connection carries both channels in order: once the marker is here,
        # the unsubscribed line has been seen (and dropped) if it was delivered at all.
        await bus.publish("marker", "m")
        assert await receive(marker, 1) == ["m"]
        async with bus.subscribe("logs") as again:
            await bus.publish("logs", "after")
            assert await receive(again, 1) == ["after"]


async def test_status(bus: Bus) -> None:
    async with bus.subscribe("logs") as sub:
        await bus.publish("logs", "x")
        await receive(sub, 1)
        status = bus.status()
    assert status["connected"] is True
    assert status["backend"] in ("memory", "redis")
    assert status["published"] == 1 and status["received"] == 1


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown pubsub backend: 'kafka'"):
        create_backend("kafka://x")


async def test_the_redis_listener_queue_drops_its_oldest_when_nobody_reads(redis_server: Any) -> None:
    backend = RedisBackend(redis_server.url, queue_size=3)
    await backend.connect()
    try:
        await backend.subscribe("logs")
        for i in range(5):
            await backend.publish("logs", str(i))
        await eventually(lambda: backend.status()["dropped"] == 2, message=str(backend.status()))
        async with asyncio.timeout(5):
            assert [(await backend.next_message()).data for _ in range(3)] == ["2", "3", "4"]
    finally:
        await backend.disconnect()
