#!/usr/bin/env python3
"""Beacon's benchmark (issue 6): Beacon against a bare python-socketio server and a Node socket.io server.

Starts every server as a subprocess on free loopback ports, drives them with the same raw-protocol
websocket load generator (bench/loadgen.py, several processes), and writes
bench/results/<timestamp>.json and .md. Scenarios:

  fanout  N clients on /logs, M lines logged flat out: deliveries/s, latency from the logging call, lost lines
  steady  clients x rate lines/s for a duration: latency p50/p99 (lines not delivered by the deadline count as
          infinitely late), the rate the lines were actually logged at
  memory  RSS per idle connection at C connections (fresh server each time)
  rest    Beacon's GET /status and POST /start: requests/s and p99 from a separate process
  redis   the fan-out with Beacon scaled out: a `rest` and a `realtime` run.py over a Redis bus
          (redis-server started here; skipped with a message when it is not installed)

With --deflate the clients also run fanout and memory offering permessage-deflate, as browsers do.
Every figure is the median of --repeat runs; each run is logged and kept in the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import hashlib
import importlib.metadata
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from loadgen import BUCKETS, generator_main, histogram_quantile, rest_main

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
NODE_DIR = BENCH / "reference_node"
SERVER_LABELS = {
    "beacon": "Beacon",
    "python": "python-socketio (bare)",
    "python-uvloop": "python-socketio (bare, uvloop)",
    "node": "Node socket.io",
    "beacon-redis": "Beacon over Redis (rest + realtime)",
}
UVLOOP_RUN = (
    "import runpy, sys, uvloop; uvloop.install(); sys.argv = sys.argv[1:]; "
    "runpy.run_path('run.py', run_name='__main__')"
)
BENCH_TOKEN = secrets.token_urlsafe(24)  # Beacon's admin token for this run (env BEACON_AUTH_TOKENS)
ALL_SCENARIOS = ("fanout", "steady", "memory", "rest", "redis")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- processes -------------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL if this runner dies, so nothing outlives a crashed benchmark."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None, timeout: float = 10.0, token: str = "") -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"} | ({"authorization": f"Bearer {token}"} if token else {})
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw[:200]


class Server:
    """One server under test, as a subprocess on free loopback ports."""

    serial = 0  # every start gets its own log file and Beacon store

    def __init__(self, name: str, workdir: Path, beacon_args: list[str]) -> None:
        self.name = name
        self.label = SERVER_LABELS[name]
        self.workdir = workdir
        self.beacon_args = beacon_args
        self.uvloop = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.rest_port = self.sio_port = 0
        self.tag = ""
        self.yield_every = 0
        self.token = BENCH_TOKEN if name.startswith("beacon") else ""  # Socket.IO auth and REST bearer token
        self.stamp = "send"

    def argv(self) -> list[str]:
        if self.name == "beacon":
            store = self.workdir / self.tag / "b.sqlite"
            store.parent.mkdir(parents=True, exist_ok=True)
            # --beacon-uvloop: Beacon's run.py on a uvloop event loop (a measurement; run.py itself uses asyncio's)
            loop = ["-c", UVLOOP_RUN] if self.uvloop else []
            return [
                sys.executable,
                *loop,
                "run.py",
                "--rest-port",
                str(self.rest_port),
                "--socketio-port",
                str(self.sio_port),
                "--store-url",
                f"sqlite:///{store}",
                *self.beacon_args,
            ]
        if self.name.startswith("python"):
            extra = ["--uvloop"] if self.name == "python-uvloop" else []
            return [sys.executable, str(BENCH / "reference_python.py"), str(self.sio_port), *extra]
        return [shutil.which("node") or "node", str(NODE_DIR / "server.mjs"), str(self.sio_port)]

    def spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        out = open(self.workdir / log_name, "wb")  # noqa: SIM115 - closed by the child
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.name.startswith("beacon"):  # auth stays on: one admin token, enough connections for every client
            env["BEACON_AUTH_TOKENS"] = f"bench:admin:{BENCH_TOKEN}"
            env["BEACON_AUTH_MAX_CONNECTIONS_PER_TOKEN"] = str(1_000_000)
        try:
            return subprocess.Popen(
                argv,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent,
            )
        finally:
            out.close()

    def before_start(self) -> None:
        """Anything the server needs running first (the Redis variant: redis-server and the REST node)."""

    def start(self, timeout: float = 60.0) -> None:
        Server.serial += 1
        self.tag = f"{self.name}-{Server.serial}"
        self.sio_port = free_port()
        self.rest_port = free_port() if self.name.startswith("beacon") else self.sio_port
        self.before_start()
        self.proc = self.spawn(self.argv(), f"{self.tag}.log")
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout
        ports = {self.rest_port, self.sio_port}
        while ports and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}: {self.log_tail()}")
            for port in list(ports):
                with contextlib.suppress(OSError, ValueError):
                    if http("GET", f"http://127.0.0.1:{port}/health", timeout=1)[0] == 200:
                        ports.discard(port)
            if ports:
                time.sleep(0.1)
        if ports:
            self.stop()
            raise RuntimeError(f"{self.label} did not answer /health within {timeout}s: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.workdir / f"{self.tag}.log"
        with contextlib.suppress(OSError):
            return path.read_bytes()[-1500:].decode(errors="replace")
        return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def trigger(self, thread_id: str, lines: int, size: int, rate: float) -> None:
        spec: dict[str, Any] = {"lines": lines, "size": size, "rate": rate}
        if not self.name.startswith("beacon") and self.yield_every:
            spec["yield_every"] = self.yield_every  # the reference servers' flat-out batch
        if not self.name.startswith("beacon") and self.stamp == "due":
            spec["stamp"] = "due"
        body = {"workflow": "bench", "input": spec, "thread_id": thread_id}
        status, answer = http("POST", f"http://127.0.0.1:{self.rest_port}/start", body, token=self.token)
        if status != 202:
            raise RuntimeError(f"{self.label} POST /start answered {status}: {answer}")

    def cpu_seconds(self) -> float:
        assert self.ps is not None
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)

    def settle(self, quiet_percent: float = 15.0, timeout: float = 30.0) -> float:
        """Wait (bounded) until the server is idle: the previous run's backlog must not leak into the next."""
        assert self.ps is not None
        deadline = time.monotonic() + timeout
        self.ps.cpu_percent(None)
        pct = 100.0
        t0 = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            pct = self.ps.cpu_percent(None)
            if not self.alive():
                raise RuntimeError(f"{self.label} exited: {self.log_tail()}")
            if pct < quiet_percent:
                if time.monotonic() - t0 > 5:
                    log(f"  ({self.label} was busy for {time.monotonic() - t0:.0f}s before this run)")
                break
        else:
            log(f"  ({self.label} still at {pct:.0f}% CPU after {timeout:g}s: going on)")
        return pct

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


class RedisBeacon(Server):
    """Beacon scaled out: `run.py rest` and `run.py realtime` over a Redis bus, with one SQLite store.

    `pid` (CPU samples, py-spy) is the realtime node's, which does the fan-out; server CPU per
    delivery counts all three processes (REST node with the workflow, realtime node, redis-server).
    """

    def __init__(self, workdir: Path, beacon_args: list[str]) -> None:
        super().__init__("beacon-redis", workdir, beacon_args)
        self.side: list[subprocess.Popen[bytes]] = []  # redis-server, the REST node

    def common(self) -> list[str]:
        store = self.workdir / self.tag / "b.sqlite"
        store.parent.mkdir(parents=True, exist_ok=True)
        return ["--pubsub-url", f"redis://127.0.0.1:{self.redis_port}/0", "--store-url", f"sqlite:///{store}"]

    def before_start(self) -> None:
        self.redis_port = free_port()
        redis = shutil.which("redis-server") or "redis-server"
        argv = [redis, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.side = [self.spawn(argv, f"{self.tag}-redis.log")]
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.redis_port), 1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on {self.redis_port}")
            time.sleep(0.1)
        rest = [sys.executable, "run.py", "rest", "--rest-port", str(self.rest_port), *self.common(), *self.beacon_args]
        self.side.append(self.spawn(rest, f"{self.tag}-rest.log"))

    def argv(self) -> list[str]:
        return [sys.executable, "run.py", "realtime", "--socketio-port", str(self.sio_port), *self.common(),
                *self.beacon_args]  # fmt: skip

    def cpu_seconds(self) -> float:
        total = super().cpu_seconds()
        for proc in self.side:
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(proc.pid).cpu_times()
                total += t.user + t.system
        return total

    def alive(self) -> bool:
        return super().alive() and all(p.poll() is None for p in self.side)

    def stop(self) -> None:
        super().stop()
        for proc in reversed(self.side):  # the REST node before redis-server
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self.side = []


class Generators:
    """The load-generator processes (bench/loadgen.py), driven over pipes."""

    def __init__(self, count: int, use_uvloop: bool) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        for i in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=generator_main, args=(child, i, use_uvloop), daemon=True, name=f"loadgen-{i}")
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
        self.info = self.call([("ping",)] * count, 60)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def call(self, commands: list[tuple], timeout: float) -> list[dict]:
        for conn, cmd in zip(self.conns, commands, strict=True):
            conn.send(cmd)
        deadline = time.monotonic() + timeout
        replies = []
        for i, conn in enumerate(self.conns):
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"load generator {i} did not answer {commands[i][0]!r} within {timeout:.0f}s")
            reply = conn.recv()
            if "error" in reply:
                raise RuntimeError(f"load generator {i}: {reply['error']}")
            replies.append(reply)
        return replies

    def connect(self, srv: Server, clients: int, deflate: bool, concurrency: int, timeout: float) -> dict:
        n = len(self.conns)
        shares = [clients // n + (1 if i < clients % n else 0) for i in range(n)]
        replies = self.call(
            [("connect", "127.0.0.1", srv.sio_port, s, deflate, concurrency, timeout, srv.token) for s in shares],
            timeout + 30,
        )
        total = {
            "connected": sum(r["connected"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "deflate_accepted": sum(r["deflate_accepted"] for r in replies),
            "seconds": max(r["seconds"] for r in replies),
            "errors": sorted({e for r in replies for e in r["errors"]})[:5],
        }
        return total

    def expect(self, thread_id: str, lines: int, rate: float = 0.0) -> None:
        self.call([("expect", thread_id, lines, rate)] * len(self.conns), 30)

    def wait(self, deadline_wall: float, idle: float) -> list[dict]:
        return self.call([("wait", deadline_wall, idle)] * len(self.conns), deadline_wall - time.time() + idle + 60)

    def close(self) -> None:
        self.call([("close",)] * len(self.conns), 60)

    def stop(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(("quit",))
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


class Sampler:
    """CPU of the server, each generator process and the whole machine, sampled every `interval` s."""

    def __init__(self, server_pid: int, gen_pids: list[int], interval: float = 0.25, limit: float = 3600) -> None:
        self.procs = {"server": psutil.Process(server_pid)} | {
            f"gen{i}": psutil.Process(p) for i, p in enumerate(gen_pids)
        }
        self.interval, self.limit = interval, limit
        self.samples: list[dict[str, float]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        for p in self.procs.values():
            with contextlib.suppress(psutil.Error):
                p.cpu_percent(None)
        psutil.cpu_percent(None)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(5)

    def _run(self) -> None:
        ncpu = psutil.cpu_count() or 1
        end = time.monotonic() + self.limit
        while not self.stopping.wait(self.interval) and time.monotonic() < end:
            sample = {}
            for name, p in self.procs.items():
                with contextlib.suppress(psutil.Error):
                    sample[name] = p.cpu_percent(None)
            sample["machine"] = psutil.cpu_percent(None) * ncpu
            self.samples.append(sample)

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {}
        gens = [k for k in self.procs if k.startswith("gen")]
        per_gen_avg = [statistics.fmean(s.get(g, 0) for s in self.samples) for g in gens]
        ours = [s.get("server", 0) + sum(s.get(g, 0) for g in gens) for s in self.samples]
        return {
            "samples": len(self.samples),
            "server_avg": statistics.fmean(s.get("server", 0) for s in self.samples),
            "server_peak": max(s.get("server", 0) for s in self.samples),
            "gen_avg_per_proc": per_gen_avg,
            "gen_peak_per_proc": [max(s.get(g, 0) for s in self.samples) for g in gens],
            "gen_total_avg": sum(per_gen_avg),
            "machine_avg": statistics.fmean(s["machine"] for s in self.samples),
            "others_avg": max(0.0, statistics.fmean(s["machine"] - o for s, o in zip(self.samples, ours, strict=True))),
        }


# -- one measured run ------------------------------------------------------------------------------
def summarize(replies: list[dict], lines: int, t_trigger: float, cpu_s: float, sampler: dict) -> dict[str, Any]:
    hist = [0] * BUCKETS
    sched = [0] * BUCKETS
    for r in replies:
        for i, c in enumerate(r["hist"]):
            hist[i] += c
        for i, c in enumerate(r["sched_hist"]):
            sched[i] += c
    clients = sum(r["clients"] for r in replies)
    received = sum(r["received"] for r in replies)
    gaps = sum(r["gaps"] for r in replies)
    missing = sum(r["missing"] for r in replies)  # expected lines a client never got: gaps and the tail
    first_ts = min((r["first_ts"] for r in replies if r["first_ts"] is not None), default=None)
    last_recv = max((r["last_recv"] for r in replies if r["last_recv"] is not None), default=None)
    last_ts = max((r["last_ts"] for r in replies if r["last_ts"] is not None), default=None)
    max_seq = max((r["max_seq"] for r in replies), default=0)
    first_seq = min((r["first_seq"] for r in replies if r["first_seq"]), default=0)
    elapsed = (last_recv - first_ts) if first_ts is not None and last_recv is not None else None
    logged_span = (last_ts - first_ts) if first_ts is not None and last_ts is not None else None
    q = {k: histogram_quantile(hist, v, missing) for k, v in (("p50", 0.5), ("p99", 0.99))}
    gen_cpu = [100 * r["cpu_s"] / r["busy_s"] for r in replies]
    return {
        "clients": clients,
        "lines": lines,
        "expected": clients * lines,
        "received": received,
        "lost": missing,
        "gaps": gaps,
        "undelivered_at_deadline": max(0, missing - gaps),
        "extra_lines": sum(r["extra"] for r in replies),
        "duplicates": sum(r["dups"] for r in replies),
        "disconnects": sum(r["disconnects"] for r in replies),
        "elapsed_s": elapsed,
        "deliveries_per_s": received / elapsed if elapsed else None,
        "start_delay_ms": (first_ts - t_trigger) * 1000 if first_ts is not None else None,
        "logged_lines_per_s": (max_seq - first_seq) / logged_span if logged_span else None,
        "p50_ms": q["p50"],
        "p99_ms": q["p99"],
        "max_ms": max(r["lat_max"] for r in replies) * 1000 if received else None,
        "mean_ms": sum(r["lat_sum"] for r in replies) / received * 1000 if received else None,
        # paced runs: receive time - the time the line was due (t0 + (i - 1) / rate), undelivered = ∞
        "sched_p50_ms": histogram_quantile(sched, 0.5, missing) if sum(sched) else None,
        "sched_p99_ms": histogram_quantile(sched, 0.99, missing) if sum(sched) else None,
        "sched_max_ms": max(r["sched_max"] for r in replies) * 1000 if sum(sched) else None,
        "server_cpu_s": cpu_s,
        "server_cpu_us_per_delivery": cpu_s / received * 1e6 if received else None,
        "gen_cpu_percent_per_proc": gen_cpu,
        "gen_cpu_percent_max_proc": max(gen_cpu) if gen_cpu else None,
        "gen_cpu_percent_total": sum(gen_cpu),
        "cpu_samples": sampler,
    }


@contextlib.contextmanager
def py_spy(pid: int, out: Path, *options: str, blocking: bool = False) -> Iterator[None]:
    """`py-spy record` of `pid` while the block runs: raw (collapsed) stacks at 100 Hz into `out`.

    Non-blocking by default (the process is not paused, so its figures hold). A non-blocking
    sample of a thread whose stack changes under the reader is often lost: a busy event loop is
    under-counted beside threads parked in C calls. `blocking` pauses the process per sample for
    a true share of each thread, at a cost to the run's own figures.
    """
    argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--format", "raw",
            "--rate", "100", *([] if blocking else ["--nonblocking"]), *options, "-o", str(out)]  # fmt: skip
    spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
    time.sleep(1.0)  # let py-spy attach
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(5)


def measured_run(
    server: Server,
    gens: Generators,
    lines: int,
    size: int,
    rate: float,
    timeout: float,
    idle: float,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    thread_id = f"bench-{uuid.uuid4().hex[:12]}"
    gens.expect(thread_id, lines, rate)
    with py_spy(server.pid, profile_to) if profile_to else contextlib.nullcontext():
        with Sampler(server.pid, gens.pids) as sampler:
            cpu0 = server.cpu_seconds()
            t_trigger = time.time()
            server.trigger(thread_id, lines, size, rate)
            replies = gens.wait(t_trigger + timeout, idle)
            cpu = server.cpu_seconds() - cpu0
    result = summarize(replies, lines, t_trigger, cpu, sampler.summary())
    result["thread_id"] = thread_id
    return result


def fmt_k(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}"


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "–"
    if math.isinf(v):
        return "∞"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def describe(r: dict) -> str:
    return (
        f"{fmt_k(r['deliveries_per_s'])} deliveries/s, p50 {fmt_ms(r['p50_ms'])} ms, p99 {fmt_ms(r['p99_ms'])} ms,"
        f" max {fmt_ms(r['max_ms'])} ms, lost {r['lost']},"
        f" server {r['server_cpu_us_per_delivery'] or 0:.1f} µs/delivery,"
        f" gen CPU max {r['gen_cpu_percent_max_proc'] or 0:.0f}%/proc"
    )


def median_of(runs: list[dict], keys: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in keys:
        values = [r[k] for r in runs if r.get(k) is not None]
        out[k] = statistics.median(values) if values else None
        if values and len(values) > 1:
            out[k + "_range"] = [min(values), max(values)]
    return out


RUN_KEYS = [
    "sched_p50_ms",
    "sched_p99_ms",
    "sched_max_ms",
    "deliveries_per_s",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "mean_ms",
    "lost",
    "gaps",
    "undelivered_at_deadline",
    "received",
    "expected",
    "elapsed_s",
    "start_delay_ms",
    "logged_lines_per_s",
    "server_cpu_us_per_delivery",
    "gen_cpu_percent_max_proc",
    "gen_cpu_percent_total",
    "disconnects",
    "duplicates",
]


# -- the benchmark ---------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="beacon-bench-"))
        self.servers: dict[str, Server] = {}
        self.gens: Generators | None = None
        self.results: dict[str, Any] = {}
        self.status_thread: str | None = None
        self.stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.out = Path(args.out)

    # servers
    def server(self, name: str) -> Server:
        srv = self.servers.get(name)
        if srv is None or not srv.alive():
            if srv is not None:
                srv.stop()
            if name == "beacon-redis":
                srv = RedisBeacon(self.workdir, self.args.beacon_arg)
            else:
                srv = Server(name, self.workdir, self.args.beacon_arg)
            srv.uvloop = self.args.beacon_uvloop
            srv.yield_every = self.args.ref_yield_every
            srv.stamp = self.args.ref_stamp
            log(f"starting {srv.label}")
            srv.start()
            self.servers[name] = srv
        return srv

    def stop_servers(self) -> None:
        for srv in self.servers.values():
            srv.stop()
        self.servers.clear()

    def fanout_like(
        self,
        key: str,
        clients: int,
        lines: int,
        rate: float,
        timeout: float,
        idle: float,
        deflate: bool = False,
        title: str = "",
        servers: list[str] | None = None,
    ) -> dict[str, Any]:
        """Every server, --repeat times, interleaved (repeat → server) so drifting machine load hits all alike."""
        assert self.gens is not None
        a = self.args
        servers = servers or a.servers
        runs: dict[str, list[dict]] = {s: [] for s in servers}
        connects: dict[str, list[dict]] = {s: [] for s in servers}
        for rep in range(a.repeat):
            for name in servers:
                srv = self.server(name)
                srv.settle()
                conn = self.gens.connect(srv, clients, deflate, a.connect_concurrency, a.connect_timeout)
                connects[name].append(conn)
                if conn["connected"] < clients:
                    log(f"  {srv.label}: only {conn['connected']}/{clients} clients connected {conn['errors']}")
                try:
                    r = measured_run(srv, self.gens, lines, a.size, rate, timeout, idle)
                finally:
                    self.gens.close()
                r["connect"] = conn
                runs[name].append(r)
                log(f"  {title} {srv.label} run {rep + 1}/{a.repeat}: {describe(r)}")
                if r["lost"] or r["disconnects"]:
                    log(
                        f"    lost {r['lost']} (seq gaps {r['gaps']}, undelivered at the deadline "
                        f"{r['undelivered_at_deadline']}), disconnects {r['disconnects']}"
                    )
        return {
            "clients": clients,
            "lines": lines,
            "size": a.size,
            "rate": rate,
            "deflate_offered": deflate,
            "servers": {
                s: {
                    "median": median_of(runs[s], RUN_KEYS),
                    "runs": runs[s],
                    "deflate_accepted": [c["deflate_accepted"] for c in connects[s]],
                }
                for s in servers
            },
        }

    def scenario_fanout(self, deflate: bool = False) -> list[dict]:
        a = self.args
        out = []
        for n in a.clients:
            lines = max(a.min_lines, a.deliveries // n) if a.lines is None else a.lines
            title = f"fan-out {n} clients × {lines} lines" + (" (deflate offered)" if deflate else "")
            log(title)
            out.append(self.fanout_like("fanout", n, lines, 0, a.timeout, a.idle_timeout, deflate, title))
        return out

    def scenario_redis(self) -> list[dict] | dict[str, str]:
        """The fan-out again, Beacon split into a REST and a realtime node over a Redis bus."""
        if shutil.which("redis-server") is None:
            return {"skipped": "redis-server is not installed (Debian: apt-get install redis-server)"}
        a = self.args
        out = []
        for n in a.clients:
            lines = max(a.min_lines, a.deliveries // n) if a.lines is None else a.lines
            title = f"fan-out over Redis {n} clients × {lines} lines"
            log(title)
            redis = ["beacon-redis"]
            out.append(self.fanout_like("redis", n, lines, 0, a.timeout, a.idle_timeout, False, title, redis))
        srv = self.servers.pop("beacon-redis", None)
        if srv is not None:
            srv.stop()
        return out

    def scenario_steady(self) -> list[dict]:
        a = self.args
        out = []
        for rate in a.steady_rates:
            lines = max(1, int(rate * a.steady_duration))
            title = f"steady {a.steady_clients} clients × {rate:g} lines/s for {a.steady_duration:g}s"
            log(title)
            res = self.fanout_like(
                "steady",
                a.steady_clients,
                lines,
                rate,
                a.steady_duration + a.steady_drain,
                a.steady_drain,
                False,
                title,
            )
            res["duration_s"] = a.steady_duration
            out.append(res)
        return out

    def scenario_memory(self, deflate: bool = False) -> dict[str, Any]:
        """RSS per idle connection: a fresh server, a baseline after a few connections, then C idle ones."""
        assert self.gens is not None
        a = self.args
        title = f"memory: RSS per idle connection at {a.memory_connections}" + (" (deflate offered)" if deflate else "")
        log(title)
        runs: dict[str, list[dict]] = {s: [] for s in a.servers}
        for rep in range(a.repeat):
            for name in a.servers:
                old = self.servers.pop(name, None)
                if old is not None:
                    old.stop()
                srv = self.server(name)
                try:
                    warm = self.gens.connect(srv, 20, deflate, 20, 60)  # warm the code paths once
                    if warm["connected"] < 20:
                        raise RuntimeError(f"{srv.label} refused clients: {warm['errors']}")
                    self.gens.close()
                    srv.settle(timeout=10)
                    time.sleep(1.0)
                    rss0 = srv.rss()
                    conn = self.gens.connect(
                        srv, a.memory_connections, deflate, a.memory_concurrency, a.connect_timeout * 3
                    )
                    if conn["failed"]:
                        log(f"  {srv.label}: {conn['failed']} connections failed: {conn['errors']}")
                    srv.settle(timeout=30)
                    time.sleep(2.0)
                    rss1 = srv.rss()
                    self.gens.close()
                finally:
                    srv.stop()
                    self.servers.pop(name, None)
                per = (rss1 - rss0) / conn["connected"] if conn["connected"] else None
                r = {
                    "rss_before": rss0,
                    "rss_after": rss1,
                    "connected": conn["connected"],
                    "failed": conn["failed"],
                    "connect_seconds": conn["seconds"],
                    "deflate_accepted": conn["deflate_accepted"],
                    "bytes_per_connection": per,
                }
                runs[name].append(r)
                log(
                    f"  {srv.label} run {rep + 1}/{a.repeat}: {conn['connected']} connected in {conn['seconds']:.1f}s,"
                    f" RSS {rss0 / 2**20:.1f} → {rss1 / 2**20:.1f} MiB, {(per or 0) / 1024:.1f} KiB/connection"
                )
        return {
            "connections": a.memory_connections,
            "deflate_offered": deflate,
            "servers": {
                s: {
                    "median": median_of(runs[s], ["bytes_per_connection", "rss_before", "rss_after", "connected"]),
                    "runs": runs[s],
                }
                for s in a.servers
            },
        }

    def scenario_rest(self) -> dict[str, Any]:
        a = self.args
        log(f"REST: GET /status and POST /start, {a.rest_concurrency} concurrent for {a.rest_duration:g}s each")
        srv = self.server("beacon")
        base = f"http://127.0.0.1:{srv.rest_port}"
        # a finished run to ask about
        status_thread = f"bench-status-{uuid.uuid4().hex[:8]}"
        srv.trigger(status_thread, 3, a.size, 0)
        deadline = time.monotonic() + 30
        for _ in range(300):
            code, body = http("GET", f"{base}/status/{status_thread}", token=srv.token)
            if (
                code == 200
                and isinstance(body, dict)
                and body.get("status") == "completed"
                or time.monotonic() > deadline
            ):
                break
            time.sleep(0.1)
        start_body = json.dumps({"workflow": "bench", "input": {"lines": 1, "size": a.size}}).encode()
        endpoints = [
            ("GET /status/{id}", "GET", f"{base}/status/{status_thread}", None, 200),
            ("POST /start", "POST", f"{base}/start", start_body, 202),
        ]
        out: dict[str, Any] = {"concurrency": a.rest_concurrency, "duration_s": a.rest_duration, "endpoints": {}}
        ctx = mp.get_context("spawn")
        for label, method, url, body, ok in endpoints:
            runs = []
            for rep in range(a.repeat):
                srv.settle()
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=rest_main,
                    args=(child, url, method, body, a.rest_concurrency, a.rest_duration, a.rest_warmup, srv.token),
                    daemon=True,
                )
                cpu0 = srv.cpu_seconds()
                proc.start()
                child.close()
                try:
                    with Sampler(srv.pid, [proc.pid or 0]) as sampler:
                        if not parent.poll(a.rest_duration + a.rest_warmup + 90):
                            raise RuntimeError(f"REST load for {label} did not finish")
                        res = parent.recv()
                finally:
                    proc.join(10)
                    if proc.is_alive():
                        proc.kill()
                        proc.join(5)
                if "error" in res:
                    raise RuntimeError(f"REST load for {label}: {res['error']}")
                n = res["requests"]
                good = res["codes"].get(str(ok), 0)
                r = {
                    "requests_per_s": n / res["seconds"],
                    "p50_ms": histogram_quantile(res["hist"], 0.5),
                    "p99_ms": histogram_quantile(res["hist"], 0.99),
                    "max_ms": res["lat_max"] * 1000,
                    "requests": n,
                    "unexpected_status": n - good,
                    "codes": res["codes"],
                    "errors": res["errors"],
                    "gen_cpu_percent": 100 * res["cpu_s"] / res["seconds"],
                    "server_cpu_s": srv.cpu_seconds() - cpu0,
                    "cpu_samples": sampler.summary(),
                }
                runs.append(r)
                log(
                    f"  {label} run {rep + 1}/{a.repeat}: {r['requests_per_s']:.0f} req/s,"
                    f" p50 {fmt_ms(r['p50_ms'])} ms, p99 {fmt_ms(r['p99_ms'])} ms,"
                    f" non-{ok} {r['unexpected_status']}, generator CPU {r['gen_cpu_percent']:.0f}%"
                )
            keys = ["requests_per_s", "p50_ms", "p99_ms", "max_ms", "unexpected_status", "gen_cpu_percent"]
            out["endpoints"][label] = {"median": median_of(runs, keys), "runs": runs}
        return out

    def profile(self) -> dict[str, Any]:
        """One extra Beacon fan-out at the largest N with py-spy attached (not counted in the medians)."""
        assert self.gens is not None
        a = self.args
        n = max(a.clients)
        # enough lines for a few seconds of samples: Beacon's fan-out of --deliveries is over in well under one
        lines = max(a.min_lines, a.profile_deliveries // n) if a.lines is None else a.lines
        srv = self.server("beacon")
        srv.settle()
        raw = self.out / f"{self.stamp}-profile-beacon-fanout-{n}.txt"
        log(f"profile: Beacon fan-out {n} clients × {lines} lines under py-spy → {raw.relative_to(ROOT)}")
        self.gens.connect(srv, n, False, a.connect_concurrency, a.connect_timeout)
        try:
            r = measured_run(srv, self.gens, lines, a.size, 0, a.timeout, a.idle_timeout, profile_to=raw)
        finally:
            self.gens.close()
        log(f"  under py-spy: {describe(r)}")
        summary = summarize_profile(raw, r)
        return {"clients": n, "lines": lines, "raw": str(raw.relative_to(ROOT)), "run": r, **summary}

    def run(self) -> None:
        a = self.args
        self.out.mkdir(parents=True, exist_ok=True)
        self.gens = Generators(a.gen_procs, a.gen_uvloop)
        log(
            f"{a.gen_procs} load-generator processes ({self.gens.info[0]['loop']} loop), servers: "
            + ", ".join(SERVER_LABELS[s] for s in a.servers)
        )
        sc = a.scenarios
        if "fanout" in sc:
            self.results["fanout"] = self.scenario_fanout()
            if a.deflate:
                self.results["fanout_deflate"] = self.scenario_fanout(deflate=True)
        if "steady" in sc:
            self.results["steady"] = self.scenario_steady()
        if a.profile and "beacon" in a.servers:
            self.results["profile"] = self.profile()
        if "rest" in sc and "beacon" in a.servers:
            self.results["rest"] = self.scenario_rest()  # last on this Beacon: /start leaves runs behind
        if "memory" in sc:
            self.results["memory"] = self.scenario_memory()
            if a.deflate:
                self.results["memory_deflate"] = self.scenario_memory(deflate=True)
        if "redis" in sc:
            self.results["redis"] = self.scenario_redis()
            if "skipped" in self.results["redis"]:
                log(f"redis: {self.results['redis']['skipped']}")

    def close(self) -> None:
        self.stop_servers()
        if self.gens is not None:
            self.gens.stop()
        if not self.args.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


# -- profile summary -------------------------------------------------------------------------------
PROFILE_GROUPS = [  # (label, substrings of a frame); the leaf (self time) decides, first match wins
    ("socket send() syscalls (Beacon: one per batch piece per client)", ("selector_events.py", "uvloop")),
    ("creating and scheduling tasks", ("create_task (", "_call_soon (", "ensure_future (", "call_soon (")),
    ("resuming tasks and callbacks (C Task step)", ("Handle._run (",)),
    ("waits, queues, timers (wait_for, Queue, call_at)", ("asyncio/tasks.py", "asyncio/queues.py",
                                                          "asyncio/locks.py", "call_at (", "TimerHandle")),
    ("event loop (select, run_once)", ("asyncio/base_events.py", "selectors.py", "asyncio/events.py")),
    ("aiohttp websocket framing/writing", ("aiohttp/",)),
    ("python-engineio", ("engineio/",)),
    ("python-socketio", ("socketio/",)),
    ("Beacon (app/)", ("app/",)),
    ("LangGraph / LangChain", ("langgraph/", "langchain")),
    ("logging", ("logging/",)),
    ("store (sqlite)", ("aiosqlite", "sqlite3")),
    ("JSON", ("json/", "orjson")),
    ("other asyncio", ("asyncio/",)),
]  # fmt: skip

INCLUSIVE_KEYS = ("app/", "socketio/", "engineio/", "aiohttp/", "asyncio/tasks.py", "asyncio/queues.py")


def summarize_profile(raw: Path, run: dict) -> dict[str, Any]:
    """Self time by function and by layer from py-spy's raw (collapsed) output."""
    if not raw.exists():
        return {"error": "py-spy wrote nothing (is ptrace allowed?)"}
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        leaf[frames[-1]] += n
        for name in {
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0] + ")"
            for f in frames
            if any(k in f for k in INCLUSIVE_KEYS)
        }:
            inclusive[name] += n
        groups[next((g for g, keys in PROFILE_GROUPS if any(k in frames[-1] for k in keys)), "other")] += n
    if not total:
        return {"error": "no samples"}
    us = run.get("server_cpu_us_per_delivery") or 0.0
    return {
        "samples": total,
        "server_cpu_us_per_delivery": us,
        "by_layer": [
            {"layer": g, "percent": 100 * c / total, "us_per_delivery": us * c / total} for g, c in groups.most_common()
        ],
        "top_functions": [{"frame": f, "percent": 100 * c / total} for f, c in leaf.most_common(15)],
        "inclusive": [{"function": f, "percent": 100 * c / total} for f, c in inclusive.most_common(25)],
    }


# -- report ----------------------------------------------------------------------------------------
def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0 or math.isinf(a) or math.isinf(b):
        return "–"
    return f"{a / b:.2f}×"


def cell(m: dict, key: str, fmt: Any) -> str:
    v = m.get(key)
    rng = m.get(key + "_range")
    if v is None:
        return "–"
    return fmt(v) + (f" ({fmt(rng[0])}–{fmt(rng[1])})" if rng and fmt is fmt_k else "")


def _median(results: dict, scenario: str, server: str, key: str, **match: Any) -> float | None:
    cases = results.get(scenario)
    if isinstance(cases, dict):
        cases = [cases]
    for case in cases or []:
        if all(case.get(k) == v for k, v in match.items()):
            value = case["servers"].get(server, {}).get("median", {}).get(key)
            return float(value) if value is not None else None
    return None


def headline(add: Any, results: dict, others: list[str]) -> None:
    """Beacon's ratio to each reference, then the issue's targets."""
    cols: list[tuple[str, str, str, dict]] = []  # (title, scenario, key, match)
    for f in results.get("fanout", []):
        cols.append(
            (f"fan-out {f['clients']}: deliveries/s ↑", "fanout", "deliveries_per_s", {"clients": f["clients"]})
        )
    for f in results.get("fanout", []):
        cols.append((f"fan-out {f['clients']}: p99 ↓", "fanout", "p99_ms", {"clients": f["clients"]}))
    for f in results.get("steady", []):
        cols.append((f"steady {f['clients']}×{f['rate']:g}/s: p99 ↓", "steady", "p99_ms", {"rate": f["rate"]}))
        title = f"steady {f['clients']}×{f['rate']:g}/s: p99 from schedule ↓"
        cols.append((title, "steady", "sched_p99_ms", {"rate": f["rate"]}))
    if results.get("memory"):
        cols.append((f"RSS/idle conn @{results['memory']['connections']} ↓", "memory", "bytes_per_connection", {}))
    if not cols:
        return
    add("**Headline: Beacon ÷ reference, same run** (↑ higher is better for Beacon, ↓ lower is better)")
    add("")
    add("| Beacon ÷ | " + " | ".join(c[0] for c in cols) + " |")
    add("|---|" + "---|" * len(cols))
    for s in others:
        cells = [ratio(_median(results, sc, "beacon", k, **m), _median(results, sc, s, k, **m)) for _, sc, k, m in cols]
        add(f"| {SERVER_LABELS[s]} | " + " | ".join(cells) + " |")
    add("")
    targets: list[tuple[str, float | None, str, bool | None]] = []
    for f in results.get("fanout", []):
        b = _median(results, "fanout", "beacon", "deliveries_per_s", clients=f["clients"])
        for s, floor in (("node", 1.0), ("python", 0.9)):
            r = _median(results, "fanout", s, "deliveries_per_s", clients=f["clients"])
            if b is not None and r:
                label = f"fan-out {f['clients']}: ≥ {floor:.1f}× {SERVER_LABELS[s]}"
                targets.append((label, b / r, f"{b / r:.2f}×", b / r >= floor))
    for f in results.get("steady", []):
        if f["clients"] >= 1000 and f["rate"] <= 50:
            p99 = _median(results, "steady", "beacon", "p99_ms", rate=f["rate"])
            label = f"steady {f['clients']}×{f['rate']:g}/s: p99 < 50 ms"
            targets.append((label, p99, f"{fmt_ms(p99)} ms", None if p99 is None else p99 < 50))
        elif f["clients"] >= 1000:  # issue 14: a faster steady rate, still live, at a bounded CPU cost
            p99 = _median(results, "steady", "beacon", "p99_ms", rate=f["rate"])
            us = _median(results, "steady", "beacon", "server_cpu_us_per_delivery", rate=f["rate"])
            label = f"steady {f['clients']}×{f['rate']:g}/s: p99 < 50 ms and ≤ 2 µs of server CPU per delivery"
            shown = f"{fmt_ms(p99)} ms, {'–' if us is None else f'{us:.1f}'} µs"
            met = None if p99 is None or us is None else p99 < 50 and us <= 2
            targets.append((label, p99, shown, met))
    if results.get("memory"):
        b, n = (_median(results, "memory", s, "bytes_per_connection") for s in ("beacon", "node"))
        if b is not None and n is not None:
            targets.append(("RSS per idle connection ≤ Node's", b / n, f"{b / 1024:.1f} vs {n / 1024:.1f} KiB", b <= n))
    if targets:
        add("| target (issues 6 and 14) | measured | met |")
        add("|---|---|---|")
        for label, _, shown, ok in targets:
            add(f"| {label} | {shown} | {'–' if ok is None else ('yes' if ok else 'no')} |")
        add("")
    add("Full results:")
    add("")


def render_markdown(meta: dict, results: dict, servers: list[str]) -> str:
    lines: list[str] = []
    add = lines.append
    others = [s for s in servers if s != "beacon"]
    head = ["scenario", "metric", *(SERVER_LABELS[s] for s in servers)]
    if "beacon" in servers:
        head += [f"Beacon ÷ {SERVER_LABELS[s]}" for s in others]
    add(f"# Beacon benchmark — {meta['started']}")
    add("")
    add(f"Reproduce: `{meta['command']}` (or `make bench`)")
    add("")
    add(
        f"Machine: {meta['machine']['cpus']} CPUs, load average at start {meta['machine']['loadavg_start']}; "
        f"Beacon at {meta['git']['commit'][:10]}"
        f"{' + uncommitted diff ' + str(meta['git'].get('app_diff_sha1')) if meta['git']['app_dirty'] else ''}; "
        f"python-socketio {meta['versions'].get('python-socketio')}, aiohttp {meta['versions'].get('aiohttp')}, "
        f"Node {meta['versions'].get('node')}, socket.io {meta['versions'].get('socket.io')}. "
        f"Median of {meta['args']['repeat']} run(s); ranges in parentheses. Payload: {meta['args']['size']}-byte text, "
        f"seed-shaped `log` event. Load generator: {meta['args']['gen_procs']} processes, raw Engine.IO 4 / "
        "Socket.IO 5 websocket clients, no permessage-deflate offer."
    )
    add("")
    if "beacon" in servers and others:
        headline(add, results, others)
    add("| " + " | ".join(head) + " |")
    add("|" + "---|" * len(head))

    def row(scenario: str, metric: str, per: dict[str, dict], key: str, fmt: Any, ratios: bool = True) -> None:
        cells = [cell(per[s]["median"], key, fmt) if s in per else "–" for s in servers]
        if "beacon" in servers:
            b = per.get("beacon", {}).get("median", {}).get(key)
            cells += [ratio(b, per.get(s, {}).get("median", {}).get(key)) if ratios else "" for s in others]
        add(f"| {scenario} | {metric} | " + " | ".join(cells) + " |")

    for key, suffix in (("fanout", ""), ("fanout_deflate", " (deflate offered)")):
        for f in results.get(key, []):
            sc = f"fan-out {f['clients']} clients × {f['lines']} lines{suffix}"
            per = f["servers"]
            row(sc, "deliveries/s ↑", per, "deliveries_per_s", fmt_k)
            row(sc, "p50 ms", per, "p50_ms", fmt_ms)
            row(sc, "p99 ms ↓", per, "p99_ms", fmt_ms)
            row(sc, "max ms", per, "max_ms", fmt_ms, False)
            row(sc, "lines lost", per, "lost", lambda v: f"{v:.0f}", False)
            row(sc, "server CPU µs/delivery ↓", per, "server_cpu_us_per_delivery", lambda v: f"{v:.1f}")
    for f in results.get("steady", []):
        sc = f"steady {f['clients']} clients × {f['rate']:g} lines/s, {f['duration_s']:g}s"
        per = f["servers"]
        row(sc, "p50 ms", per, "p50_ms", fmt_ms)
        row(sc, "p99 ms ↓", per, "p99_ms", fmt_ms)
        row(sc, "max ms", per, "max_ms", fmt_ms, False)
        row(sc, "p50 ms from schedule", per, "sched_p50_ms", fmt_ms)
        row(sc, "p99 ms from schedule ↓", per, "sched_p99_ms", fmt_ms)
        row(sc, "server CPU µs/delivery ↓", per, "server_cpu_us_per_delivery", lambda v: f"{v:.1f}")
        row(sc, "lines actually logged/s", per, "logged_lines_per_s", lambda v: f"{v:.0f}", False)
        row(sc, "lost / undelivered at deadline", per, "lost", lambda v: f"{v:.0f}", False)
    for key, suffix in (("memory", ""), ("memory_deflate", " (deflate offered)")):
        m = results.get(key)
        if m:
            row(
                f"idle connections: {m['connections']}{suffix}",
                "RSS per connection KiB ↓",
                m["servers"],
                "bytes_per_connection",
                lambda v: f"{v / 1024:.1f}",
            )
    add("")
    stamp = "the time a line was due" if meta["args"].get("ref_stamp") == "due" else "the send time"
    add(
        "↑ higher is better, ↓ lower is better. Latency is from the `logging` call (the payload's `timestamp`; "
        f"the reference servers stamp {stamp}) to receipt by the client. In `steady`, lines not delivered "
        "by the deadline count as infinitely late (∞) and as undelivered; `lines actually logged/s` below the "
        "target means the producer itself fell behind its schedule, and `from schedule` measures from the time "
        "line i was due (the first line's timestamp + (i − 1) / rate), so a producer that slips counts as late."
    )
    rest = results.get("rest")
    if rest:
        add("")
        add(
            f"**REST** (Beacon, {rest['concurrency']} concurrent connections, {rest['duration_s']:g}s, "
            "aiohttp client in its own process)"
        )
        add("")
        add("| endpoint | requests/s | p50 ms | p99 ms | max ms | unexpected status | generator CPU |")
        add("|---|---|---|---|---|---|---|")
        for label, e in rest["endpoints"].items():
            m = e["median"]
            add(
                f"| {label} | {m['requests_per_s']:.0f} | {fmt_ms(m['p50_ms'])} | {fmt_ms(m['p99_ms'])} | "
                f"{fmt_ms(m['max_ms'])} | {m['unexpected_status']:.0f} | {m['gen_cpu_percent']:.0f}% |"
            )
    redis = results.get("redis")
    if isinstance(redis, dict):
        add("")
        add(f"**Redis bus fan-out**: {redis.get('skipped', 'see JSON')}")
    elif redis:
        add("")
        add(
            "**Redis bus fan-out** (Beacon as `run.py rest` + `run.py realtime` over redis-server, same clients and "
            "lines as `fanout`; server CPU counts all three processes)"
        )
        add("")
        add(
            "| clients | deliveries/s | p50 ms | p99 ms | lost | server CPU µs/delivery | ÷ Beacon in one process | "
            + " | ".join(f"÷ {SERVER_LABELS[s]}" for s in others)
            + " |"
        )
        add("|---|---|---|---|---|---|---|" + "---|" * len(others))
        for case in redis:
            m = case["servers"]["beacon-redis"]["median"]
            rate, n = m["deliveries_per_s"], case["clients"]
            refs = [
                ratio(rate, _median(results, "fanout", s, "deliveries_per_s", clients=n)) for s in ("beacon", *others)
            ]
            add(
                f"| {n} | {fmt_k(rate)} | {fmt_ms(m['p50_ms'])} | {fmt_ms(m['p99_ms'])} | {m['lost'] or 0:.0f} | "
                f"{m['server_cpu_us_per_delivery'] or 0:.1f} | " + " | ".join(refs) + " |"
            )
    add("")
    add("**Load-generator check** (CPU in % of one core; the generator is saturated near 100% per process)")
    add("")
    add(
        "| run | server | gen CPU, busiest process (avg over its active window, worst run) | gen CPU, peak 0.25 s "
        "sample | gen CPU, all processes | server CPU avg | machine avg | others' CPU avg |"
    )
    add("|---|---|---|---|---|---|---|---|")

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{v:.0f}%"

    for key in ("fanout", "fanout_deflate", "steady", "redis"):
        cases = results.get(key)
        for f in cases if isinstance(cases, list) else []:
            sc = f"{key} {f['clients']}" + (f" × {f['rate']:g}/s" if f.get("rate") else "")
            for s in f["servers"]:
                runs = f["servers"].get(s, {}).get("runs", [])
                if not runs:
                    continue
                samples = [r.get("cpu_samples") or {} for r in runs]
                peaks = [max(c["gen_peak_per_proc"]) for c in samples if c.get("gen_peak_per_proc")]
                med = lambda k: statistics.median(v) if (v := [c[k] for c in samples if k in c]) else None  # noqa: E731
                add(
                    f"| {sc} | {SERVER_LABELS[s]} | {pct(max(r['gen_cpu_percent_max_proc'] or 0 for r in runs))} | "
                    f"{pct(max(peaks) if peaks else None)} | {pct(max(r['gen_cpu_percent_total'] for r in runs))} | "
                    f"{pct(med('server_avg'))} | {pct(med('machine_avg'))} | {pct(med('others_avg'))} |"
                )
    prof = results.get("profile")
    if prof and "by_layer" in prof:
        add("")
        add(
            f"**Profile** (py-spy, Beacon, fan-out {prof['clients']} clients; {prof['samples']} samples; "
            f"{prof['server_cpu_us_per_delivery']:.1f} µs of server CPU per delivery; raw stacks `{prof['raw']}`)"
        )
        add("")
        add("| where the server's CPU goes (self time of the sampled leaf frame) | share | µs per delivery |")
        add("|---|---|---|")
        for g in prof["by_layer"]:
            add(f"| {g['layer']} | {g['percent']:.0f}% | {g['us_per_delivery']:.1f} |")
        add("")
        add("| functions (inclusive: time in them and their callees) | share |")
        add("|---|---|")
        for f in prof["inclusive"][:14]:
            add(f"| `{f['function']}` | {f['percent']:.0f}% |")
        add("")
        add("| top frames (self time) | share |")
        add("|---|---|")
        for f in prof["top_functions"][:10]:
            add(f"| `{f['frame']}` | {f['percent']:.1f}% |")
    add("")
    return "\n".join(lines)


# -- entry point -----------------------------------------------------------------------------------
def csv(kind: Any) -> Any:
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
        pass

    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__, formatter_class=Formatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke run that takes < 60 s")
    p.add_argument(
        "--servers",
        type=csv(str),
        default=["beacon", "python", "node"],
        help=f"comma-separated, from {','.join(SERVER_LABELS)}",
    )
    p.add_argument(
        "--scenarios",
        type=csv(str),
        default=list(ALL_SCENARIOS),
        help="comma-separated; also `scale` (not in the default run): the store at --scale × 100,000 runs"
        " and 10,000,000 log lines (bench/scale.py); and `flow` (not in the default run either): a human-in-"
        "the-loop flow on Beacon and `langgraph dev` (bench/flow.py, its --flow-* options below)",
    )
    p.add_argument("--scale", type=float, default=1.0, help="scale: 1 = 100,000 runs and 10,000,000 lines")
    p.add_argument("--scale-stores", type=csv(str), default=["sqlite", "postgres"], help="scale: which stores")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; the report gives the median")
    p.add_argument("--clients", type=csv(int), default=[100, 1000], help="fan-out client counts")
    p.add_argument("--deliveries", type=int, default=400_000, help="fan-out: lines = deliveries / clients ...")
    p.add_argument("--min-lines", type=int, default=200, help="... but at least this many lines")
    p.add_argument("--lines", type=int, default=None, help="fan-out: a fixed number of lines instead")
    p.add_argument("--size", type=int, default=100, help="bytes of text per line")
    p.add_argument("--timeout", type=float, default=180, help="fan-out: give up on a run after this many seconds")
    p.add_argument("--idle-timeout", type=float, default=15, help="fan-out: give up after this long without progress")
    p.add_argument("--steady-clients", type=int, default=1000, help="clients in the steady scenario")
    p.add_argument("--steady-rates", type=csv(float), default=[50.0, 200.0], help="lines/s, comma-separated")
    p.add_argument("--steady-duration", type=float, default=10.0, help="seconds of logging per steady run")
    p.add_argument("--steady-drain", type=float, default=20.0, help="seconds after the schedule to wait for lines")
    p.add_argument("--memory-connections", type=int, default=5000, help="idle connections in the memory scenario")
    p.add_argument("--memory-concurrency", type=int, default=100, help="connects in flight per generator process")
    p.add_argument("--rest-concurrency", type=int, default=32, help="REST requests in flight")
    p.add_argument("--rest-duration", type=float, default=5.0, help="seconds measured per REST endpoint")
    p.add_argument("--rest-warmup", type=float, default=1.0, help="seconds of REST load before measuring")
    p.add_argument(
        "--deflate",
        action="store_true",
        help="also run fanout and memory with the clients offering permessage-deflate (as browsers do)",
    )
    p.add_argument("--profile", action="store_true", help="one extra Beacon fan-out at the largest N under py-spy")
    p.add_argument("--profile-deliveries", type=int, default=4_000_000, help="--profile: lines = this / clients")
    p.add_argument("--gen-procs", type=int, default=3, help="load-generator processes")
    p.add_argument(
        "--gen-uvloop",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the load generator on uvloop when installed",
    )
    p.add_argument("--connect-concurrency", type=int, default=50, help="connects in flight per generator process")
    p.add_argument("--connect-timeout", type=float, default=60, help="seconds to connect the clients (x3 for memory)")
    p.add_argument(
        "--ref-yield-every",
        type=int,
        default=10,
        help="flat out, the reference servers yield to their event loop after this many lines",
    )
    p.add_argument(
        "--ref-stamp",
        choices=["send", "due"],
        default="send",
        help="the reference servers' `timestamp` at a fixed rate: the send time, or the time the line was due "
        "(counts the schedule slip of a blocking emit loop as latency)",
    )
    p.add_argument(
        "--beacon-arg",
        action="append",
        default=[],
        help="extra argument for Beacon's run.py, e.g. --beacon-arg=--log-level=WARNING (repeatable)",
    )
    p.add_argument("--beacon-uvloop", action="store_true", help="run Beacon on uvloop (to measure what it would gain)")
    p.add_argument("--out", default=str(BENCH / "results"), help="where the JSON and markdown go")
    p.add_argument("--keep-workdir", action="store_true", help="keep server logs and Beacon's SQLite files")
    import flow

    flow.add_arguments(p)
    args = p.parse_args(argv)
    if args.quick:
        q = {
            "repeat": 1,
            "clients": [5, 20],
            "deliveries": 2000,
            "min_lines": 50,
            "steady_clients": 20,
            "steady_rates": [50.0],
            "steady_duration": 1.0,
            "steady_drain": 5.0,
            "memory_connections": 100,
            "rest_duration": 1.0,
            "rest_warmup": 0.2,
            "rest_concurrency": 4,
            "gen_procs": 2,
            "timeout": 30,
            "idle_timeout": 5,
        }
        for k, v in q.items():
            if getattr(args, k) == p.get_default(k):
                setattr(args, k, v)
    unknown = set(args.servers) - set(SERVER_LABELS)
    if unknown:
        p.error(f"unknown servers: {', '.join(sorted(unknown))}")
    bad = set(args.scenarios) - {*ALL_SCENARIOS, "scale", "flow"}
    if bad:
        p.error(f"unknown scenarios: {', '.join(sorted(bad))}")
    return args


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("python-socketio", "python-engineio", "aiohttp", "orjson", "uvloop", "psutil"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    with contextlib.suppress(OSError, ValueError):
        out["socket.io"] = json.loads((NODE_DIR / "node_modules/socket.io/package.json").read_text())["version"]
    return out


def git_info() -> dict[str, Any]:
    def git(*a: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        return ""

    diff = git("diff", "HEAD", "--", "app", "run.py", "config.toml")
    return {
        "commit": git("rev-parse", "HEAD") or "unknown",
        "app_dirty": bool(git("status", "--porcelain", "app", "run.py", "config.toml")),
        "app_diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12] if diff else None,  # which uncommitted state
    }


def raise_nofile(needed: int) -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft2, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft2 < needed:
        log(f"warning: open-files limit {soft2} < {needed} needed for {needed // 2} connections")
    return {"before": soft, "after": soft2, "hard": hard}


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if "scale" in args.scenarios:  # a run of its own: Beacon's store, no load generator or reference servers
        import scale

        exe = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
        command = shlex.join([exe, "bench/run.py", *argv])
        code = scale.run(args.scale, args.scale_stores, 1 if args.quick else args.repeat, command)
        args.scenarios = [s for s in args.scenarios if s != "scale"]
        if code or not args.scenarios:
            return code
    if "flow" in args.scenarios:  # a run of its own too: Beacon and `langgraph dev`, no socket.io servers
        import flow

        command = shlex.join([os.path.relpath(sys.executable, ROOT), "bench/run.py", *argv])
        code = flow.run(args, command)
        args.scenarios = [s for s in args.scenarios if s != "flow"]
        if code or not args.scenarios:
            return code
    if any(s == "node" for s in args.servers) and not (NODE_DIR / "node_modules" / "socket.io").is_dir():
        print(
            f"bench: the Node reference server is not installed: npm ci --prefix {NODE_DIR.relative_to(ROOT)}"
            " (make bench does it), or leave it out with --servers beacon,python",
            file=sys.stderr,
        )
        return 2
    exe = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable
    command = shlex.join([exe, "bench/run.py", *argv])
    nofile = raise_nofile(2 * args.memory_connections + 2000)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    bench = Bench(args)
    meta: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "args": {k: v for k, v in vars(args).items()},
        "machine": {
            "cpus": psutil.cpu_count(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(),
            "nofile": nofile,
        },
        "versions": versions(),
        "git": git_info(),
    }
    log(f"reproduce: {command}")
    t0 = time.monotonic()
    failed: str | None = None
    try:
        bench.run()
    except KeyboardInterrupt:
        failed = "interrupted"
        log("interrupted: stopping every process")
    except Exception as exc:
        failed = repr(exc)
        log(f"failed: {exc!r}")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # cleanup is bounded; children die with us anyway
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        bench.close()
    meta["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    meta["seconds"] = round(time.monotonic() - t0, 1)
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    if failed:
        meta["failed"] = failed
    bench.out.mkdir(parents=True, exist_ok=True)
    json_path = bench.out / f"{bench.stamp}.json"
    md_path = bench.out / f"{bench.stamp}.md"
    json_path.write_text(json.dumps({"meta": meta, "scenarios": bench.results}, indent=1, default=str) + "\n")
    md_path.write_text(render_markdown(meta, bench.results, args.servers))
    print(md_path.read_text())
    log(f"wrote {json_path} and {md_path.name} in {meta['seconds']:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
