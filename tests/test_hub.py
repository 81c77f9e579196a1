"""The hub: publish accounting and its bounded per-subscriber queues (the memory backend underneath)."""

from __future__ import annotations

import asyncio

import pytest
from conftest import eventually
from pausable import PausableBackend

from app.pubsub import Bus, create_backend


async def test_a_cancelled_publish_is_not_a_failure() -> None:
    backend = PausableBackend()
    backend.gate.clear()
    async with Bus(backend) as bus:
        task = asyncio.create_task(bus.publish("logs", "x"))
        await asyncio.wait_for(backend.entered.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert bus.status()["publish_failures"] == 0 and bus.status()["published"] == 0


async def test_a_failed_publish_is_counted() -> None:
    backend = PausableBackend()
    backend.error = ConnectionError("bus down")
    async with Bus(backend) as bus:
        with pytest.raises(ConnectionError):
            await bus.publish("logs", "x")
        assert bus.status()["publish_failures"] == 1 and bus.status()["published"] == 0  # sent ones only
        backend.error = None
        await bus.publish("logs", "y")
        assert bus.status()["publish_failures"] == 1 and bus.status()["published"] == 1


async def test_a_full_subscriber_queue_drops_its_oldest_messages() -> None:
    async with Bus(create_backend("memory://"), queue_size=3) as bus:
        async with bus.subscribe("logs") as slow, bus.subscribe("logs") as fast:
            got: list[str] = []
            for i in range(3):
                await bus.publish("logs", str(i))
            await eventually(lambda: bus.received == 3)
            got += [(await fast.get()).data for _ in range(3)]  # `fast` keeps up, `slow` does not read
            for i in range(3, 5):
                await bus.publish("logs", str(i))
            await eventually(lambda: bus.received == 5)
            got += [(await fast.get()).data for _ in range(2)]
            assert got == ["0", "1", "2", "3", "4"] and fast.dropped == 0
            assert [(await slow.get()).data for _ in range(3)] == ["2", "3", "4"]
            assert slow.dropped == 2 and bus.status()["dropped"] == 2
