"""Each run's server-sent events: numbered by the task that executes the run, stored in batches,
then published, so that a stream read from the store and then live has no gap and no double."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import orjson

from app.background import cancel
from app.names import RUNS_CHANNEL
from app.pubsub import Bus
from app.pubsub.outbox import Outbox
from app.runs.events import wire
from app.store import RunEvent, Store

logger = logging.getLogger(__name__)

RETRY_DELAY = 0.5
MAX_PENDING = 100_000  # events held while the store is down; the oldest go first beyond it
FOLLOW_QUEUE = 10_000  # live events buffered per reader; beyond it the reader refills from the store
HEARTBEAT = 10.0  # seconds without an event before a reader re-reads the store (and a stream sends a comment)
PAGE = 500


class RunStreams:
    """The write side: `emit` only buffers; one flusher task stores what accumulated in one
    statement and hands the batch to the outbox."""

    def __init__(self, store: Store, outbox: Outbox) -> None:
        self._store = store
        self._outbox = outbox
        self._buffer: list[RunEvent] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._failing = False
        self.written = 0

    def emit(self, run_id: str, seq: int, event: str, data: Any) -> None:
        """Serialized now: the state the data comes from moves on."""
        self._buffer.append(RunEvent(run_id=run_id, seq=seq, event=event, data=wire(data)))
        self._idle.clear()
        self._wake.set()

    async def _flush_once(self) -> None:
        batch, self._buffer = self._buffer, []
        try:
            await self._store.append_events(batch)
        except Exception as exc:
            self._buffer[:0] = batch
            del self._buffer[: max(0, len(self._buffer) - MAX_PENDING)]
            if not self._failing:
                logger.warning("could not store %d run events, retrying: %s", len(self._buffer), exc)
            self._failing = True
            await asyncio.sleep(RETRY_DELAY)
            return
        self._failing = False
        self.written += len(batch)
        rows = [[e["run_id"], e["seq"], e["event"], orjson.Fragment(e["data"])] for e in batch]
        self._outbox.put(RUNS_CHANNEL, orjson.dumps(rows).decode())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._buffer:
                await self._flush_once()
            self._idle.set()

    async def flushed(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for what is buffered to be stored; False if it was not."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RunStreams]:
        task = asyncio.create_task(self._run(), name="run-streams")
        try:
            yield self
        finally:
            await self.flushed(timeout=5)
            await cancel(task)


class Followers:
    """The read side on every REST node: live events of the runs its clients stream, from the bus."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._queues: dict[str, set[asyncio.Queue[RunEvent | None]]] = defaultdict(set)

    @contextlib.contextmanager
    def follow(self, run_id: str) -> Iterator[asyncio.Queue[RunEvent | None]]:
        """A queue of the run's live events; None in it means some were dropped (read the store)."""
        queue: asyncio.Queue[RunEvent | None] = asyncio.Queue(FOLLOW_QUEUE)
        self._queues[run_id].add(queue)
        try:
            yield queue
        finally:
            self._queues[run_id].discard(queue)
            if not self._queues[run_id]:
                del self._queues[run_id]

    async def events(
        self,
        store: Store,
        run_id: str,
        after: int,
        finished: Callable[[], Awaitable[bool]],
        idle: float = HEARTBEAT,
    ) -> AsyncIterator[RunEvent | None]:
        """The run's events after seq `after`, each once and in order: the stored ones, then live
        ones, until its `end`. None after every `idle` s without one (time for a heartbeat); the
        store is read again then, and the stream ends if `finished()` says the run is over."""
        last, ended = after, False
        with self.follow(run_id) as live:

            async def stored() -> AsyncIterator[RunEvent]:
                nonlocal last, ended
                while not ended:
                    page = await store.get_events(run_id, after=last, limit=PAGE)
                    for event in page:
                        last, ended = event["seq"], event["event"] == "end"
                        yield event
                    if len(page) < PAGE:
                        return

            async for event in stored():
                yield event
            while not ended:
                try:
                    item = await asyncio.wait_for(live.get(), idle)
                except TimeoutError:
                    yield None
                    async for event in stored():  # a message the bus lost, or a run that went away
                        yield event
                    if not ended and await finished():
                        async for event in stored():
                            yield event
                        return
                    continue
                if item is None or item["seq"] > last + 1:  # dropped or lost: the store has them
                    async for event in stored():
                        yield event
                elif item["seq"] == last + 1:
                    last, ended = item["seq"], item["event"] == "end"
                    yield item

    async def listen(self) -> None:
        async with self._bus.subscribe(RUNS_CHANNEL) as messages:
            async for message in messages:
                if not self._queues:
                    continue  # no stream reads from this node: nothing to parse
                try:
                    rows = orjson.loads(message.data)
                except orjson.JSONDecodeError:
                    logger.warning("ignoring a malformed run events message")
                    continue
                for run_id, seq, event, data in rows:
                    if queues := self._queues.get(run_id):
                        text = orjson.dumps(data).decode()
                        for queue in queues:
                            self._put(queue, RunEvent(run_id=run_id, seq=seq, event=event, data=text))

    @staticmethod
    def _put(queue: asyncio.Queue[RunEvent | None], event: RunEvent) -> None:
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:  # a slow reader: it refills from the store
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)
