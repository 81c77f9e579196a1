"""Capture log records of running workflows: assign `seq`, store in batches, publish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson

from app.names import LOGS_CHANNEL
from app.pubsub.outbox import Outbox
from app.runs.context import current_thread
from app.store import LogLine, Store

logger = logging.getLogger(__name__)

MARKER = "… [truncated {} bytes]"
MAX_PENDING = 100_000  # lines held while the store is down; the oldest go first beyond it
RETRY_DELAY = 0.5
_formatter = logging.Formatter()


def truncate(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    marker = MARKER.format(len(raw) - limit)
    return raw[: limit - len(marker.encode()) - 8].decode(errors="ignore") + marker


class LogSink(logging.Handler):
    """A root-logger handler: records made inside a run go to that run's log.

    `emit` only appends to a buffer (it may run in LangGraph's worker threads); one flusher
    task writes whatever accumulated in a single store statement, then hands the batch to the
    outbox, so the store holds every line before any client sees it live.
    """

    def __init__(self, store: Store, outbox: Outbox, max_line_bytes: int) -> None:
        super().__init__(logging.DEBUG)
        self._store = store
        self._outbox = outbox
        self._max = max_line_bytes
        self._seq: dict[str, int] = {}
        self._buffer: list[LogLine] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.written = 0
        self.failures = 0
        self.dropped = 0
        self._failing = False

    def emit(self, record: logging.LogRecord) -> None:
        thread_id = current_thread.get()
        if thread_id is None or (record.name.startswith("app.") and not record.name.startswith("app.workflows")):
            return
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + _formatter.formatException(record.exc_info)
        except Exception:
            self.handleError(record)
            return
        ts = datetime.fromtimestamp(record.created, UTC).isoformat()
        args = (thread_id, record.levelname, truncate(text, self._max), ts)
        if threading.get_ident() == self._loop_thread:
            self._add(*args)
        else:
            self._loop.call_soon_threadsafe(self._add, *args)

    def _add(self, thread_id: str, level: str, text: str, ts: str) -> None:
        seq = self._seq.get(thread_id, 0) + 1
        self._seq[thread_id] = seq
        self._buffer.append(LogLine(text=text, thread_id=thread_id, level=level, timestamp=ts, seq=seq))
        self._idle.clear()
        self._wake.set()

    async def prime(self, thread_id: str) -> None:
        """Continue a thread's numbering from the store (after a restart or on another node)."""
        self._seq[thread_id] = max(self._seq.get(thread_id, 0), await self._store.last_seq(thread_id))

    def forget(self, thread_id: str) -> None:
        self._seq.pop(thread_id, None)

    async def _flush_once(self) -> None:
        batch, self._buffer = self._buffer, []
        try:
            await self._store.append_logs(batch)
        except Exception as exc:
            # Keep the lines (in order, ahead of newer ones) and try again: the store is the
            # durable record, and live clients only get what it holds.
            self.failures += 1
            self._buffer[:0] = batch
            if len(self._buffer) > MAX_PENDING:
                self.dropped += len(self._buffer) - MAX_PENDING
                del self._buffer[: len(self._buffer) - MAX_PENDING]
            if not self._failing:
                logger.warning("could not store %d log lines, retrying: %s", len(self._buffer), exc)
            self._failing = True
            await asyncio.sleep(RETRY_DELAY)
            return
        if self._failing:
            logger.info("log lines are stored again")
            self._failing = False
        self._outbox.put(LOGS_CHANNEL, orjson.dumps(batch).decode())
        self.written += len(batch)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buffer:
                await self._flush_once()
            self._idle.set()

    async def wait_flushed(self) -> None:
        await self._idle.wait()

    @contextlib.asynccontextmanager
    async def installed(self) -> AsyncIterator[LogSink]:
        """Attach to the root logger and run the flusher; on exit flush what is left."""
        root = logging.getLogger()
        previous = root.level
        # Workflow authors' INFO lines must reach the sink even where nothing configured logging.
        if root.getEffectiveLevel() > logging.INFO:
            root.setLevel(logging.INFO)
        root.addHandler(self)
        task = asyncio.create_task(self._run(), name="log-sink")
        try:
            yield self
        finally:
            root.removeHandler(self)
            root.setLevel(previous)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wait_flushed(), timeout=5)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
