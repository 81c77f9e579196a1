"""Bus → Socket.IO: each realtime process emits what the bus carries to its own clients."""

from __future__ import annotations

import asyncio
import logging
import math
from datetime import UTC, datetime

import orjson
import socketio

from app.metrics import Metrics
from app.names import ADMIN_CHANNEL, LOGS_CHANNEL
from app.pubsub import Bus
from app.realtime.hooks.fanout import Fanout
from app.realtime.namespaces import FIREHOSE
from app.realtime.subscriptions import Subscriptions
from app.store import LogLine
from app.store.logtext import log_line_for

logger = logging.getLogger(__name__)

MAX_BATCH = 5000  # lines per batch; more waiting go out in the next one


class Bridge:
    """Bus → Socket.IO. `/logs` lines go out in batches: the first after a quiet spell at once, then at
    most one batch per `batch_interval` with every line that came meanwhile, so a steady trickle of
    lines costs one write per client per interval instead of one per line (a write, and its wake-up
    of the client, is most of a delivery's cost)."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        bus: Bus,
        subs: Subscriptions,
        fanout: Fanout,
        metrics: Metrics,
        batch_interval: float = 0.0,
    ) -> None:
        self.metrics = metrics
        self.sio = sio
        self.fanout = fanout
        self.bus = bus
        self.subs = subs
        self.batch_interval = batch_interval
        self.lines = 0
        self.batches = 0
        self.admin_events = 0
        self.lag_ms: float | None = None

    async def run_logs(self) -> None:
        loop = asyncio.get_running_loop()
        async with self.bus.subscribe(LOGS_CHANNEL) as sub:
            sent = -math.inf  # when the last batch began to go out
            while True:
                first = await sub.get()
                hold = sent + self.batch_interval - loop.time()
                if hold > 0:
                    await self.hold(hold)
                sent = loop.time()
                lines = self._decode(first.data)
                while len(lines) < MAX_BATCH and (message := sub.get_nowait()) is not None:
                    lines += self._decode(message.data)
                try:
                    await self._deliver(lines)
                except Exception:
                    logger.exception("could not deliver a batch of log lines")
                # Let the sockets' writers and readers run between batches.
                await asyncio.sleep(0)

    async def hold(self, seconds: float) -> None:
        """Wait before the next batch (lines that come meanwhile join it)."""
        await asyncio.sleep(seconds)

    @staticmethod
    def _decode(data: str | bytes) -> list[LogLine]:
        try:
            # A traceback's internal paths are for operators (REST logs); /logs is open to viewers.
            return [log_line_for(line, full=False) for line in orjson.loads(data)]
        except Exception:
            logger.exception("could not read a batch of log lines from the bus")
            return []

    async def _deliver(self, lines: list[LogLine]) -> None:
        # The whole batch to the firehose at once (one write per client), then to subscribers.
        await self.fanout.broadcast(lines, FIREHOSE)
        try:
            await self.subs.deliver(*lines)
        finally:
            self.fanout.end_batch()
        self.lines += len(lines)
        self.batches += 1
        self.metrics.events.labels("/logs", "log").inc(len(lines))
        if lines:
            logged = datetime.fromisoformat(lines[-1]["timestamp"])
            lag = (datetime.now(UTC) - logged).total_seconds()
            self.lag_ms = lag * 1000
            self.metrics.bus_lag.observe(lag)

    async def run_admin(self) -> None:
        async with self.bus.subscribe(ADMIN_CHANNEL) as queue:
            async for message in queue:
                try:
                    await self.sio.emit("admin_event", orjson.loads(message.data), namespace="/admin")
                    self.admin_events += 1
                    self.metrics.events.labels("/admin", "admin_event").inc()
                except Exception:
                    logger.exception("could not deliver an admin event")
