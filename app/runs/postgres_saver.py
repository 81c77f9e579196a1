"""LangGraph's async Postgres saver, decoding and encoding in place instead of on a worker thread.

AsyncPostgresSaver (langgraph-checkpoint-postgres 3.2.0) hands the decoding of a read's pending
writes, and the encoding of `aput_writes`' values, to the loop's default executor
(`asyncio.to_thread`) on every call. For the few small msgpack values of a step that hop costs
more than the work: two GIL hand-overs and a wake-up of the loop. A read of the latest checkpoint
took 0.46 ms of CPU that way and takes 0.25–0.28 ms in place (10 concurrent readers, a local
server). These two methods do the same work with the saver's own helpers, on the loop; the SQL,
the tables and everything else stay the saver's. `open_checkpointer` uses it only with the
version it was written against, and the stock saver with any other.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import WRITES_IDX_MAP, Checkpoint, CheckpointTuple
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # type: ignore[import-not-found,unused-ignore]
from psycopg.rows import DictRow

logger = logging.getLogger(__name__)

WRITTEN_AGAINST = "3.2.0"  # langgraph-checkpoint-postgres: _load_checkpoint_tuple and aput_writes as in it


def usable() -> str | None:
    """Why the in-place saver is not used here (another version of the library), or None."""
    found = version("langgraph-checkpoint-postgres")
    return None if found == WRITTEN_AGAINST else f"langgraph-checkpoint-postgres {found}, not {WRITTEN_AGAINST}"


class InPlacePostgresSaver(AsyncPostgresSaver):  # type: ignore[misc,unused-ignore]
    async def _load_checkpoint_tuple(self, value: DictRow) -> CheckpointTuple:
        saved = value["checkpoint"]
        channel_values = {**(saved.get("channel_values") or {}), **self._load_blobs(value["channel_values"])}

        def config(checkpoint_id: str) -> RunnableConfig:
            ids = {"thread_id": value["thread_id"], "checkpoint_ns": value["checkpoint_ns"]}
            return {"configurable": {**ids, "checkpoint_id": checkpoint_id}}

        parent = value["parent_checkpoint_id"]
        return CheckpointTuple(
            config(value["checkpoint_id"]),
            cast(Checkpoint, {**saved, "channel_values": channel_values}),
            value["metadata"],
            config(parent) if parent else None,
            self._load_writes(value["pending_writes"]),
        )

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        query = (
            self.UPSERT_CHECKPOINT_WRITES_SQL
            if all(w[0] in WRITES_IDX_MAP for w in writes)
            else self.INSERT_CHECKPOINT_WRITES_SQL
        )
        configurable = config["configurable"]
        params = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        async with self._cursor(pipeline=True) as cur:
            await cur.executemany(query, params)
