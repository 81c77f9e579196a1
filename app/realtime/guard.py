"""Who may connect to a namespace, how many sockets a token holds, and how fast a socket may emit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from socketio.exceptions import ConnectionRefusedError

from app.auth import Auth, Denied, Token
from app.background import Tasks

logger = logging.getLogger(__name__)

# (sid, namespace) → what disconnects it; called at once, so the sid is resolved before it can go
Disconnect = Callable[[str, str], Awaitable[None]]
BUCKET = "beacon.bucket"  # the environ key of an Engine.IO connection's event budget


@dataclass(slots=True)
class Bucket:
    """A token bucket: `rate` events per second, bursts of two seconds' worth."""

    rate: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)
    refused: int = 0

    def __post_init__(self) -> None:
        self.tokens = self.rate * 2

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate * 2, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refused += 1
        return False


class Guard:
    """Connection checks shared by both namespaces of one realtime app."""

    def __init__(
        self, auth: Auth, max_per_token: int, rate: float, disconnect: Disconnect, close_transport: Disconnect
    ) -> None:
        self.auth = auth
        self.max_per_token = max_per_token
        self.rate = rate
        self._disconnect = disconnect
        self._close_transport = close_transport
        self._sockets: dict[str, set[tuple[str, str]]] = {}  # token name → {(sid, namespace)}
        self._owner: dict[tuple[str, str], str] = {}
        self._buckets: dict[tuple[str, str], Bucket] = {}
        # A token's budget across all its connections: what its allowed connections would each have.
        self._by_token: dict[str, Bucket] = {}
        self._tasks = Tasks()
        auth.on_revoke(self._revoked)

    def admit(self, sid: str, namespace: str, auth: object, role: str, environ: dict[str, object]) -> Token:
        """Check the connect `auth` payload; raises ConnectionRefusedError with a message."""
        secret = auth.get("token") if isinstance(auth, dict) else None
        try:
            token = self.auth.check(secret, role)
        except Denied as exc:
            raise ConnectionRefusedError(exc.reason) from None
        held = self._sockets.setdefault(token.name, set())
        if self.auth.enabled and len(held) >= self.max_per_token:
            raise ConnectionRefusedError(f"too many connections for this token (at most {self.max_per_token})")
        held.add((sid, namespace))
        self._owner[(sid, namespace)] = token.name
        # The budget lives in the Engine.IO connection's environ: leaving a namespace and joining it
        # again does not refill it, and it goes when the connection does.
        bucket = environ.get(BUCKET)
        if not isinstance(bucket, Bucket):
            bucket = environ[BUCKET] = Bucket(self.rate)
        self._buckets[(sid, namespace)] = bucket
        if self.auth.enabled and token.name not in self._by_token:
            self._by_token[token.name] = Bucket(self.rate * self.max_per_token)
        return token

    def release(self, sid: str, namespace: str) -> None:
        key = (sid, namespace)
        self._buckets.pop(key, None)
        name = self._owner.pop(key, None)
        if name is not None:
            held = self._sockets.get(name, set())
            held.discard(key)
            if not held:
                self._sockets.pop(name, None)

    def allow_event(self, sid: str, namespace: str) -> bool:
        """False when the connection (or its token) emits too fast; one that keeps at it is closed."""
        key = (sid, namespace)
        bucket = self._buckets.get(key)
        if bucket is None:
            return True
        shared = self._by_token.get(self._owner.get(key, ""))
        if bucket.take():
            if shared is None or shared.take():
                return True
            bucket.refused += 1
        if bucket.refused == int(self.rate * 2) + 1:
            logger.warning("closing the connection of %s on %s: event flood", sid, namespace)
            self._spawn(self._close_transport(sid, namespace))
        return False

    def _revoked(self, token: Token) -> None:
        self._by_token.pop(token.name, None)
        for sid, namespace in list(self._sockets.get(token.name, ())):
            self._spawn(self._disconnect(sid, namespace))

    def _spawn(self, disconnect: Awaitable[None]) -> None:
        async def run() -> None:
            await asyncio.sleep(0.05)  # let the refusing ack go out first
            try:
                await disconnect
            except Exception:
                logger.debug("disconnect failed", exc_info=True)

        self._tasks.spawn(run(), name="disconnect")

    async def close(self) -> None:
        await self._tasks.close()
