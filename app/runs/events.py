"""What runs tell the console and the webhooks: run events and status changes, through the outbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel

from app.names import ADMIN_CHANNEL, now_iso
from app.pubsub.outbox import Outbox
from app.store import Approval, Decision


def _default(value: Any) -> Any:
    """LangChain messages and other models as their fields; anything else JSON cannot carry as str()."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def wire(value: Any) -> str:
    """A state value, chunk or interrupt as JSON text (dataclasses such as Interrupt included)."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def to_json(value: Any) -> Any:
    """State values may hold anything: as the JSON `wire` makes of them."""
    return orjson.loads(wire(value))


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def with_deadlines(pending: list[dict[str, Any]], stored: dict[str, Approval]) -> list[dict[str, Any]]:
    """Each pending approval with its stored deadline and default action (or nulls)."""
    out = []
    for item in pending:
        approval = stored.get(item["interrupt_id"])
        if approval is None or approval.deadline is None:
            out.append({**item, "deadline": None, "default_action": None})
        else:
            out.append({**item, "deadline": approval.deadline_at, "default_action": approval.default_action})
    return out


class Events:
    """Publishes `admin_event`s; status changes also go to `on_status` hooks (which must only enqueue)."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self.on_status: list[Callable[[dict[str, Any]], None]] = []

    def publish(self, event: dict[str, Any]) -> None:
        # Through the outbox: a slow or absent bus never delays a run or a request.
        self._outbox.put(ADMIN_CHANNEL, dumps(event))

    def status(self, thread_id: str, workflow: str, status: str, **extra: Any) -> None:
        data = {"thread_id": thread_id, "workflow": workflow, "status": status, "at": now_iso(), **extra}
        self.publish({"type": "run_status", "data": data})
        for hook in self.on_status:
            hook(data)

    def checkpoint(self, thread_id: str, checkpoint_id: str, metadata: Any) -> None:
        data = {"thread_id": thread_id, "checkpoint_id": checkpoint_id, "metadata": to_json(metadata)}
        self.publish({"type": "run_event", "data": data})

    def decision(self, d: Decision) -> None:
        data = {
            "thread_id": d.thread_id,
            "interrupt_id": d.interrupt_id,
            "decision": d.decision,
            "comment": d.comment,
            "decided_at": d.decided_at,
            "decided_by": d.decided_by,
            "data": d.data,
        }
        self.publish({"type": "approval", "data": data})
