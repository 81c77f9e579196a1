"""The one drop-oldest rule: a FIFO whose put never blocks, and that forgets its oldest item when full."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldest(Generic[T]):
    """At most `size` items; a put past that drops the oldest and counts it in `dropped`."""

    def __init__(self, size: int) -> None:
        self._items: deque[T] = deque(maxlen=size)
        self._ready = asyncio.Event()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1  # the deque drops the oldest itself
        self._items.append(item)
        self._ready.set()

    def put_back(self, item: T) -> None:
        """Return an item taken from the head; when full it is the oldest of all, so it is the one dropped."""
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
            return
        self._items.appendleft(item)
        self._ready.set()

    def get_nowait(self) -> T:
        item = self._items.popleft()
        if not self._items:
            self._ready.clear()
        return item

    async def get(self) -> T:
        while not self._items:
            await self._ready.wait()
        return self.get_nowait()
