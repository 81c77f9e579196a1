"""One name for this process among the nodes: /stats says what leases and webhook deliveries say."""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import make_config, running_beacon


async def test_stats_names_the_node_as_leases_do(tmp_path: Path) -> None:
    async with running_beacon(make_config(tmp_path)) as beacon:
        async with beacon.http.get(beacon.realtime + "/stats") as resp:
            node = (await resp.json())["node"]
        services = beacon.running.services
        assert services.runs is not None
        assert node == services.node == services.runs.node == f"{socket.gethostname()}:{beacon.running.rest_port}"
