"""The flow scenario's load generator: one process of HTTP clients, each running flows one after another.

A flow is start → wait for the interrupt → approve → completed, over one of two APIs:

- `beacon`: `POST /start`, `GET /status/{id}` every `poll` s until `waiting_approval`, `POST /approve/{id}`,
  `GET /status/{id}` until `completed`;
- `agent`: the Agent Server API as `langgraph_sdk`'s `runs.wait` sends it: `POST /threads`, then
  `POST /threads/{id}/runs/wait` with the input (answers with `__interrupt__`), then again with
  `command.resume` (answers with the final values).

The parent starts the process, waits for "ready", sends "go" when it has read the servers' CPU, and
gets back every flow's latency, the errors and this process's own CPU over the active window.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp


class FlowError(Exception):
    """A flow that did not go start → waiting → completed."""


async def _json(resp: aiohttp.ClientResponse, want: int, what: str) -> Any:
    body = await resp.json(content_type=None)
    if resp.status != want:
        raise FlowError(f"{what}: {resp.status} {str(body)[:200]}")
    return body


async def _until(http: aiohttp.ClientSession, base: str, tid: str, want: str, poll: float) -> int:
    """GET /status every `poll` s until the run is `want`; the number of requests it took."""
    for n in range(1, 1_000_000):
        await asyncio.sleep(poll)
        async with http.get(f"{base}/status/{tid}") as resp:
            status = (await _json(resp, 200, "GET /status"))["status"]
        if status == want:
            return n
        if status != "running":
            raise FlowError(f"thread {tid} is {status}, waiting for {want}")
    raise FlowError("never")


async def beacon_flow(http: aiohttp.ClientSession, base: str, i: int, poll: float) -> int:
    async with http.post(f"{base}/start", json={"workflow": "flow", "input": {"topic": f"flow {i}"}}) as resp:
        tid = (await _json(resp, 202, "POST /start"))["thread_id"]
    polls = await _until(http, base, tid, "waiting_approval", poll)
    async with http.post(f"{base}/approve/{tid}", json={"decision": "approve"}) as resp:
        await _json(resp, 200, "POST /approve")
    return polls + await _until(http, base, tid, "completed", poll)


async def agent_flow(http: aiohttp.ClientSession, base: str, i: int, poll: float) -> int:
    async with http.post(f"{base}/threads", json={}) as resp:
        tid = (await _json(resp, 200, "POST /threads"))["thread_id"]
    wait = f"{base}/threads/{tid}/runs/wait"
    async with http.post(wait, json={"assistant_id": "flow", "input": {"topic": f"flow {i}"}}) as resp:
        body = await _json(resp, 200, "runs/wait (input)")
    if not body.get("__interrupt__"):
        raise FlowError(f"runs/wait (input) did not stop at the interrupt: {str(body)[:200]}")
    resume = {"assistant_id": "flow", "command": {"resume": {"decision": "approve"}}}
    async with http.post(wait, json=resume) as resp:
        body = await _json(resp, 200, "runs/wait (resume)")
    if body.get("done") is not True:
        raise FlowError(f"runs/wait (resume) did not finish the flow: {str(body)[:200]}")
    return 0


FLOWS = {"beacon": beacon_flow, "agent": agent_flow}


async def _flows(spec: dict[str, Any], go: asyncio.Future[None]) -> dict[str, Any]:
    flow = FLOWS[spec["api"]]
    headers = {"authorization": f"Bearer {spec['token']}"} if spec["token"] else {}
    latencies: list[float] = []
    errors: list[str] = []
    polls = 0
    timeout = aiohttp.ClientTimeout(total=spec["timeout"])
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as http:
        await go
        deadline = time.monotonic() + spec["timeout"]

        async def client(c: int) -> None:
            nonlocal polls
            for k in range(spec["flows"]):
                if time.monotonic() > deadline:
                    errors.append("run deadline reached: flows left unstarted")
                    return
                began = time.perf_counter()
                try:
                    n = await flow(http, spec["base"], c * 1000 + k, spec["poll"])
                except (FlowError, aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    continue
                latencies.append(time.perf_counter() - began)
                polls += n  # after the await: `polls += await ...` would read polls before it, and lose others' counts

        t0, cpu0 = time.time(), time.process_time()
        await asyncio.gather(*(client(spec["first_client"] + c) for c in range(spec["clients"])))
        t1, cpu1 = time.time(), time.process_time()
    return {
        "latencies": latencies,
        "errors": len(errors),
        "error_samples": errors[:5],
        "polls": polls,
        "t_start": t0,
        "t_end": t1,
        "cpu_s": cpu1 - cpu0,
    }


async def _status(spec: dict[str, Any], go: asyncio.Future[None]) -> dict[str, Any]:
    """`requests` GETs of one thread's /status, `concurrency` at a time."""
    headers = {"authorization": f"Bearer {spec['token']}"}
    url, left, bad = f"{spec['base']}/status/{spec['thread_id']}", spec["requests"], 0
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=spec["timeout"])) as http:
        await go

        async def worker() -> None:
            nonlocal left, bad
            while left > 0:
                left -= 1
                async with http.get(url) as resp:
                    await resp.read()
                    bad += resp.status != 200

        t0, cpu0 = time.time(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
        t1, cpu1 = time.time(), time.process_time()
    return {"requests": spec["requests"], "unexpected_status": bad, "t_start": t0, "t_end": t1, "cpu_s": cpu1 - cpu0}


def main(conn: Any, spec: dict[str, Any]) -> None:
    """Process entry: "ready" once the session is up, wait for "go", run, send the result back."""
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop

    async def run() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        go: asyncio.Future[None] = loop.create_future()
        job = asyncio.ensure_future((_status if spec["api"] == "status" else _flows)(spec, go))
        await asyncio.sleep(0)
        conn.send("ready")
        await loop.run_in_executor(None, conn.recv)
        go.set_result(None)
        return await job

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            conn.send(runner.run(run()))
    except Exception as exc:
        conn.send({"error": repr(exc)})
