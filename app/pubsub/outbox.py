"""An ordered, bounded outbox: publishing never blocks a run or a request, and messages that
failed while the bus was down are sent again, in order, once it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from app.background import background
from app.pubsub.bounded import DropOldest
from app.pubsub.hub import Bus

logger = logging.getLogger(__name__)

RETRY_DELAY = 0.2
FLUSH_TIMEOUT = 2.0  # how long exit waits for what is pending to go out


class Outbox:
    def __init__(self, bus: Bus, capacity: int = 10000) -> None:
        self._bus = bus
        # The store holds every log line; clients recover what is dropped here by `since`.
        self._queue: DropOldest[tuple[str, str]] = DropOldest(capacity)
        self._sending = 0  # 1 while a message taken from the queue is being published
        self._empty = asyncio.Event()
        self._empty.set()
        self.retries = 0

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    @property
    def pending(self) -> int:
        return len(self._queue) + self._sending

    def put(self, channel: str, data: str) -> None:
        self._queue.put((channel, data))
        self._empty.clear()

    async def _run(self) -> None:
        failing = False
        while True:
            entry = await self._queue.get()
            self._sending = 1
            try:
                await self._bus.publish(*entry)
            except Exception as exc:
                self._queue.put_back(entry)  # still first in line, unless it is the oldest of a full queue
                self._sending = 0
                if not failing:
                    logger.warning("bus publish failed (%s); holding %d message(s) to retry", exc, self.pending)
                failing = True
                self.retries += 1
                await asyncio.sleep(RETRY_DELAY)
                continue
            self._sending = 0
            if failing:
                logger.info("bus publish works again")
                failing = False
            if not self._queue:
                self._empty.set()

    async def wait_empty(self) -> None:
        await self._empty.wait()

    def status(self) -> dict[str, Any]:
        return {"pending": self.pending, "dropped": self.dropped, "retries": self.retries}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Outbox]:
        async with background(bus_outbox=self._run()):
            try:
                yield self
            finally:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wait_empty(), FLUSH_TIMEOUT)
                if self.pending:
                    logger.warning("%d bus message(s) not sent at exit", self.pending)
