"""The REST listener's probe loop: refreshes the cached health report every few seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from app.background import background
from app.rest.keys import probe_key
from app.rest.probe import INTERVAL


async def probe_ctx(app: web.Application) -> AsyncIterator[None]:
    probe = app[probe_key]
    await probe.check()

    async def loop() -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            await probe.check()

    async with background(health_probe=loop()):
        yield
