"""Opaque keyset cursors for run listings: (created_at, thread_id) of the last row."""

from __future__ import annotations

import base64
import json

from app.store.base import Run


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
