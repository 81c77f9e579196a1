"""Engine.IO v4 / Socket.IO v5 as the specifications say (socket.io/docs/v4 "Engine.IO protocol",
"Socket.IO protocol"), from a raw client, on the fast path and on the libraries' own (issue 14).

The same checks pass against a Node socket.io 4.8 server; each test is one row of the issue's table.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from conftest import TOKEN, Beacon, make_config, running_beacon
from test_websocket import PATH, Raw, client_frame

POLLING = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture(params=[True, False], ids=["fast-path", "library-path"])
def fast_path(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
async def eio(tmp_path: Path, fast_path: bool) -> AsyncIterator[Beacon]:
    async with running_beacon(make_config(tmp_path, **{"realtime.fast_path": fast_path})) as beacon:
        yield beacon


@pytest.fixture
async def quick_pings(tmp_path: Path, fast_path: bool) -> AsyncIterator[Beacon]:
    """Pings every 0.3 s, 0.2 s to answer: sub-second settings, and a client found silent soon."""
    cfg = make_config(
        tmp_path, **{"realtime.ping_interval": 0.3, "realtime.ping_timeout": 0.2, "realtime.fast_path": fast_path}
    )
    async with running_beacon(cfg) as beacon:
        yield beacon


async def handshake(http: aiohttp.ClientSession, beacon: Beacon) -> dict[str, object]:
    async with http.get(beacon.realtime + POLLING) as resp:
        assert resp.status == 200
        text = await resp.text()
    assert text.startswith("0{")
    return dict(json.loads(text[1:]))


async def test_sub_second_ping_settings_are_sent_in_milliseconds(quick_pings: Beacon) -> None:
    async with aiohttp.ClientSession() as http:
        opened = await handshake(http, quick_pings)
    assert (opened["pingInterval"], opened["pingTimeout"]) == (300, 200)
    raw = await Raw.open(quick_pings)
    await raw.upgrade()
    opened = json.loads((await raw.text())[1:])
    assert (opened["pingInterval"], opened["pingTimeout"], opened["upgrades"]) == (300, 200, [])
    raw.close()


async def test_a_request_without_a_transport_is_400(eio: Beacon) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(eio.realtime + "/socket.io/?EIO=4") as resp:
            assert resp.status == 400
            assert await resp.json() == {"code": 0, "message": "Transport unknown"}
        async with http.get(eio.realtime + "/socket.io/?EIO=3&transport=polling") as resp:  # still so
            assert resp.status == 400


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_400(eio: Beacon, method: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, eio.realtime + POLLING) as resp:
            assert resp.status == 400
            assert (await resp.json())["code"] == 2  # "Bad handshake method"
        async with http.options(eio.realtime + POLLING) as resp:  # CORS preflight stays
            assert resp.status == 200


async def test_a_polling_client_that_stops_answering_pings_gets_400(quick_pings: Beacon) -> None:
    async with aiohttp.ClientSession() as http:
        sid = (await handshake(http, quick_pings))["sid"]
        url = f"{quick_pings.realtime}{POLLING}&sid={sid}"
        async with http.post(url, data="40/logs," + json.dumps({"token": TOKEN})) as resp:
            assert resp.status == 200
        async with http.get(url) as resp:
            assert (await resp.text()).startswith("40/logs,")
        async with http.get(url) as resp:  # the PING, left unanswered
            assert await resp.text() == "2"
        statuses = []
        for _ in range(50):  # bounded: the session must end within 50 polls (ping timeout 0.2 s)
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                statuses.append(resp.status)
                if resp.status == 400:
                    break
            await asyncio.sleep(0.1)
        assert statuses[-1] == 400, statuses
        assert set(statuses[:-1]) <= {200}


async def test_a_close_packet_ends_the_pending_poll_with_a_noop(eio: Beacon) -> None:
    async with aiohttp.ClientSession() as http:
        sid = (await handshake(http, eio))["sid"]
        url = f"{eio.realtime}{POLLING}&sid={sid}"
        async with http.post(url, data="40/logs," + json.dumps({"token": TOKEN})) as resp:
            assert resp.status == 200
        async with http.get(url) as resp:
            assert (await resp.text()).startswith("40/logs,")
        pending = asyncio.ensure_future(http.get(url, timeout=aiohttp.ClientTimeout(total=10)))
        await asyncio.sleep(0.05)  # the GET is waiting (a PING would end it too: then it says "2")
        async with http.post(url, data="1") as resp:
            assert resp.status == 200
        resp = await pending
        text = await resp.text()
        assert (resp.status, text) in ((200, "6"), (200, "2\x1e6"), (200, "2")), (resp.status, text)
        resp.release()
        if text == "2":  # the PING came first: this poll ends the session's polling now
            async with http.get(url) as again:
                assert again.status in (200, 400)
        async with http.get(url) as resp:
            assert resp.status == 400


async def test_a_close_packet_right_after_the_handshake_closes_the_websocket(eio: Beacon) -> None:
    raw = await Raw.open(eio)
    await raw.upgrade()
    assert (await raw.text()).startswith("0{")
    raw.send(client_frame(b"1"))

    async def closed() -> bool:
        while True:
            try:
                opcode, _ = await raw.frame()
            except (asyncio.IncompleteReadError, ConnectionError):
                return True
            if opcode == 8:
                return True

    assert await asyncio.wait_for(closed(), 10)
    raw.close()


async def test_a_second_websocket_for_an_upgraded_sid_is_accepted_then_closed(eio: Beacon) -> None:
    async with aiohttp.ClientSession() as http:
        sid = (await handshake(http, eio))["sid"]
        first = await Raw.open(eio)
        assert (await first.upgrade(path=f"{PATH}&sid={sid}")).startswith(b"HTTP/1.1 101 ")
        first.send(client_frame(b"2probe"))
        assert await first.text() == "3probe"
        first.send(client_frame(b"5"))
        first.send(client_frame(("40/logs," + json.dumps({"token": TOKEN})).encode()))
        assert (await first.text()).startswith("40/logs,")
        second = await Raw.open(eio)
        assert (await second.upgrade(path=f"{PATH}&sid={sid}")).startswith(b"HTTP/1.1 101 ")
        opcode, _ = await second.frame()
        assert opcode == 8
        second.close()
        first.close()


async def test_an_unknown_namespace_gets_an_error_object(eio: Beacon) -> None:
    raw = await Raw.open(eio)
    await raw.upgrade()
    assert (await raw.text()).startswith("0{")
    raw.send(client_frame(b"40/unknown,"))
    assert await raw.text() == '44/unknown,{"message":"Invalid namespace"}'
    raw.close()
