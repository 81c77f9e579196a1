"""Capture log records of running workflows: number them, store them in batches, publish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import orjson

from app.background import cancel
from app.names import LOGS_CHANNEL, iso
from app.pubsub.outbox import Outbox
from app.runs.context import RunScope, current_run
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
    """A root-logger handler: records made inside one of this sink's run scopes go to that run's log.

    `emit` only appends to a buffer (it may run in LangGraph's worker threads). One flusher task
    numbers what accumulated, writes it in a single store statement, then hands the batch to the
    outbox, so the store holds every line before any client sees it live. Numbering there, in one
    task, is what keeps `seq` unique: a thread's position is read from the store (where another
    node may have continued it) before its first line is numbered, and forgotten once no scope of
    this sink is open on it and its lines are stored.
    """

    def __init__(self, store: Store, outbox: Outbox, max_line_bytes: int) -> None:
        super().__init__(logging.DEBUG)
        self._store = store
        self._outbox = outbox
        self._max = max_line_bytes
        self._seq: dict[str, int] = {}  # last number given, for threads with an open scope or unstored lines
        self._open: Counter[str] = Counter()  # open scopes per thread
        self._buffer: list[LogLine] = []  # seq 0: not numbered yet
        self._unstored: Counter[str] = Counter()  # lines per thread taken in but not stored yet
        self._progress = asyncio.Event()  # set (and replaced) after every write attempt
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.written = 0
        self.failures = 0
        self.dropped = 0
        self._failing = False

    @contextlib.contextmanager
    def scope(self, thread_id: str) -> Iterator[None]:
        """Log lines made in this block (and in tasks and threads started from it) belong to the run."""
        if not self._open[thread_id]:
            # (Re)entering a thread: continue from the store, where another node may have logged meanwhile.
            self._seq.pop(thread_id, None)
        self._open[thread_id] += 1
        token = current_run.set(RunScope(thread_id, self))
        try:
            yield
        finally:
            current_run.reset(token)
            self._open[thread_id] -= 1
            if not self._open[thread_id]:
                del self._open[thread_id]
                self._wake.set()  # the flusher prunes the thread's counter once its lines are stored

    @property
    def tracked(self) -> int:
        """Threads this sink holds state for (open scopes or numbering); 0 when idle."""
        return len(self._seq.keys() | self._open.keys() | self._unstored.keys())

    def emit(self, record: logging.LogRecord) -> None:
        scope = current_run.get()
        if scope is None or scope.owner is not self:
            return
        if record.name.startswith("app.") and not record.name.startswith("app.workflows"):
            return
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + _formatter.formatException(record.exc_info)
        except Exception:
            self.handleError(record)
            return
        line = LogLine(
            text=truncate(text, self._max),
            thread_id=scope.thread_id,
            level=record.levelname,
            timestamp=iso(record.created),
            seq=0,
        )
        if threading.get_ident() == self._loop_thread:
            self._add(line)
        else:
            self._loop.call_soon_threadsafe(self._add, line)

    def _add(self, line: LogLine) -> None:
        self._buffer.append(line)
        self._unstored[line["thread_id"]] += 1
        self._idle.clear()
        self._wake.set()

    async def _number(self, batch: list[LogLine]) -> None:
        """Give each unnumbered line the next `seq` of its thread."""
        base: dict[str, int] = {}
        # Loop until no thread lacks a position: a scope may open (and reset one) while this awaits.
        while missing := {ln["thread_id"] for ln in batch if not ln["seq"]} - self._seq.keys() - base.keys():
            for thread_id in missing:
                base[thread_id] = await self._store.last_seq(thread_id)
        # From here to the end no await: the numbering is one step for every other task.
        for line in batch:
            if line["seq"]:  # numbered before a failed write: keeps its number
                thread_id = line["thread_id"]
                base[thread_id] = max(base.get(thread_id, 0), line["seq"])
        for line in batch:
            if not line["seq"]:
                thread_id = line["thread_id"]
                seq = max(self._seq.get(thread_id, 0), base.get(thread_id, 0)) + 1
                line["seq"] = self._seq[thread_id] = seq

    async def _flush_once(self) -> None:
        batch, self._buffer = self._buffer, []
        try:
            await self._number(batch)
            await self._store.append_logs(batch)
        except Exception as exc:
            # Keep the lines (in order, ahead of newer ones) and try again: the store is the
            # durable record, and live clients only get what it holds.
            self.failures += 1
            self._buffer[:0] = batch
            if len(self._buffer) > MAX_PENDING:
                self.dropped += len(self._buffer) - MAX_PENDING
                self._settle(self._buffer[: len(self._buffer) - MAX_PENDING])
                del self._buffer[: len(self._buffer) - MAX_PENDING]
            if not self._failing:
                logger.warning("could not store %d log lines, retrying: %s", len(self._buffer), exc)
            self._failing = True
            self._wake_waiters()
            await asyncio.sleep(RETRY_DELAY)
            return
        if self._failing:
            logger.info("log lines are stored again")
            self._failing = False
        self._outbox.put(LOGS_CHANNEL, orjson.dumps(batch).decode())
        self.written += len(batch)
        self._settle(batch)
        self._wake_waiters()

    def _settle(self, lines: list[LogLine]) -> None:
        """`lines` are stored (or given up): they no longer hold their threads."""
        for line in lines:
            thread_id = line["thread_id"]
            self._unstored[thread_id] -= 1
            if not self._unstored[thread_id]:
                del self._unstored[thread_id]

    def _wake_waiters(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    async def stored(self, thread_id: str, timeout: float) -> bool:
        """Wait up to `timeout` s until every line taken in for `thread_id` is stored; False if not.

        A node hands a thread to another only after this: the other continues the numbering from
        the store, so a line of ours still in flight would share its `seq` with theirs.
        """
        deadline = self._loop.time() + timeout
        while self._unstored.get(thread_id):
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def _prune(self) -> None:
        """Forget the numbering of threads no scope holds and no buffered line needs."""
        waiting = {ln["thread_id"] for ln in self._buffer}
        for thread_id in [t for t in self._seq if t not in self._open and t not in waiting]:
            del self._seq[thread_id]

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buffer:
                await self._flush_once()
            self._prune()
            self._idle.set()

    async def wait_flushed(self) -> None:
        await self._idle.wait()

    async def flushed(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for what is buffered to be stored; False if it was not."""
        try:
            await asyncio.wait_for(self.wait_flushed(), timeout)
        except TimeoutError:
            return False
        return True

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
            await self.flushed(timeout=5)
            await cancel(task)
