"""Factory for the REST aiohttp app."""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp import web

from app.keys import config_key, probe_key, runs_key, services_key, started_key
from app.metrics import metrics_handler
from app.rest.health import probe_ctx
from app.rest.middlewares import errors, security_headers, timing
from app.rest.openapi import openapi
from app.rest.probe import Probe
from app.rest.routes import setup_routes
from app.rest.ui import setup_ui
from app.services import Services


def create_rest_app(services: Services) -> web.Application:
    if services.runs is None:
        raise ValueError("the REST app needs the run manager (open_services(with_runs=True))")
    app = web.Application(
        middlewares=[timing(services.metrics), errors], client_max_size=services.config.rest.max_body_bytes
    )
    app[config_key] = services.config
    app[services_key] = services
    app[runs_key] = services.runs
    probe = app[probe_key] = Probe(services)
    services.metrics.family(
        "gauge", "beacon_runs", "Runs by status (refreshed every 2 s)", "status", lambda: probe.runs_by_status
    )
    app[started_key] = time.monotonic()
    setup_routes(app)
    setup_ui(app, Path(services.config.rest.ui_dir), services.config.realtime.port or None)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/metrics", metrics_handler(services.metrics))
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(probe_ctx)
    return app
