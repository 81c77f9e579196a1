"""In-process backend: one process, no network, nothing to configure."""

from __future__ import annotations

import asyncio
from typing import Any

from app.pubsub.base import Message


class MemoryBackend:
    def __init__(self, url: str = "memory://") -> None:
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._published = 0

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        self._channels.clear()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channel: str, data: str) -> None:
        self._published += 1
        if channel in self._channels:
            self._queue.put_nowait(Message(channel, data))

    async def next_message(self) -> Message:
        return await self._queue.get()

    def status(self) -> dict[str, Any]:
        return {"backend": "memory", "connected": True, "published": self._published}
