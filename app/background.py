"""Tasks that live as long as their owner: cancelled and awaited when it ends, written once here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


async def cancel(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel `tasks` (None is skipped) and wait until they have ended; what they raise is theirs.

    Unlike `task.cancel()` then `await task` under `suppress(CancelledError)`, a cancellation of the
    caller while it waits here still reaches the caller.
    """
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    await asyncio.gather(*live, return_exceptions=True)


class Tasks:
    """Tasks started one at a time while their owner lives (a catch-up, a disconnect); `close()` ends them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)  # a reference, so the loop cannot drop a running task
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        await cancel(*self._tasks)


@contextlib.asynccontextmanager
async def background(**coros: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """`async with background(name=coro(), …):` each coroutine runs as a task named by its keyword."""
    tasks = [asyncio.create_task(coro, name=name) for name, coro in coros.items()]
    try:
        yield
    finally:
        await cancel(*tasks)
