"""The seed's TypeScript client examples, run by the npm socket.io-client 4.8 in Node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, ROOT, TOKEN, Beacon, eventually, need_binary

NODE_DIR = ROOT / "tests" / "node"
SCRIPT = NODE_DIR / "flow.mjs"
LOG_FIELDS = {"text", "thread_id", "level", "timestamp", "seq"}
TRANSPORTS = ["websocket", "polling"]


@dataclass
class NodeClient:
    """`node flow.mjs`: its stdout parsed into `out`, one dict per JSON line."""

    proc: asyncio.subprocess.Process
    stderr: Path
    out: list[dict[str, Any]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.out.append(json.loads(raw))

    def exited(self) -> str | None:
        return next((line["exit"] for line in self.out if "exit" in line), None)

    async def wait_ready(self) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            if self.proc.returncode is not None or self.exited():
                raise AssertionError(f"node client ended before it was ready: {self.out}")
            return next((line for line in self.out if line.get("ready")), None)

        return dict(await eventually(ready, 15, 0.02, f"node client never connected: {self.out}"))

    async def emit_with_ack(self, event: str, data: Any, ns: str = "/logs") -> dict[str, Any]:
        assert self.proc.stdin is not None
        mark = len(self.out)
        self.proc.stdin.write(json.dumps({"emit": event, "ns": ns, "data": data}).encode() + b"\n")
        await self.proc.stdin.drain()

        def answer() -> dict[str, Any] | None:
            for line in self.out[mark:]:
                if line.get("ns") == ns and (line.get("ack") == event or "error" in line):
                    return line
            return None

        line = await eventually(answer, 15, 0.02, f"no answer to {event}: {self.out[mark:]}")
        assert "error" not in line, line
        return dict(line["data"])

    async def wait_exit(self, timeout: float = 15) -> str:
        await asyncio.wait_for(self.proc.wait(), timeout)
        assert self.reader is not None
        await asyncio.wait_for(self.reader, 5)
        assert self.proc.returncode == 0, f"node exited with {self.proc.returncode}"
        reason = self.exited()
        assert reason is not None, self.out
        return reason

    def logs(self, thread_id: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.out if e.get("event") == "log" and e["data"]["thread_id"] == thread_id]

    def admin(self, thread_id: str, kind: str) -> list[dict[str, Any]]:
        return [
            e["data"]["data"]
            for e in self.out
            if e.get("event") == "admin_event"
            and e["data"]["type"] == kind
            and e["data"]["data"].get("thread_id") == thread_id
        ]

    def statuses(self, thread_id: str) -> list[str]:
        return [d["status"] for d in self.admin(thread_id, "run_status")]

    def errors(self) -> list[dict[str, Any]]:
        return [line for line in self.out if "error" in line or "disconnect" in line]


NodeFactory = Callable[[str, str], Awaitable[NodeClient]]


@pytest.fixture
async def node_client(tmp_path: Path) -> AsyncIterator[NodeFactory]:
    node = need_binary("node")
    if not (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        message = "socket.io-client is not installed: npm ci --prefix tests/node"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    clients: list[NodeClient] = []

    async def start(url: str, transport: str, seconds: float = 30) -> NodeClient:
        stderr = tmp_path / f"node-{len(clients)}.err"
        with stderr.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                node,
                str(SCRIPT),
                url,
                transport,
                str(seconds),
                cwd=NODE_DIR,
                env={**os.environ, "BEACON_TOKEN": TOKEN},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                limit=2**22,
            )
        client = NodeClient(proc, stderr)
        client.reader = asyncio.create_task(client.read())
        clients.append(client)
        await client.wait_ready()
        return client

    yield start
    for client in clients:
        if client.proc.returncode is None:
            client.proc.kill()
        await client.proc.wait()
        if client.proc.stdin is not None:
            client.proc.stdin.close()
        if client.reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.reader, 5)
        # Shown by pytest only when the test fails.
        print(f"--- node client {client.proc.pid} stdout ---")
        print("\n".join(json.dumps(line) for line in client.out))
        print(f"--- node client {client.proc.pid} stderr ---")
        print(client.stderr.read_text(errors="replace"))


async def stored_logs(beacon: Beacon, thread_id: str) -> list[dict[str, Any]]:
    status, body = await beacon.call("GET", f"/admin/runs/{thread_id}/logs?limit=10000")
    assert status == 200, body
    return list(body["lines"])


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_seed_clients_follow_a_run(beacon: Beacon, node_client: NodeFactory, transport: str) -> None:
    node = await node_client(beacon.realtime, transport)
    [ready] = [line for line in node.out if line.get("ready")]
    assert ready["transports"] == {"/logs": transport, "/admin": transport}

    thread_id = await beacon.start("review", {"topic": "node client", "delay": 0.05})
    waiting = await beacon.wait_status(thread_id, "waiting_approval")
    [pending] = waiting["pending"]
    await eventually(lambda: "waiting_approval" in node.statuses(thread_id), 10, message=str(node.out))
    status, body = await beacon.call(
        "POST", f"/approve/{thread_id}", {"decision": "approve", "interrupt_id": pending["interrupt_id"]}
    )
    assert status == 200, body
    await beacon.wait_status(thread_id, "completed")
    assert await node.wait_exit() == "completed"
    assert node.errors() == []

    lines = node.logs(thread_id)
    assert lines and all(set(line) == LOG_FIELDS for line in lines), lines
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert all(line["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} for line in lines)
    assert all(line["timestamp"].startswith("20") and "T" in line["timestamp"] for line in lines)
    texts = [line["text"] for line in lines]
    assert texts[0] == "Drafting revision 1 about 'node client'"
    assert "Published revision 1 of 'node client'" in texts
    # What the Node client saw live is exactly the durable log.
    assert lines == await stored_logs(beacon, thread_id)

    assert node.statuses(thread_id) == ["running", "waiting_approval", "running", "completed"]
    run_events = node.admin(thread_id, "run_event")
    assert run_events and all(set(e) == {"thread_id", "checkpoint_id", "metadata"} for e in run_events)
    assert all(isinstance(e["metadata"], dict) and "step" in e["metadata"] for e in run_events)
    status, history = await beacon.call("GET", f"/admin/runs/{thread_id}/history?limit=100")
    assert status == 200, history
    known = [c["checkpoint_id"] for c in history["checkpoints"]]
    assert {e["checkpoint_id"] for e in run_events} <= set(known)
    # In checkpoint order (a resume repeats the checkpoint it starts from), ending at the last one.
    steps = [e["metadata"]["step"] for e in run_events]
    assert steps == sorted(steps), steps
    assert run_events[-1]["checkpoint_id"] == known[0] == (await beacon.status(thread_id))["checkpoint_id"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_subscribe_replays_then_streams(beacon: Beacon, node_client: NodeFactory, transport: str) -> None:
    thread_id = await beacon.start("review", {"topic": "replay", "delay": 0.05})
    await beacon.wait_status(thread_id, "waiting_approval")

    async def settled() -> list[dict[str, Any]] | None:
        lines = await stored_logs(beacon, thread_id)
        return lines if lines and lines[-1]["text"] == "waiting for approval" else None

    before = await eventually(settled, 10, 0.05, "the run's log never reached 'waiting for approval'")
    n = len(before)

    node = await node_client(beacon.realtime, transport)
    assert node.logs(thread_id) == []  # the run is idle: nothing live before the subscription
    ack = await node.emit_with_ack("subscribe", {"thread_id": thread_id, "since": 0})
    assert {k: ack.get(k) for k in ("recovered", "replayed", "last_seq")} == {
        "recovered": True,
        "replayed": n,
        "last_seq": n,
    }, ack
    await eventually(lambda: len(node.logs(thread_id)) >= n, 10, message=str(node.out))
    assert node.logs(thread_id) == before

    status, body = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    assert status == 200, body
    await beacon.wait_status(thread_id, "completed")
    assert await node.wait_exit() == "completed"
    assert node.errors() == []
    # Replayed, then live: every stored line once, in order, nothing from before `since` twice.
    after = await stored_logs(beacon, thread_id)
    assert len(after) > n
    assert node.logs(thread_id) == after
