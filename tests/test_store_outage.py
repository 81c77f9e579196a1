"""R5: Postgres stalls or dies mid-run: 503s come fast, no log line is lost, the run goes on."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from conftest import eventually, make_config, running_beacon
from servers import PostgresServer


async def test_store_outage_mid_run_r5(tmp_path: Path, postgres_proc: PostgresServer) -> None:
    cfg = make_config(tmp_path, **{"store.url": postgres_proc.create_database()})
    async with running_beacon(cfg) as beacon:
        thread_id = await beacon.start("bench", {"lines": 600, "rate": 150})
        await asyncio.sleep(1)  # part of the run's lines are stored before the outage
        postgres_proc.send(signal.SIGSTOP)
        try:
            started = time.monotonic()
            status, body = await beacon.call("GET", f"/status/{thread_id}")
            took = time.monotonic() - started
            assert status == 503 and body["error"] == "store_unavailable", body
            assert took < 2.0, f"/status took {took:.2f}s while the store hung"

            async def degraded() -> bool:
                status, body = await beacon.call("GET", "/health")
                return status == 503 and body["store"]["ok"] is False

            await eventually(degraded, 5, 0.2)
            await asyncio.sleep(2)  # the run keeps logging into the sink meanwhile
        finally:
            postgres_proc.send(signal.SIGCONT)

        async def healthy() -> bool:
            status, _ = await beacon.call("GET", "/health")
            return status == 200

        await eventually(healthy, 10, 0.2)
        # A checkpoint that could not be written fails the step; the supervisor resumes the run
        # from its last checkpoint once the store answers again.
        await beacon.wait_status(thread_id, "completed", timeout=40)
        status, logs = await beacon.call("GET", f"/admin/runs/{thread_id}/logs?limit=10000")
        seqs = [line["seq"] for line in logs["lines"]]
        assert seqs == list(range(1, len(seqs) + 1)), "a gap or a duplicate in the stored log"
        bench = [line["text"].split()[1] for line in logs["lines"] if line["text"].startswith("line ")]
        assert sorted(set(bench), key=int) == [str(i) for i in range(1, 601)], "lines lost in the outage"
