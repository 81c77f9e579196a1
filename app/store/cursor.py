"""Opaque keyset cursors for run listings: (created_at, thread_id) of the last row."""

from __future__ import annotations

import base64
import json
from typing import Any

from app.store.base import Approval, Run


def encode_cursor(run: Run) -> str:
    return base64.urlsafe_b64encode(json.dumps([run.created_at, run.thread_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Raise ValueError for anything that is not a cursor a store produced."""
    try:
        created_at, thread_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except Exception:
        raise ValueError("invalid cursor") from None
    if not isinstance(created_at, str) or not isinstance(thread_id, str):
        raise ValueError("invalid cursor")
    return created_at, thread_id


def encode_key(*parts: str) -> str:
    """An opaque cursor for any listing's sort key (approvals: waiting_since, thread_id, interrupt_id)."""
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


def decode_key(cursor: str, size: int) -> tuple[str, ...]:
    """Raise ValueError for anything that is not a key of `size` strings that encode_key produced."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except Exception:
        raise ValueError("invalid cursor") from None
    if not isinstance(parts, list) or len(parts) != size or not all(isinstance(p, str) for p in parts):
        raise ValueError("invalid cursor")
    return tuple(parts)


def approval_cursor(rows: list[Approval], limit: int) -> str | None:
    """The cursor after a page of `limit` approvals, when a further row was fetched."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_key(last.waiting_since, last.thread_id, last.interrupt_id)


def approval_row(a: Approval, value: str) -> tuple[Any, ...]:
    """An approval as the stores' column order, its value already serialized."""
    return (a.thread_id, a.interrupt_id, a.workflow, value, a.waiting_since, a.deadline, a.default_action)
