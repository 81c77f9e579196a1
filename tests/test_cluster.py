"""Beacon at scale (issue 3; TESTPLAN D2, D10): Redis + Postgres + 2 REST + 2 realtime processes
(`python run.py rest|realtime`) behind nginx running deploy/nginx.conf — every part a real process
on a free loopback port, killed by PID.

Clients connect through nginx, which picks a realtime node by the `beacon_sticky` cookie (see the
config). Each test client holds its own key in its cookie jar, and the test learns which node took
it from the nodes' `/stats`. Every process's output and nginx's access log (with the upstream that
answered each request) are printed when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import engineio.payload
import pytest
import socketio
from conftest import AUTH_HEADER, ROOT, TOKEN, TOKEN_ENTRY, eventually, free_port, need_binary
from servers import PostgresServer, RedisServer, _children
from yarl import URL

from app.names import ADMIN_CHANNEL, LOGS_CHANNEL

NGINX_CONF = ROOT / "deploy" / "nginx.conf"
# Variables of ours that would override the children's configuration.
CONFIG_ENV = ("REST_API_", "SOCKETIO_", "PUBSUB_URL", "STORE_URL", "BEACON_")
START_TIMEOUT = 60.0


# -- processes -------------------------------------------------------------------------------


class Proc:
    """One child process; stdout and stderr appended to `<dir>/<name>.log` across restarts."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """`kill -9` by PID and reap."""
        if self.alive:
            os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def output(self, since: int = 0) -> str:
        with contextlib.suppress(OSError), self.log.open("rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")
        return ""

    def size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0


class Nginx(Proc):
    def stop(self) -> None:
        """SIGTERM to the master (fast shutdown); SIGKILL to it and its workers if that stalls."""
        if not self.alive:
            return
        workers = _children(self.pid)
        os.kill(self.pid, signal.SIGTERM)
        try:
            assert self.proc is not None
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            workers += _children(self.pid)
            self.kill9()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def nginx_binary() -> str:
    """nginx lives in /usr/sbin on Debian, which a non-root PATH may lack."""
    sbin = Path("/usr/sbin/nginx")
    if not shutil.which("nginx") and sbin.is_file() and os.access(sbin, os.X_OK):
        return str(sbin)
    return need_binary("nginx")


def http_json(url: str, timeout: float = 1.0) -> tuple[int, Any]:
    """Blocking GET for start-up waits (no event loop yet); (0, None) when nothing answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=AUTH_HEADER), timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def wait_ready(check: Callable[[], bool], procs: list[Proc], what: str, timeout: float = START_TIMEOUT) -> None:
    """Poll `check` (bounded); a child that exits meanwhile fails at once with its output."""
    deadline = time.monotonic() + timeout
    while not check():
        for p in procs:
            if p.proc is not None and not p.alive:
                raise RuntimeError(f"{p.name} exited during start-up:\n{p.output()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name} ---\n{p.output()[-3000:]}" for p in procs)
            raise RuntimeError(f"{what} not ready within {timeout}s\n{logs}")
        time.sleep(0.05)


@dataclass
class Node:
    proc: Proc
    port: int
    kind: str  # "rest" or "realtime"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        if self.kind == "rest":
            return http_json(self.url + "/health")[0] == 200
        status, stats = http_json(self.url + "/stats")
        if status != 200:
            return False
        bus = stats["bus"]  # listening on both channels, or lines published now would miss it
        return bool(bus.get("connected")) and {LOGS_CHANNEL, ADMIN_CHANNEL} <= set(bus.get("channels", ()))


def render_nginx(text: str, prefix: Path, port: int, rest: list[int], realtime: list[int]) -> str:
    """deploy/nginx.conf with this test's addresses: its upstream `server` lines, a loopback
    `listen`, the access log and nginx's temp files under `prefix`. Fails loudly if the file no
    longer has the lines this relies on."""

    def upstream(text: str, name: str, ports: list[int]) -> str:
        match = re.search(r"upstream " + name + r" \{.*?\n    \}", text, re.S)
        assert match, f"no `upstream {name}` block in {NGINX_CONF}"
        found = re.findall(r"server 127\.0\.0\.1:\d+", match.group(0))
        assert len(found) == len(ports), f"upstream {name} should list {len(ports)} servers: {found}"
        it = iter(ports)
        block = re.sub(r"server 127\.0\.0\.1:\d+", lambda _: f"server 127.0.0.1:{next(it)}", match.group(0))
        return text[: match.start()] + block + text[match.end() :]

    text = upstream(text, "beacon_rest", rest)
    text = upstream(text, "beacon_realtime", realtime)
    text, n = re.subn(r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{port};", text, flags=re.M)
    assert n == 1, "expected one `listen 80;`"
    text, n = re.subn(r"access_log \S+", f"access_log {prefix}/access.log", text)
    assert n == 1, "expected one access_log"
    temp = "".join(
        f"\n    {kind}_temp_path {prefix}/temp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text, n = re.subn(r"^http \{", "http {" + temp, text, flags=re.M)
    assert n == 1
    return text


@dataclass
class Cluster:
    rest: list[Node]
    realtime: list[Node]
    nginx: Nginx
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def procs(self) -> list[Proc]:
        return [n.proc for n in self.rest + self.realtime] + [self.nginx]


def beacon_env(redis_url: str, store_url: str, origin: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_ENV)}
    env.update(
        PYTHONUNBUFFERED="1",
        PUBSUB_URL=redis_url,
        STORE_URL=store_url,
        SOCKETIO_CORS_ORIGINS=origin,  # what a browser on the nginx origin sends as Origin
        BEACON_AUTH_TOKENS=TOKEN_ENTRY,  # the same tokens on every node
        BEACON_RUNS_GRACE_PERIOD="1",
        # A client whose close packet never left it (seen on a loaded machine: the polling client
        # closed its session before posting it) is dropped by the ping check, within 10 s.
        BEACON_REALTIME_PING_INTERVAL="5",
        BEACON_REALTIME_PING_TIMEOUT="5",
    )
    return env


@pytest.fixture(scope="module")
def cluster(redis_server: RedisServer, postgres_server: PostgresServer) -> Iterator[Cluster]:
    binary = nginx_binary()
    # Not under pytest's tmp dirs (0700): as root, nginx's workers run as nobody and need the
    # temp dirs it creates here.
    prefix = Path(tempfile.mkdtemp(prefix="beacon-cluster-"))
    prefix.chmod(0o755)
    (prefix / "temp").mkdir()
    port = free_port()
    env = beacon_env(redis_server.url, postgres_server.create_database(), f"http://127.0.0.1:{port}")
    py = [sys.executable, "run.py"]
    rest = [
        Node(Proc(f"rest-{i}", [*py, "rest", "--rest-port", str(p)], env, prefix), p, "rest")
        for i, p in enumerate((free_port(), free_port()))
    ]
    realtime = [
        Node(Proc(f"realtime-{i}", [*py, "realtime", "--socketio-port", str(p)], env, prefix), p, "realtime")
        for i, p in enumerate((free_port(), free_port()))
    ]
    conf = prefix / "nginx.conf"
    conf.write_text(
        render_nginx(NGINX_CONF.read_text(), prefix, port, [n.port for n in rest], [n.port for n in realtime])
    )
    flags = f"daemon off; pid {prefix}/nginx.pid; error_log stderr;"
    nginx = Nginx(
        "nginx", [binary, "-e", "stderr", "-c", str(conf), "-p", str(prefix), "-g", flags], dict(os.environ), prefix
    )
    made = Cluster(rest, realtime, nginx, port)
    try:
        check = subprocess.run(
            [*nginx.argv[:-2], "-t", "-g", f"pid {prefix}/nginx.pid;"], capture_output=True, text=True
        )
        assert check.returncode == 0, f"nginx -t rejects the rendered config:\n{check.stderr}"
        # The second REST node once the first has migrated the fresh database; starting them
        # together is test_rest_nodes_start_together_on_a_fresh_database's business.
        for node in [rest[0], *realtime]:
            node.proc.start()
        nginx.start()
        wait_ready(rest[0].ready, made.procs, rest[0].proc.name)
        rest[1].proc.start()
        for node in [*realtime, rest[1]]:
            wait_ready(node.ready, made.procs, node.proc.name)
        wait_ready(lambda: http_json(made.base + "/api/health")[0] == 200, made.procs, "nginx")
        yield made
    finally:
        nginx.stop()
        for node in rest + realtime:
            node.proc.kill9()
        shutil.rmtree(prefix, ignore_errors=True)


# -- per test: HTTP session, revived nodes, logs on failure ---------------------------------


@dataclass
class Harness:
    cluster: Cluster
    http: aiohttp.ClientSession
    clients: list[Client] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.cluster.base

    async def call(self, url: str, method: str = "GET", json: Any = None, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(method, url, json=json, **kw) as resp:
            return resp.status, await resp.json(content_type=None)

    async def start(self, node: Node | str, workflow: str, input: dict[str, Any], thread_id: str) -> None:
        base = node if isinstance(node, str) else node.url
        status, body = await self.call(
            base + "/start", "POST", {"workflow": workflow, "input": input, "thread_id": thread_id}
        )
        assert status == 202, body

    async def status(self, base: str, thread_id: str) -> dict[str, Any]:
        status, body = await self.call(f"{base}/status/{thread_id}")
        assert status == 200, body
        return dict(body)

    async def wait_status(self, base: str, thread_id: str, wanted: str, timeout: float = 20) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            body = await self.status(base, thread_id)
            return body if body["status"] == wanted else None

        return dict(await eventually(check, timeout, 0.1, f"{thread_id} never reached {wanted} (asked {base})"))

    async def logs(self, base: str, thread_id: str) -> list[dict[str, Any]]:
        status, body = await self.call(f"{base}/admin/runs/{thread_id}/logs?limit=10000")
        assert status == 200, body
        return list(body["lines"])

    async def stats(self, node: Node) -> dict[str, Any]:
        status, body = await self.call(node.url + ("/stats" if node.kind == "realtime" else "/admin/stats"))
        assert status == 200, body
        return dict(body)

    async def log_connections(self) -> list[int]:
        return [(await self.stats(n))["namespaces"]["/logs"]["connections"] for n in self.cluster.realtime]

    async def place(self, client: Client) -> int:
        """Connect `client` through nginx; the index of the realtime node that took it."""
        before = await self.log_connections()
        self.clients.append(client)  # closed by the fixture, even if connecting fails
        await client.connect(self.base)

        async def moved() -> list[int] | None:
            now = await self.log_connections()
            return now if sum(now) == sum(before) + 1 else None

        after = await eventually(moved, 10, 0.02, f"{client.key} never showed up in a node's /stats")
        client.node = next(i for i, (a, b) in enumerate(zip(after, before, strict=True)) if a == b + 1)
        if client.follow is not None:
            await eventually(lambda: client.rounds >= 1, 10, 0.02, f"{client.key} never subscribed")
        return client.node

    async def spread(self, make: Callable[[str], Client], per_node: int) -> list[Client]:
        """Connect clients with fresh sticky keys until each realtime node holds `per_node`."""
        kept: list[Client] = []
        for attempt in range(60):
            have = [sum(1 for c in kept if c.node == i) for i in range(len(self.cluster.realtime))]
            if min(have) >= per_node:
                return kept
            client = make(f"k{attempt}-{uuid.uuid4().hex[:8]}")
            node = await self.place(client)
            if have[node] < per_node:
                kept.append(client)
            else:  # that node is full: let the key go
                await client.close()
                self.clients.remove(client)
                await eventually(self._settled, 20, 0.02, "a closed client stayed on its node")
        raise AssertionError(f"60 sticky keys never reached every node: {[c.node for c in kept]}")

    async def _settled(self) -> bool:
        return sum(await self.log_connections()) == len([c for c in self.clients if c.sio.connected])


async def revive(cluster: Cluster) -> None:
    """Restart what an earlier test killed, so every test starts with the whole cluster."""
    dead = [n for n in cluster.rest + cluster.realtime if not n.proc.alive]
    for node in dead:
        node.proc.start()
    for node in dead:
        await asyncio.to_thread(wait_ready, node.ready, cluster.procs, node.proc.name)
    if not cluster.nginx.alive:
        cluster.nginx.start()
        await asyncio.to_thread(
            wait_ready, lambda: http_json(cluster.base + "/api/health")[0] == 200, cluster.procs, "nginx"
        )
    for node in dead:
        if node.kind == "realtime":  # nginx skips a failed node for fail_timeout: wait until it routes there
            await asyncio.to_thread(
                wait_ready, lambda n=node: routed_to(cluster, n), cluster.procs, "nginx → " + node.proc.name
            )


def routed_to(cluster: Cluster, node: Node) -> bool:
    """Whether some sticky key now reaches `node` through nginx."""
    for i in range(16):
        request = urllib.request.Request(
            cluster.base + "/realtime/health", headers={**AUTH_HEADER, "Cookie": f"beacon_sticky=r{i}"}
        )
        with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(request, timeout=1) as resp:
            if json.loads(resp.read())["port"] == node.port:
                return True
    return False


@pytest.fixture
async def h(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    # python-engineio's client drops the connection ("Unexpected packet from server, aborting")
    # when one long-poll answer carries more than 16 packets — a guard meant for servers; the
    # browser's socket.io-client has none. A burst of log lines easily queues more than 16, so
    # our polling clients take what a browser would.
    monkeypatch.setattr(engineio.payload.Payload, "max_decode_packets", 100_000)
    await revive(cluster)
    marks = {p.name: p.size() for p in cluster.procs}
    access = Path(cluster.nginx.log.parent / "access.log")
    access_mark = access.stat().st_size if access.exists() else 0
    async with aiohttp.ClientSession(headers=AUTH_HEADER, timeout=aiohttp.ClientTimeout(total=15)) as http:
        harness = Harness(cluster, http)
        try:
            yield harness
        finally:
            for client in harness.clients:
                await client.close()
    # Shown by pytest only when the test failed.
    for p in cluster.procs:
        print(f"--- {p.name} (pid {p.proc.pid if p.proc else '-'}) ---\n{p.output(marks[p.name])[-20000:]}")
    with contextlib.suppress(OSError), access.open("rb") as f:
        f.seek(access_mark)
        print(f"--- nginx access.log ---\n{f.read().decode(errors='replace')[-20000:]}")


# -- Socket.IO clients through nginx ---------------------------------------------------------


class Client:
    """A python-socketio client through nginx, pinned to a node by its sticky cookie `key`.

    The cookie sits in the client's own cookie jar, as a browser holds it after loading the UI:
    python-engineio sends custom `headers` with the handshake only, not with the polls after it,
    so a `Cookie` header would pin the handshake and nothing else. `key=None`: no cookie at all
    (a script), which nginx keeps sticky by address.

    `follow=None`: the firehose. `follow=[…]`: connects with `auth.firehose = false` (so nothing
    reaches it between a reconnect and its resubscribe) and on every (re)connect subscribes each
    followed thread with `since` = the last seq it has. Every line received is recorded as it
    comes: the server's exactly-once, in-order promise is checked with no filtering in between.
    """

    def __init__(
        self,
        key: str | None,
        transport: str,
        follow: list[str] | None = None,
        *,
        admin: bool = False,
        reconnection: bool = False,
        headers: dict[str, str] | None = None,
        path: str = "socket.io",
    ) -> None:
        self.key, self.transport, self.follow, self.path = key, transport, follow, path
        self.headers = headers or {}
        # Its own session and cookie jar, like a browser tab; unsafe: keep cookies of IP hosts.
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.sio = socketio.AsyncClient(
            reconnection=reconnection, reconnection_delay=0.1, reconnection_delay_max=0.5, http_session=self.http
        )
        self.seqs: dict[str, list[int]] = defaultdict(list)
        self.admin: list[dict[str, Any]] = []
        self.acks: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.disconnects: list[str] = []
        self.connects = 0
        self.rounds = 0  # completed subscription rounds
        self.connected_at: list[float] = []
        self.subscribed_at: list[float] = []
        self.node = -1
        self._tasks: set[asyncio.Task[None]] = set()
        self.namespaces = ["/logs", "/admin"] if admin else ["/logs"]
        self.sio.on("log", self._on_log, namespace="/logs")
        self.sio.on("connect", self._on_connect, namespace="/logs")
        self.sio.on("disconnect", self._on_disconnect, namespace="/logs")
        if admin:
            self.sio.on("admin_event", self.admin.append, namespace="/admin")

    async def connect(self, base: str) -> None:
        if self.key is not None:
            self.http.cookie_jar.update_cookies({"beacon_sticky": self.key}, URL(base))
        await self.sio.connect(
            base,
            namespaces=self.namespaces,
            transports=[self.transport],
            headers=self.headers,
            auth={"token": TOKEN} if self.follow is None else {"token": TOKEN, "firehose": False},
            socketio_path=self.path,
            wait_timeout=10,
        )

    def _on_log(self, line: dict[str, Any]) -> None:
        self.seqs[line["thread_id"]].append(line["seq"])

    def _on_connect(self) -> None:
        self.connects += 1
        self.connected_at.append(time.monotonic())
        if self.follow is not None:
            task = asyncio.get_running_loop().create_task(self._subscribe_all())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_disconnect(self, reason: Any = None) -> None:
        self.disconnects.append(str(reason))

    async def _subscribe_all(self) -> None:
        assert self.follow is not None
        try:
            for thread_id in self.follow:
                have = self.seqs.get(thread_id)
                ack = await self.sio.call(
                    "subscribe",
                    {"thread_id": thread_id, "since": have[-1] if have else 0},
                    namespace="/logs",
                    timeout=10,
                )
                assert "error" not in ack, ack
                self.acks.append(ack)
            self.rounds += 1
            self.subscribed_at.append(time.monotonic())
        except Exception as exc:  # the connection dropped mid-way: the next connect starts again
            self.errors.append(repr(exc))

    def statuses(self, thread_id: str) -> list[str]:
        return [
            e["data"]["status"] for e in self.admin if e["type"] == "run_status" and e["data"]["thread_id"] == thread_id
        ]

    async def close(self) -> None:
        """Disconnect without python-engineio's wait for the pending long-poll GET (up to 30 s):
        once the close packet is posted, closing the session ends that GET."""
        if not self.sio.connected:
            with contextlib.suppress(Exception):
                await self.sio.shutdown()  # stops a reconnection loop, if one runs
        else:
            disconnect = asyncio.ensure_future(self.sio.disconnect())
            with contextlib.suppress(AssertionError):
                await eventually(lambda: disconnect.done() or self.sio.eio.write_loop_task is None, 5, 0.01)
            await self.http.close()
            with contextlib.suppress(Exception):
                await disconnect
        await self.http.close()
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def whole(n: int) -> list[int]:
    return list(range(1, n + 1))


def tid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


# -- tests -----------------------------------------------------------------------------------


def test_rest_nodes_start_together_on_a_fresh_database(
    redis_server: RedisServer, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """`python run.py rest` ×4 started at the same moment on an empty database (as a deployment
    starts them) all come up: schema and LangGraph checkpoint migrations do not race."""
    env = beacon_env(redis_server.url, postgres_server.create_database(), "http://127.0.0.1")
    nodes = []
    for i in range(4):  # four rather than two: the race shows up more often
        port = free_port()
        nodes.append(
            Node(
                Proc(f"rest-{i}", [sys.executable, "run.py", "rest", "--rest-port", str(port)], env, tmp_path),
                port,
                "rest",
            )
        )
    try:
        for node in nodes:
            node.proc.start()
        for node in nodes:
            wait_ready(node.ready, [n.proc for n in nodes], node.proc.name)
    finally:
        for node in nodes:
            node.proc.kill9()
            print(f"--- {node.proc.name} ---\n{node.proc.output()[-5000:]}")


async def test_one_origin_routes(h: Harness) -> None:
    """deploy/nginx.conf: `/` → UI, `/ui/config.json`, `/api/` stripped, `/realtime/`, sticky cookie."""
    base, rest = h.base, h.cluster.rest
    async with h.http.get(base + "/", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/ui/"
        assert re.fullmatch(r"beacon_sticky=[0-9a-f]{32}", resp.cookies["beacon_sticky"].OutputString(attrs=[]))
    async with h.http.get(base + "/ui/", headers={"Cookie": "beacon_sticky=mine"}) as resp:
        async with h.http.get(rest[0].url + "/ui/") as direct:
            assert resp.status == direct.status  # 200 once `make ui` has built it, else its 404
        assert "beacon_sticky" not in resp.cookies  # a browser keeps the key it has
    async with h.http.get(base + "/ui/config.json") as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
        assert await resp.json() == {"socketio_base": f"{base}/realtime"}

    status, body = await h.call(base + "/api/health")
    assert status == 200 and body["service"] == "rest", body
    status, body = await h.call(base + "/health")  # the UI calls the API at its own origin's root
    assert status == 200 and body["service"] == "rest", body
    status, body = await h.call(base + "/api/status/no-such-thread", headers={"X-Request-Id": "trace-42"})
    assert status == 404 and body["error"] == "not_found" and body["request_id"] == "trace-42", body
    status, body = await h.call(base + "/api/openapi.json")
    assert status == 200 and "/start" in body["paths"]
    async with h.http.get(base + "/api", allow_redirects=False) as resp:
        assert resp.status == 301 and resp.headers["Location"] == "/api/"
    for path in ("/metrics", "/api/metrics", "/realtime/metrics"):
        async with h.http.get(base + path) as resp:
            assert resp.status == 404, path

    # /api/ balances over both REST nodes.
    rest_nodes = {(await h.stats(n))["node"] for n in rest}
    seen = set()
    for _ in range(10):
        seen.add((await h.call(base + "/api/admin/stats"))[1]["node"])
    assert seen == rest_nodes

    # /realtime/ reaches the realtime nodes, and a key always reaches the same one.
    ports = {n.port for n in h.cluster.realtime}
    status, body = await h.call(base + "/realtime/health")
    assert status == 200 and body["service"] == "socketio" and body["port"] in ports, body
    answered = {
        (await h.call(base + "/realtime/stats", headers={"Cookie": "beacon_sticky=same"}))[1]["port"] for _ in range(5)
    }
    assert len(answered) == 1 and answered <= ports


async def test_clients_land_on_both_realtime_nodes(h: Harness) -> None:
    """Websocket and polling clients through nginx spread over both nodes; polling stays sticky;
    a browser-like client gets its key from the UI page; a line reaches every one of them."""
    by_transport = {}
    for transport in ("websocket", "polling"):
        by_transport[transport] = await h.spread(lambda key, t=transport: Client(key, t), per_node=2)
    for transport, clients in by_transport.items():
        assert sorted(c.node for c in clients) == [0, 0, 1, 1], transport

    # A browser: the page load sets the cookie, every Socket.IO request sends it back.
    origin = {"Origin": h.base}  # browsers send it; SOCKETIO_CORS_ORIGINS lists the nginx origin
    browser = Client(None, "polling", headers=origin, path="realtime/socket.io")
    async with browser.http.get(h.base + "/") as resp:  # → /ui/: the page, or 404 if not built
        await resp.read()
    assert [c.key for c in browser.http.cookie_jar] == ["beacon_sticky"]
    await h.place(browser)
    # The UI's own path, over a websocket.
    ui_socket = Client("ui", "websocket", headers=origin, path="realtime/socket.io")
    await h.place(ui_socket)
    # A cookie-less script: sticky by address.
    script = Client(None, "polling")
    await h.place(script)
    for client in (browser, script):  # many polling round trips, all answered by one node
        for i in range(5):
            ack = await client.sio.call("subscribe", {"thread_id": f"probe-{i}"}, namespace="/logs", timeout=5)
            assert ack["recovered"] is True, ack
            await client.sio.call("unsubscribe", {"thread_id": f"probe-{i}"}, namespace="/logs", timeout=5)
        assert client.sio.transport() == "polling" and client.connects == 1

    stranger = Client("x", "websocket", headers={"Origin": "http://evil.example"})
    with pytest.raises(socketio.exceptions.ConnectionError):
        await stranger.connect(h.base)
    await stranger.close()

    everyone = [*by_transport["websocket"], *by_transport["polling"], browser, ui_socket, script]
    healths = [(await h.call(n.url + "/health"))[1]["connections"]["log_connections"] for n in h.cluster.realtime]
    assert sum(healths) == len(everyone) and min(healths) >= 4, healths

    thread_id = tid("fanout")
    await h.start(h.base + "/api", "bench", {"lines": 20, "size": 40}, thread_id)
    for client in everyone:
        await eventually(
            lambda c=client: len(c.seqs[thread_id]) >= 21, 10, 0.02, f"{client.key}: {client.seqs[thread_id]}"
        )
        assert client.seqs[thread_id] == whole(21), client.key


async def test_run_on_a_approved_on_b_and_every_line_once_in_order_d2_d10(h: Harness) -> None:
    rest_a, rest_b = h.cluster.rest
    benches = [tid(f"d10-{i}") for i in range(5)]
    review = tid("review")
    followed = [*benches, review]
    clients: list[Client] = []
    for transport in ("websocket", "polling"):
        clients += await h.spread(lambda key, t=transport: Client(key, t, admin=True), per_node=1)
        clients += await h.spread(lambda key, t=transport: Client(key, t, followed), per_node=1)
    assert sorted(c.node for c in clients) == [0] * 4 + [1] * 4

    # A review run started through A, approved through B; a second approval through A is 409.
    await h.start(rest_a, "review", {"topic": "cluster", "delay": 0}, review)
    waiting = await h.wait_status(rest_b.url, review, "waiting_approval")
    [pending] = waiting["pending"]
    approve = {"decision": "approve", "comment": "via B", "interrupt_id": pending["interrupt_id"]}
    status, body = await h.call(f"{rest_b.url}/approve/{review}", "POST", approve)
    assert status == 200, body
    status, body = await h.call(f"{rest_a.url}/approve/{review}", "POST", approve)
    assert status == 409, body

    # Five bench runs at full speed, started through alternating nodes, interleaved on the bus.
    await asyncio.gather(
        *(h.start(rest_a if i % 2 else rest_b, "bench", {"lines": 500, "size": 60}, t) for i, t in enumerate(benches))
    )
    done = await h.wait_status(h.base + "/api", review, "completed")
    assert done["values"]["published"] is True
    assert [(d["decision"], d["comment"]) for d in done["decisions"]] == [("approve", "via B")]
    for thread_id in benches:
        await h.wait_status(h.base + "/api", thread_id, "completed")

    review_lines = len(await h.logs(rest_b.url, review))
    expected = {**{t: whole(501) for t in benches}, review: whole(review_lines)}
    for client in clients:

        def complete(c: Client = client) -> bool:
            return all(len(c.seqs[t]) >= len(seqs) for t, seqs in expected.items())

        await eventually(complete, 30, 0.05, f"{client.key} ({client.transport}, node {client.node}) incomplete")
        for thread_id, seqs in expected.items():
            assert client.seqs[thread_id] == seqs, f"{client.key}: {thread_id} missing, doubled or out of order"
        assert client.connects == 1
        if client.follow is not None:  # connected without the firehose: its threads only
            assert set(client.seqs) == set(followed), set(client.seqs) - set(followed)
    for client in clients:
        if "/admin" in client.namespaces:  # each status change exactly once, wherever the run executed
            await eventually(lambda c=client: "completed" in c.statuses(review), 10)
            assert client.statuses(review) == ["running", "waiting_approval", "running", "completed"]
            assert all(client.statuses(t).count("completed") == 1 for t in benches)


async def test_concurrent_approvals_on_two_nodes_one_wins(h: Harness) -> None:
    rest_a, rest_b = h.cluster.rest
    thread_id = tid("race")
    await h.start(rest_a, "review", {"topic": "race", "delay": 0}, thread_id)
    await h.wait_status(rest_a.url, thread_id, "waiting_approval")
    answers = await asyncio.gather(
        *(
            h.call(f"{node.url}/approve/{thread_id}", "POST", {"decision": "approve", "comment": node.proc.name})
            for node in (rest_a, rest_b, rest_a, rest_b)
        )
    )
    assert sorted(status for status, _ in answers) == [200, 409, 409, 409], answers
    done = await h.wait_status(rest_b.url, thread_id, "completed")
    assert len(done["decisions"]) == 1
    texts = [line["text"] for line in await h.logs(rest_a.url, thread_id)]
    assert texts.count("run completed") == 1, texts  # executed once, by one node


async def test_cancel_through_the_node_that_does_not_run_the_thread(h: Harness) -> None:
    rest_a, rest_b = h.cluster.rest
    watcher = Client("watch", "websocket", admin=True)
    await h.place(watcher)

    # A running run, executing on A, cancelled through B.
    running = tid("cancel-running")
    await h.start(rest_a, "bench", {"lines": 100_000, "size": 40, "rate": 100}, running)
    await eventually(lambda: h.logs(rest_b.url, running), 10, 0.05, "the run never logged")
    assert (await h.stats(rest_a))["active_tasks"] >= 1
    assert (await h.stats(rest_b))["active_tasks"] == 0, "B should not execute this run"
    status, body = await h.call(f"{rest_b.url}/admin/runs/{running}/cancel", "POST")
    assert status == 200 and body["status"] == "cancelled", body

    async def stopped_on_a() -> bool:
        return (await h.stats(rest_a))["active_tasks"] == 0

    await eventually(stopped_on_a, 10, 0.05, "the run kept executing on node A after a cancel through B")
    lines = await h.logs(rest_b.url, running)
    assert "cancelled" in lines[-1]["text"], lines[-3:]
    assert [line["seq"] for line in lines] == whole(len(lines))
    assert (await h.status(rest_a.url, running))["status"] == "cancelled"
    await eventually(lambda: "cancelled" in watcher.statuses(running), 10)
    assert watcher.statuses(running).count("cancelled") == 1
    status, body = await h.call(f"{rest_a.url}/admin/runs/{running}/cancel", "POST")
    assert status == 409, body

    # A waiting run (no task anywhere), started through A, cancelled through B.
    waiting = tid("cancel-waiting")
    await h.start(rest_a, "review", {"topic": "x", "delay": 0}, waiting)
    await h.wait_status(rest_b.url, waiting, "waiting_approval")
    status, body = await h.call(f"{rest_b.url}/admin/runs/{waiting}/cancel", "POST")
    assert status == 200 and body["status"] == "cancelled", body
    status, body = await h.call(f"{rest_a.url}/approve/{waiting}", "POST", {"decision": "approve"})
    assert status == 409, body


async def kill_a_realtime_node_mid_run(h: Harness, lines: int, rate: float, per_node: int) -> None:
    """Subscribers on both nodes (both transports) with reconnection; `kill -9` one node while a
    run logs; its clients reconnect through nginx to the other node and resubscribe with `since`."""
    rest_a = h.cluster.rest[0]
    thread_id = tid("failover")
    clients: list[Client] = []
    for transport in ("websocket", "polling"):
        clients += await h.spread(lambda k, t=transport: Client(k, t, [thread_id], reconnection=True), per_node)
    victim_index = 1
    victim = h.cluster.realtime[victim_index]
    moved = [c for c in clients if c.node == victim_index]
    stayed = [c for c in clients if c.node != victim_index]

    await h.start(rest_a, "bench", {"lines": lines, "size": 60, "rate": rate}, thread_id)
    await eventually(lambda: all(len(c.seqs[thread_id]) >= rate for c in clients), 15, 0.02, "lines never flowed")
    killed_at = time.monotonic()
    victim.proc.kill9()

    def resubscribed() -> bool:
        return all(c.rounds >= 2 for c in moved)

    await eventually(resubscribed, 30, 0.02, "not every client of the killed node came back")
    recovery = max(c.subscribed_at[-1] for c in moved) - killed_at
    survivor = h.cluster.realtime[1 - victim_index]
    assert (await h.stats(survivor))["namespaces"]["/logs"]["connections"] == len(clients)
    await h.wait_status(rest_a.url, thread_id, "completed", timeout=lines / rate + 30)
    for client in clients:
        await eventually(lambda c=client: len(c.seqs[thread_id]) >= lines + 1, 20, 0.05, f"{client.key} stuck")
    story = {c.key: (c.transport, c.connects, c.disconnects, c.errors) for c in clients}
    assert all(c.connects == 1 for c in stayed), f"clients of the surviving node were disconnected: {story}"
    assert all(c.connects == 2 for c in moved), story
    for client in clients:
        assert client.seqs[thread_id] == whole(lines + 1), f"{client.key} ({client.transport}): missing or doubled"
    replays = [ack for c in moved for ack in c.acks[1:]]
    assert replays and all(ack["recovered"] is True for ack in replays), replays
    assert sum(ack["replayed"] for ack in replays) > 0, "the lines missed while away came from nowhere?"
    each = ", ".join(
        f"{c.transport} {c.connected_at[-1] - killed_at:.2f}/{c.subscribed_at[-1] - killed_at:.2f}s" for c in moved
    )
    print(
        f"failover: {len(moved)} clients resubscribed on the other node ≤ {recovery:.2f}s after kill -9 "
        f"(reconnected/resubscribed: {each})"
    )


async def test_realtime_node_kill9_clients_fail_over_without_loss(h: Harness) -> None:
    await kill_a_realtime_node_mid_run(h, lines=1200, rate=200, per_node=2)


@pytest.mark.long
async def test_realtime_node_kill9_under_a_fast_burst(h: Harness) -> None:
    await kill_a_realtime_node_mid_run(h, lines=10_000, rate=1000, per_node=4)
