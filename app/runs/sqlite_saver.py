"""LangGraph's SQLite saver with one thread hop per operation, and group commits.

AsyncSqliteSaver (langgraph-checkpoint-sqlite 3.1) awaits aiosqlite once per cursor, execute,
fetch, commit and close: six hops to the connection's thread for a state read, three or four
per write. This runs the sync SqliteSaver's own methods (the same SQL and tables) whole on one
dedicated thread instead. The writes that arrive together (concurrent runs' checkpoints) commit
together: one fsync for all of them (synchronous=FULL, as before), and none is acknowledged
before the commit that holds it. The latest checkpoint of a thread is read on the loop instead,
from a read-only connection (app.store.sqlite_reads): committed checkpoints only.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver

from app.store.dbthread import DbThread
from app.store.sqlite_reads import Busy, LoopReads

T = TypeVar("T")


class ThreadedSqliteSaver(SqliteSaver):
    """Every operation on the saver's one thread: its connection is only ever used there."""

    def __init__(self, conn: sqlite3.Connection, thread: DbThread) -> None:
        super().__init__(conn)
        self._thread = thread
        self._reads: LoopReads | None = None  # set while open: the loop's reader, and the saver over it
        self._reader: SqliteSaver | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, path: str) -> AsyncIterator[ThreadedSqliteSaver]:
        async with DbThread.running("checkpoints") as thread:
            conn = await thread.call(lambda: sqlite3.connect(path, check_same_thread=False))
            saver = cls(conn, thread)
            thread.after_batch = saver._commit
            try:
                await saver._call(saver.setup)
                with LoopReads.open(path, rows=False) as reads:
                    saver._reads, saver._reader = reads, saver._reading(reads.conn)
                    yield saver
            finally:
                saver._reads = saver._reader = None
                thread.after_batch = None
                await thread.call(conn.close)

    def _reading(self, conn: sqlite3.Connection) -> SqliteSaver:
        """The sync saver's reads over the loop's connection (the tables exist: set up already)."""
        reader = SqliteSaver(conn, serde=self.serde)
        # What setup() found (a private flag of langgraph-checkpoint-sqlite 3.1, read where it is kept).
        reader.is_setup, reader._has_task_path = True, self._has_task_path
        return reader

    @contextlib.contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        """As SqliteSaver's, without its commit: the thread commits after each batch of calls."""
        with self.lock:
            self.setup()
            cur = self.conn.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def _commit(self) -> None:
        if self.conn.in_transaction:  # what the batch wrote (Python's sqlite3 began it implicitly)
            self.conn.commit()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._thread.call(fn, *args)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        reads, reader = self._reads, self._reader
        if reads is not None and reader is not None:
            with contextlib.suppress(Busy):
                return reads.read(lambda _conn: reader.get_tuple(config))
        return await self._call(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        def page() -> list[CheckpointTuple]:
            return list(self.list(config, filter=filter, before=before, limit=limit))

        for item in await self._call(page):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._call(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self._call(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._call(self.delete_thread, thread_id)

    async def aget_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Mapping[str, Any]:
        return await self._call(lambda: self.get_delta_channel_history(config=config, channels=channels))

