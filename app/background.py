"""Tasks that live as long as a block: started on entry, cancelled and awaited on exit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def background(**coros: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """`async with background(name=coro(), …):` each coroutine runs as a task named by its keyword."""
    tasks = [asyncio.create_task(coro, name=name) for name, coro in coros.items()]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
