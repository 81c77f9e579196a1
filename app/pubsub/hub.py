"""The hub: one listener task reads the backend and fans out to bounded queues."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from app.background import cancel
from app.pubsub.base import Backend, Message
from app.pubsub.bounded import DropOldest

logger = logging.getLogger(__name__)


class Subscription:
    """A bounded queue for one consumer; when it overflows the oldest message is dropped."""

    def __init__(self, channel: str, size: int) -> None:
        self.channel = channel
        self._queue: DropOldest[Message] = DropOldest(size)

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    def _offer(self, message: Message) -> None:
        self._queue.put(message)

    async def get(self) -> Message:
        return await self._queue.get()

    def get_nowait(self) -> Message | None:
        """The oldest waiting message, or None."""
        return self._queue.get_nowait() if len(self._queue) else None

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Message]:
        while True:
            yield await self._queue.get()


class Bus:
    """`async with Bus(backend):` connects, listens, and disconnects on exit."""

    def __init__(self, backend: Backend, queue_size: int = 10000) -> None:
        self.backend = backend
        self._queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = {}
        self._listener: asyncio.Task[None] | None = None
        self.published = 0
        self.publish_failures = 0
        self.received = 0

    async def __aenter__(self) -> Bus:
        await self.backend.connect()
        self._listener = asyncio.create_task(self._listen(), name="bus-listener")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel(self._listener)
        await self.backend.disconnect()

    async def publish(self, channel: str, data: str) -> None:
        try:
            await self.backend.publish(channel, data)
        except Exception:  # a cancellation is the caller leaving, not the bus failing
            self.publish_failures += 1
            raise
        self.published += 1

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        sub = Subscription(channel, self._queue_size)
        subs = self._subs.setdefault(channel, set())
        if not subs:
            await self.backend.subscribe(channel)
        subs.add(sub)
        try:
            yield sub
        finally:
            subs.discard(sub)
            if not subs:
                del self._subs[channel]
                with contextlib.suppress(Exception):
                    await self.backend.unsubscribe(channel)

    async def _listen(self) -> None:
        while True:
            try:
                message = await self.backend.next_message()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A backend reconnects on its own; this only keeps the hub alive meanwhile.
                logger.exception("bus listener error")
                await asyncio.sleep(0.5)
                continue
            self.received += 1
            for sub in tuple(self._subs.get(message.channel, ())):
                sub._offer(message)

    def status(self) -> dict[str, Any]:
        return {
            **self.backend.status(),
            "published": self.published,
            "publish_failures": self.publish_failures,
            "received": self.received,
            "subscribers": {ch: len(s) for ch, s in self._subs.items()},
            "dropped": sum(s.dropped for subs in self._subs.values() for s in subs),
        }
