"""GET /admin/runs/{id}/logs: `next_after` says whether a page follows, whatever is logged meanwhile."""

from __future__ import annotations

import asyncio

from conftest import Beacon
from test_run_engine import Paused

from app.store import LogLine


def line(thread_id: str, seq: int) -> LogLine:
    ts = "2026-12-01T00:00:00+00:00"
    return LogLine(text=f"line {seq}", thread_id=thread_id, level="INFO", timestamp=ts, seq=seq)


async def test_the_last_page_stays_last_when_a_line_arrives_while_it_is_read(beacon: Beacon) -> None:
    thread_id = await beacon.start("review", {"topic": "paging", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    services = beacon.running.services
    store = services.store
    _, body = await beacon.call("GET", f"/admin/runs/{thread_id}/logs")
    have = body["last_seq"]
    paused = Paused(store)
    services.store = paused  # type: ignore[assignment]
    try:
        reached, release = paused.hold("last_seq")
        page = asyncio.ensure_future(beacon.call("GET", f"/admin/runs/{thread_id}/logs"))
        await asyncio.wait_for(reached.wait(), 10)  # the page is read; a line lands before last_seq
        await store.append_logs([line(thread_id, have + 1)])
        release.set()
        status, body = await page
    finally:
        services.store = store
    assert status == 200
    assert [ln["seq"] for ln in body["lines"]] == list(range(1, have + 1))
    assert body["next_after"] is None and body["last_seq"] == have + 1


async def test_a_full_page_points_at_the_next(beacon: Beacon) -> None:
    thread_id = await beacon.start("review", {"topic": "paging", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    _, whole = await beacon.call("GET", f"/admin/runs/{thread_id}/logs")
    n = len(whole["lines"])
    _, first = await beacon.call("GET", f"/admin/runs/{thread_id}/logs?limit={n - 1}")
    assert first["next_after"] == n - 1
    _, rest = await beacon.call("GET", f"/admin/runs/{thread_id}/logs?after={n - 1}&limit={n}")
    assert [ln["seq"] for ln in rest["lines"]] == [n] and rest["next_after"] is None
    _, exact = await beacon.call("GET", f"/admin/runs/{thread_id}/logs?limit={n}")
    assert exact["next_after"] is None
