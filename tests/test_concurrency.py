"""Races: exactly one decision or start wins (R3); many runs on SQLite all complete, whole (R6)."""

from __future__ import annotations

import asyncio
import time

from conftest import Beacon

from app.workflows.deploy import STEPS


async def test_twenty_concurrent_approvals_one_wins_r3(beacon: Beacon) -> None:
    thread_id = await beacon.start("review", {"topic": "race", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    results = await asyncio.gather(
        *(beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve", "comment": f"#{i}"}) for i in range(20))
    )
    codes = sorted(status for status, _ in results)
    assert codes == [200] + [409] * 19, codes
    assert all(body["error"] in ("not_waiting", "stale_interrupt") for status, body in results if status == 409)
    done = await beacon.wait_status(thread_id, "completed")
    assert len(done["decisions"]) == 1
    status, logs = await beacon.call("GET", f"/admin/runs/{thread_id}/logs")
    assert sum(line["text"].startswith("Published") for line in logs["lines"]) == 1


async def test_five_concurrent_starts_on_one_thread_r3(beacon: Beacon) -> None:
    payload = {"workflow": "review", "input": {"topic": "race", "delay": 0}, "thread_id": "one-thread"}
    results = await asyncio.gather(*(beacon.call("POST", "/start", payload) for _ in range(5)))
    codes = sorted(status for status, _ in results)
    assert codes == [202, 409, 409, 409, 409], codes
    status, runs = await beacon.call("GET", "/admin/runs")
    assert runs["total"] == 1


async def test_twenty_concurrent_runs_on_sqlite_r6(beacon: Beacon) -> None:
    threads = await asyncio.gather(
        *(beacon.start("deploy", {"step_delay": 0.2, "lines_per_step": 5}) for _ in range(20))
    )
    for thread_id in threads:
        await beacon.wait_status(thread_id, "waiting_approval")
    await asyncio.gather(*(beacon.call("POST", f"/approve/{t}", {"decision": "approve"}) for t in threads))

    latencies: list[float] = []
    errors: list[object] = []

    async def poll(thread_id: str) -> None:
        while True:
            started = time.monotonic()
            status, body = await beacon.call("GET", f"/status/{thread_id}")
            latencies.append(time.monotonic() - started)
            if status != 200:
                errors.append(body)
                return
            if body["status"] != "running":
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(asyncio.gather(*(poll(t) for t in threads)), 60)
    assert errors == []  # no /status answered 503 while twenty runs wrote to the one SQLite file
    progress = [f"{step}: {i}/5" for step in STEPS for i in range(1, 6)]
    for thread_id in threads:
        assert (await beacon.status(thread_id))["status"] == "completed"
        status, logs = await beacon.call("GET", f"/admin/runs/{thread_id}/logs")
        seqs = [line["seq"] for line in logs["lines"]]
        assert status == 200 and seqs == list(range(1, len(seqs) + 1)), seqs  # every line kept, once, in order
        assert [line["text"] for line in logs["lines"] if line["text"] in progress] == progress
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"\n/status p99 {p99 * 1000:.0f} ms over {len(latencies)} requests (timings: make bench)")
