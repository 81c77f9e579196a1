"""Deleting and exporting threads over REST, the CLI and the Agent API, on both stacks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import Beacon, ClientFactory, eventually, make_config, running_beacon
from test_cli import against, cli
from test_run_engine import go, node

from app.runs.jobs import thread_config


async def rows_left(b: Beacon, thread_id: str) -> dict[str, Any]:
    """What the store and the checkpointer still hold of a thread."""
    store, runs = b.running.services.store, b.running.services.runs
    assert runs is not None
    return {
        "run": await store.get_run(thread_id),
        "runs": await store.list_thread_runs(thread_id),
        "logs": await store.get_logs(thread_id),
        "decisions": await store.decisions(thread_id),
        "approvals": (await store.list_approvals(thread_id=thread_id)).approvals,
        "checkpoint": await runs.checkpointer.aget_tuple(thread_config(thread_id)),
    }


NOTHING = {"run": None, "runs": [], "logs": [], "decisions": [], "approvals": [], "checkpoint": None}


async def test_delete_a_waiting_thread_removes_everything_and_is_audited(stack_beacon: Beacon) -> None:
    b = stack_beacon
    thread_id = await b.start("review", {"topic": "Q3", "delay": 0})
    await b.wait_status(thread_id, "waiting_approval")
    kept = await b.start("review", {"topic": "kept", "delay": 0})
    await b.wait_status(kept, "waiting_approval")

    status, body = await b.call("DELETE", f"/admin/runs/{thread_id}")
    assert status == 200, body
    assert body["thread_id"] == thread_id and body["deleted"]["runs"] == 1 and body["deleted"]["logs"] > 0
    assert await rows_left(b, thread_id) == NOTHING
    assert (await b.call("GET", f"/status/{thread_id}"))[0] == 404
    [entry] = await b.running.services.store.audit_log(thread_id=thread_id)
    assert (entry.actor, entry.action) == ("test-admin", "delete")
    assert entry.detail["status"] == "waiting_approval" and entry.detail["removed"] == body["deleted"]

    status, listed = await b.call("GET", f"/admin/audit?thread_id={thread_id}")
    assert status == 200 and [(e["actor"], e["action"]) for e in listed["entries"]] == [("test-admin", "delete")]
    assert listed["entries"][0]["detail"]["removed"] == body["deleted"]
    for bad in ("limit=0", "limit=x", "thread_id=a%20b"):
        status, refused = await b.call("GET", f"/admin/audit?{bad}")
        assert status in (400, 422) and refused["details"], (bad, refused)

    assert (await b.call("DELETE", f"/admin/runs/{thread_id}"))[0] == 404
    status, body = await b.call("DELETE", "/admin/runs/..%2Fx")
    assert status in (404, 422) and body["error"] in ("not_found", "validation_error")
    left = await rows_left(b, kept)  # the other thread is untouched
    assert left["run"] is not None and left["checkpoint"] is not None and left["approvals"]


async def test_a_delete_racing_a_running_thread_cancels_it_and_nothing_of_it_is_left(
    stack_beacon: Beacon, connect: ClientFactory
) -> None:
    """The run is in its node, logging, with lines in the sink on their way to the store and a
    subscriber following it, when the delete comes: it is cancelled, then erased, and no line,
    event or checkpoint of it is written after the erase."""
    b = stack_beacon
    client = await connect(b.realtime, ("/logs",))
    thread_id = await b.start("bench", {"lines": 100_000, "rate": 200})
    assert (await client.subscribe(thread_id, since=0)).get("error") is None
    await eventually(lambda: len(client.seqs(thread_id)) >= 20, 15, message="the run never logged")

    status, body = await b.call("DELETE", f"/admin/runs/{thread_id}")
    assert status == 200, body
    sink = b.running.services.sink
    assert sink is not None and await sink.flushed(5)  # whatever the sink still held is written (or dropped)
    await asyncio.sleep(0)
    assert await rows_left(b, thread_id) == NOTHING
    [entry] = await b.running.services.store.audit_log(thread_id=thread_id)
    assert entry.detail["status"] == "running" and entry.detail["removed"]["logs"] >= 20
    assert (await b.call("GET", f"/admin/runs/{thread_id}/logs"))[0] == 404
    # The thread id is free again, and a new run on it numbers its lines from 1.
    again = await b.start("bench", {"lines": 3}, thread_id=thread_id)
    await b.wait_status(again, "completed")
    _, page = await b.call("GET", f"/admin/runs/{thread_id}/logs")
    seqs = [ln["seq"] for ln in page["lines"]]
    assert seqs == list(range(1, len(seqs) + 1)) and 3 <= len(seqs) < 20  # the bench's 3 and the run's own


async def test_the_agent_api_and_the_cli_delete_through_the_same_path(stack_beacon: Beacon) -> None:
    b = stack_beacon
    status, thread = await b.call("POST", "/threads", {"metadata": {"k": 1}})
    assert status == 200, thread
    first = await b.start("bench", {"lines": 5})
    await b.wait_status(first, "completed")
    assert (await b.call("DELETE", f"/threads/{thread['thread_id']}"))[0] == 204
    assert (await b.call("DELETE", f"/threads/{thread['thread_id']}"))[0] == 404
    refused = await cli("delete", first, *against(b))
    assert refused.code == 1 and "--yes" in refused.err and (await b.call("GET", f"/status/{first}"))[0] == 200
    deleted = await cli("delete", first, "--yes", *against(b))
    assert deleted.code == 0 and deleted.out.startswith(f"deleted {first} (") and " logs, " in deleted.out, deleted
    entries = await b.running.services.store.audit_log()
    assert [(e.thread_id, e.actor) for e in entries] == [(first, "test-admin"), (thread["thread_id"], "test-admin")]
    assert await rows_left(b, first) == NOTHING


async def test_export_is_one_document_with_everything_retention_would_remove(stack_beacon: Beacon) -> None:
    b = stack_beacon
    thread_id = await b.start("review", {"topic": "Q3", "delay": 0})
    await b.wait_status(thread_id, "waiting_approval")
    assert (await b.call("POST", f"/approve/{thread_id}", {"decision": "approve", "comment": "ok"}))[0] == 200
    await b.wait_status(thread_id, "completed")
    status, doc = await b.call("GET", f"/admin/runs/{thread_id}/export")
    assert status == 200, doc
    assert doc["thread_id"] == thread_id and doc["run"]["status"] == "completed"
    assert [d["decision"] for d in doc["decisions"]] == ["approve"] and doc["decisions"][0]["comment"] == "ok"
    _, page = await b.call("GET", f"/admin/runs/{thread_id}/logs?limit=1000")
    assert doc["logs"] == page["lines"] and [ln["seq"] for ln in doc["logs"]] == list(range(1, len(doc["logs"]) + 1))
    _, history = await b.call("GET", f"/admin/runs/{thread_id}/history?limit=500")
    assert doc["checkpoints"] == history["checkpoints"] and len(doc["checkpoints"]) > 2
    assert len(doc["runs"]) >= 1 and doc["runs"][0]["thread_id"] == thread_id
    assert (await b.call("GET", "/admin/runs/missing/export"))[0] == 404
    assert (await b.call("GET", "/admin/runs/bad%20id/export"))[0] == 422


async def test_a_delete_waits_for_the_lines_of_the_run_it_stopped_before_erasing(tmp_path: Path) -> None:
    """The run's last line is in the sink, its write held at the store, when the delete stops the
    run: the erase waits until that write is done, so no line outlives the thread."""
    go.clear()
    async with node(tmp_path, "a:1") as a:
        written, release_write = a.store.hold("append_logs")
        await a.manager.start("blocking", {}, "t1")  # logs "working", then waits for `go`
        await asyncio.wait_for(written.wait(), 10)
        erasing, release_erase = a.store.hold("erase_thread")
        delete = asyncio.ensure_future(a.manager.delete_thread("t1", by="alice"))
        await eventually(lambda: a.manager.task("t1") is None, 10, message="the run never stopped")
        for _ in range(20):  # every step the delete could take without the line stored
            await asyncio.sleep(0)
        assert not erasing.is_set() and not delete.done()
        release_write.set()
        await asyncio.wait_for(erasing.wait(), 10)
        release_erase.set()
        removed = await asyncio.wait_for(delete, 10)
        assert removed["logs"] >= 1 and removed["runs"] == 1
        assert await a.store.get_logs("t1") == [] and await a.store.get_run("t1") is None
        assert await a.sink.flushed(5) and await a.store.get_logs("t1") == []
        assert await a.manager.checkpointer.aget_tuple(thread_config("t1")) is None


async def test_a_delete_on_one_node_of_a_thread_running_on_another(
    tmp_path: Path, redis_server: Any, postgres_server: Any
) -> None:
    """Two REST nodes over Redis and Postgres: the delete on B cancels the run A executes (over the
    bus), waits for A to hand the thread back, then erases it; nothing of it stays on either."""
    shared = {"pubsub.url": redis_server.url, "store.url": postgres_server.create_database()}
    async with running_beacon(make_config(tmp_path / "a", **shared)) as a:
        async with running_beacon(make_config(tmp_path / "b", **shared)) as b:
            thread_id = await a.start("bench", {"lines": 100_000, "rate": 100})
            runs_a = a.running.services.runs
            assert runs_a is not None
            await eventually(lambda: runs_a.task(thread_id) is not None, 10)
            await eventually(
                lambda: a.running.services.store.last_seq(thread_id), 10, message="the run never logged"
            )
            status, body = await b.call("DELETE", f"/admin/runs/{thread_id}")
            assert status == 200, body
            assert runs_a.task(thread_id) is None  # A stopped it before B erased
            assert a.running.services.sink is not None and await a.running.services.sink.flushed(5)
            assert await rows_left(a, thread_id) == NOTHING and await rows_left(b, thread_id) == NOTHING
            [entry] = await b.running.services.store.audit_log(thread_id=thread_id)
            assert entry.detail["status"] == "running" and entry.detail["removed"]["logs"] >= 1
