"""Bus → Socket.IO: each realtime process emits what the bus carries to its own clients."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import orjson
import socketio

from app.metrics import Metrics
from app.names import ADMIN_CHANNEL, LOGS_CHANNEL
from app.pubsub import Bus
from app.realtime.hooks.fanout import Fanout
from app.realtime.namespaces import FIREHOSE
from app.realtime.subscriptions import Subscriptions
from app.store.logtext import log_line_for

logger = logging.getLogger(__name__)


class Bridge:
    def __init__(
        self, sio: socketio.AsyncServer, bus: Bus, subs: Subscriptions, fanout: Fanout, metrics: Metrics
    ) -> None:
        self.metrics = metrics
        self.sio = sio
        self.fanout = fanout
        self.bus = bus
        self.subs = subs
        self.lines = 0
        self.admin_events = 0
        self.lag_ms: float | None = None

    async def run_logs(self) -> None:
        async with self.bus.subscribe(LOGS_CHANNEL) as queue:
            async for message in queue:
                try:
                    # A traceback's internal paths are for operators (REST logs); /logs is open to viewers.
                    lines = [log_line_for(line, full=False) for line in orjson.loads(message.data)]
                    # The whole batch to the firehose at once (one write per client), then to subscribers.
                    await self.fanout.broadcast(lines, FIREHOSE)
                    try:
                        for line in lines:
                            await self.subs.deliver(line)
                    finally:
                        self.fanout.end_batch()
                    # Let the sockets' writers and readers run between bus messages that arrive together.
                    await asyncio.sleep(0)
                    self.lines += len(lines)
                    self.metrics.events.labels("/logs", "log").inc(len(lines))
                    if lines:
                        logged = datetime.fromisoformat(lines[-1]["timestamp"])
                        lag = (datetime.now(UTC) - logged).total_seconds()
                        self.lag_ms = lag * 1000
                        self.metrics.bus_lag.observe(lag)
                except Exception:
                    logger.exception("could not deliver a batch of log lines")

    async def run_admin(self) -> None:
        async with self.bus.subscribe(ADMIN_CHANNEL) as queue:
            async for message in queue:
                try:
                    await self.sio.emit("admin_event", orjson.loads(message.data), namespace="/admin")
                    self.admin_events += 1
                    self.metrics.events.labels("/admin", "admin_event").inc()
                except Exception:
                    logger.exception("could not deliver an admin event")
