"""An ordered, bounded outbox: publishing never blocks a run or a request, and messages that
failed while the bus was down are sent again, in order, once it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from app.pubsub.hub import Bus

logger = logging.getLogger(__name__)

RETRY_DELAY = 0.2


class Outbox:
    def __init__(self, bus: Bus, capacity: int = 10000) -> None:
        self._bus = bus
        self._queue: deque[tuple[str, str]] = deque()
        self._capacity = capacity
        self._ready = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self.dropped = 0
        self.retries = 0

    def put(self, channel: str, data: str) -> None:
        if len(self._queue) >= self._capacity:
            # The store holds every log line; clients recover what is dropped here by `since`.
            self._queue.popleft()
            self.dropped += 1
        self._queue.append((channel, data))
        self._empty.clear()
        self._ready.set()

    async def _run(self) -> None:
        failing = False
        while True:
            await self._ready.wait()
            while self._queue:
                entry = self._queue[0]
                channel, data = entry
                try:
                    await self._bus.publish(channel, data)
                except Exception as exc:
                    if not failing:
                        logger.warning("bus publish failed (%s); holding %d message(s) to retry", exc, len(self._queue))
                    failing = True
                    self.retries += 1
                    await asyncio.sleep(RETRY_DELAY)
                    continue
                if failing:
                    logger.info("bus publish works again")
                    failing = False
                if self._queue and self._queue[0] is entry:  # put() may have dropped it meanwhile
                    self._queue.popleft()
            self._ready.clear()
            self._empty.set()

    async def wait_empty(self) -> None:
        await self._empty.wait()

    def status(self) -> dict[str, Any]:
        return {"pending": len(self._queue), "dropped": self.dropped, "retries": self.retries}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Outbox]:
        task = asyncio.create_task(self._run(), name="bus-outbox")
        try:
            yield self
        finally:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wait_empty(), timeout=2)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
