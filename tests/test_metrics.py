"""GET /metrics on both listeners, in Prometheus text format, from prometheus-client."""

from __future__ import annotations

from conftest import Beacon, ClientFactory, eventually
from prometheus_client.parser import text_string_to_metric_families


async def scrape(beacon: Beacon, base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with beacon.http.get(base + "/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_follow_runs_requests_and_connections(beacon: Beacon, connect: ClientFactory) -> None:
    client = await connect(beacon.realtime)
    thread_id = await beacon.start("bench", {"lines": 30})
    await beacon.wait_status(thread_id, "completed")
    await eventually(lambda: len(client.seqs(thread_id)) == 31)

    async def runs_completed() -> bool:
        m = await scrape(beacon, beacon.rest)
        return m.get(("beacon_runs", (("status", "completed"),))) == 1.0

    await eventually(runs_completed, 5, 0.2)
    for base in (beacon.rest, beacon.realtime):
        m = await scrape(beacon, base)
        assert m[("beacon_socketio_connections", (("namespace", "/logs"),))] == 1.0
        assert m[("beacon_socketio_connections", (("namespace", "/admin"),))] == 1.0
        assert m[("beacon_socketio_events_emitted_total", (("event", "log"), ("namespace", "/logs")))] == 31.0
        assert m[("beacon_bus_messages_total", (("direction", "publish_failed"),))] == 0.0
        assert m[("beacon_bus_lag_seconds_count", ())] >= 1
        key = (
            "beacon_http_request_duration_seconds_count",
            (("method", "POST"), ("route", "/start"), ("status", "202")),
        )
        assert m[key] == 1.0
        status_key = (
            "beacon_http_request_duration_seconds_count",
            (("method", "GET"), ("route", "/status/{thread_id}"), ("status", "200")),
        )
        assert m[status_key] >= 1
