"""Browser origins on the realtime listener: by default the REST listener's own, at the port it bound."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Beacon, make_config, running_beacon

from app.origins import Origins

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


async def handshake(beacon: Beacon, origin: str) -> int:
    """The status of an Engine.IO polling handshake sent with `Origin: origin`."""
    async with beacon.http.get(beacon.realtime + HANDSHAKE, headers={"Origin": origin}) as resp:
        return resp.status


async def health_allows(beacon: Beacon, origin: str) -> bool:
    async with beacon.http.get(beacon.realtime + "/health", headers={"Origin": origin}) as resp:
        return resp.headers.get("Access-Control-Allow-Origin") == origin


async def test_default_follows_the_bound_rest_port(tmp_path: Path) -> None:
    async with running_beacon(make_config(tmp_path)) as beacon:  # REST on port 0
        port = beacon.running.rest_port
        assert port != 8000
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", "http://localhost:3000"):
            assert await handshake(beacon, origin) == 200, origin
            assert await health_allows(beacon, origin), origin
        for origin in ("http://127.0.0.1:8000", f"http://example.com:{port}", f"https://127.0.0.1:{port}"):
            assert await handshake(beacon, origin) == 400, origin
            assert not await health_allows(beacon, origin), origin


async def test_configured_origins_replace_the_default(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, **{"realtime.cors_origins": "https://console.example"})
    async with running_beacon(cfg) as beacon:
        assert await handshake(beacon, "https://console.example") == 200
        assert await handshake(beacon, f"http://127.0.0.1:{beacon.running.rest_port}") == 400


@pytest.mark.parametrize(
    ("patterns", "origin", "allowed"),
    [
        (("http://a:{rest_port}",), "http://a:8123", True),
        (("http://a:{rest_port}",), "http://a:8000", False),
        (("*",), "https://anywhere.example", True),
        ((), "http://a:8123", False),
        (("*",), None, False),  # no Origin header: not a browser, nothing to allow
    ],
)
def test_origins_read_the_port_when_asked(patterns: tuple[str, ...], origin: str | None, allowed: bool) -> None:
    port = [0]
    origins = Origins(patterns, lambda: port[0])
    port[0] = 8123  # bound after the check was built
    assert origins(origin) is allowed


async def rest_preflight(beacon: Beacon, origin: str) -> dict[str, str]:
    """The CORS headers of an SDK-style preflight (x-api-key, Last-Event-ID) to an Agent API route."""
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type, last-event-id",
    }
    async with beacon.http.options(beacon.rest + "/threads/search", headers=headers) as resp:
        return {k: v for k, v in resp.headers.items() if k.startswith("Access-Control")} | {"status": str(resp.status)}


async def test_rest_origins_follow_realtime_unless_set(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, **{"realtime.cors_origins": "https://console.example"})
    assert cfg.rest.cors_origins == ("https://console.example",)
    cfg = make_config(
        tmp_path,
        **{"realtime.cors_origins": "https://console.example", "rest.cors_origins": "http://chat.example:3001"},
    )
    async with running_beacon(cfg) as beacon:
        allowed = await rest_preflight(beacon, "http://chat.example:3001")
        assert allowed["status"] == "204" and allowed["Access-Control-Allow-Origin"] == "http://chat.example:3001"
        assert "X-Api-Key" in allowed["Access-Control-Allow-Headers"]
        assert "Last-Event-ID" in allowed["Access-Control-Allow-Headers"]
        assert (await rest_preflight(beacon, "https://console.example"))["status"] == "403"
        assert await handshake(beacon, "http://chat.example:3001") == 400  # Socket.IO keeps its own list
        async with beacon.http.post(
            beacon.rest + "/threads", json={}, headers={"Origin": "http://chat.example:3001"}
        ) as resp:
            assert resp.status == 200
            assert "Content-Location" in resp.headers["Access-Control-Expose-Headers"]
