"""The small protocol every bus backend implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    data: str


class Backend(Protocol):
    """A pub/sub transport. `next_message` blocks until a message on a subscribed channel."""

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def publish(self, channel: str, data: str) -> None: ...

    async def next_message(self) -> Message: ...

    def status(self) -> dict[str, Any]:
        """Cheap, cached state for /health and /stats (`connected` at least)."""
        ...
