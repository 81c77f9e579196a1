"""A thread's current LangGraph state, reused while its checkpoint and pending writes are unchanged.

`aget_state` reads the checkpoint, then rebuilds the snapshot (channels, next tasks,
interrupts): the rebuild is most of its cost. The snapshot is a function of what was read,
so a thread polled while it waits (or between two steps) is rebuilt once per change, not
once per poll. Each read still goes to the checkpointer: any node may have moved it on.

A rebuild starts from the tuple the cache check just read, instead of `aget_state` reading it
again (a second round trip on Postgres). That calls LangGraph's private builder
`_aprepare_state_snapshot` (langgraph 1.2.22, where `aget_state` is the read and this call):
`snapshot_of` keeps it in this one place, and falls back to `aget_state` for a graph whose
config `aget_state` would change first, or a LangGraph without the builder.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.types import StateSnapshot

from app.runs.jobs import thread_config

SIZE = 256  # threads whose last snapshot is kept (bounded: not one entry per thread ever seen)


class States:
    def __init__(self, size: int = SIZE) -> None:
        self._size = size
        self._kept: OrderedDict[str, tuple[str, list[Any], StateSnapshot]] = OrderedDict()

    async def current(self, graph: Any, thread_id: str) -> StateSnapshot:
        """What `graph.aget_state` answers for the thread's latest checkpoint."""
        config = thread_config(thread_id)
        saved = await graph.checkpointer.aget_tuple(config)
        if saved is None:
            self._kept.pop(thread_id, None)
            return await graph.aget_state(config)  # the empty snapshot
        checkpoint_id, writes = saved.checkpoint["id"], saved.pending_writes or []
        kept = self._kept.get(thread_id)
        if kept is not None and kept[0] == checkpoint_id and _same(kept[1], writes):
            self._kept.move_to_end(thread_id)
            return kept[2]
        state = await snapshot_of(graph, config, saved)
        # Kept under what this read saw only if the state is of that checkpoint (it may have moved
        # on in between: a later read then sees other writes or another checkpoint, never these).
        if state.config["configurable"].get("checkpoint_id") == checkpoint_id:
            self._kept[thread_id] = (checkpoint_id, writes, state)
            self._kept.move_to_end(thread_id)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return state

    def forget(self, thread_id: str) -> None:
        self._kept.pop(thread_id, None)


async def snapshot_of(graph: Any, config: RunnableConfig, saved: CheckpointTuple) -> StateSnapshot:
    """What `graph.aget_state(config)` answers when its read returns `saved`."""
    build = getattr(graph, "_aprepare_state_snapshot", None)
    resolve = getattr(graph, "_state_checkpointer", None)
    if (
        build is None
        or resolve is None
        or graph.config  # aget_state merges it into the config first
        or config["configurable"].get("checkpoint_ns")  # a subgraph's own history
        or resolve(config) is not graph.checkpointer  # it reads through another saver (strict msgpack's)
    ):
        return await graph.aget_state(config)
    return await build(config, saved, saver=graph.checkpointer, live=True)  # live: no checkpoint_id named


def _same(a: list[Any], b: list[Any]) -> bool:
    """Equal pending writes; a value that cannot say (an array's ambiguous ==) counts as a change."""
    try:
        return bool(a == b)
    except Exception:
        return False
