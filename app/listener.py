"""A deadline for every request head, on both listeners.

aiohttp bounds the idle time between requests (keep-alive) but not how long a request head may
take to arrive: a client sending one header line every few seconds holds a connection forever.
`HeadTimer` sits in front of aiohttp's protocol for a connection and closes it when a head takes
longer than the timeout; `head_done` (a middleware) tells it when aiohttp has read one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HeadTimer(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the head timeout around each request it reads."""

    __slots__ = ("inner", "timers", "transport", "timer", "busy")

    def __init__(self, inner: Any, timers: HeadTimers) -> None:
        self.inner = inner  # aiohttp's RequestHandler
        self.timers = timers
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.busy = False  # a request is being handled: the bytes that come now are its body

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.timers.live[self.inner] = self
        self.inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if not self.busy and self.timer is None:
            self._arm()  # the first bytes of the next request
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.timers.live.pop(self.inner, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def started(self) -> None:
        self.busy = True
        self._disarm()

    def finished(self) -> None:
        self.busy = False

    def _arm(self) -> None:
        assert self.transport is not None
        self.timer = asyncio.get_running_loop().call_later(self.timers.timeout, self.transport.close)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class HeadTimers:
    """The head timers of one listener's connections, found again by aiohttp's protocol."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.live: dict[Any, HeadTimer] = {}

    def wrap(self, factory: Callable[[], Any]) -> Callable[[], HeadTimer]:
        """A protocol factory for the listener: aiohttp's, behind a HeadTimer."""
        return lambda: HeadTimer(factory(), self)

    def middleware(self) -> Any:
        @web.middleware
        async def head_done(request: web.Request, handler: Handler) -> web.StreamResponse:
            timer = self.live.get(request.protocol)
            if timer is not None:
                timer.started()
            try:
                return await handler(request)
            finally:
                if timer is not None:
                    timer.finished()

        return head_done
