"""The bus between the REST side (producers) and the realtime side (consumers)."""

from __future__ import annotations

from app.pubsub.base import Backend, Message
from app.pubsub.hub import Bus, Subscription

__all__ = ["Backend", "Bus", "Message", "Subscription", "create_backend"]


def create_backend(url: str) -> Backend:
    """Pick a backend by URL scheme; backends import lazily so unused ones cost nothing."""
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        from app.pubsub.memory import MemoryBackend

        return MemoryBackend(url)
    if scheme in ("redis", "rediss"):
        from app.pubsub.redis import RedisBackend  # type: ignore[import-not-found,unused-ignore]

        return RedisBackend(url)  # type: ignore[no-any-return,unused-ignore]
    raise ValueError(f"unknown pubsub backend: {scheme!r}")
