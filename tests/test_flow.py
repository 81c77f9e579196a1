"""The whole human-in-the-loop flow, seen by real python-socketio clients on both namespaces."""

from __future__ import annotations

from conftest import Beacon, ClientFactory, eventually

LOG_FIELDS = {"text", "thread_id", "level", "timestamp", "seq"}


def statuses(events: list[dict], thread_id: str) -> list[str]:
    return [e["data"]["status"] for e in events if e["type"] == "run_status" and e["data"]["thread_id"] == thread_id]


async def test_start_wait_approve_complete(stack_beacon: Beacon, connect: ClientFactory) -> None:
    beacon = stack_beacon
    client = await connect(beacon.realtime)
    thread_id = await beacon.start("review", {"topic": "Q3 report", "delay": 0.05})

    waiting = await beacon.wait_status(thread_id, "waiting_approval")
    [pending] = waiting["pending"]
    assert pending["value"]["question"] == "Publish this draft?"
    assert "Q3 report" in pending["value"]["draft"]
    assert waiting["next"] == ["ask_reviewer"]

    await eventually(lambda: "waiting_approval" in statuses(client.admin, thread_id))
    lines = [line for line in client.logs if line["thread_id"] == thread_id]
    assert lines and all(set(line) == LOG_FIELDS for line in lines)
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert lines[0]["text"] == "Drafting revision 1 about 'Q3 report'"
    assert lines[0]["level"] == "INFO" and lines[0]["timestamp"].startswith("20")

    status, body = await beacon.call(
        "POST",
        f"/approve/{thread_id}",
        {"decision": "approve", "comment": "ship it", "interrupt_id": pending["interrupt_id"]},
    )
    assert status == 200, body
    assert body["decision"]["decision"] == "approve" and body["decision"]["comment"] == "ship it"
    done = await beacon.wait_status(thread_id, "completed")
    assert done["values"]["published"] is True
    assert done["decisions"][0]["comment"] == "ship it"

    await eventually(lambda: "completed" in statuses(client.admin, thread_id))
    assert statuses(client.admin, thread_id) == ["running", "waiting_approval", "running", "completed"]
    run_events = [e["data"] for e in client.admin if e["type"] == "run_event" and e["data"]["thread_id"] == thread_id]
    assert run_events and all(set(e) == {"thread_id", "checkpoint_id", "metadata"} for e in run_events)
    assert all("step" in e["metadata"] for e in run_events)
    # Every run_event names a checkpoint the checkpointer holds (R8).
    status, history = await beacon.call("GET", f"/admin/runs/{thread_id}/history?limit=100")
    known = {c["checkpoint_id"] for c in history["checkpoints"]}
    assert {e["checkpoint_id"] for e in run_events} <= known
    await eventually(lambda: any(line["text"] == "run completed" for line in client.logs))
    seqs = client.seqs(thread_id)
    assert seqs == list(range(1, len(seqs) + 1))


async def test_reject_revises_and_asks_again(beacon: Beacon) -> None:
    thread_id = await beacon.start("review", {"topic": "pricing", "delay": 0})
    first = (await beacon.wait_status(thread_id, "waiting_approval"))["pending"][0]
    status, _ = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "reject", "comment": "add numbers"})
    assert status == 200

    async def asks_again() -> dict | None:
        body = await beacon.status(thread_id)
        pending = body["pending"]
        return (
            body
            if body["status"] == "waiting_approval" and pending[0]["interrupt_id"] != first["interrupt_id"]
            else None
        )

    again = await eventually(asks_again, 10)
    assert again["values"]["revision"] == 2
    assert "add numbers" in again["pending"][0]["value"]["draft"]
    status, _ = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    assert status == 200
    done = await beacon.wait_status(thread_id, "completed")
    assert [d["decision"] for d in done["decisions"]] == ["reject", "approve"]


async def test_cancel_running_and_waiting(stack_beacon: Beacon, connect: ClientFactory) -> None:
    beacon = stack_beacon
    client = await connect(beacon.realtime, ("/admin",))
    slow = await beacon.start("deploy", {"step_delay": 0.2})
    await beacon.wait_status(slow, "waiting_approval")
    await beacon.call("POST", f"/approve/{slow}", {"decision": "approve"})
    await eventually(lambda: beacon.status(slow), 5)
    status, body = await beacon.call("POST", f"/admin/runs/{slow}/cancel")
    assert status == 200 and body["status"] == "cancelled", body
    await eventually(lambda: "cancelled" in statuses(client.admin, slow))
    status, body = await beacon.call("POST", f"/admin/runs/{slow}/cancel")
    assert status == 409 and body["error"] == "conflict"
    final = await beacon.status(slow)
    assert final["status"] == "cancelled"
    assert "verify" not in final["values"].get("done", [])

    waiting = await beacon.start("review", {"topic": "x", "delay": 0})
    await beacon.wait_status(waiting, "waiting_approval")
    status, body = await beacon.call("POST", f"/admin/runs/{waiting}/cancel")
    assert status == 200 and body["status"] == "cancelled"
    status, body = await beacon.call("POST", f"/approve/{waiting}", {"decision": "approve"})
    assert status == 409


async def test_failed_run_records_the_error(beacon: Beacon) -> None:
    thread_id = await beacon.start("deploy", {"step_delay": 0, "fail_at": "test"})
    await beacon.wait_status(thread_id, "waiting_approval")
    await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    failed = await beacon.wait_status(thread_id, "failed")
    assert failed["error"] == "RuntimeError: step test failed"
    status, logs = await beacon.call("GET", f"/admin/runs/{thread_id}/logs")
    assert any(line["level"] == "ERROR" and "step test failed" in line["text"] for line in logs["lines"])


async def test_each_checkpoint_is_announced_once(beacon: Beacon, connect: ClientFactory) -> None:
    client = await connect(beacon.realtime, ("/admin",))
    thread_id = await beacon.start("review", {"topic": "once", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    await beacon.wait_status(thread_id, "completed")
    await eventually(lambda: "completed" in statuses(client.admin, thread_id))
    ids = [e["data"]["checkpoint_id"] for e in client.admin if e["type"] == "run_event"]
    _, history = await beacon.call("GET", f"/admin/runs/{thread_id}/history?limit=100")
    assert ids == [c["checkpoint_id"] for c in reversed(history["checkpoints"])]
