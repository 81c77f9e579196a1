"""Per-client thread subscriptions: replay from the store, then live, by `seq`, exactly once."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.background import Tasks
from app.names import LEVELS
from app.store import LogLine, Store
from app.store.logtext import log_line_for

logger = logging.getLogger(__name__)

# (sid, lines, replaying): lines of one thread, in order, sent together; a replaying send may wait for
# a slow client to drain; a live one never waits.
Emit = Callable[[str, Sequence[LogLine], bool], Awaitable[None]]
PAGE = 1000
FILL_RETRIES = (0.5, 1.0, 2.0)  # seconds between tries to fill a live gap from the store


@dataclass(eq=False)
class Subscription:
    sid: str
    thread_id: str
    min_level: int
    last_seq: int = 0
    # While replaying, live lines wait here so nothing overtakes the store's older lines.
    replaying: bool = True
    active: bool = True
    backlog: deque[LogLine] = field(default_factory=deque)


@dataclass(frozen=True)
class Ack:
    recovered: bool
    last_seq: int
    replayed: int

    def as_dict(self) -> dict[str, Any]:
        return {"recovered": self.recovered, "last_seq": self.last_seq, "replayed": self.replayed}


class Subscriptions:
    """Who follows which thread on this node, and the delivery rule that keeps `seq` whole."""

    def __init__(self, store: Store, emit: Emit, replay_cap: int) -> None:
        self._store = store
        self._emit = emit
        self._cap = replay_cap
        self._by_thread: dict[str, dict[str, Subscription]] = {}
        self._by_sid: dict[str, dict[str, Subscription]] = {}
        self._catch_ups = Tasks()
        self.gaps_filled = 0

    def count(self, sid: str | None = None) -> int:
        if sid is not None:
            return len(self._by_sid.get(sid, ()))
        return sum(len(s) for s in self._by_sid.values())

    def follows(self, sid: str, thread_id: str) -> bool:
        return thread_id in self._by_sid.get(sid, {})

    def has(self, sid: str) -> bool:
        return bool(self._by_sid.get(sid))

    async def subscribe(self, sid: str, thread_id: str, since: int | None, min_level: int) -> Ack:
        self.remove(sid, thread_id)
        sub = Subscription(sid, thread_id, min_level)
        self._by_thread.setdefault(thread_id, {})[sid] = sub
        self._by_sid.setdefault(sid, {})[thread_id] = sub
        try:
            last = await self._store.last_seq(thread_id)
            replayed, recovered = 0, True
            if since is None:  # live only
                sub.last_seq = last
            elif since > last or last - since > self._cap:
                # Lines the store never had, or more than a replay should carry: live from
                # here, and the client pages the rest over REST.
                sub.last_seq, recovered = last, False
            else:
                sub.last_seq = since
                replayed = await self._replay(sub, upto=last)
            await self._finish_replay(sub)
        except BaseException:
            self.remove(sid, thread_id, only=sub)  # not a newer subscribe of the same thread
            raise
        return Ack(recovered, sub.last_seq, replayed)

    def remove(self, sid: str, thread_id: str, only: Subscription | None = None) -> bool:
        """End `sid`'s subscription to `thread_id` (when `only` is given, just that one)."""
        current = self._by_sid.get(sid, {}).get(thread_id)
        if current is None or (only is not None and current is not only):
            return False
        sub = self._by_sid[sid].pop(thread_id)
        thread_subs = self._by_thread.get(thread_id, {})
        thread_subs.pop(sid, None)
        if not thread_subs:
            self._by_thread.pop(thread_id, None)
        if not self._by_sid.get(sid):
            self._by_sid.pop(sid, None)
        sub.active = False
        return True

    def drop_client(self, sid: str) -> None:
        for thread_id in list(self._by_sid.get(sid, ())):
            self.remove(sid, thread_id)

    async def deliver(self, *lines: LogLine) -> None:
        """Hand live lines (a bus batch, in order) to every subscriber of their threads, each its share at once."""
        ready: dict[Subscription, list[LogLine]] = {}
        behind: list[Subscription] = []
        # Decided with no await in between, so nothing changes a subscription's state under us.
        for line in lines:
            for sub in tuple(self._by_thread.get(line["thread_id"], {}).values()):
                if sub.replaying:
                    sub.backlog.append(line)
                elif line["seq"] == sub.last_seq + 1:
                    sub.last_seq = line["seq"]
                    if self._wanted(sub, line):
                        ready.setdefault(sub, []).append(line)
                elif line["seq"] > sub.last_seq + 1:
                    # Lines went missing on the live path (bus outage, overflow): fetch them.
                    sub.replaying = True
                    sub.backlog.append(line)
                    behind.append(sub)
        for sub, share in ready.items():
            if sub.active:
                await self._emit(sub.sid, share, False)
        for sub in behind:  # after the lines before each gap are on their way
            self._catch_ups.spawn(self._catch_up(sub), name=f"catch-up:{sub.thread_id}")

    async def close(self) -> None:
        await self._catch_ups.close()

    async def _catch_up(self, sub: Subscription) -> None:
        for delay in FILL_RETRIES:
            try:
                await self._finish_replay(sub)
                return
            except Exception:
                logger.warning("could not fill a gap for %s on %s, retrying", sub.sid, sub.thread_id, exc_info=True)
                await asyncio.sleep(delay)
        # The store stayed away: go live with the gap; the client pages it over REST by `seq`.
        logger.warning("gave up filling a gap for %s on %s after %d tries", sub.sid, sub.thread_id, len(FILL_RETRIES))
        await self._finish_replay(sub, fill=False)

    async def _replay(self, sub: Subscription, upto: int) -> int:
        sent = 0
        while sub.last_seq < upto:
            page = await self._store.get_logs(sub.thread_id, after=sub.last_seq, limit=min(PAGE, upto - sub.last_seq))
            if not page:
                break
            for line in page:  # as the live stream carries it: a traceback's last line only
                sent += await self._send(sub, log_line_for(line, full=False), replaying=True)
        return sent

    async def _finish_replay(self, sub: Subscription, fill: bool = True) -> None:
        """Send the live lines held back meanwhile; where one skips ahead, the store fills the gap first."""
        # No await between the emptiness check and the flag: the bridge cannot slip a line in.
        while sub.backlog:
            line = sub.backlog[0]  # taken only once sent: a fill that fails leaves it for _catch_up's retry
            if fill and line["seq"] > sub.last_seq + 1:
                self.gaps_filled += 1
                await self._replay(sub, upto=line["seq"] - 1)
            sub.backlog.popleft()
            if line["seq"] > sub.last_seq:
                await self._send(sub, line, replaying=True)
        sub.replaying = False

    async def _send(self, sub: Subscription, line: LogLine, replaying: bool = False) -> int:
        sub.last_seq = line["seq"]
        if not self._wanted(sub, line):
            return 0
        await self._emit(sub.sid, (line,), replaying)
        return 1

    @staticmethod
    def _wanted(sub: Subscription, line: LogLine) -> bool:
        return sub.active and LEVELS.get(line["level"], 0) >= sub.min_level
