"""Runs survive restarts: serve() stopped and started again, `kill -9`, SIGTERM (TESTPLAN R1, R2, R7)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import AUTH_HEADER, ROOT, TOKEN_ENTRY, RestClient, eventually, free_port, make_config, running_beacon

STEPS = ["build", "test", "migrate", "rollout", "verify"]
# Variables that would override the flags' neighbours in the child's configuration.
CONFIG_ENV = ("REST_API_", "SOCKETIO_", "PUBSUB_URL", "STORE_URL", "BEACON_")


async def test_waiting_run_survives_serve_restart(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    async with running_beacon(cfg) as first:
        thread_id = await first.start("review", {"topic": "restart", "delay": 0})
        before = await first.wait_status(thread_id, "waiting_approval")
    [pending] = before["pending"]

    async with running_beacon(cfg) as second:
        after = await second.status(thread_id)
        assert after["status"] == "waiting_approval"
        assert after["pending"] == [pending]
        assert after["checkpoint_id"] == before["checkpoint_id"]
        status, body = await second.call(
            "POST", f"/approve/{thread_id}", {"decision": "approve", "interrupt_id": pending["interrupt_id"]}
        )
        assert status == 200, body
        done = await second.wait_status(thread_id, "completed")
        assert done["values"]["published"] is True
        assert [d["interrupt_id"] for d in done["decisions"]] == [pending["interrupt_id"]]


class BeaconProcess(RestClient):
    """`python run.py` on fixed free ports and one SQLite store, restartable; output kept in tmp_path."""

    def __init__(self, tmp_path: Path, http: aiohttp.ClientSession) -> None:
        self.tmp_path = tmp_path
        self.http = http
        self.rest_port, self.socketio_port = free_port(), free_port()
        self.store_url = f"sqlite:///{tmp_path}/b.sqlite"
        self.proc: subprocess.Popen[bytes] | None = None
        self.outputs: list[Path] = []

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    async def launch(self, *flags: str, env: Mapping[str, str] | None = None) -> None:
        """Start `python run.py` with `flags`, and `env` besides the inherited variables."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        n = len(self.outputs) // 2 + 1
        out, err = self.tmp_path / f"beacon-{n}.out", self.tmp_path / f"beacon-{n}.err"
        self.outputs += [out, err]
        child = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_ENV)}
        child |= {"PYTHONUNBUFFERED": "1", "BEACON_AUTH_TOKENS": TOKEN_ENTRY, **(env or {})}
        argv = [
            sys.executable,
            "run.py",
            "--rest-port",
            str(self.rest_port),
            "--socketio-port",
            str(self.socketio_port),
            "--store-url",
            self.store_url,
            *flags,
        ]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=child, stdout=stdout, stderr=stderr)

        async def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"beacon exited with {self.proc.returncode} during start-up")
            try:
                async with self.http.get(self.rest + "/health") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(healthy, 30, 0.1, "beacon never answered /health with 200")

    def signal(self, sig: int) -> None:
        assert self.proc is not None and self.proc.poll() is None
        os.kill(self.proc.pid, sig)

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        await eventually(lambda: self.proc.poll() is not None, timeout, 0.05, f"still running after {timeout}s")
        return self.proc.returncode

    async def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        assert await self.wait_exit(5) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)

    async def approve(self, thread_id: str, interrupt_id: str | None = None) -> None:
        body: dict[str, Any] = {"decision": "approve"}
        if interrupt_id is not None:
            body["interrupt_id"] = interrupt_id
        status, answer = await self.call("POST", f"/approve/{thread_id}", body)
        assert status == 200, answer

    async def logs(self, thread_id: str) -> list[dict[str, Any]]:
        status, body = await self.call("GET", f"/admin/runs/{thread_id}/logs?limit=10000")
        assert status == 200, body
        assert body["next_after"] is None
        return list(body["lines"])

    async def wait_log(self, thread_id: str, text: str, timeout: float) -> None:
        async def seen() -> bool:
            return any(line["text"] == text for line in await self.logs(thread_id))

        await eventually(seen, timeout, 0.05, f"{text!r} never appeared in the log of {thread_id}")


@pytest.fixture
async def beacon_proc(tmp_path: Path) -> AsyncIterator[BeaconProcess]:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout, headers=AUTH_HEADER) as http:
        process = BeaconProcess(tmp_path, http)
        try:
            yield process
        finally:
            process.stop()
            # Shown by pytest only when the test fails.
            for path in process.outputs:
                with contextlib.suppress(OSError):
                    print(f"--- {path.name} ---\n{path.read_text(errors='replace')}")


def assert_whole_log(lines: list[dict[str, Any]]) -> Counter[str]:
    """Seqs 1..n without gaps or duplicates; returns how often each text occurs."""
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    return Counter(line["text"] for line in lines)


async def test_r1_kill9_mid_run_resumes_and_completes(beacon_proc: BeaconProcess) -> None:
    await beacon_proc.launch()
    thread_id = await beacon_proc.start("deploy", {"step_delay": 2, "lines_per_step": 4})
    await beacon_proc.wait_status(thread_id, "waiting_approval")
    await beacon_proc.approve(thread_id)
    await beacon_proc.wait_log(thread_id, "step migrate started", timeout=15)
    await beacon_proc.kill9()

    await beacon_proc.launch()
    restarted = await beacon_proc.status(thread_id)  # 200, from the last checkpoint
    assert restarted["status"] == "running", restarted
    assert restarted["checkpoint_id"]
    assert restarted["values"]["done"][:2] == ["build", "test"], restarted["values"]
    done = await beacon_proc.wait_status(thread_id, "completed", timeout=30)
    assert done["values"]["done"] == STEPS

    texts = assert_whole_log(await beacon_proc.logs(thread_id))
    assert texts["step build started"] == 1
    assert texts["step test started"] == 1
    assert 1 <= texts["step migrate started"] <= 2
    assert texts["step rollout started"] == texts["step verify started"] == 1
    assert texts["run completed"] == 1


async def test_r2_kill9_while_waiting_keeps_the_approval(beacon_proc: BeaconProcess) -> None:
    await beacon_proc.launch()
    thread_id = await beacon_proc.start("review", {"topic": "kill -9", "delay": 0.05})
    before = await beacon_proc.wait_status(thread_id, "waiting_approval")
    [pending] = before["pending"]
    await beacon_proc.kill9()

    await beacon_proc.launch()
    after = await beacon_proc.status(thread_id)
    assert after["status"] == "waiting_approval"
    assert after["pending"] == [pending]
    assert after["checkpoint_id"] == before["checkpoint_id"]
    await beacon_proc.approve(thread_id, pending["interrupt_id"])
    done = await beacon_proc.wait_status(thread_id, "completed")
    assert done["values"]["published"] is True
    texts = assert_whole_log(await beacon_proc.logs(thread_id))
    assert texts["Drafting revision 1 about 'kill -9'"] == 1
    assert texts["Published revision 1 of 'kill -9'"] == 1


async def test_r2_acknowledged_approval_survives_kill9(beacon_proc: BeaconProcess) -> None:
    """`kill -9` right after `/approve` answered 200: the decision is not lost (nor asked again)."""
    await beacon_proc.launch()
    thread_id = await beacon_proc.start("review", {"topic": "ack", "delay": 0.05})
    [pending] = (await beacon_proc.wait_status(thread_id, "waiting_approval"))["pending"]
    await beacon_proc.approve(thread_id, pending["interrupt_id"])
    await beacon_proc.kill9()

    await beacon_proc.launch()
    done = await beacon_proc.wait_status(thread_id, "completed")
    assert done["values"]["published"] is True
    assert [d["interrupt_id"] for d in done["decisions"]] == [pending["interrupt_id"]]
    texts = assert_whole_log(await beacon_proc.logs(thread_id))
    assert texts["waiting for approval"] == 1


async def test_r7_sigterm_stops_within_grace_and_run_resumes(beacon_proc: BeaconProcess) -> None:
    grace = "2"
    await beacon_proc.launch("--grace-period", grace)
    thread_id = await beacon_proc.start("deploy", {"step_delay": 3, "lines_per_step": 3})
    await beacon_proc.wait_status(thread_id, "waiting_approval")
    await beacon_proc.approve(thread_id)

    # SIGTERM with 1 s of `build` left: the step reaches its checkpoint within the grace period.
    await beacon_proc.wait_log(thread_id, "build: 2/3", timeout=10)
    beacon_proc.signal(signal.SIGTERM)
    assert await beacon_proc.wait_exit(2 + 5) == 0
    await beacon_proc.launch("--grace-period", grace)
    restarted = await beacon_proc.status(thread_id)
    assert restarted["status"] == "running", restarted
    assert restarted["values"]["done"] == ["build"], restarted["values"]

    # SIGTERM as `migrate` starts: it outlasts the grace period, is cancelled and runs again.
    await beacon_proc.wait_log(thread_id, "step migrate started", timeout=10)
    beacon_proc.signal(signal.SIGTERM)
    assert await beacon_proc.wait_exit(2 + 5) == 0
    await beacon_proc.launch("--grace-period", grace)
    restarted = await beacon_proc.status(thread_id)
    assert restarted["status"] == "running", restarted
    assert restarted["values"]["done"] == ["build", "test"], restarted["values"]

    done = await beacon_proc.wait_status(thread_id, "completed", timeout=30)
    assert done["values"]["done"] == STEPS
    texts = assert_whole_log(await beacon_proc.logs(thread_id))
    started = {step: texts[f"step {step} started"] for step in STEPS}
    assert started == {"build": 1, "test": 1, "migrate": 2, "rollout": 1, "verify": 1}
    assert all(texts[f"step {step} done"] == 1 for step in STEPS), texts
    assert texts["run completed"] == 1
