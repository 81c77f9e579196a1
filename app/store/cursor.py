"""Keyset pagination, written once for every listing of both stores.

A cursor is the opaque sort key of the last row a page showed; the next page asks for the rows
past it. Each store writes its own SQL: it filters with the key `after()` returns, fetches one
row more than `limit`, and `page()` cuts that row off and turns the last one shown into the cursor.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from app.store.base import Approval, Delivery, Run

T = TypeVar("T")


def encode_key(*parts: str) -> str:
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


class Keyset(Generic[T]):
    """The sort key of one listing: the fields (named as their columns) a page is ordered by."""

    def __init__(self, *fields: str) -> None:
        self.fields = fields

    def after(self, cursor: str | None) -> tuple[str, ...] | None:
        """The key a page continues after (None for the first page); ValueError for a foreign cursor."""
        return decode_key(cursor, len(self.fields)) if cursor else None

    def page(self, rows: Sequence[T], limit: int) -> tuple[list[T], str | None]:
        """The rows to show of a query that fetched up to `limit + 1`, and the next page's cursor."""
        if len(rows) <= limit:
            return list(rows), None
        last: Any = rows[limit - 1]
        return list(rows[:limit]), encode_key(*(getattr(last, field) for field in self.fields))


RUNS: Keyset[Run] = Keyset("created_at", "thread_id")  # newest first
APPROVALS: Keyset[Approval] = Keyset("waiting_since", "thread_id", "interrupt_id")  # oldest first
DELIVERIES: Keyset[Delivery] = Keyset("created_at", "id")  # newest first
