"""One thread that owns a SQLite connection: the calls of one loop iteration go there in one hop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")
Call = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]
Done = list[tuple["asyncio.Future[Any]", bool, Any]]
_STOP: list[Call] = []
HOLD = 0.002  # seconds a finished call's answer may wait for the rest of its batch (without after_batch)


def _settle(done: Done) -> None:
    for future, ok, value in done:
        if future.done():  # the caller was cancelled meanwhile
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class DbThread:
    """Runs functions in call order on one thread (a connection's thread affinity, no pool).

    Each hop wakes the thread and then the loop (a futex and a self-pipe write, and the GIL
    changing hands): the calls made in one loop iteration travel together, and their results
    come back together, so that fifty concurrent requests cost a few hops, not fifty.
    `after_batch` runs after each batch, before any of its results is handed back (a group
    commit); if it raises, every call of the batch fails with it.
    """

    def __init__(self, name: str) -> None:
        self.after_batch: Callable[[], None] | None = None
        self._queue: SimpleQueue[list[Call]] = SimpleQueue()
        self._batch: list[Call] = []
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (batch := self._queue.get()) is not _STOP:
            done: Done = []
            loop = batch[0][0].get_loop()
            since = time.monotonic()
            for future, fn, args in batch:
                try:
                    done.append((future, True, fn(*args)))
                except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller
                    done.append((future, False, exc))
                if self.after_batch is None and time.monotonic() - since > HOLD:
                    # A slow call (a vacuum step, a large page) does not hold back what ran before it.
                    loop.call_soon_threadsafe(_settle, done)
                    done, since = [], time.monotonic()
            if self.after_batch is not None:
                try:
                    self.after_batch()
                except BaseException as exc:  # noqa: BLE001 - the batch fails as one
                    done = [(future, False, exc) for future, _, _ in batch]
            if done:
                loop.call_soon_threadsafe(_settle, done)

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, name: str) -> AsyncIterator[DbThread]:
        """A thread for the block; on the way out its queued calls finish and it ends."""
        thread = cls(name)
        try:
            yield thread
        finally:
            await asyncio.to_thread(thread.stop)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._stopped:
            raise ValueError("no active connection")  # as aiosqlite says it once the store is closing
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._batch.append((future, fn, args))
        if len(self._batch) == 1:
            future.get_loop().call_soon(self._send)
        return await future

    def _send(self) -> None:
        batch, self._batch = self._batch, []
        self._queue.put(batch)

    def stop(self) -> None:
        """Let queued calls finish, then end the thread (waits for it)."""
        self._stopped = True
        if self._batch:
            self._send()
        self._queue.put(_STOP)
        self._thread.join()
