"""A bus backend for tests that must hold a publish in flight or fail it: the memory backend with a gate."""

from __future__ import annotations

import asyncio

from app.pubsub.memory import MemoryBackend


class PausableBackend(MemoryBackend):
    """`publish` waits at `gate` (closed: a stalled server) and then raises `error` if one is set (a bus down)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()  # set by each publish on arrival; clear it to wait for the next
        self.error: Exception | None = None

    async def publish(self, channel: str, data: str) -> None:
        self.entered.set()
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        await super().publish(channel, data)
