"""The Agent Server API across REST nodes (issue 13): Redis + Postgres + two `python run.py rest`
processes serving tests/graphs/langgraph.json, behind nginx running deploy/nginx.conf (the
helpers of test_cluster.py). A run executes on the node that took its create; its stream is
joined on the other node, directly and through nginx; an idle stream outlives nginx's
proxy_read_timeout on Beacon's heartbeats.

The rendered config differs from deploy/nginx.conf in two ways, both for time's sake:
proxy_read_timeout is READ_TIMEOUT (just above Beacon's 10 s heartbeat) instead of 60 s, and one
extra location, /short/, proxies like /api/ with a read timeout below the heartbeat: the
control showing that nginx does cut an idle stream, so that the heartbeats are what keep the
other one open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import AUTH_HEADER, ROOT, TOKEN, eventually, free_port
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from servers import PostgresServer, RedisServer
from test_cluster import NGINX_CONF, Nginx, Node, Proc, beacon_env, http_json, nginx_binary, render_nginx, wait_ready

from app.runs.streams import HEARTBEAT

GRAPHS = ROOT / "tests" / "graphs" / "langgraph.json"
READ_TIMEOUT = HEARTBEAT + 1.5  # nginx's proxy_read_timeout here: passed only by a stream kept alive
SHORT_TIMEOUT = 4.0  # /short/'s: below the heartbeat, so an idle stream there is cut


@dataclass
class AgentCluster:
    rest: list[Node]
    nginx: Nginx
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def procs(self) -> list[Proc]:
        return [n.proc for n in self.rest] + [self.nginx]


def render(prefix: Path, port: int, rest: list[int]) -> str:
    # No realtime nodes: their upstream names ports nothing listens on (these tests use none).
    text = render_nginx(NGINX_CONF.read_text(), prefix, port, rest, [free_port(), free_port()])
    text, n = re.subn(r"proxy_read_timeout \d+s;", f"proxy_read_timeout {round(READ_TIMEOUT * 1000)}ms;", text)
    assert n == 1, "expected one proxy_read_timeout in deploy/nginx.conf"
    short = (
        "location /short/ {\n"
        "            proxy_pass http://beacon_rest/;\n"
        f"            proxy_read_timeout {round(SHORT_TIMEOUT * 1000)}ms;\n"
        "        }\n\n        "
    )
    text, n = re.subn(r"location / \{", lambda m: short + m.group(0), text)
    assert n == 1, "expected one `location / {`"
    return text


@pytest.fixture(scope="module")
def agent_cluster(redis_server: RedisServer, postgres_server: PostgresServer) -> Iterator[AgentCluster]:
    binary = nginx_binary()
    prefix = Path(tempfile.mkdtemp(prefix="beacon-agent-cluster-"))  # not 0700: nginx's workers read it
    prefix.chmod(0o755)
    (prefix / "temp").mkdir()
    port = free_port()
    env = beacon_env(redis_server.url, postgres_server.create_database(), f"http://127.0.0.1:{port}")
    env["BEACON_GRAPHS_CONFIG"] = str(GRAPHS)
    rest = [
        Node(Proc(f"rest-{i}", [sys.executable, "run.py", "rest", "--rest-port", str(p)], env, prefix), p, "rest")
        for i, p in enumerate((free_port(), free_port()))
    ]
    conf = prefix / "nginx.conf"
    conf.write_text(render(prefix, port, [n.port for n in rest]))
    flags = f"daemon off; pid {prefix}/nginx.pid; error_log stderr;"
    nginx = Nginx(
        "nginx", [binary, "-e", "stderr", "-c", str(conf), "-p", str(prefix), "-g", flags], dict(os.environ), prefix
    )
    made = AgentCluster(rest, nginx, port)
    try:
        check = subprocess.run(
            [*nginx.argv[:-2], "-t", "-g", f"pid {prefix}/nginx.pid;"], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, f"nginx -t rejects the rendered config:\n{check.stderr}"
        rest[0].proc.start()  # the second once the first has migrated the fresh database
        nginx.start()
        wait_ready(rest[0].ready, made.procs, rest[0].proc.name)
        rest[1].proc.start()
        wait_ready(rest[1].ready, made.procs, rest[1].proc.name)
        wait_ready(lambda: http_json(made.base + "/api/health")[0] == 200, made.procs, "nginx")
        yield made
    finally:
        nginx.stop()
        for node in rest:
            node.proc.kill9()
        shutil.rmtree(prefix, ignore_errors=True)


@pytest.fixture
async def cl(agent_cluster: AgentCluster) -> AsyncIterator[AgentCluster]:
    for node in agent_cluster.rest:
        assert node.proc.alive, f"{node.proc.name} died: {node.proc.output()[-3000:]}"
    marks = {p.name: p.size() for p in agent_cluster.procs}
    access = agent_cluster.nginx.log.parent / "access.log"
    access_mark = access.stat().st_size if access.exists() else 0
    yield agent_cluster
    # Shown by pytest only when the test failed.
    for p in agent_cluster.procs:
        print(f"--- {p.name} ---\n{p.output(marks[p.name])[-20000:]}")
    with contextlib.suppress(OSError), access.open("rb") as f:
        f.seek(access_mark)
        print(f"--- nginx access.log ---\n{f.read().decode(errors='replace')[-20000:]}")


@contextlib.asynccontextmanager
async def clients(*urls: str) -> AsyncIterator[list[LangGraphClient]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(get_client(url=u, api_key=TOKEN)) for u in urls]


async def timed(stream: AsyncIterator[Any], limit: int | None = None) -> list[tuple[str, Any, int, float]]:
    """(event, data, id, arrival time) of each part; the first `limit` only, then the stream is closed."""
    got: list[tuple[str, Any, int, float]] = []
    async for p in stream:
        got.append((p.event, p.data, int(p.id), time.monotonic()))
        if limit is not None and len(got) == limit:
            break
    with contextlib.suppress(Exception):
        await stream.aclose()  # type: ignore[attr-defined]
    return got


def untimed(parts: list[tuple[str, Any, int, float]]) -> list[tuple[str, Any, int]]:
    return [(e, d, i) for e, d, i, _ in parts]


async def active_tasks(http: aiohttp.ClientSession, node: Node) -> int:
    async with http.get(node.url + "/admin/stats") as resp:
        assert resp.status == 200, await resp.text()
        return int((await resp.json())["active_tasks"])


async def test_a_run_executing_on_one_node_streams_on_the_other(cl: AgentCluster) -> None:
    a, b = cl.rest
    steps, delay, k = 8, 0.3, 6
    async with (
        clients(a.url, b.url, cl.base + "/api") as (on_a, on_b, via_nginx),
        aiohttp.ClientSession(headers=AUTH_HEADER, timeout=aiohttp.ClientTimeout(total=15)) as http,
    ):
        tid = (await on_a.threads.create())["thread_id"]
        run = await on_a.runs.create(
            tid, "ticks", input={"steps": steps, "delay": delay}, stream_mode=["values", "updates", "custom"]
        )
        rid = run["run_id"]

        async def where() -> tuple[int, int]:
            # While it runs: on A (which took the create), not on B.
            async def running_on_a() -> tuple[int, int] | None:
                counts = (await active_tasks(http, a), await active_tasks(http, b))
                return counts if counts[0] else None

            counts = await eventually(running_on_a, 10, 0.02, "the run never showed up in A's active tasks")
            return counts

        joins = asyncio.gather(
            timed(on_b.runs.join_stream(tid, rid, last_event_id="-1")),
            timed(via_nginx.runs.join_stream(tid, rid, last_event_id="-1")),
            timed(on_a.runs.join_stream(tid, rid, last_event_id="-1"), limit=k),
            where(),
        )
        on_b_parts, nginx_parts, first_on_a, (on_a_tasks, on_b_tasks) = await asyncio.wait_for(joins, 30)
        assert (on_a_tasks, on_b_tasks) == (1, 0)
        # The rest of what A's reader saw first, from B, after its last event id.
        rest_on_b = await asyncio.wait_for(timed(on_b.runs.join_stream(tid, rid, last_event_id=str(k))), 15)
        assert (await on_b.runs.get(tid, rid))["status"] == "success"
        replay = untimed(await timed(on_a.runs.join_stream(tid, rid, last_event_id="-1")))

    events = [e for e, _, _ in replay]
    assert events[0] == "metadata" and events[-1] == "end", events
    assert [i for _, _, i in replay] == list(range(1, len(replay) + 1))
    assert [d for e, d, _ in replay if e == "custom"] == [{"tick": i} for i in range(steps)]
    assert [d["ticks"] for e, d, _ in replay if e == "values"][-1] == list(range(steps))
    # Each join: every event exactly once, in order, ending with `end`.
    assert untimed(on_b_parts) == replay
    assert untimed(nginx_parts) == replay
    assert untimed(first_on_a) + untimed(rest_on_b) == replay
    # B's join followed the run live (over the bus), not in one read after it ended.
    spread = on_b_parts[-1][3] - on_b_parts[0][3]
    assert spread > (steps - 3) * delay, f"B's events arrived within {spread:.2f}s"


async def sse(http: aiohttp.ClientSession, url: str, seconds: float) -> dict[str, Any]:
    """GET an SSE stream raw, to its end (or `seconds`): its parts and comments with arrival times,
    and how it ended."""
    started = time.monotonic()
    events: list[tuple[str, float]] = []
    comments: list[float] = []
    ended = "eof"
    try:
        async with http.get(url, headers={"Last-Event-ID": "-1"}, timeout=aiohttp.ClientTimeout(total=seconds)) as resp:
            assert resp.status == 200, await resp.text()
            headers = dict(resp.headers)
            async for raw in resp.content:
                line = raw.decode().rstrip("\n")
                if line.startswith(":"):
                    comments.append(time.monotonic() - started)
                elif line.startswith("event: "):
                    events.append((line[len("event: ") :], time.monotonic() - started))
    except aiohttp.ClientPayloadError as exc:
        ended = f"cut: {exc!r}"
    return {
        "events": events,
        "comments": comments,
        "ended": ended,
        "open": time.monotonic() - started,
        "headers": headers,
    }


async def test_an_idle_stream_outlives_nginx_read_timeout_on_heartbeats(cl: AgentCluster) -> None:
    delay = READ_TIMEOUT + 3  # the run's one step: no event for longer than nginx waits
    async with (
        clients(cl.base + "/api") as (client,),
        aiohttp.ClientSession(headers={"x-api-key": TOKEN}) as http,
    ):
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(
            tid, "ticks", input={"steps": 1, "delay": delay}, stream_mode=["values", "custom"]
        )
        path = f"/threads/{tid}/runs/{run['run_id']}/stream"
        kept, cut = await asyncio.gather(
            sse(http, cl.base + path, delay + 20), sse(http, cl.base + "/short" + path, delay + 20)
        )
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"

    # Through `location /` (proxy_read_timeout READ_TIMEOUT): the whole run, though it was quiet
    # for longer than that, and each event as it came (X-Accel-Buffering: no).
    names = [e for e, _ in kept["events"]]
    assert names[0] == "metadata" and names[-1] == "end" and names.count("end") == 1, kept
    assert kept["ended"] == "eof", kept
    assert kept["headers"]["Content-Type"].startswith("text/event-stream"), kept["headers"]
    assert "X-Accel-Buffering" not in kept["headers"]  # consumed by nginx
    assert kept["events"][0][1] < 3, f"the first event waited for the run: {kept['events']}"
    assert kept["events"][-1][1] > READ_TIMEOUT and kept["open"] > READ_TIMEOUT, kept
    assert kept["comments"], f"no heartbeat in {kept['open']:.1f}s"
    times = sorted([t for _, t in kept["events"]] + kept["comments"])
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert max(gaps) < READ_TIMEOUT, (gaps, kept)
    # Through /short/ (below the heartbeat): nginx cuts it while it is idle, before its end.
    assert "end" not in [e for e, _ in cut["events"]], cut
    assert cut["events"] and SHORT_TIMEOUT - 0.5 < cut["open"] < HEARTBEAT + 2, cut


async def test_a_run_whose_node_dies_is_taken_over_and_its_stream_continues(cl: AgentCluster) -> None:
    """Last in the module: it kills node A (and starts it again after)."""
    a, b = cl.rest
    async with (
        clients(a.url, b.url) as (on_a, on_b),
        aiohttp.ClientSession(headers=AUTH_HEADER, timeout=aiohttp.ClientTimeout(total=15)) as http,
    ):
        tid = (await on_a.threads.create())["thread_id"]
        run = await on_a.runs.create(tid, "ticks", input={"steps": 12, "delay": 0.5}, stream_mode=["updates"])
        rid = run["run_id"]

        async def on_a_only() -> bool:
            return (await active_tasks(http, a), await active_tasks(http, b)) == (1, 0)

        await eventually(on_a_only, 10, 0.02, "the run never ran on A alone")
        first = untimed(await asyncio.wait_for(timed(on_b.runs.join_stream(tid, rid, last_event_id="-1"), limit=4), 15))
        a.proc.kill9()  # mid-run: its lease lapses, B's resume scan takes the run over
        try:
            rest = untimed(
                await asyncio.wait_for(timed(on_b.runs.join_stream(tid, rid, last_event_id=str(first[-1][2]))), 60)
            )
            assert (await on_b.runs.get(tid, rid))["status"] == "success"
            replay = untimed(await timed(on_b.runs.join_stream(tid, rid, last_event_id="-1")))
            state = await on_b.threads.get_state(tid)
        finally:
            a.proc.start()
            wait_ready(a.ready, cl.procs, a.proc.name)
    assert first + rest == replay  # nothing lost or doubled across the node's death
    assert [i for _, _, i in replay] == list(range(1, len(replay) + 1))
    assert [d["attempt"] for e, d, _ in replay if e == "metadata"] == [1, 2]
    assert replay[-1][0] == "end"
    assert state["values"]["ticks"] == list(range(12))  # every step once: the survivor went on from A's checkpoint
