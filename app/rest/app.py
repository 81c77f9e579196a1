"""Factory for the REST aiohttp app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from prometheus_client import Gauge

from app.background import background
from app.keys import config_key, head_timers_key, services_key, started_key
from app.listener import HeadTimers
from app.metrics import metrics_handler
from app.rest.health import probe_ctx
from app.rest.keys import followers_key, probe_key, runs_key
from app.rest.middlewares import authenticate, cors, errors, security_headers, timing
from app.rest.openapi import openapi
from app.rest.probe import Probe
from app.rest.routes import ROUTES, setup_routes
from app.rest.ui import setup_ui
from app.runs.streams import Followers
from app.services import Services

# Routes outside the table (not in the OpenAPI document) and who may call them.
EXTRA_ROLES = {
    ("GET", "/openapi.json"): "public",
    ("GET", "/metrics"): "viewer",
    ("GET", "/ui/config.json"): "public",
    ("GET", "/ui/{path}"): "public",  # static files; every piece of data comes over the API
    ("GET", "/ui"): "public",
    ("GET", "/"): "public",
}


def route_roles() -> dict[tuple[str, str], str]:
    return {**{(r.method, r.path): r.role for r in ROUTES}, **EXTRA_ROLES}


def create_rest_app(services: Services) -> web.Application:
    if services.runs is None:
        raise ValueError("the REST app needs the run manager (open_services(with_runs=True))")
    cfg = services.config
    timers = HeadTimers(cfg.rest.head_timeout)
    middlewares = [
        timers.middleware(),
        cors(services.rest_origins),
        timing(services.metrics),
        errors,
        authenticate(services.auth, route_roles()),
    ]
    app = web.Application(middlewares=middlewares, client_max_size=cfg.rest.max_body_bytes)
    app[config_key] = services.config
    app[services_key] = services
    app[head_timers_key] = timers
    app[runs_key] = services.runs
    probe = app[probe_key] = Probe(services)
    services.metrics.family(
        "gauge", "beacon_runs", "Runs by status (refreshed every 2 s)", "status", lambda: probe.runs_by_status
    )
    approvals = Gauge(
        "beacon_approvals_waiting", "Pending approvals (refreshed every 2 s)", registry=services.metrics.registry
    )
    approvals.set_function(lambda: probe.approvals_waiting)
    oldest = Gauge(
        "beacon_approval_oldest_age_seconds",
        "How long the oldest pending approval has waited (0 when none)",
        registry=services.metrics.registry,
    )
    oldest.set_function(probe.oldest_approval_age)
    app[started_key] = time.monotonic()
    setup_routes(app)
    # The realtime port this process bound, else the configured one (None: the page derives one).
    setup_ui(app, Path(cfg.rest.ui_dir), lambda: services.realtime_port or cfg.realtime.port or None)
    app.router.add_get("/openapi.json", openapi(ROUTES))
    app.router.add_get("/metrics", metrics_handler(services.metrics))
    app.on_response_prepare.append(security_headers)
    app[followers_key] = Followers(services.bus)
    app.cleanup_ctx.append(probe_ctx)
    app.cleanup_ctx.append(followers_ctx)
    return app


async def followers_ctx(app: web.Application) -> AsyncIterator[None]:
    """The live side of the Agent API's streams: this node's readers get the bus's run events."""
    async with background(rest_followers=app[followers_key].listen()):
        yield
