"""Redis backend: our own listener on one raw redis.asyncio connection, plus a publisher pool.

Every call is bounded by a socket timeout; the listener pings when the line has been quiet, so a
half-open connection is noticed in `ping_interval + ping_timeout` seconds, then reconnects with a
backoff capped at `backoff_cap` and resubscribes. Messages go through a bounded queue, so
`next_message()` keeps waiting across reconnects instead of raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.background import cancel
from app.names import now_iso
from app.pubsub.base import Message
from app.pubsub.bounded import DropOldest

logger = logging.getLogger(__name__)


class ConnectionLost(Exception):
    """The listener connection is gone or silent; the loop reconnects."""


class RedisBackend:
    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float = 1.0,
        publish_timeout: float = 2.0,
        ping_interval: float = 5.0,
        ping_timeout: float = 3.0,
        backoff_cap: float = 1.0,
        connect_wait: float = 2.0,
        queue_size: int = 100_000,
    ) -> None:
        options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            "retry": Retry(NoBackoff(), 0),  # we retry ourselves, with our own bounds
            "protocol": 2,  # plain arrays for pub/sub replies; no HELLO / push handling
            "driver_info": None,  # no CLIENT SETINFO round trips on connect
            "health_check_interval": 0,
        }
        self._timeout = socket_timeout
        self._publish_timeout = publish_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._backoff_cap = backoff_cap
        self._connect_wait = connect_wait
        self._listen_pool: ConnectionPool = ConnectionPool.from_url(url, **options)
        self._listen_pool.connection_kwargs["protocol"] = 2  # even if the URL asks for RESP3
        self._publish_pool: ConnectionPool = ConnectionPool.from_url(url, **options)
        self._publisher = Redis(connection_pool=self._publish_pool)
        self._queue: DropOldest[Message] = DropOldest(queue_size)
        self._channels: set[str] = set()
        self._confirmed: dict[str, asyncio.Event] = {}
        self._live: AbstractConnection | None = None
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        # cached state for status()
        self._connected = False
        self._subscribed_since: str | None = None
        self._last_message: float | None = None
        self._publish_failures = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._down_since: float | None = None
        self._ever_up = False

    async def connect(self) -> None:
        """Start the listener; wait briefly for Redis but never fail: it may come up later."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redis-bus-listener")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._connect_wait):
                await self._up.wait()

    async def disconnect(self) -> None:
        await cancel(self._task)
        self._task = None
        await self._publisher.aclose()
        await self._publish_pool.aclose()  # a pool passed in is not closed by the client
        await self._listen_pool.aclose()

    async def subscribe(self, channel: str) -> None:
        """Subscribe now if connected (waiting for Redis to confirm), else on the next connect."""
        self._channels.add(channel)
        confirmed = self._confirmed.setdefault(channel, asyncio.Event())
        if await self._send("SUBSCRIBE", channel):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2 * self._timeout):
                    await confirmed.wait()

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        self._confirmed.pop(channel, None)
        await self._send("UNSUBSCRIBE", channel)

    async def publish(self, channel: str, data: str) -> None:
        """Raise (TimeoutError or a redis error) rather than block longer than `publish_timeout`."""
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._publisher.publish(channel, data)
        except Exception:
            self._publish_failures += 1
            raise

    async def next_message(self) -> Message:
        return await self._queue.get()

    def status(self) -> dict[str, Any]:
        age = None if self._last_message is None else round(time.monotonic() - self._last_message, 3)
        return {
            "backend": "redis",
            "connected": self._connected,
            "subscribed_since": self._subscribed_since,
            "last_message_age_s": age,
            "publish_failures": self._publish_failures,
            "reconnects": self._reconnects,
            "channels": sorted(self._channels),
            "dropped": self._queue.dropped,
            "last_error": self._last_error,
        }

    async def _send(self, *args: str) -> bool:
        """Send a command on the live listener connection; a failure is left to the reader."""
        conn = self._live
        if conn is None:
            return False
        try:
            await self._send_on(conn, *args)
        except Exception as exc:
            logger.debug("could not send %s on the bus connection: %r", args[0], exc)
            return False
        return True

    async def _run(self) -> None:
        attempt = 0
        while True:
            conn = self._listen_pool.make_connection()
            try:
                await self._session(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                if self._connected or self._down_since is None:
                    # Once per outage: the drop itself, or the first failure to connect at all.
                    logger.warning("redis bus connection lost: %s; reconnecting", self._last_error)
                    self._down_since = time.monotonic()
                else:
                    logger.debug("redis bus reconnect failed: %s", self._last_error)
            finally:
                if self._connected:
                    attempt = 0
                self._live = None
                self._connected = False
                self._subscribed_since = None
                self._up.clear()
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
            delay = min(self._backoff_cap, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
            attempt = min(attempt + 1, 10)
            await asyncio.sleep(delay)

    async def _session(self, conn: AbstractConnection) -> None:
        """One connection's life: connect, (re)subscribe, read until it breaks or goes silent."""
        async with asyncio.timeout(2 * self._timeout):
            await conn.connect()
        # No await between going live and the snapshot: a concurrent subscribe() either is in
        # the snapshot or sees the live connection and sends its own SUBSCRIBE.
        self._live = conn
        channels = sorted(self._channels)
        pending = set(channels)
        if channels:
            await self._send_on(conn, "SUBSCRIBE", *channels)
        else:
            self._mark_up(0)
        # Confirmations of SUBSCRIBE are awaited like a PONG, if sooner: a healthy Redis answers in ms.
        ping_deadline: float | None = time.monotonic() + 2 * self._timeout if pending else None
        while True:
            wait = self._ping_interval if ping_deadline is None else ping_deadline - time.monotonic()
            response = await conn.read_response(timeout=max(0.01, wait), disconnect_on_error=False)
            if response is None:  # the line was quiet for `wait` seconds
                if ping_deadline is not None:
                    if time.monotonic() >= ping_deadline:
                        raise ConnectionLost("redis stopped answering (no reply to PING or SUBSCRIBE)")
                    continue
                ping_deadline = time.monotonic() + self._ping_timeout
                await self._send_on(conn, "PING")
                continue
            was_pending = bool(pending)
            self._handle(response, pending)
            if not pending:  # any reply proves the line alive, once the subscriptions are confirmed
                ping_deadline = None
                if was_pending:
                    self._mark_up(len(channels))

    async def _send_on(self, conn: AbstractConnection, *args: str) -> None:
        async with self._write_lock, asyncio.timeout(self._timeout):
            await conn.send_command(*args, check_health=False)

    def _mark_up(self, channels: int) -> None:
        if self._down_since is not None:
            if self._ever_up:
                self._reconnects += 1
            logger.info(
                "redis bus connected after %.2fs; %d channel(s) subscribed",
                time.monotonic() - self._down_since,
                channels,
            )
            self._down_since = None
        self._ever_up = True
        self._connected = True
        self._subscribed_since = now_iso()
        self._up.set()

    def _handle(self, response: Any, pending: set[str]) -> None:
        """Dispatch one reply: a message to the queue, a subscribe confirmation to its waiters."""
        if not isinstance(response, list) or not response:
            return  # PONG outside subscribed mode
        kind = response[0]
        if kind == b"message":
            self._last_message = time.monotonic()
            self._queue.put(Message(response[1].decode(), response[2].decode(errors="replace")))
        elif kind == b"subscribe":
            channel = response[1].decode()
            if channel in self._confirmed:
                self._confirmed[channel].set()
            pending.discard(channel)
