"""Shared services, opened once per process in an AsyncExitStack and closed in reverse."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.auth import Auth, load_auth
from app.config import Config
from app.metrics import Metrics
from app.origins import Origins
from app.pubsub import Bus, create_backend
from app.pubsub.outbox import Outbox
from app.runs.logsink import LogSink
from app.runs.streams import RunStreams
from app.store import Store, open_store
from app.tokens import Tokens
from app.webhooks import Dispatcher

if TYPE_CHECKING:
    from app.runs.manager import RunManager
    from app.runs.retention import Retention


@dataclass
class Services:
    config: Config
    store: Store
    bus: Bus
    metrics: Metrics
    auth: Auth
    tokens: Tokens
    login_token: str | None = None  # the token file's admin secret, for the login URL run.py prints
    # This process among the nodes: host and the port of its REST listener (of its realtime one in
    # a realtime-only process), stable across restarts
    # (leases, webhook deliveries and /stats all name it so). serve() sets it once the port is bound.
    node: str = ""
    rest_port: int = 0  # the REST listener's bound port in this process (0: none, or not yet bound)
    realtime_port: int = 0  # the same for the realtime listener
    origins: Origins = field(default_factory=lambda: Origins((), lambda: 0))  # open_services sets the real one
    rest_origins: Origins = field(default_factory=lambda: Origins((), lambda: 0))  # that may call the REST API
    sink: LogSink | None = None  # where the REST listener runs
    runs: RunManager | None = None  # only where the REST listener runs
    webhooks: Dispatcher | None = None  # there too
    retention: Retention | None = None  # there too; serve() starts it once the node is named


def _bus_metrics(metrics: Metrics, bus: Bus) -> Metrics:
    metrics.family(
        "counter",
        "beacon_bus_messages",
        "Bus messages by direction",
        "direction",
        lambda: {"published": bus.published, "received": bus.received, "publish_failed": bus.publish_failures},
    )
    metrics.family(
        "gauge",
        "beacon_bus_connected",
        "1 when the bus backend is connected",
        "backend",
        lambda: {str(bus.status().get("backend")): float(bool(bus.status().get("connected")))},
    )
    return metrics


def _retention_metrics(metrics: Metrics, retention: Retention) -> Retention:
    totals = retention.totals
    metrics.family(
        "counter",
        "beacon_retention_removed",
        "What retention passes on this node removed: threads (with all their rows) and log lines",
        "kind",
        lambda: {"threads": totals.threads, "log_lines": totals.log_lines, "passes": totals.passes},
    )
    return retention


@contextlib.asynccontextmanager
async def open_services(cfg: Config, *, with_runs: bool = True) -> AsyncIterator[Services]:
    if with_runs:  # LangGraph and the graphs load only where runs execute, not on a realtime node
        from app.runs.checkpoints import open_checkpointer
        from app.runs.manager import RunManager
        from app.runs.retention import Retention
        from app.workflows.langgraph_json import load_all

        workflows = await load_all(cfg.workflows, cfg.graphs.config)  # [workflows] and langgraph.json
    auth, login_token = load_auth(cfg)
    async with contextlib.AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_store(cfg.store.url))
        bus = await stack.enter_async_context(Bus(create_backend(cfg.pubsub.url), cfg.pubsub.queue_size))
        tokens = await stack.enter_async_context(Tokens(auth, store, bus).following())
        services = Services(cfg, store, bus, _bus_metrics(Metrics(), bus), auth, tokens, login_token)
        # Browser origins of each listener: `{rest_port}` is the port the REST listener bound.
        services.origins = Origins(cfg.realtime.cors_origins, lambda: services.rest_port or cfg.rest.port)
        services.rest_origins = Origins(cfg.rest.cors_origins, lambda: services.rest_port or cfg.rest.port)
        if with_runs:
            checkpointer = await stack.enter_async_context(open_checkpointer(cfg.store.url))
            outbox = await stack.enter_async_context(Outbox(bus).running())
            sink = await stack.enter_async_context(LogSink(store, outbox, cfg.runs.max_line_bytes).installed())
            streams = await stack.enter_async_context(RunStreams(store, outbox).running())
            node = f"{socket.gethostname()}:{cfg.rest.port}"  # serve() renames it once bound
            manager = RunManager(store, bus, outbox, checkpointer, workflows, sink, streams, node)  # started by serve()
            # Entered before the manager's tasks and closed after them: final status changes are still sent.
            # Also without hooks, so that deliveries a removed hook left pending are closed as failed.
            dispatcher = Dispatcher(cfg.webhooks, store, services.metrics, lambda: manager.node)
            services.webhooks = await stack.enter_async_context(dispatcher.running())
            manager.events.on_status.append(dispatcher.notify)
            services.sink = sink
            services.runs = manager
            services.retention = _retention_metrics(
                services.metrics, Retention(cfg.store, store, checkpointer, lambda: manager.node)
            )
        yield services
