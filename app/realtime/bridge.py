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
RATE_WINDOW = 0.25  # seconds over which the line rate that decides batching is averaged


class Bridge:
    """Bus → Socket.IO. `/logs` lines go out in batches when they come fast: while more than two lines
    per `batch_interval` arrive (a decaying average over RATE_WINDOW), a batch goes out at most once
    per interval with every line that came meanwhile; slower lines go at once. So a steady 200
    lines/s costs one write per client per interval instead of one per line (a write, and its
    wake-up of the client, is most of a delivery's cost), while 50 lines/s are not delayed at all."""

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
        self.last_batch = -math.inf  # loop time the last /logs batch began to go out
        self._count = 0.0  # lines seen, decaying by e every RATE_WINDOW
        self._counted = 0.0  # loop time of that count

    async def run_logs(self) -> None:
        loop = asyncio.get_running_loop()
        async with self.bus.subscribe(LOGS_CHANNEL) as sub:
            while True:
                lines = self._decode((await sub.get()).data)
                wait = self.last_batch + self.batch_interval - loop.time()
                if wait > 0 and self.rate() * self.batch_interval > 2:  # lines are coming fast: gather them
                    await self.hold(wait)
                self.last_batch = loop.time()
                while len(lines) < MAX_BATCH and (message := sub.get_nowait()) is not None:
                    lines += self._decode(message.data)
                self._count = self.rate() * RATE_WINDOW + len(lines)
                self._counted = loop.time()
                try:
                    await self._deliver(lines)
                except Exception:
                    logger.exception("could not deliver a batch of log lines")
                # Let the sockets' writers and readers run between batches.
                await asyncio.sleep(0)

    def rate(self) -> float:
        """/logs lines per second lately (a decaying average over RATE_WINDOW)."""
        age = asyncio.get_running_loop().time() - self._counted
        return self._count * math.exp(-age / RATE_WINDOW) / RATE_WINDOW

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

