"""serve(config): both listeners (or one) on one event loop, with shared services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from app.config import MODES, Config, ConfigError
from app.keys import head_timers_key
from app.realtime.app import create_realtime_app
from app.realtime.hooks.aiohttp import Runner, Site
from app.realtime.keys import front_key
from app.services import Services, open_services

logger = logging.getLogger(__name__)



@dataclass
class Running:
    """What serve() yields: the bound ports (0 means that listener is not in this process)."""

    services: Services
    rest_port: int = 0
    realtime_port: int = 0


def _bound_port(runner: web.AppRunner) -> int:
    if not runner.addresses:
        raise RuntimeError("listener has no bound socket")
    return int(runner.addresses[0][1])


async def _start(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = Runner(app, handle_signals=False, shutdown_timeout=5.0, access_log=None)
    await runner.setup()
    assert runner.server is not None
    http = app[head_timers_key].wrap(runner.server)  # aiohttp's protocol, with a deadline for each head
    front = app.get(front_key)
    if front is not None:  # the realtime listener: its websockets skip aiohttp's per-connection objects
        front.http = http
    try:
        await Site(runner, front.protocol if front is not None else http, host, port, reuse_address=True).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return runner


@contextlib.asynccontextmanager
async def serve(cfg: Config, mode: str = "all") -> AsyncIterator[Running]:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode != "all" and cfg.pubsub.url.startswith("memory:"):
        raise ConfigError(
            f"'{mode}' alone needs a shared bus: the memory bus only reaches listeners in the same process. "
            "Set PUBSUB_URL=redis://host:6379/0 (and a shared STORE_URL), or run both with 'python run.py'."
        )
    with_rest, with_realtime = mode in ("all", "rest"), mode in ("all", "realtime")
    async with open_services(cfg, with_runs=with_rest) as services, contextlib.AsyncExitStack() as background:
        running = Running(services)
        runners: list[web.AppRunner] = []
        try:
            if with_realtime:
                runners.append(await _start(create_realtime_app(services), cfg.realtime.host, cfg.realtime.port))
                running.realtime_port = services.realtime_port = _bound_port(runners[-1])
                services.node = f"{socket.gethostname()}:{running.realtime_port}"
            if with_rest:
                from app.rest.app import create_rest_app  # LangGraph loads only where runs execute

                runners.append(await _start(create_rest_app(services), cfg.rest.host, cfg.rest.port))
                running.rest_port = services.rest_port = _bound_port(runners[-1])
                assert services.runs is not None
                services.node = services.runs.node = f"{socket.gethostname()}:{running.rest_port}"
                # Its background (deadlines, leases, take-overs) starts under the final node name,
                # or a lease claimed as host:0 would never be renewed or released.
                await background.enter_async_context(services.runs.running())
                resumed = await services.runs.cluster.resume_interrupted()
                if resumed:
                    logger.info("resumed %d interrupted run(s)", resumed)
                if services.webhooks is not None:  # by node name, so only once the port is known
                    await services.webhooks.resume()
                if services.retention is not None:  # its lease is named by the node too
                    await background.enter_async_context(services.retention.running())
            yield running
        finally:
            if services.runs is not None:
                await services.runs.drain(cfg.runs.grace_period)  # leases still renewed meanwhile
                await services.runs.release_all()
            await background.aclose()
            for failed in await asyncio.gather(*(r.cleanup() for r in runners), return_exceptions=True):
                if isinstance(failed, Exception):  # the other listener still gets its cleanup
                    logger.error("a listener's cleanup failed", exc_info=failed)
