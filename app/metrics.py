"""Prometheus metrics: one registry per process (tests run several Beacons in one process)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "beacon_http_request_duration_seconds",
            "REST request latency by route template",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "beacon_socketio_events_emitted",
            "Socket.IO emit calls by namespace and event (a room emit counts once)",
            ["namespace", "event"],
            registry=self.registry,
        )
        self.lines = Counter("beacon_log_lines", "Log lines captured from runs", registry=self.registry)
        self.lines_dropped = Counter(
            "beacon_socketio_lines_dropped",
            "Log lines skipped for /logs clients that stopped reading (each such client gets a `dropped` event)",
            registry=self.registry,
        )
        self.bus_lag = Histogram(
            "beacon_bus_lag_seconds",
            "Delay from a log line's logging call to its emit on this node",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.webhooks = Counter(
            "beacon_webhook_deliveries",
            "Webhook deliveries by outcome: delivered, failed (after retries) or dropped (queue full)",
            ["outcome"],
            registry=self.registry,
        )

    def family(self, kind: str, name: str, help_text: str, label: str, read: Callable[[], dict[str, float]]) -> None:
        """A gauge or counter family read at scrape time from cached state (collectors must not block)."""
        self.registry.register(_Family(kind, name, help_text, label, read))


class _Family(Collector):
    def __init__(self, kind: str, name: str, help_text: str, label: str, read: Callable[[], dict[str, float]]) -> None:
        self._cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        self._name, self._help, self._label, self._read = name, help_text, label, read

    def collect(self) -> Iterable[Metric]:
        family = self._cls(self._name, self._help, labels=[self._label])
        for key, value in self._read().items():
            family.add_metric([key], value)
        yield family


def metrics_handler(metrics: Metrics) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler
