"""The npm @langchain/langgraph-sdk `Client`, run by Node (tests/node/agent.mjs), against a real
Beacon on each stack: the HITL flow, and a stream cut mid-run then joined from its last event id."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, ROOT, TOKEN, Beacon, make_config, need_binary, running_beacon
from faultproxy import FaultProxy

NODE_DIR = ROOT / "tests" / "node"
SCRIPT = NODE_DIR / "agent.mjs"
GRAPHS = ROOT / "tests" / "graphs" / "langgraph.json"
DEADLINE = 60.0  # seconds for one node script, start to exit
README = (ROOT / "README.md").read_text()

Progress = Callable[[dict[str, Any]], None]


@pytest.fixture
def node() -> str:
    binary = need_binary("node")
    if not (NODE_DIR / "node_modules" / "@langchain" / "langgraph-sdk").is_dir():
        message = "@langchain/langgraph-sdk is not installed: npm ci --prefix tests/node"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture
async def agent(tmp_path: Path, stack: dict[str, str]) -> AsyncIterator[Beacon]:
    async with running_beacon(make_config(tmp_path, **stack, **{"graphs.config": str(GRAPHS)})) as b:
        yield b


async def run_node(
    node: str, url: str, case: str, args: dict[str, Any] | None = None, on_progress: Progress | None = None
) -> dict[str, Any]:
    """`node agent.mjs <url> <case> <args>` to its exit, within DEADLINE; its `result`. Each
    `progress` line goes to `on_progress` as it is printed."""
    proc = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        url,
        case,
        json.dumps(args or {}),
        cwd=NODE_DIR,
        env={**os.environ, "BEACON_TOKEN": TOKEN},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=2**24,
    )
    lines: list[dict[str, Any]] = []

    async def read() -> bytes:
        assert proc.stdout is not None and proc.stderr is not None
        err = asyncio.create_task(proc.stderr.read())
        async for raw in proc.stdout:
            line = json.loads(raw)
            lines.append(line)
            if "progress" in line and on_progress is not None:
                on_progress(line)
        await proc.wait()
        return await err

    try:
        stderr = await asyncio.wait_for(read(), DEADLINE)
    except TimeoutError:
        raise AssertionError(f"node {case} did not finish within {DEADLINE}s: {lines[-5:]}") from None
    finally:
        if proc.returncode is None:
            proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
    results = [line["result"] for line in lines if "result" in line]
    assert proc.returncode == 0 and len(results) == 1, (
        f"node {case} exited {proc.returncode}: {[line for line in lines if 'progress' not in line]}\n"
        f"{stderr.decode(errors='replace')}"
    )
    return dict(results[0])


def ids(parts: list[dict[str, Any]]) -> list[int]:
    return [int(p["id"]) for p in parts]


def check_ticks(parts: list[dict[str, Any]], steps: int) -> None:
    """A whole `ticks` stream: metadata first, end last, ids 1..n, one custom event per step in order."""
    assert parts[0]["event"] == "metadata" and parts[-1]["event"] == "end", [p["event"] for p in parts]
    assert ids(parts) == list(range(1, len(parts) + 1))
    assert [p["data"] for p in parts if p["event"] == "custom"] == [{"tick": i} for i in range(steps)]
    assert [p["event"] for p in parts].count("updates") == steps
    assert [p["data"]["ticks"] for p in parts if p["event"] == "values"][-1] == list(range(steps))


async def test_hitl_flow(agent: Beacon, node: str) -> None:
    got = await run_node(node, agent.rest, "hitl")
    tid = got["thread"]["thread_id"]
    events = got["events"]
    names = [e["event"] for e in events]
    assert names[0] == "metadata" and names[-1] == "end", names
    assert "custom" in names and "updates" in names, names
    assert ids(events) == list(range(1, len(events) + 1))  # every event has an id, in order, gap-free
    run_id = events[0]["data"]["run_id"]
    assert got["created"] == {"run_id": run_id, "thread_id": tid}  # from Content-Location
    [interrupt] = [e["data"] for e in events if e["event"] == "values"][-1]["__interrupt__"]
    assert interrupt["value"] == {"question": "ok?", "draft": "draft 1"}

    [task] = got["state"]["tasks"]
    assert [i["id"] for i in task["interrupts"]] == [interrupt["id"]]
    assert [i["id"] for i in got["state"]["interrupts"]] == [interrupt["id"]]
    assert got["state"]["next"] == ["ask"]
    waiting = got["waiting"]
    assert waiting["status"] == "interrupted"
    assert [i["id"] for i in waiting["interrupts"][task["id"]]] == [interrupt["id"]]
    assert waiting["metadata"]["graph_id"] == "chat" and waiting["metadata"]["user"] == "node"

    assert got["done"]["messages"] == ["hi", "draft 1", "answer {'ok': True, 'note': 'from node'}"]
    assert got["after"]["status"] == "idle"
    assert [r["status"] for r in got["runs"]] == ["success", "interrupted"]  # newest first
    assert got["runs"][1]["run_id"] == run_id
    assert (await agent.status(tid))["status"] == "completed"  # the seed's API sees the same thread


@pytest.mark.parametrize("via", ["create", "stream"])
async def test_join_stream_after_an_abort_continues_from_the_last_event_id(agent: Beacon, node: str, via: str) -> None:
    steps, k = 8, 5
    got = await run_node(node, agent.rest, "abort", {"via": via, "steps": steps, "delay": 0.3, "k": k})
    first, rest, replay = got["first"], got["rest"], got["replay"]
    assert got["aborted"] and len(first) == k, got["aborted"]
    assert first[-1]["event"] != "end" and got["statusAfterAbort"] in ("pending", "running"), got
    assert got["lastEventId"] == str(k)
    check_ticks(replay, steps)
    assert first + rest == replay  # every event exactly once, in order
    assert ids(rest) == list(range(k + 1, len(replay) + 1))
    assert got["status"] == "success" and got["values"]["ticks"] == list(range(steps))


@pytest.mark.parametrize("via", ["create", "stream"])
async def test_the_sdk_reconnects_a_cut_stream_by_itself(agent: Beacon, node: str, via: str) -> None:
    """The TCP connection is reset mid-run (not aborted by the client): the SDK reconnects to the
    stream's Location with Last-Event-ID, and its one iterator still yields each event once."""
    steps, k = 10, 4
    cut: list[int] = []
    async with FaultProxy(agent.running.rest_port) as proxy:

        def on_progress(line: dict[str, Any]) -> None:
            if line["progress"] == k:
                cut.append(proxy.connections)
                proxy.reset_all()

        url = f"http://127.0.0.1:{proxy.port}"
        got = await run_node(node, url, "follow", {"via": via, "steps": steps, "delay": 0.4}, on_progress)
        connections = proxy.connections
    assert cut, "the stream never reached the cut"
    assert connections > cut[0], "the SDK never reconnected"
    check_ticks(got["parts"], steps)
    assert got["parts"] == got["replay"]
    assert got["status"] == "success"


async def test_readme_node_example_runs(beacon: Beacon, node: str) -> None:
    """README "From Node", as written, against the default workflows (its `agent`)."""
    [example] = [b for b in re.findall(r"```js\n(.*?)```", README, re.S) if "@langchain/langgraph-sdk" in b]
    call = f"\nprocess.stdout.write(JSON.stringify(await main({json.dumps(beacon.rest)}, process.env.BEACON_TOKEN)));\n"
    # --input-type=module -e: bare imports resolve from the cwd, tests/node/node_modules
    proc = await asyncio.create_subprocess_exec(
        node,
        "--input-type=module",
        "-e",
        example + call,
        cwd=NODE_DIR,
        env={**os.environ, "BEACON_TOKEN": TOKEN},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")
    assert json.loads(out).startswith("Done. Email to ada@example.com sent"), out
