"""Retention: finished threads and their log lines go after their time, in batches, on one node at a
time, never a waiting or running one, and never under a subscriber's feet."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import Beacon, ClientFactory, eventually, make_config, running_beacon
from langgraph.checkpoint.memory import InMemorySaver
from test_lifecycle import NOTHING, rows_left
from test_run_engine import Paused
from test_store import line

from app.config import StoreConfig
from app.realtime.subscriptions import Subscriptions
from app.runs.retention import LEASE, Retention, cutoff
from app.store import LogLine, Store
from app.store.base import ThreadRun

DAYS = 1e-6  # 0.09 s: a thread that finished a moment ago is old enough


async def pruned(b: Beacon, thread_id: str) -> None:
    """Run passes until `thread_id` is gone (its end must first be older than the cutoff)."""
    retention = b.running.services.retention
    assert retention is not None

    async def gone() -> bool:
        await retention.prune()
        return await b.running.services.store.get_run(thread_id) is None

    await eventually(gone, 10, 0.05, f"{thread_id} was never pruned")


@pytest.fixture
async def keeping(tmp_path: Path, stack: dict[str, str]) -> Any:
    async with running_beacon(make_config(tmp_path, **stack, **{"store.retention_days": DAYS})) as b:
        yield b


async def test_retention_erases_finished_threads_and_never_waiting_or_running_ones(keeping: Beacon) -> None:
    b = keeping
    done = await b.start("bench", {"lines": 50})
    await b.wait_status(done, "completed")
    waiting = await b.start("review", {"topic": "Q3", "delay": 0})
    await b.wait_status(waiting, "waiting_approval")
    running = await b.start("bench", {"lines": 100_000, "rate": 50})
    await b.wait_status(running, "running")

    await pruned(b, done)
    assert await rows_left(b, done) == NOTHING
    for kept in (waiting, running):
        left = await rows_left(b, kept)
        assert left["run"] is not None and left["checkpoint"] is not None and left["logs"], kept
    [entry] = await b.running.services.store.audit_log(thread_id=done)
    assert (entry.actor, entry.action, entry.detail["removed"]["logs"]) == ("retention", "retention", 51)

    status, stats = await b.call("GET", "/admin/stats")
    assert status == 200 and stats["retention"]["enabled"] and stats["retention"]["threads"] == 1
    assert stats["retention"]["log_lines"] == 51 and stats["retention"]["passes"] >= 1
    async with b.http.get(b.realtime + "/stats") as resp:
        assert (await resp.json())["retention"]["threads"] == 1  # the listener of the seed's /stats too
    async with b.http.get(b.rest + "/metrics") as resp:
        text = await resp.text()
    assert 'beacon_retention_removed_total{kind="threads"} 1.0' in text
    assert 'beacon_retention_removed_total{kind="log_lines"} 51.0' in text
    assert (await b.call("POST", f"/admin/runs/{running}/cancel"))[0] == 200


async def test_log_retention_deletes_lines_sooner_and_keeps_the_run(tmp_path: Path, stack: dict[str, str]) -> None:
    cfg = make_config(tmp_path, **stack, **{"store.log_retention_days": DAYS})
    async with running_beacon(cfg) as b:
        done = await b.start("bench", {"lines": 12_000})  # more than one DELETE's worth
        await b.wait_status(done, "completed")
        waiting = await b.start("review", {"topic": "Q3", "delay": 0})
        await b.wait_status(waiting, "waiting_approval")
        retention = b.running.services.retention
        assert retention is not None

        async def no_lines() -> bool:
            await retention.prune()
            return not await b.running.services.store.get_logs(done, limit=1)

        await eventually(no_lines, 10, 0.05, "the lines were never pruned")
        left = await rows_left(b, done)
        assert left["run"] is not None and left["checkpoint"] is not None  # only the lines went
        assert retention.totals.log_lines == 12_001 and retention.totals.threads == 0
        assert (await rows_left(b, waiting))["logs"]


async def test_one_node_at_a_time_prunes(keeping: Beacon) -> None:
    b = keeping
    retention, store = b.running.services.retention, b.running.services.store
    assert retention is not None
    done = await b.start("bench", {"lines": 5})
    await b.wait_status(done, "completed")
    assert await store.claim(LEASE, "another-node:8000", 60)  # another node's pass is under way
    assert await retention.prune() is None
    assert await store.get_run(done) is not None
    await store.release(LEASE, "another-node:8000")
    await pruned(b, done)


def thread_run(run_id: str, thread_id: str) -> ThreadRun:
    ts = "2026-01-01T00:00:00+00:00"
    return ThreadRun(run_id, thread_id, "a", "bench", "running", {}, {}, "reject", ts, ts)


async def test_retention_racing_a_subscriber_replaying_the_thread(store: Store) -> None:
    """A subscriber replays a finished thread page by page; between its first and second page the
    thread is pruned. It gets an exact prefix, in order, no duplicates, an ack that says where it
    stopped; a subscriber of a live thread keeps its lines throughout."""
    await store.create_run("old", "bench", {}, first=thread_run("r-old", "old"))
    await store.append_logs([line("old", seq, f"old {seq}") for seq in range(1, 2501)])
    await store.set_status("old", "completed")
    await store.create_run("live", "bench", {}, first=thread_run("r-live", "live"))
    await store.append_logs([line("live", 1)])

    paused = Paused(store)
    got: list[tuple[str, LogLine]] = []

    async def emit(sid: str, lines: Sequence[LogLine], replaying: bool) -> None:
        got.extend((sid, ln) for ln in lines)

    subs = Subscriptions(paused, emit, 10_000)  # type: ignore[arg-type]
    live_ack = await subs.subscribe("watcher", "live", 0, 0)
    assert live_ack.as_dict() == {"recovered": True, "last_seq": 1, "replayed": 1}
    reached, release = paused.hold("get_logs", after=True)  # the first page is read, not yet sent
    replay = asyncio.create_task(subs.subscribe("reader", "old", 0, 0))
    await asyncio.wait_for(reached.wait(), 10)

    retention = Retention(StoreConfig(retention_days=DAYS), store, InMemorySaver(), lambda: "node-a:8000")

    async def old_pruned() -> bool:
        await retention.prune()
        return await store.get_run("old") is None

    await eventually(old_pruned, 10, 0.05, "old was never pruned")
    await store.append_logs([line("live", 2)])
    await subs.deliver(line("live", 2))  # the live path meanwhile
    release.set()
    ack = await asyncio.wait_for(replay, 10)
    seqs = [ln["seq"] for sid, ln in got if sid == "reader"]
    assert seqs == list(range(1, 1001))  # the page it had read: an exact prefix
    assert ack.as_dict() == {"recovered": True, "last_seq": 1000, "replayed": 1000}
    assert [ln["seq"] for sid, ln in got if sid == "watcher"] == [1, 2]
    assert await store.get_logs("old") == [] and await store.get_run("live") is not None
    await subs.close()


async def test_retention_beside_live_and_replaying_subscribers(keeping: Beacon, connect: ClientFactory) -> None:
    """Over Socket.IO on both stacks: one client replays a finished thread while a pass prunes it,
    another follows a running thread throughout. However the two interleave, the first gets an
    exact prefix that its ack names, the second every line, in order, without a gap."""
    b = keeping
    retention = b.running.services.retention
    assert retention is not None
    done = await b.start("bench", {"lines": 5000})
    await b.wait_status(done, "completed")
    live = await b.start("bench", {"lines": 100_000, "rate": 200})
    quiet = {"firehose": False}  # only the threads subscribed to
    follower = await connect(b.realtime, ("/logs",), auth=quiet)
    reader = await connect(b.realtime, ("/logs",), auth=quiet)
    assert (await follower.subscribe(live, since=0)).get("error") is None
    await eventually(lambda: follower.seqs(live), 10, message="the live run never logged")

    async def old_enough() -> bool:
        return await b.running.services.store.finished_threads(cutoff(DAYS) or "", limit=1) == [done]

    await eventually(old_enough, 10, 0.05)
    ack, _ = await asyncio.gather(reader.subscribe(done, since=0), retention.prune())
    got = reader.seqs(done)
    assert got == list(range(1, len(got) + 1)) and ack["replayed"] == len(got) and ack["last_seq"] == len(got)
    assert await b.running.services.store.get_run(done) is None
    after_pass = len(follower.seqs(live))
    await eventually(lambda: len(follower.seqs(live)) > after_pass + 10, 10, message="live lines stopped")
    seqs = follower.seqs(live)
    assert seqs == list(range(1, len(seqs) + 1))
    assert await b.running.services.store.get_run(live) is not None
    assert (await b.call("POST", f"/admin/runs/{live}/cancel"))[0] == 200
