"""Beacon's records as the Agent Server API's JSON: threads, runs, states and assistants."""

from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from app.runs.events import to_json
from app.runs.manager import assistant_id
from app.store import Run, ThreadRun
from app.workflows import Workflow

# A thread's status in the seed's words → LangGraph's.
THREAD_STATUS = {
    "idle": "idle",
    "running": "busy",
    "waiting_approval": "interrupted",
    "completed": "idle",
    "cancelled": "idle",
    "failed": "error",
}
STATUSES_OF = {status: [k for k, v in THREAD_STATUS.items() if v == status] for status in set(THREAD_STATUS.values())}


def interrupts(interrupt_list: Any) -> list[dict[str, Any]]:
    return [{"id": i.id, "value": to_json(i.value)} for i in interrupt_list]


def thread(run: Run, state: StateSnapshot | None = None) -> dict[str, Any]:
    tasks = state.tasks if state is not None and run.status == "waiting_approval" else ()
    return {
        "thread_id": run.thread_id,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "metadata": run.metadata,
        "status": THREAD_STATUS.get(run.status, "idle"),
        "values": to_json(state.values) if state is not None else None,
        "interrupts": {t.id: interrupts(t.interrupts) for t in tasks if t.interrupts},
    }


def checkpoint(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    c = config["configurable"]
    return {
        "thread_id": c.get("thread_id"),
        "checkpoint_ns": c.get("checkpoint_ns", ""),
        "checkpoint_id": c.get("checkpoint_id"),
        "checkpoint_map": c.get("checkpoint_map"),
    }


def state(snap: StateSnapshot) -> dict[str, Any]:
    return {
        "values": to_json(snap.values),
        "next": list(snap.next),
        "checkpoint": checkpoint(snap.config),
        "metadata": to_json(snap.metadata or {}),
        "created_at": snap.created_at,
        "parent_checkpoint": checkpoint(snap.parent_config),
        "tasks": [
            {
                "id": t.id,
                "name": t.name,
                "error": str(t.error) if t.error else None,
                "interrupts": interrupts(t.interrupts),
                "checkpoint": None,
                "state": None,
                "result": to_json(t.result) if t.result is not None else None,
            }
            for t in snap.tasks
        ],
        "interrupts": interrupts(snap.interrupts),
    }


def run(r: ThreadRun) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "thread_id": r.thread_id,
        "assistant_id": r.assistant_id,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "status": r.status,
        "metadata": r.metadata,
        "multitask_strategy": r.multitask_strategy,
        "kwargs": r.kwargs,
    }


def assistant(graph_id: str, wf: Workflow, created_at: str) -> dict[str, Any]:
    return {
        "assistant_id": assistant_id(graph_id),
        "graph_id": graph_id,
        "name": graph_id,
        "description": wf.description or None,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "version": 1,
        "created_at": created_at,
        "updated_at": created_at,
    }


def final_values(snap: StateSnapshot) -> dict[str, Any]:
    """What `runs.wait` and `runs.join` answer: the values, and what the thread waits on."""
    values = to_json(snap.values) if isinstance(snap.values, dict) else {"values": to_json(snap.values)}
    if snap.interrupts:
        values["__interrupt__"] = interrupts(snap.interrupts)
    return values
