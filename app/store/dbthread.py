"""One thread that owns a SQLite connection: each call is one hop there and back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")
_STOP = object()


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class DbThread:
    """Runs functions in call order on one thread (a connection's thread affinity, no pool).

    Lighter than `run_in_executor`: no concurrent.futures.Future to chain and no pool sizing per
    call, as aiosqlite does it; a call is queued, run, and its result set from the loop.
    """

    def __init__(self, name: str) -> None:
        self._queue: SimpleQueue[Any] = SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            loop, future, fn, args = item
            try:
                result, ok = fn(*args), True
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
                result, ok = exc, False
            loop.call_soon_threadsafe(_settle, future, ok, result)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._stopped:
            raise ValueError("no active connection")  # as aiosqlite says it once the store is closing
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((loop, future, fn, args))
        return await future

    def stop(self) -> None:
        """Let queued calls finish, then end the thread (waits for it)."""
        self._stopped = True
        self._queue.put(_STOP)
        self._thread.join()
