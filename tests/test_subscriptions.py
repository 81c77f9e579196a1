"""Subscriptions on their own: replay from a real SQLite store, then live, each `seq` once and in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from conftest import eventually

from app.errors import StoreUnavailable
from app.realtime.subscriptions import Ack, Subscriptions
from app.store import LogLine, Store, open_store

CAP = 50  # replay cap in these tests


def line(seq: int, thread_id: str = "t", level: str = "INFO") -> LogLine:
    return LogLine(text=f"line {seq}", thread_id=thread_id, level=level, timestamp="2026-01-01T00:00:00+00:00", seq=seq)


class Client:
    """What the emit callback was handed, per sid; a replaying send may be held at `gate`, as a slow client is."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int, bool]] = []  # (sid, thread_id, seq, replaying)
        self.sends: list[int] = []  # lines per emit call
        self.gate = asyncio.Event()
        self.gate.set()
        self.held = asyncio.Event()

    async def emit(self, sid: str, lines: Sequence[LogLine], replaying: bool) -> None:
        if replaying and not self.gate.is_set():
            self.held.set()
            await self.gate.wait()
        self.sent += [(sid, line["thread_id"], line["seq"], replaying) for line in lines]
        self.sends.append(len(lines))

    def seqs(self, sid: str = "a", thread_id: str = "t") -> list[int]:
        return [seq for s, t, seq, _ in self.sent if s == sid and t == thread_id]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(f"sqlite:///{tmp_path}/subs.sqlite") as s:
        yield s


@pytest.fixture
async def client() -> Client:
    return Client()


@pytest.fixture
async def subs(store: Store, client: Client) -> AsyncIterator[Subscriptions]:
    s = Subscriptions(store, client.emit, CAP)
    yield s
    await s.close()


async def stored(store: Store, first: int, last: int, thread_id: str = "t") -> list[LogLine]:
    lines = [line(seq, thread_id) for seq in range(first, last + 1)]
    await store.append_logs(lines)
    return lines


async def test_since_replays_from_the_store_then_goes_live(store: Store, subs: Subscriptions, client: Client) -> None:
    await stored(store, 1, 10)
    assert await subs.subscribe("a", "t", since=4, min_level=0) == Ack(recovered=True, last_seq=10, replayed=6)
    assert client.sent == [("a", "t", seq, True) for seq in range(5, 11)]
    await subs.deliver(line(11))
    assert client.sent[-1] == ("a", "t", 11, False)


async def test_without_since_only_live_lines_come(store: Store, subs: Subscriptions, client: Client) -> None:
    await stored(store, 1, 10)
    assert await subs.subscribe("a", "t", since=None, min_level=0) == Ack(recovered=True, last_seq=10, replayed=0)
    assert client.sent == []
    await subs.deliver(line(11))
    assert client.seqs() == [11]


async def test_replay_boundaries_and_the_cap(store: Store, subs: Subscriptions, client: Client) -> None:
    await stored(store, 1, CAP + 10)
    last = CAP + 10
    assert await subs.subscribe("a", "t", since=last, min_level=0) == Ack(True, last, 0)
    assert await subs.subscribe("a", "t", since=10, min_level=0) == Ack(True, last, CAP)  # exactly the cap
    assert client.seqs() == list(range(11, last + 1))
    client.sent.clear()
    # More than the cap, or lines the store never had: live from the store's last line, nothing replayed.
    assert await subs.subscribe("a", "t", since=9, min_level=0) == Ack(False, last, 0)
    assert await subs.subscribe("a", "t", since=last + 1, min_level=0) == Ack(False, last, 0)
    assert client.sent == []
    await subs.deliver(line(last + 1))
    assert client.seqs() == [last + 1]
    assert subs.count("a") == 1  # each subscribe replaced the one before


async def test_live_lines_during_a_replay_wait_and_come_once_in_order(
    store: Store, subs: Subscriptions, client: Client
) -> None:
    await stored(store, 1, 10)
    client.gate.clear()  # the client is slow: the replay waits on its first line
    task = asyncio.create_task(subs.subscribe("a", "t", since=0, min_level=0))
    await asyncio.wait_for(client.held.wait(), 5)
    # Meanwhile the run logs on: stored first, then on the bus, and the bus repeats one it already sent.
    await stored(store, 11, 12)
    for seq in (11, 12, 12, 5):
        await subs.deliver(line(seq))
    assert client.sent == []  # nothing overtakes the replay
    client.gate.set()
    ack = await asyncio.wait_for(task, 5)
    # `replayed` counts the store's lines; 11 and 12 were live lines, held back.
    assert ack == Ack(True, 12, 10) and client.seqs() == list(range(1, 13))
    await subs.deliver(line(13))
    assert client.seqs() == list(range(1, 14)) and client.sent[-1][3] is False


async def test_a_line_lost_on_the_bus_during_a_replay_is_filled_from_the_store(
    store: Store, subs: Subscriptions, client: Client
) -> None:
    await stored(store, 1, 10)
    client.gate.clear()
    task = asyncio.create_task(subs.subscribe("a", "t", since=0, min_level=0))
    await asyncio.wait_for(client.held.wait(), 5)  # the store's last line (10) is read, the replay is under way
    await stored(store, 11, 13)
    await subs.deliver(line(12))  # 11 never came over the bus (an outage, an overflow)
    await subs.deliver(line(13))
    client.gate.set()
    await asyncio.wait_for(task, 5)
    assert client.seqs() == list(range(1, 14))


async def test_a_gap_on_the_live_path_is_filled_from_the_store(
    store: Store, subs: Subscriptions, client: Client
) -> None:
    await stored(store, 1, 10)
    await subs.subscribe("a", "t", since=None, min_level=0)
    await stored(store, 11, 14)
    await subs.deliver(line(13))  # 11 and 12 were lost on the bus
    await subs.deliver(line(14))  # arrives while the gap is being filled
    await eventually(lambda: client.seqs() == [11, 12, 13, 14], message=f"got {client.seqs()}")
    assert subs.gaps_filled == 1
    await subs.deliver(line(15))
    assert client.seqs() == [11, 12, 13, 14, 15] and client.sent[-1][3] is False
    assert subs.gaps_filled == 1


async def test_a_bus_batch_reaches_each_subscriber_in_one_send_and_a_gap_in_it_is_filled_after(
    store: Store, subs: Subscriptions, client: Client
) -> None:
    await stored(store, 1, 10)
    await subs.subscribe("a", "t", since=None, min_level=0)
    await subs.subscribe("b", "t", since=None, min_level=0)
    await subs.subscribe("b", "u", since=None, min_level=0)
    await stored(store, 11, 16)
    await stored(store, 1, 2, thread_id="u")
    # One bus batch: 11-13 of t, 1-2 of u, then 16 of t (14 and 15 were lost on the bus).
    await subs.deliver(line(11), line(12), line(1, "u"), line(13), line(2, "u"), line(16))
    assert client.sends[:3] == [3, 3, 2]  # a: 11-13; b: 11-13 of t, then 1-2 of u
    assert client.sent[:8] == [("a", "t", seq, False) for seq in (11, 12, 13)] + [
        ("b", "t", seq, False) for seq in (11, 12, 13)
    ] + [("b", "u", seq, False) for seq in (1, 2)]
    for sid in ("a", "b"):  # the gap is filled from the store, after the lines before it
        await eventually(lambda s=sid: client.seqs(s) == list(range(11, 17)), message=f"{sid} got {client.seqs(sid)}")
    assert subs.gaps_filled == 2


async def test_a_level_filter_skips_lines_without_counting_them_as_gaps(
    store: Store, subs: Subscriptions, client: Client
) -> None:
    levels = ["DEBUG", "INFO", "WARNING", "ERROR", "INFO", "CRITICAL"]
    await store.append_logs([line(seq, level=level) for seq, level in enumerate(levels, 1)])
    ack = await subs.subscribe("a", "t", since=0, min_level=logging.WARNING)
    assert ack == Ack(True, 6, 3) and client.seqs() == [3, 4, 6]
    await subs.deliver(line(7, level="INFO"))
    await subs.deliver(line(8, level="WARNING"))  # the next seq after a filtered line: no gap
    await subs.deliver(line(9, level="NOTALEVEL"))
    assert client.seqs() == [3, 4, 6, 8] and subs.gaps_filled == 0


async def test_subscribers_get_their_own_threads(store: Store, subs: Subscriptions, client: Client) -> None:
    await subs.subscribe("a", "t", since=None, min_level=0)
    await subs.subscribe("b", "t", since=None, min_level=0)
    await subs.subscribe("b", "u", since=None, min_level=0)
    for thread_id in ("t", "u", "v"):
        await subs.deliver(line(1, thread_id))
    assert sorted(client.sent) == [("a", "t", 1, False), ("b", "t", 1, False), ("b", "u", 1, False)]
    assert subs.count() == 3 and subs.count("b") == 2 and subs.follows("b", "u") and not subs.follows("a", "u")


async def test_unsubscribe_stops_delivery_and_leaves_nothing_behind(
    store: Store, subs: Subscriptions, client: Client
) -> None:
    for sid, thread_id in (("a", "t"), ("a", "u"), ("b", "t")):
        await subs.subscribe(sid, thread_id, since=None, min_level=0)
    assert subs.remove("a", "t") is True and subs.remove("a", "t") is False
    await subs.deliver(line(1, "t"))
    await subs.deliver(line(1, "u"))
    assert sorted(client.sent) == [("a", "u", 1, False), ("b", "t", 1, False)]
    subs.drop_client("a")
    subs.remove("b", "t")
    assert subs.count() == 0 and not subs.has("a") and not subs.has("b")
    assert subs._by_sid == {} and subs._by_thread == {}  # memory stays flat as clients come and go


async def test_unsubscribing_during_a_replay_stops_it(store: Store, subs: Subscriptions, client: Client) -> None:
    await stored(store, 1, 10)
    client.gate.clear()
    task = asyncio.create_task(subs.subscribe("a", "t", since=0, min_level=0))
    await asyncio.wait_for(client.held.wait(), 5)
    assert subs.remove("a", "t")
    client.gate.set()
    await asyncio.wait_for(task, 5)
    assert client.seqs() == [1]  # the line already on its way, nothing after it
    await subs.deliver(line(11))
    assert client.seqs() == [1] and subs.count() == 0


async def test_a_store_failure_leaves_no_subscription(tmp_path: Path, client: Client) -> None:
    async with open_store(f"sqlite:///{tmp_path}/closed.sqlite") as store:
        subs = Subscriptions(store, client.emit, CAP)
    with pytest.raises(StoreUnavailable):
        await subs.subscribe("a", "t", since=0, min_level=0)
    assert subs.count() == 0 and not subs.follows("a", "t")


async def test_close_ends_a_catch_up_under_way(store: Store, subs: Subscriptions, client: Client) -> None:
    await stored(store, 1, 5)
    await subs.subscribe("a", "t", since=None, min_level=0)
    await stored(store, 6, 7)
    client.gate.clear()
    await subs.deliver(line(7))  # a gap: a catch-up replays 6 and is held by the slow client
    await asyncio.wait_for(client.held.wait(), 5)
    await asyncio.wait_for(subs.close(), 5)
    assert len(subs._catch_ups) == 0


async def test_a_gap_the_store_cannot_fill_still_lets_live_lines_through(
    tmp_path: Path, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_store(f"sqlite:///{tmp_path}/gone.sqlite") as store:
        await stored(store, 1, 5)
        subs = Subscriptions(store, client.emit, CAP)
        await subs.subscribe("a", "t", since=None, min_level=0)
    # The store is gone now: the gap before 7 cannot be filled, but 7 and what follows still come.
    await subs.deliver(line(7))
    await eventually(lambda: client.seqs() == [7], message=f"got {client.seqs()}")
    await subs.deliver(line(8))
    assert client.seqs() == [7, 8] and client.sent[-1][3] is False
    assert "could not fill a gap for a on t" in caplog.text
    await subs.close()
