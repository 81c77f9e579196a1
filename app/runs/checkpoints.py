"""LangGraph's own checkpoint saver for the store's engine, set up once per database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from app.store.base import CHECKPOINTS_LOCK
from app.store.urls import private_file, sqlite_path

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def open_checkpointer(url: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """LangGraph's own saver for the store's engine; SQLite gets a file beside the store's."""
    scheme = url.split("://", 1)[0]
    if scheme == "sqlite":
        from app.runs.sqlite_saver import ThreadedSqliteSaver

        path = private_file(sqlite_path(url).with_suffix(".checkpoints.sqlite"))
        async with ThreadedSqliteSaver.open(str(path)) as saver:  # set up on open
            yield saver
    else:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # type: ignore[import-not-found,unused-ignore]

        from app.runs.postgres_saver import InPlacePostgresSaver, usable

        if why := usable():
            logger.info("checkpoints: the stock Postgres saver (%s)", why)
        kind = AsyncPostgresSaver if why else InPlacePostgresSaver
        async with kind.from_conn_string(url) as saver:
            async with schema_lock(url):
                await saver.setup()
            yield saver


@contextlib.asynccontextmanager
async def schema_lock(url: str, timeout: float = 120.0) -> AsyncIterator[None]:
    """Serialize LangGraph's migrations when several REST nodes start on a new database.

    A try-lock in a loop, not pg_advisory_lock: the migrations build indexes CONCURRENTLY,
    which wait for other sessions' open transactions, a blocked lock call among them.
    """
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        deadline = asyncio.get_running_loop().time() + timeout
        take = "SELECT pg_try_advisory_lock(%s)"
        while not (await (await conn.execute(take, (CHECKPOINTS_LOCK,))).fetchone() or [0])[0]:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("another node holds the schema lock")
            await asyncio.sleep(0.1)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (CHECKPOINTS_LOCK,))


async def delete_checkpoints(saver: BaseCheckpointSaver[Any], thread_id: str, conn: Any = None) -> None:
    """The saver's own delete of a thread. On Postgres, given the store's connection inside its
    transaction, on that connection: the checkpoints (in the same database) go in the same
    transaction as Beacon's rows. SQLite keeps them in another file, so they commit on their own."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # type: ignore[import-not-found,unused-ignore]

    if isinstance(saver, AsyncPostgresSaver) and conn is not None:
        await AsyncPostgresSaver(conn, serde=saver.serde).adelete_thread(thread_id)
    else:
        await saver.adelete_thread(thread_id)
