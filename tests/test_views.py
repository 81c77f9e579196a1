"""The REST views: run records as JSON, exactly the fields /openapi.json documents."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

from conftest import Beacon
from langgraph.types import Interrupt, StateSnapshot

from app.rest import views
from app.runs.manager import Snapshot
from app.store import Approval, Decision, Run

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Opaque:
    def __str__(self) -> str:
        return "opaque!"


def state(**overrides: Any) -> StateSnapshot:
    fields: dict[str, Any] = {
        "values": {"when": AT, "thing": Opaque(), "n": 1},
        "next": ("ask",),
        "config": {"configurable": {"thread_id": "t1", "checkpoint_id": "c2"}},
        "metadata": {"step": 2, "at": AT},
        "created_at": "2026-01-02T03:04:05+00:00",
        "parent_config": {"configurable": {"thread_id": "t1", "checkpoint_id": "c1"}},
        "tasks": (),
        "interrupts": (Interrupt(value={"asked_at": AT}, id="i1"), Interrupt(value="plain", id="i2")),
    }
    return StateSnapshot(**{**fields, **overrides})


def run(status: str = "waiting_approval") -> Run:
    return Run("t1", "review", status, {}, "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00")


def test_status_makes_state_json_safe_and_pending_carries_stored_deadlines() -> None:
    timed = Approval("t1", "i1", "review", None, "2026-01-02T00:00:00+00:00", 1_767_323_045.0, "reject")
    decision = Decision("t1", "i0", "reject", "more", "2026-01-01T12:00:00+00:00", "alice", {"k": [1]})
    body = views.status(Snapshot(run(), state(), [decision], {"i1": timed}))
    assert body == {
        "thread_id": "t1",
        "run_id": None,
        "workflow": "review",
        "status": "waiting_approval",
        "next": ["ask"],
        "pending": [
            {
                "interrupt_id": "i1",
                "value": {"asked_at": AT.isoformat()},
                "deadline": timed.deadline_at,
                "default_action": "reject",
            },
            {"interrupt_id": "i2", "value": "plain", "deadline": None, "default_action": None},  # no stored row
        ],
        "values": {"when": AT.isoformat(), "thing": "opaque!", "n": 1},
        "checkpoint_id": "c2",
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-02T00:00:00+00:00",
        "error": None,
        "decisions": [
            {
                "interrupt_id": "i0",
                "decision": "reject",
                "comment": "more",
                "decided_at": "2026-01-01T12:00:00+00:00",
                "decided_by": "alice",
                "data": {"k": [1]},
            }
        ],
    }


def test_status_without_deadline_or_state() -> None:
    untimed = Approval("t1", "i1", "review", None, "2026-01-02T00:00:00+00:00", None, "approve")
    waiting = views.status(Snapshot(run(), state(), [], {"i1": untimed}))
    assert waiting["pending"][0]["deadline"] is None and waiting["pending"][0]["default_action"] is None
    # Interrupts of a run that no longer waits are not pending.
    assert views.status(Snapshot(run("running"), state(), [], {}))["pending"] == []
    # A workflow this node does not have: no LangGraph state to show.
    bare = views.status(Snapshot(run("completed"), None, [], {}))
    assert (bare["next"], bare["pending"], bare["values"], bare["checkpoint_id"]) == ([], [], {}, None)


def test_history_lists_checkpoints_with_their_parents() -> None:
    first = state(config={"configurable": {"checkpoint_id": "c1"}}, parent_config=None, next=(), interrupts=())
    body = views.history("t1", [state(), first])
    assert body["thread_id"] == "t1"
    assert [(c["checkpoint_id"], c["parent_checkpoint_id"]) for c in body["checkpoints"]] == [
        ("c2", "c1"),
        ("c1", None),
    ]
    assert body["checkpoints"][0] == {
        "checkpoint_id": "c2",
        "parent_checkpoint_id": "c1",
        "created_at": "2026-01-02T03:04:05+00:00",
        "metadata": {"step": 2, "at": AT.isoformat()},
        "next": ["ask"],
        "values": {"when": AT.isoformat(), "thing": "opaque!", "n": 1},
    }


def conforms(doc: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$") -> None:
    """`value` has exactly the fields `schema` documents (every view fills every field), of its types."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if value is None:
        assert schema.get("nullable"), f"{where} is null but not nullable"
        return
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        assert isinstance(value, dict) and set(value) == set(schema["properties"]), f"{where}: {sorted(value)}"
        for name, sub in schema["properties"].items():
            conforms(doc, sub, value[name], f"{where}.{name}")
    elif kind == "array":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            conforms(doc, schema["items"], item, f"{where}[{i}]")
    elif kind is not None:
        types: dict[str, type | tuple[type, ...]] = {
            "object": dict,
            "string": str,
            "integer": int,
            "number": (int, float),
            "boolean": bool,
        }
        assert isinstance(value, types[kind]), f"{where} is not {kind}: {value!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"


async def test_run_views_match_the_openapi_document(beacon: Beacon) -> None:
    _, doc = await beacon.call("GET", "/openapi.json")

    def response(path: str, method: str = "get") -> dict[str, Any]:
        schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        return dict(schema)

    thread_id = await beacon.start("deploy", {"step_delay": 0, "approval_deadline": 3600, "default_action": "approve"})
    waiting = await beacon.wait_status(thread_id, "waiting_approval")
    assert waiting["pending"][0]["deadline"] and waiting["pending"][0]["default_action"] == "approve"
    conforms(doc, response("/status/{thread_id}"), waiting)
    _, detail = await beacon.call("GET", f"/admin/runs/{thread_id}")
    assert detail == waiting
    conforms(doc, response("/admin/runs/{thread_id}"), detail)

    status, approved = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve", "data": {"n": 1}})
    assert status == 200, approved
    conforms(doc, response("/approve/{thread_id}", "post"), approved)
    done = await beacon.wait_status(thread_id, "completed")
    assert done["decisions"] == [approved["decision"]]
    conforms(doc, response("/status/{thread_id}"), done)

    _, history = await beacon.call("GET", f"/admin/runs/{thread_id}/history")
    assert history["checkpoints"][0]["checkpoint_id"] == done["checkpoint_id"]
    conforms(doc, response("/admin/runs/{thread_id}/history"), history)


async def test_admin_stats_names_the_node_as_leases_do(beacon: Beacon) -> None:
    status, stats = await beacon.call("GET", "/admin/stats")
    assert status == 200, stats
    services = beacon.running.services
    assert services.runs is not None
    assert stats["node"] == services.node == services.runs.node == f"{socket.gethostname()}:{beacon.running.rest_port}"
