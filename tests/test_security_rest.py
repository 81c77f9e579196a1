"""TESTPLAN S16–S20, S22, S26 on the REST side: what an outside client sends must not change
state, crash a handler, forge a log line or leak what it should not."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import ROOT, TOKEN, Beacon, ClientFactory, make_config, running_beacon

from app.config import ConfigError, load_config

GRAPHS = ROOT / "tests" / "graphs" / "langgraph.json"
JSON = {"Content-Type": "application/json"}


DEEP = "<deep>"  # stands for the nested value in a body that send() encodes


async def send(beacon: Beacon, method: str, path: str, body: Any, depth: int) -> tuple[int, Any]:
    """`body` with every DEEP replaced by `depth` nested lists (as text: JSON encoders recurse, and stop)."""
    data = json.dumps(body).replace(json.dumps(DEEP), "[" * depth + "]" * depth)
    async with beacon.http.request(method, beacon.rest + path, data=data, headers=JSON) as resp:
        return resp.status, await resp.json(content_type=None)


async def call(beacon: Beacon, method: str, path: str, body: Any = None, token: str | None = TOKEN, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, beacon.rest + path, json=body, headers=headers, **kw) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if resp.content_type == "application/json" else text)


@pytest.fixture
async def agent_beacon(tmp_path: Path, stack: dict[str, str]) -> AsyncIterator[Beacon]:
    async with running_beacon(make_config(tmp_path, **stack, **{"graphs.config": str(GRAPHS)})) as b:
        yield b


# -- S16: every JSON value a client supplies is bounded in depth and size -----------------------


@pytest.mark.parametrize("depth", [300, 1000])
async def test_s16_nested_json_is_422(agent_beacon: Beacon, depth: int) -> None:
    b, deep = agent_beacon, DEEP
    status, body = await send(b, "POST", "/start", {"workflow": "chat", "input": {"messages": deep}}, depth)
    assert status == 422 and "nested deeper" in body["details"]["input"][0], body
    _, runs = await b.call("GET", "/admin/runs")
    assert runs["total"] == 0, "a refused /start stored a run"

    thread_id = await b.start("review", {"topic": "t", "delay": 0})
    waiting = await b.wait_status(thread_id, "waiting_approval")
    for answer in ({"decision": "approve", "data": deep}, {"resume": deep}, {"decision": "reject", "data": {"a": deep}}):
        status, body = await send(b, "POST", f"/approve/{thread_id}", answer, depth)
        assert status == 422 and body["error"] == "validation_error", body
        assert "nested deeper" in str(body["details"]), body
    after = await b.status(thread_id)
    assert after["status"] == "waiting_approval" and after["pending"] == waiting["pending"]
    assert after["decisions"] == []

    # The Agent API: input, command, metadata, state values.
    status, thread = await b.call("POST", "/threads", {"metadata": {"user": "ada"}})
    assert status == 200, thread
    tid = thread["thread_id"]
    for path, sent in (
        (f"/threads/{tid}/runs/wait", {"assistant_id": "chat", "input": {"messages": deep}}),
        (f"/threads/{tid}/runs", {"assistant_id": "chat", "command": {"resume": deep}}),
        (f"/threads/{tid}/runs", {"assistant_id": "chat", "input": {}, "metadata": {"m": deep}}),
        (f"/threads/{tid}/state", {"values": {"messages": deep}}),
        ("/threads", {"metadata": {"deep": deep}}),
        ("/runs/wait", {"assistant_id": "chat", "input": {"messages": deep}}),
    ):
        status, body = await send(b, "POST", path, sent, depth)
        assert status == 422 and "nested deeper" in str(body["details"]), (path, body)
    status, body = await send(b, "PATCH", f"/threads/{tid}", {"metadata": {"deep": deep}}, depth)
    assert status == 422, body
    status, runs = await b.call("GET", f"/threads/{tid}/runs")
    assert status == 200 and runs == [], runs
    status, found = await b.call("POST", "/threads/search", {"limit": 100})
    assert len(found) == 2 and all("deep" not in t["metadata"] for t in found), found  # the review's and tid


async def test_s16_oversized_json_is_422(agent_beacon: Beacon) -> None:
    beacon = agent_beacon
    wide = {"input": {"messages": [0] * 15_000}}
    status, body = await beacon.call("POST", "/start", {"workflow": "chat", **wide})
    assert status == 422 and "values" in body["details"]["input"][0], body
    status, body = await beacon.call("GET", "/admin/runs")
    assert body["total"] == 0


# -- S19: ids and names match as a whole (no trailing newline) ----------------------------------


async def test_s19_ids_and_names_with_a_trailing_newline_are_422(beacon: Beacon, connect: ClientFactory) -> None:
    status, body = await beacon.call("POST", "/start", {"workflow": "review", "input": {"topic": "t"}, "thread_id": "abc\n"})
    assert status == 422 and "thread_id" in body["details"], body
    status, body = await beacon.call("GET", "/status/abc%0A")
    assert status == 422, body
    status, body = await beacon.call("POST", "/admin/tokens", {"name": "op1\n", "role": "operator"})
    assert status == 422 and "name" in body["details"], body
    status, body = await beacon.call("DELETE", "/admin/tokens/test-admin%0A")
    assert status == 422, body
    status, body = await beacon.call("POST", "/threads", {"thread_id": "t1\n"})
    assert status == 422 and "thread_id" in body["details"], body
    _, runs = await beacon.call("GET", "/admin/runs")
    _, tokens = await beacon.call("GET", "/admin/tokens")
    assert runs["total"] == 0 and [t["name"] for t in tokens["tokens"]] == ["test-admin"]
    client = await connect(beacon.realtime, namespaces=("/logs",))
    ack = await client.subscribe("a\n")
    assert "error" in ack, ack
    with pytest.raises(ConfigError, match="auth.tokens"):
        load_config(None, {}, {"auth.tokens": "op1\n:admin:a-secret-of-twenty-chars"})
