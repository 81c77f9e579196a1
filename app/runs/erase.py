"""The one way a thread is removed, by an operator or by retention: Beacon's rows, its audit entry
and LangGraph's checkpoints (through the checkpointer's own delete), all or nothing where the store
allows it."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from app.names import now_iso
from app.runs.checkpoints import delete_checkpoints
from app.store import AuditEntry, Store


async def erase(
    store: Store,
    checkpointer: BaseCheckpointSaver[Any],
    thread_id: str,
    *,
    actor: str | None,
    action: str,
    detail: dict[str, Any] | None = None,
    finished_before: str | None = None,
) -> dict[str, int] | None:
    """Remove the thread; the rows removed per table, None if there was none (or, with
    `finished_before`, if it is no longer one retention may prune).

    The checkpoints go inside the store's transaction, after its rows and before its commit. On
    Postgres they are in that transaction. On SQLite (another file) they commit just before it: if
    the checkpointer fails nothing is removed; if the store's commit fails after it, the thread is
    still listed (without state) and can be deleted again. Either way checkpoints are never left
    behind a thread that is gone, and a thread retention picked that started a new run meanwhile
    keeps them.
    """

    async def checkpoints(conn: Any) -> None:
        await delete_checkpoints(checkpointer, thread_id, conn)

    audit = AuditEntry(now_iso(), actor, action, thread_id, detail or {})
    return await store.erase_thread(thread_id, audit=audit, finished_before=finished_before, then=checkpoints)
