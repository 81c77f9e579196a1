"""The check the store's pool runs on every connection it hands out, without a round trip.

psycopg_pool's own `check_connection` sends an empty query each time: 51 round trips in a flow of
the flow benchmark (Agent API), 8.5% of Beacon's profile there. A connection at rest in the pool
has nothing to read, so one that has holds the server's goodbye (the FATAL of a shutdown or of
`pg_terminate_backend`) or its end of file (a killed server): it is dropped and the pool hands out
another. A server that stops answering without closing its sockets (frozen, cut off) passes here
as it passed the empty query only after the call's deadline: the call's own timeout answers 503.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

READABLE = select.POLLIN | select.POLLPRI  # POLLHUP and POLLERR are reported whatever is asked


async def check_at_rest(conn: psycopg.AsyncConnection[Any]) -> None:
    """Raise if the connection is closed, inside a transaction, or has bytes waiting from the server."""
    if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
        await conn.close()
        raise psycopg.OperationalError("the connection is not at rest")
    poller = select.poll()  # not select.select: file descriptors above 1023 are common on a busy node
    poller.register(conn.fileno(), READABLE)
    if poller.poll(0):
        await conn.close()  # a connection still open would go back to the pool, unread
        raise psycopg.OperationalError("the server closed the connection")
