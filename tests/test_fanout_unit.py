"""Fanout on its own, over a real Engine.IO listener: lines encoded once, each client bounded by its unsent bytes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp import web
from conftest import ClientFactory, eventually
from test_slow_consumer import StalledClient

from app.background import background
from app.metrics import Metrics
from app.names import LOGS_CHANNEL
from app.pubsub import Bus
from app.pubsub.memory import MemoryBackend
from app.realtime.bridge import Bridge
from app.realtime.hooks.aiohttp import Site
from app.realtime.hooks.fanout import MAX_NOTICES, Fanout, _Lag
from app.realtime.hooks.socketio import Server
from app.realtime.hooks.websocket import Front
from app.realtime.subscriptions import Subscriptions
from app.store import LogLine, open_store

ROOM = "firehose"


class Logs(socketio.AsyncNamespace):
    """`/logs` reduced to what the fan-out needs: every client joins one room."""

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await self.enter_room(sid, ROOM)


@dataclass
class Listener:
    sio: Server
    fanout: Fanout
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def listener(request: pytest.FixtureRequest) -> AsyncIterator[Listener]:
    """Beacon's Socket.IO server, Engine.IO and websocket front on port 0, with a Fanout of the given bound."""
    limit = getattr(request, "param", 1 << 20)
    sio = Server(async_mode="aiohttp", send_limit=limit, logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)
    sio.register_namespace(Logs("/logs"))
    front = Front(sio, hard_limit=64 * limit)  # the fan-out's bound is what these tests watch, not this one
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    assert runner.server is not None
    front.http = runner.server
    site = Site(runner, front.protocol, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fanout = Fanout(sio, Metrics())
    assert fanout.enabled, "the tested library versions: the fast path is on"
    try:
        yield Listener(sio, fanout, port)
    finally:
        for sid in list(sio.manager.rooms.get("/logs", {}).get(None, {})):
            await sio.disconnect(sid, namespace="/logs")
        await sio.shutdown()
        await front.close()
        await runner.cleanup()


def line(seq: int, size: int = 20, thread_id: str = "t") -> LogLine:
    return LogLine(text="x" * size, thread_id=thread_id, level="INFO", timestamp="2026-01-01T00:00:00+00:00", seq=seq)


async def test_a_batch_is_encoded_once_for_every_client(
    listener: Listener, connect: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = [await connect(listener.url, ("/logs",), transports=["websocket"]) for _ in range(3)]
    fanout = listener.fanout
    encoded: list[str] = []
    encode = fanout._encode

    def counting(event: str, data: Any) -> Any:
        encoded.append(event)
        return encode(event, data)

    monkeypatch.setattr(fanout, "_encode", counting)
    batch = [line(seq) for seq in range(1, 11)]
    await fanout.broadcast(batch, ROOM)
    # A subscriber of the same thread, in the same batch, gets the frame already made.
    [sid, *_] = listener.sio.manager.rooms["/logs"][ROOM]
    await fanout.send(sid, batch[:1])
    assert len(encoded) == 10
    fanout.end_batch()
    await fanout.send(sid, batch[1:2])  # after the batch, a line is encoded again
    assert len(encoded) == 11
    await eventually(lambda: sum(len(c.logs) for c in clients) == 32, message="a client missed lines")
    assert sorted(c.logs for c in clients) == sorted([batch, batch, [*batch, *batch[:2]]])  # each in order
    assert fanout.direct == 3 * 10 + 2 and fanout.queued == 0 and fanout.dropped == 0


async def test_back_pressure_comes_from_the_transport_not_from_asking_its_size(
    listener: Listener, connect: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = [await connect(listener.url, ("/logs",), transports=["websocket"]) for _ in range(3)]
    wires = list(listener.sio.eio.wires.values())
    assert len(wires) == 3
    limit = listener.sio.eio.send_limit
    # The transport pauses its protocol past the fan-out's bound and resumes it under a quarter.
    assert {w.transport.get_write_buffer_limits() for w in wires} == {(limit // 4, limit)}
    sized: list[int] = []
    transport_type = type(wires[0].transport)
    size = transport_type.get_write_buffer_size

    def counting(self: Any) -> int:
        sized.append(1)
        return int(size(self))

    monkeypatch.setattr(transport_type, "get_write_buffer_size", counting)
    for seq in range(1, 51):
        await listener.fanout.broadcast([line(seq)], ROOM)
        listener.fanout.end_batch()
    await eventually(lambda: all(len(c.logs) == 50 for c in clients), message="a client missed lines")
    assert sized == []  # nothing on the way asked a transport how much it holds


@pytest.mark.parametrize("listener", [256 * 1024], indirect=True)
async def test_a_client_over_its_bound_is_skipped_and_then_told_exactly_what_it_missed(
    listener: Listener, connect: ClientFactory
) -> None:
    fanout = listener.fanout
    healthy = await connect(listener.url, ("/logs",), transports=["websocket"])
    slow = await StalledClient.open(listener.port)  # reads only when told, through a 4 KiB window
    try:
        total, size = 120, 100_000  # 12 MB: far more than the bound and the kernel's buffers
        for seq in range(1, total + 1):
            await fanout.broadcast([line(seq, size)], ROOM)
            fanout.end_batch()
            # Paced by the healthy client, so it is never behind by more than one line.
            await eventually(lambda s=seq: len(healthy.logs) == s, 10, 0.001, f"healthy client stuck before {seq}")
        assert [ln["seq"] for ln in healthy.logs] == list(range(1, total + 1))
        assert fanout.lagging == 1 and fanout.dropped > 0
        assert fanout.metrics.registry.get_sample_value("beacon_socketio_lines_dropped_total") == fanout.dropped
        dropped = fanout.dropped

        # It reads again: what was already on its way, then one `dropped` notice, then live lines.
        received: list[int] = []
        notices: list[dict[str, Any]] = []
        async with background(notices=fanout.run_notices()):
            while not notices:
                event, data = json.loads((await slow.receive())[len("42/logs,") :])
                (notices.append(data) if event == "dropped" else received.append(data["seq"]))
        # Skipped from the first line that found it over its bound, to the last: with what it got, every line once.
        assert received == list(range(1, len(received) + 1)) and len(received) + dropped == total
        assert notices == [{"thread_id": "t", "count": dropped, "first_seq": len(received) + 1, "last_seq": total}]
        assert fanout.lagging == 0 and fanout.notices == 1
        await fanout.broadcast([line(total + 1)], ROOM)
        event, data = json.loads((await slow.receive())[len("42/logs,") :])
        assert (event, data["seq"]) == ("log", total + 1)
    finally:
        slow.close()


async def test_lines_that_come_fast_reach_each_client_in_one_batch_and_slow_ones_go_at_once(
    listener: Listener, connect: ClientFactory, tmp_path: Path
) -> None:
    clients = [await connect(listener.url, ("/logs",), transports=["websocket"]) for _ in range(2)]
    holds: list[float] = []
    release = asyncio.Event()
    interval = 60.0  # whatever the machine's pace, the lines below come faster than two per interval
    async with Bus(MemoryBackend()) as bus, open_store(f"sqlite:///{tmp_path}/b.sqlite") as store:
        subs = Subscriptions(store, listener.fanout.send, 100)
        bridge = Bridge(listener.sio, bus, subs, listener.fanout, listener.fanout.metrics, batch_interval=interval)
        written: list[int] = []
        broadcast = listener.fanout.broadcast

        async def counting(lines: list[LogLine], room: str) -> None:
            written.append(len(lines))
            await broadcast(lines, room)

        async def held(seconds: float) -> None:  # the pause, released by the test instead of the clock
            holds.append(seconds)
            await release.wait()

        bridge.fanout.broadcast = counting  # type: ignore[method-assign]
        bridge.hold = held  # type: ignore[method-assign]

        async def publish(seq: int) -> None:
            await bus.publish(LOGS_CHANNEL, json.dumps([line(seq)]))

        def delivered(n: int) -> bool:
            return all(len(c.logs) == n for c in clients)

        async with background(logs=bridge.run_logs()):
            await eventually(lambda: bool(bus.status()["subscribers"]), message="the bridge never subscribed")
            await publish(1)  # the first line after a quiet spell goes at once
            await eventually(lambda: delivered(1), message="line 1 not delivered")
            assert written == [1] and holds == []
            await publish(2)  # now more than two lines per interval: held...
            await eventually(lambda: holds != [], message="the bridge did not hold line 2")
            for seq in (3, 4, 5):  # ...and the lines that come meanwhile join it
                await publish(seq)
            await eventually(lambda: bus.status()["received"] == 5, message="the bus did not carry 3-5")
            release.set()
            await eventually(lambda: delivered(5), message="lines 2-5 not delivered")
            assert written == [1, 4] and len(holds) == 1 and 0 < holds[0] <= interval
            # Once the lines come slower than two per interval (by the bridge's own count), one goes at once.
            bridge.batch_interval = 0.2
            await eventually(lambda: bridge.rate() * 0.2 < 2, 5, 0.01, "the rate never fell")
            await publish(6)
            await eventually(lambda: delivered(6), message="line 6 not delivered")
            assert written == [1, 4, 1] and len(holds) == 1 and bridge.batches == 3
    assert [[ln["seq"] for ln in c.logs] for c in clients] == [list(range(1, 7))] * 2


def test_notices_are_per_thread_and_bounded() -> None:
    lag = _Lag("eio")
    lag.add([line(1, thread_id="a"), line(2, thread_id="a"), line(7, thread_id="b")])
    assert lag.notices() == [
        {"thread_id": "a", "count": 2, "first_seq": 1, "last_seq": 2},
        {"thread_id": "b", "count": 1, "first_seq": 7, "last_seq": 7},
    ]
    lag.add([line(1, thread_id=f"t{i}") for i in range(MAX_NOTICES + 50)])
    notices = lag.notices()
    assert len(notices) == MAX_NOTICES + 1  # past MAX_NOTICES threads, one sum without a thread
    assert notices[-1] == {"thread_id": None, "count": 52} and sum(n["count"] for n in notices) == 3 + MAX_NOTICES + 50
