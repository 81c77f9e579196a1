"""/openapi.json is generated from the route table and its schemas, and describes every route."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import Beacon, ClientFactory, eventually, make_config, running_beacon

from app.rest.routes import ROUTES


async def test_openapi_covers_every_route(beacon: Beacon) -> None:
    status, doc = await beacon.call("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        assert str(route.status) in op["responses"]
        assert "500" in op["responses"]
        if route.body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
        for name in re.findall(r"{(\w+)}", route.path):
            assert any(p["name"] == name and p["in"] == "path" for p in op["parameters"])
    start = doc["components"]["schemas"]["StartRequest"]
    assert start["required"] == ["workflow"] and set(start["properties"]) == {"workflow", "input", "thread_id"}
    runs_params = {p["name"] for p in doc["paths"]["/admin/runs"]["get"]["parameters"]}
    assert runs_params == {"status", "workflow", "limit", "cursor"}


async def test_workflows_describe_their_input(beacon: Beacon) -> None:
    status, body = await beacon.call("GET", "/admin/workflows")
    assert status == 200
    by_name = {w["name"]: w for w in body["workflows"]}
    assert set(by_name) == {"review", "deploy", "bench", "agent"}
    assert by_name["agent"]["input_schema"] == {"type": "object"}  # a compiled graph: no marshmallow schema
    review = by_name["review"]["input_schema"]
    assert review["required"] == ["topic"] and review["properties"]["topic"]["type"] == "string"
    assert by_name["deploy"]["input_schema"]["properties"]["environment"]["enum"] == ["staging", "production"]


async def test_polling_transport_sees_the_flow(tmp_path: Path, connect: ClientFactory) -> None:
    # python-socketio's client waits out the server's pending long-poll (ping_interval) when it
    # disconnects; a short interval keeps the teardown short.
    async with running_beacon(
        make_config(tmp_path, **{"realtime.ping_interval": 1, "realtime.ping_timeout": 1})
    ) as beacon:
        client = await connect(beacon.realtime, transports=["polling"])
        assert client.sio.transport() == "polling"
        thread_id = await beacon.start("bench", {"lines": 20})
        await beacon.wait_status(thread_id, "completed")
        await eventually(lambda: len(client.seqs(thread_id)) == 21)
        assert client.seqs(thread_id) == list(range(1, 22))
        assert any(e["type"] == "run_status" and e["data"]["status"] == "completed" for e in client.admin)
        await client.sio.disconnect()
