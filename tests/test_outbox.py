"""The outbox on its own: in order, bounded by dropping the oldest, held while the bus is down, flushed on exit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from conftest import eventually
from pausable import PausableBackend

from app.pubsub import Bus, Subscription
from app.pubsub import outbox as outbox_module
from app.pubsub.outbox import Outbox


@pytest.fixture
async def backend() -> PausableBackend:
    return PausableBackend()


@pytest.fixture
async def bus(backend: PausableBackend) -> AsyncIterator[Bus]:
    async with Bus(backend) as b:
        yield b


@pytest.fixture
async def logs(bus: Bus) -> AsyncIterator[Subscription]:
    async with bus.subscribe("logs") as sub:
        yield sub


async def receive(sub: Subscription, n: int) -> list[str]:
    async with asyncio.timeout(10):
        return [(await sub.get()).data for _ in range(n)]


async def test_messages_go_out_in_the_order_they_were_put(bus: Bus, logs: Subscription) -> None:
    async with bus.subscribe("admin") as admin, Outbox(bus).running() as outbox:
        for i in range(1000):
            outbox.put("logs", str(i))
            if i % 10 == 0:
                outbox.put("admin", str(i))
        assert await receive(logs, 1000) == [str(i) for i in range(1000)]
        assert await receive(admin, 100) == [str(i) for i in range(0, 1000, 10)]
        assert outbox.status() == {"pending": 0, "dropped": 0, "retries": 0}


async def test_while_the_bus_is_down_messages_wait_then_go_in_order(
    backend: PausableBackend, bus: Bus, logs: Subscription, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "RETRY_DELAY", 0.01)
    backend.error = ConnectionError("bus down")
    async with Outbox(bus).running() as outbox:
        for i in range(5):
            outbox.put("logs", str(i))
        await eventually(lambda: outbox.retries >= 3)
        assert bus.received == 0
        backend.error = None
        assert await receive(logs, 5) == ["0", "1", "2", "3", "4"]
        await asyncio.wait_for(outbox.wait_empty(), 5)
        assert outbox.status()["pending"] == 0 and outbox.dropped == 0
    assert bus.received == 5  # each once: a failed publish is not also delivered


async def test_a_full_outbox_drops_its_oldest_and_counts_exactly_what_it_dropped(
    backend: PausableBackend, bus: Bus, logs: Subscription
) -> None:
    async with Outbox(bus, capacity=3).running() as outbox:
        backend.gate.clear()  # a stalled bus: the first message is in flight and stays there
        backend.entered.clear()
        outbox.put("logs", "0")
        await asyncio.wait_for(backend.entered.wait(), 5)
        for i in range(1, 6):
            outbox.put("logs", str(i))
        backend.gate.set()
        await asyncio.wait_for(outbox.wait_empty(), 5)
        await eventually(lambda: bus.received == 4)
        assert await receive(logs, 4) == ["0", "3", "4", "5"]
        # Every message put was either delivered or counted as dropped, never both.
        assert outbox.dropped == 6 - 4


async def test_a_message_that_fails_while_the_outbox_is_full_is_the_oldest_and_goes(
    backend: PausableBackend, bus: Bus, logs: Subscription, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "RETRY_DELAY", 0.01)
    async with Outbox(bus, capacity=2).running() as outbox:
        backend.gate.clear()
        backend.entered.clear()
        backend.error = ConnectionError("bus down")
        outbox.put("logs", "0")
        await asyncio.wait_for(backend.entered.wait(), 5)
        for i in range(1, 4):
            outbox.put("logs", str(i))
        backend.gate.set()
        await eventually(lambda: outbox.retries >= 2)
        backend.error = None
        assert await receive(logs, 2) == ["2", "3"]
        await asyncio.wait_for(outbox.wait_empty(), 5)
        assert outbox.dropped == 2 and bus.received == 2


async def test_exit_flushes_what_is_pending(bus: Bus, logs: Subscription) -> None:
    async with Outbox(bus).running() as outbox:
        for i in range(500):
            outbox.put("logs", str(i))
    assert await receive(logs, 500) == [str(i) for i in range(500)]


async def test_exit_with_the_bus_down_gives_up_in_bounded_time(
    backend: PausableBackend, bus: Bus, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(outbox_module, "FLUSH_TIMEOUT", 0.2)
    backend.gate.clear()  # every publish hangs
    started = time.monotonic()
    async with Outbox(bus).running() as outbox:
        outbox.put("logs", "lost")
        outbox.put("logs", "lost too")
    assert time.monotonic() - started < 5
    assert "2 bus message(s) not sent at exit" in caplog.text
