"""Approval deadlines: the default action applies once, as a decision by "deadline", across restarts and nodes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Beacon, ClientFactory, eventually, make_config, running_beacon
from test_flow import statuses

STEPS = ["build", "test", "migrate", "rollout", "verify"]


def deploy_input(seconds: float, action: str) -> dict[str, Any]:
    return {"step_delay": 0, "lines_per_step": 1, "approval_deadline": seconds, "default_action": action}


async def queued(beacon: Beacon, thread_id: str) -> dict[str, Any]:
    """The run's entry in /admin/approvals (it must be there)."""
    status, body = await beacon.call("GET", "/admin/approvals?limit=500")
    assert status == 200, body
    [item] = [a for a in body["approvals"] if a["thread_id"] == thread_id]
    return dict(item)


async def until_past(deadline_iso: str) -> None:
    """Wait (by polling the wall clock) until a deadline has passed."""
    deadline = datetime.fromisoformat(deadline_iso).timestamp()
    await eventually(lambda: time.time() > deadline + 0.2, 120, 0.1)


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_deadline_applies_the_default_action(beacon: Beacon, connect: ClientFactory, action: str) -> None:
    client = await connect(beacon.realtime, ("/admin",))
    thread_id = await beacon.start("deploy", deploy_input(1, action))
    await beacon.wait_status(thread_id, "waiting_approval")
    done = await beacon.wait_status(thread_id, "completed", timeout=20)

    [decision] = done["decisions"]
    assert (decision["decision"], decision["decided_by"]) == (action, "deadline")
    assert done["values"]["approved"] is (action == "approve")
    assert done["values"].get("done", []) == (STEPS if action == "approve" else [])
    await eventually(lambda: "completed" in statuses(client.admin, thread_id))
    assert statuses(client.admin, thread_id) == ["running", "waiting_approval", "running", "completed"]
    [event] = [e["data"] for e in client.admin if e["type"] == "approval" and e["data"]["thread_id"] == thread_id]
    assert (event["decision"], event["decided_by"], event["interrupt_id"]) == (
        action,
        "deadline",
        decision["interrupt_id"],
    )
    _, logs = await beacon.call("GET", f"/admin/runs/{thread_id}/logs")
    assert any(f"deadline passed: {action} applied" in line["text"] for line in logs["lines"])
    status, body = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "reject"})
    assert status == 409 and body["error"] == "not_waiting"  # too late for a human


async def test_status_and_the_waiting_event_show_the_deadline(beacon: Beacon, connect: ClientFactory) -> None:
    client = await connect(beacon.realtime, ("/admin",))
    thread_id = await beacon.start("deploy", deploy_input(600, "reject"))
    waiting = await beacon.wait_status(thread_id, "waiting_approval")
    [pending] = waiting["pending"]
    item = await queued(beacon, thread_id)
    assert (pending["deadline"], pending["default_action"]) == (item["deadline"], "reject")
    assert 590 < datetime.fromisoformat(pending["deadline"]).timestamp() - time.time() <= 600

    def waiting_events() -> list[dict[str, Any]]:
        events = [e["data"] for e in client.admin if e["type"] == "run_status" and e["data"]["thread_id"] == thread_id]
        return [e for e in events if e["status"] == "waiting_approval"]

    [event] = await eventually(waiting_events)
    assert event["pending"] == [pending]
    other = await beacon.start("review", {"topic": "no deadline", "delay": 0})
    [none] = (await beacon.wait_status(other, "waiting_approval"))["pending"]
    assert (none["deadline"], none["default_action"]) == (None, None)


async def test_a_human_before_the_deadline_wins_and_the_deadline_never_applies(stack_beacon: Beacon) -> None:
    beacon = stack_beacon
    thread_id = await beacon.start("deploy", deploy_input(2, "reject"))
    await beacon.wait_status(thread_id, "waiting_approval")
    item = await queued(beacon, thread_id)
    status, body = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve", "comment": "go"})
    assert status == 200, body
    done = await beacon.wait_status(thread_id, "completed", timeout=20)
    await until_past(item["deadline"])
    _, body = await beacon.call("GET", "/admin/approvals")
    assert body["total"] == 0
    done = await beacon.status(thread_id)
    assert [(d["decision"], d["decided_by"]) for d in done["decisions"]] == [("approve", "test-admin")]
    assert done["values"]["done"] == STEPS


async def test_deadline_racing_humans_exactly_one_applies(stack_beacon: Beacon) -> None:
    beacon = stack_beacon
    for _ in range(3):
        thread_id = await beacon.start("deploy", deploy_input(1, "reject"))
        await beacon.wait_status(thread_id, "waiting_approval")
        deadline = datetime.fromisoformat((await queued(beacon, thread_id))["deadline"]).timestamp()
        # At the deadline, humans approve over and over until one decision is final.
        await eventually(lambda d=deadline: time.time() >= d, 30, 0.002)
        answers: list[int] = []
        for _ in range(200):
            batch = await asyncio.gather(
                *(beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"}) for _ in range(3))
            )
            answers += [status for status, _ in batch]
            if 200 in answers or (await beacon.status(thread_id))["status"] != "waiting_approval":
                break
        assert set(answers) <= {200, 409}, answers
        done = await beacon.wait_status(thread_id, "completed", timeout=20)
        [decision] = done["decisions"]  # exactly one decision applied
        if decision["decided_by"] == "deadline":
            assert 200 not in answers and decision["decision"] == "reject"
            assert done["values"]["approved"] is False
        else:
            assert answers.count(200) == 1 and decision["decision"] == "approve"
            assert done["values"]["done"] == STEPS


async def test_deadline_survives_a_restart_and_fires_promptly_after(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    async with running_beacon(cfg) as first:
        thread_id = await first.start("deploy", deploy_input(2, "approve"))
        waiting = await first.wait_status(thread_id, "waiting_approval")
        item = await queued(first, thread_id)
    await until_past(item["deadline"])  # it passes while no Beacon runs

    async with running_beacon(cfg) as second:
        done = await second.wait_status(thread_id, "completed", timeout=20)
        [decision] = done["decisions"]
        assert (decision["decision"], decision["decided_by"]) == ("approve", "deadline")
        assert decision["interrupt_id"] == waiting["pending"][0]["interrupt_id"]
        assert done["values"]["done"] == STEPS
        _, body = await second.call("GET", "/admin/approvals")
        assert body["total"] == 0

        async def stored() -> list[dict[str, Any]] | None:
            lines = (await second.call("GET", f"/admin/runs/{thread_id}/logs"))[1]["lines"]
            return lines if any(line["text"] == "run completed" for line in lines) else None

        lines = await eventually(stored, 10, 0.1)
        assert sum("deadline passed: approve applied" in line["text"] for line in lines) == 1
        # This process never ran the thread before, yet continued its numbering: no gap, no double.
        assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))


async def test_deadline_fires_once_across_two_rest_nodes(
    tmp_path: Path, redis_server: Any, postgres_server: Any
) -> None:
    shared = {"pubsub.url": redis_server.url, "store.url": postgres_server.create_database()}
    async with contextlib.AsyncExitStack() as stack:
        a = await stack.enter_async_context(running_beacon(make_config(tmp_path / "a", **shared)))
        b = await stack.enter_async_context(running_beacon(make_config(tmp_path / "b", **shared)))
        threads = [await a.start("deploy", deploy_input(1, "approve")) for _ in range(4)]
        for thread_id in threads:
            done = await b.wait_status(thread_id, "completed", timeout=30)
            assert [(d["decision"], d["decided_by"]) for d in done["decisions"]] == [("approve", "deadline")]
            # Each step ran once (`done` accumulates): one resume, not one per node.
            assert done["values"]["done"] == STEPS
            # Each Beacon captures only its own runs' lines, so every line is there once, numbered 1..n.
            _, logs = await b.call("GET", f"/admin/runs/{thread_id}/logs")
            seqs = [line["seq"] for line in logs["lines"]]
            assert seqs == list(range(1, len(seqs) + 1))
            assert sum("deadline passed" in line["text"] for line in logs["lines"]) == 1
            assert sum(line["text"] == f"step {STEPS[0]} started" for line in logs["lines"]) == 1


async def test_runs_waiting_before_the_queue_existed_join_it_on_start(tmp_path: Path) -> None:
    """An upgrade: a run waits in a store without queue rows; the next start gives it its row."""
    cfg = make_config(tmp_path)
    async with running_beacon(cfg) as first:
        thread_id = await first.start("deploy", {"step_delay": 0})
        await first.wait_status(thread_id, "waiting_approval")
        run = await first.status(thread_id)
    with contextlib.closing(sqlite3.connect(tmp_path / "beacon.sqlite")) as db, db:
        assert db.execute("DELETE FROM approvals").rowcount == 1

    async with running_beacon(cfg) as second:

        async def adopted() -> list[dict[str, Any]]:
            return list((await second.call("GET", "/admin/approvals"))[1]["approvals"])

        [item] = await eventually(adopted, 10, 0.1)
        assert item["thread_id"] == thread_id and item["interrupt_id"] == run["pending"][0]["interrupt_id"]
        assert item["waiting_since"] == run["updated_at"]  # when it began to wait, not the restart
        assert item["default_action"] == "reject" and 86000 < item["seconds_left"] <= 86400  # deploy's default
