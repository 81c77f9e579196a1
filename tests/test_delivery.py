"""Delivery: replay with `since`, resets, ordering, caps (TESTPLAN D1, D3, D10, D11; D12: both stacks)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import socketio
from conftest import TOKEN, Beacon, Client, ClientFactory, eventually, make_config, running_beacon
from faultproxy import FaultProxy

from app.runs.logsink import MARKER


async def bench_run(beacon: Beacon, lines: int, size: int = 60, rate: float = 0, thread_id: str | None = None) -> str:
    extra = {"thread_id": thread_id} if thread_id else {}
    return await beacon.start("bench", {"lines": lines, "size": size, "rate": rate}, **extra)


async def test_health_counts_follow_clients(beacon: Beacon, connect: ClientFactory) -> None:
    async def health() -> dict[str, Any]:
        async with beacon.http.get(beacon.realtime + "/health") as resp:
            assert resp.status == 200
            return dict(await resp.json())

    def expect(logs: int, admin: int) -> dict[str, Any]:
        return {
            "status": "healthy",
            "service": "socketio",
            "port": beacon.running.realtime_port,
            "connections": {"log_connections": logs, "admin_connections": admin, "total_connections": logs + admin},
        }

    assert await health() == expect(0, 0)
    a = await connect(beacon.realtime, ("/logs",))
    b = await connect(beacon.realtime, ("/logs", "/admin"))
    assert await health() == expect(2, 1)
    await a.sio.disconnect()
    await eventually(async_equals(health, expect(1, 1)))
    await b.sio.disconnect()
    await eventually(async_equals(health, expect(0, 0)))

    async with beacon.http.get(beacon.realtime + "/stats") as resp:
        stats = await resp.json()
    assert stats["namespaces"]["/logs"]["connections"] == 0 and stats["uptime_seconds"] > 0


def async_equals(fn: Any, expected: Any) -> Any:
    async def check() -> bool:
        return bool(await fn() == expected)

    return check


async def test_subscribe_replays_what_was_missed_then_live(beacon: Beacon, connect: ClientFactory) -> None:
    thread_id = await bench_run(beacon, 50)
    await beacon.wait_status(thread_id, "completed")
    client = await connect(beacon.realtime, ("/logs",))
    ack = await client.subscribe(thread_id, since=20)
    # 50 bench lines plus the run's own "run completed" line.
    assert ack == {"thread_id": thread_id, "recovered": True, "last_seq": 51, "replayed": 31}
    assert client.seqs(thread_id) == list(range(21, 52))


async def test_subscribed_client_gets_only_its_thread_and_level(beacon: Beacon, connect: ClientFactory) -> None:
    firehose = await connect(beacon.realtime, ("/logs",))
    follower = await connect(beacon.realtime, ("/logs",))
    warnings = await connect(beacon.realtime, ("/logs",))
    mine = "mine"
    assert (await follower.subscribe(mine, since=0))["recovered"] is True
    assert (await warnings.subscribe(mine, since=0, level="warning"))["replayed"] == 0
    other = await bench_run(beacon, 5, thread_id="other")
    await beacon.wait_status(other, "completed")
    await bench_run(beacon, 5, thread_id=mine)
    await beacon.wait_status(mine, "completed")
    await eventually(lambda: len(follower.seqs(mine)) == 6)
    await eventually(lambda: len(firehose.seqs(mine)) == 6 and len(firehose.seqs(other)) == 6)
    assert follower.seqs("other") == []
    assert warnings.logs == []  # every bench line is INFO

    ack = await follower.sio.call("unsubscribe", {"thread_id": mine}, namespace="/logs")
    assert ack == {"thread_id": mine, "unsubscribed": True}
    third = await bench_run(beacon, 3)
    await eventually(lambda: len(follower.seqs(third)) == 4, message="no subscriptions left: back to the firehose")


async def test_recovery_boundaries_d3(
    tmp_path: Path, stack: dict[str, str], connect: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_beacon(make_config(tmp_path, **stack, **{"runs.replay_cap": 20})) as beacon:
        thread_id = await bench_run(beacon, 29)
        await beacon.wait_status(thread_id, "completed")  # 29 lines + "run completed" = 30
        client = await connect(beacon.realtime, ("/logs",))

        async def ack(since: Any) -> dict[str, Any]:
            before = len(client.seqs(thread_id))
            result = await client.sio.call("subscribe", {"thread_id": thread_id, "since": since}, namespace="/logs")
            await asyncio.sleep(0.05)  # nothing further may arrive for a finished thread
            result["received"] = len(client.seqs(thread_id)) - before
            return dict(result)

        base = {"thread_id": thread_id, "last_seq": 30}
        assert await ack(30) == {**base, "recovered": True, "replayed": 0, "received": 0}
        assert await ack(28) == {**base, "recovered": True, "replayed": 2, "received": 2}
        assert client.seqs(thread_id)[-2:] == [29, 30]
        assert await ack(10) == {**base, "recovered": True, "replayed": 20, "received": 20}
        assert await ack(31) == {**base, "recovered": False, "replayed": 0, "received": 0}
        assert await ack(9) == {**base, "recovered": False, "replayed": 0, "received": 0}  # beyond the cap
        assert await ack(None) == {**base, "recovered": True, "replayed": 0, "received": 0}
        for bad in (-1, "abc", "9" * 10_000, 1.5, True, [1]):
            assert await ack(bad) == {"error": "invalid since", "received": 0}
        for bad_thread in ("", "../x", "a b", "x" * 65, 7, None):
            got = await client.sio.call("subscribe", {"thread_id": bad_thread}, namespace="/logs")
            assert got == {"error": "invalid thread_id"}
        assert await client.sio.call("subscribe", "nonsense", namespace="/logs") == {
            "error": "expected an object {thread_id, since?, level?}"
        }
        assert (await client.sio.call("subscribe", {"thread_id": "t", "level": "LOUD"}, namespace="/logs")) == {
            "error": "invalid level"
        }
        # The socket survived all of it.
        assert client.sio.connected and (await ack(30))["recovered"] is True
        await client.sio.disconnect()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_reset_mid_burst_recovers_every_line_d1(stack_beacon: Beacon) -> None:
    beacon = stack_beacon
    total, thread_id = 10_000, "burst"
    received: list[int] = []
    acks: list[dict[str, Any]] = []
    reconnected_at: list[float] = []
    sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.1, reconnection_delay_max=0.3)
    sio.on("log", lambda line: received.append(line["seq"]), namespace="/logs")

    async def resubscribe() -> None:
        acks.append(
            await sio.call(
                "subscribe",
                {"thread_id": thread_id, "since": received[-1] if received else 0},
                namespace="/logs",
                timeout=10,
            )
        )

    def on_connect() -> None:
        if acks:
            reconnected_at.append(time.monotonic())
        asyncio.get_running_loop().create_task(resubscribe())

    sio.on("connect", on_connect, namespace="/logs")
    async with FaultProxy(beacon.running.realtime_port) as proxy:
        # No firehose: live lines must not arrive between a reconnect and its resubscribe.
        await sio.connect(
            f"http://127.0.0.1:{proxy.port}",
            namespaces=["/logs"],
            transports=["websocket"],
            auth={"firehose": False, "token": TOKEN},
        )
        try:
            await eventually(lambda: acks, 5)
            await bench_run(beacon, total, rate=2000, thread_id=thread_id)
            await eventually(lambda: len(received) >= 3000, 15)
            proxy.refusing = True
            proxy.reset_all()
            await asyncio.sleep(2)  # the fault itself: refused for 2 s
            proxy.refusing = False
            await eventually(lambda: reconnected_at, 10, message="client never reconnected")
            await eventually(lambda: len(received) >= total + 1, 15, message=f"stuck at {len(received)} lines")
        finally:
            await sio.disconnect()
    assert received == list(range(1, total + 2)), "lines missing, doubled or out of order"
    assert len(acks) == 2 and acks[1]["recovered"] is True and acks[1]["replayed"] > 0


async def test_interleaved_threads_stay_ordered_d10(stack_beacon: Beacon, connect: ClientFactory) -> None:
    beacon = stack_beacon
    firehose = await connect(beacon.realtime, ("/logs",))
    follower = await connect(beacon.realtime, ("/logs",))
    threads = [f"order-{i}" for i in range(5)]
    for thread_id in threads:
        await follower.subscribe(thread_id, since=0)
    await asyncio.gather(*(bench_run(beacon, 2000, thread_id=t) for t in threads))
    expected = list(range(1, 2002))
    for client in (firehose, follower):
        await eventually(lambda c=client: all(len(c.seqs(t)) == 2001 for t in threads), 30)
        for thread_id in threads:
            assert client.seqs(thread_id) == expected


def accounted(client: Client, notices: list[dict[str, Any]], thread_id: str) -> list[int]:
    """The seqs of a thread the client got, or was told in a `dropped` notice that it missed."""
    seqs = client.seqs(thread_id)
    for notice in notices:
        if notice["thread_id"] == thread_id:
            missed = range(notice["first_seq"], notice["last_seq"] + 1)
            assert notice["count"] == len(missed), notice  # one notice covers one unbroken run of lines
            seqs += missed
    return sorted(seqs)


async def test_long_lines_are_truncated_d11(beacon: Beacon, connect: ClientFactory) -> None:
    client = await connect(beacon.realtime, ("/logs",))
    notices: list[dict[str, Any]] = []
    client.sio.on("dropped", notices.append, namespace="/logs")
    store = beacon.running.services.store

    # An idle client has room for anything: the truncated line itself reaches it.
    huge = await bench_run(beacon, 1, size=1_000_000)
    await beacon.wait_status(huge, "completed", timeout=30)
    await eventually(lambda: len(client.seqs(huge)) == 2, 30, message="the idle client did not get the long line")
    line = next(ln for ln in client.logs if ln["thread_id"] == huge and ln["seq"] == 1)
    assert len(line["text"].encode()) <= 65536
    assert line["text"].endswith(MARKER.format(1_000_000 - 65536))
    status, stored = await beacon.call("GET", f"/admin/runs/{huge}/logs")
    assert status == 200 and stored["lines"][0]["text"] == line["text"]

    # 60 MB at 1,000 lines/s: a client that falls behind may be skipped (D9), but every line
    # either reaches it or is named in a `dropped` notice once it has caught up.
    wide = await bench_run(beacon, 1000, size=60_000, rate=1000)
    await beacon.wait_status(wide, "completed", timeout=60)
    every = list(range(1, await store.last_seq(wide) + 1))
    assert len(every) == 1001
    await eventually(lambda: accounted(client, notices, wide) == every, 60, message="lines neither sent nor noticed")
    assert all(len(ln["text"]) == 60_000 for ln in client.logs if ln["thread_id"] == wide and ln["seq"] <= 1000)
    assert client.seqs(wide) == sorted(client.seqs(wide))  # in order, none twice
    print(f"\nD11: {len(client.seqs(wide))} wide lines delivered, {len(every) - len(client.seqs(wide))} in notices")


async def test_log_text_is_data(beacon: Beacon, connect: ClientFactory) -> None:
    """S12: newlines, ANSI escapes and markup are stored and streamed unchanged."""
    client = await connect(beacon.realtime, ("/logs",))
    text = "two\nlines \x1b[31mred\x1b[0m <script>alert(1)</script> & ünïcode"
    logger = logging.getLogger("app.workflows.test")
    assert beacon.running.services.sink is not None
    with beacon.running.services.sink.scope("data-thread"):
        logger.warning(text)
    await eventually(lambda: client.seqs("data-thread"))
    assert client.logs[-1]["text"] == text and client.logs[-1]["level"] == "WARNING"


async def test_no_firehose_client_gets_only_what_it_subscribes(beacon: Beacon, connect: ClientFactory) -> None:
    quiet = await connect(beacon.realtime, ("/logs",), auth={"firehose": False})
    first = await bench_run(beacon, 5)
    await beacon.wait_status(first, "completed")
    assert quiet.logs == []
    ack = await quiet.subscribe(first, since=0)
    assert ack["replayed"] == 6 and quiet.seqs(first) == list(range(1, 7))
    assert (await quiet.sio.call("unsubscribe", {"thread_id": first}, namespace="/logs"))["unsubscribed"] is True
    second = await bench_run(beacon, 5)
    await beacon.wait_status(second, "completed")
    assert quiet.seqs(second) == []  # unsubscribing from everything does not turn the firehose on
