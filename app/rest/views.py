"""Views: the run manager's records as the JSON the REST API answers with, through its schemas."""

from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from app.rest import schemas
from app.runs.manager import Snapshot
from app.store import Approval, Decision

STATUS = schemas.Status()
HISTORY = schemas.History()
APPROVED = schemas.ApproveResponse()


def status(snap: Snapshot) -> dict[str, Any]:
    """A run with its state, what it waits for and the decisions taken on it."""
    run, state = snap.run, snap.state
    return STATUS.dump(
        {
            "thread_id": run.thread_id,
            "run_id": run.run_id,
            "workflow": run.workflow,
            "status": run.status,
            "next": state.next if state else [],
            "pending": _pending(snap),
            "values": state.values if state else {},
            "checkpoint_id": state.config["configurable"].get("checkpoint_id") if state else None,
            "created_at": run.created_at,
            "updated_at": run.updated_at,
            "error": run.error,
            "decisions": snap.decisions,
        }
    )


def history(thread_id: str, checkpoints: list[StateSnapshot]) -> dict[str, Any]:
    """A thread's checkpoints, as the manager lists them (newest first)."""
    return HISTORY.dump({"thread_id": thread_id, "checkpoints": [_checkpoint(c) for c in checkpoints]})


def approved(thread_id: str, decision: Decision) -> dict[str, Any]:
    """The answer to a decision: the run resumes."""
    return APPROVED.dump({"thread_id": thread_id, "status": "running", "decision": decision})


def _pending(snap: Snapshot) -> list[dict[str, Any]]:
    """What a waiting run asks, each with its stored deadline and default action."""
    if snap.state is None or snap.run.status != "waiting_approval":
        return []
    return [
        {"interrupt_id": i.id, "value": i.value, **_deadline(snap.approvals.get(i.id))} for i in snap.state.interrupts
    ]


def _deadline(approval: Approval | None) -> dict[str, Any]:
    if approval is None or approval.deadline is None:
        return {"deadline": None, "default_action": None}
    return {"deadline": approval.deadline_at, "default_action": approval.default_action}


def _checkpoint(snap: StateSnapshot) -> dict[str, Any]:
    return {
        "checkpoint_id": snap.config["configurable"]["checkpoint_id"],
        "parent_checkpoint_id": (snap.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
        "created_at": snap.created_at,
        "metadata": snap.metadata,
        "next": snap.next,
        "values": snap.values,
    }
