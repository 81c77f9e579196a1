"""The `flow` scenario (issue 16): a human-in-the-loop flow on Beacon and on `langgraph dev`.

Both servers run the same graph (`reference_langgraph/flow_graph.py`, through its `langgraph.json`):
`ask` logs one line and calls `interrupt()`, on resume `finish` sets a value. One flow is start →
wait for the interrupt → approve → completed; every client runs `--flow-flows` flows one after
another, `--flow-clients` clients at a time, from `--flow-gen-procs` load-generator processes
(`flowload.py`). Servers:

- `beacon`: `run.py` on SQLite and the memory bus;
- `beacon-pg`: `run.py rest` + `run.py realtime` over a redis-server on a throw-away Postgres
  cluster (the scaled-out shape); server CPU counts both Beacon processes, redis-server and
  Postgres are counted apart;
- `langgraph-dev`: `langgraph dev` (langgraph-api 0.16.7, in memory) from its own venv
  (`make bench` builds `reference_langgraph/.venv` from the lock file).

Beacon is driven over its own API and over the Agent Server API it also serves, `langgraph dev`
over the Agent Server API. Server CPU is psutil `cpu_times` before and after the active window
divided by the flows; `GET /status` is measured apart: `--flow-status-requests` GETs of one
waiting thread, CPU delta ÷ requests. `--flow-profile` adds one Beacon run at 10 clients under
py-spy and a summary of where the time goes. Last, `--flow-waiting` threads are left waiting for
approval at once on each Beacon (`flowwait.py`): RSS per waiting thread and `/admin/approvals` p99.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flowload
import psutil
from flowreport import APIS, SERVERS, profile_summary, render
from flowwait import measure_waiting

import run as bench

REF = bench.BENCH / "reference_langgraph"
GRAPHS = REF / "langgraph.json"
LANGGRAPH = REF / ".venv" / "bin" / "langgraph"
BEACON_ARGS = ["--graphs", str(GRAPHS), "--log-level", "WARNING"]
DEFAULTS: dict[str, Any] = {
    "flow_servers": list(SERVERS),
    "flow_apis": list(APIS),
    "flow_clients": [1, 10, 50],
    "flow_flows": 20,
    "flow_repeat": 1,
    "flow_poll": 0.01,
    "flow_gen_procs": 2,
    "flow_timeout": 300.0,
    "flow_status_requests": 2000,
    "flow_profile_flows": 40,
    "flow_waiting": 10_000,
    "flow_waiting_batch": 0,
}
QUICK = {"flow_clients": [1, 3], "flow_flows": 2, "flow_status_requests": 50, "flow_profile_flows": 3,
         "flow_waiting": 100}  # fmt: skip


def log(msg: str) -> None:
    print(f"[bench flow {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d, csv = DEFAULTS, bench.csv
    g = p.add_argument_group("flow (issue 16; not in the default run: --scenarios flow)")
    g.add_argument("--flow-servers", type=csv(str), default=d["flow_servers"], help=f"from {','.join(SERVERS)}")
    g.add_argument("--flow-apis", type=csv(str), default=d["flow_apis"], help="Beacon's servers: beacon and/or agent")
    g.add_argument("--flow-clients", type=csv(int), default=d["flow_clients"], help="concurrent clients, per run")
    g.add_argument("--flow-flows", type=int, default=d["flow_flows"], help="flows per client")
    g.add_argument("--flow-repeat", type=int, default=d["flow_repeat"], help="runs per case (median)")
    g.add_argument("--flow-poll", type=float, default=d["flow_poll"], help="s between GET /status polls")
    g.add_argument("--flow-gen-procs", type=int, default=d["flow_gen_procs"], help="load-generator processes")
    g.add_argument("--flow-timeout", type=float, default=d["flow_timeout"], help="s per run before it gives up")
    g.add_argument("--flow-status-requests", type=int, default=d["flow_status_requests"],
                   help="GET /status requests for its CPU cost")  # fmt: skip
    g.add_argument("--flow-waiting", type=int, default=d["flow_waiting"],
                   help="threads left waiting for approval at once on each Beacon: RSS per thread, "
                   "/admin/approvals p99 (0: skip)")
    g.add_argument("--flow-waiting-batch", type=int, default=d["flow_waiting_batch"],
                   help="--flow-waiting: start them this many at a time, each batch once the last waits "
                   "(0: all at once)")  # fmt: skip
    g.add_argument("--flow-profile", action="store_true", help="one more Beacon run at 10 clients under py-spy")
    g.add_argument("--flow-profile-flows", type=int, default=d["flow_profile_flows"], help="--flow-profile: per client")


# -- servers ---------------------------------------------------------------------------------------
def tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        top = psutil.Process(pid)
        return [top, *top.children(recursive=True)]
    return []


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        for proc in tree(pid):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
    return total


def rss_of(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for proc in tree(pid):
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
    return total


class PostgresBeacon(bench.RedisBeacon):
    """`run.py rest` + `run.py realtime` over redis-server (run.py's `redis` scenario) on a Postgres store."""

    def __init__(self, workdir: Path, store_url: str, postmaster: int) -> None:
        super().__init__(workdir, BEACON_ARGS)
        self.label, self.store_url, self.postmaster = SERVERS["beacon-pg"], store_url, postmaster

    def common(self) -> list[str]:
        return ["--pubsub-url", f"redis://127.0.0.1:{self.redis_port}/0", "--store-url", self.store_url]

    def server_pids(self) -> list[int]:
        return [self.pid, self.side[1].pid]  # the realtime and the REST node

    def side_pids(self) -> list[int]:
        return [self.side[0].pid, self.postmaster]  # redis-server, Postgres with its backends


class LanggraphDev(bench.Server):
    """`langgraph dev` on the same langgraph.json, in memory, no browser, no reload, no analytics."""

    ENV = ["LANGGRAPH_CLI_NO_ANALYTICS=1", "LANGSMITH_TRACING=false", "LANGCHAIN_TRACING_V2=false"]

    def __init__(self, workdir: Path) -> None:
        super().__init__("python", workdir, [])
        self.name, self.label = "langgraph-dev", SERVERS["langgraph-dev"]
        self.version = ""

    def argv(self) -> list[str]:
        """In a directory of its own: `langgraph dev` keeps its threads in `./.langgraph_api` across restarts
        (and loads them at start), and resolves langgraph.json's paths against its working directory, so it
        gets the same langgraph.json with the paths made absolute."""
        home = self.workdir / self.tag
        home.mkdir(parents=True, exist_ok=True)
        config = json.loads(GRAPHS.read_text())
        config["dependencies"] = [str((REF / d).resolve()) for d in config["dependencies"]]
        config["graphs"] = {k: str(REF / v) for k, v in config["graphs"].items()}
        (home / "langgraph.json").write_text(json.dumps(config))
        return ["env", "-C", str(home), *self.ENV, str(LANGGRAPH), "dev", "--config", "langgraph.json",
                "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(self.rest_port)]  # fmt: skip

    def answered_port(self) -> int | None:
        """The port its banner names: it moves to another one, with a warning, when the asked one is busy."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log_tail_all())
        found = re.search(r"API: http://127\.0\.0\.1:(\d+)", text)
        return int(found.group(1)) if found else None

    def log_tail_all(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / f"{self.tag}.log").read_text(errors="replace")
        return ""

    def start(self, timeout: float = 120.0) -> None:
        bench.Server.serial += 1
        self.tag = f"{self.name}-{bench.Server.serial}"
        asked = self.rest_port = self.sio_port = bench.free_port()
        self.proc = self.spawn(self.argv(), f"{self.tag}.log")
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"langgraph dev exited with {self.proc.returncode}: {self.log_tail()}")
            port = self.answered_port()
            if port is not None:
                with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
                    status, info = bench.http("GET", f"http://127.0.0.1:{port}/info", timeout=2)
                    if status == 200 and isinstance(info, dict) and "version" in info:
                        if port != asked:
                            log(f"  langgraph dev moved from port {asked} (busy) to {port}")
                        self.rest_port = self.sio_port = port
                        self.version = str(info["version"])
                        return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"langgraph dev did not answer /info within {timeout}s: {self.log_tail()}")

    def server_pids(self) -> list[int]:
        return [self.pid]

    def side_pids(self) -> list[int]:
        return []


def beacon_sqlite(workdir: Path) -> bench.Server:
    srv = bench.Server("beacon", workdir, BEACON_ARGS)
    srv.label = SERVERS["beacon"]
    return srv


def server_pids(srv: bench.Server) -> list[int]:
    return srv.server_pids() if hasattr(srv, "server_pids") else [srv.pid]


def side_pids(srv: bench.Server) -> list[int]:
    return srv.side_pids() if hasattr(srv, "side_pids") else []


@contextlib.contextmanager
def started(kind: str, workdir: Path) -> Iterator[bench.Server]:
    """The server of `kind`, started, with whatever it needs (a Postgres cluster), stopped at the end."""
    with contextlib.ExitStack() as stack:
        if kind == "beacon":
            srv = beacon_sqlite(workdir)
        elif kind == "beacon-pg":
            from scale import Postgres  # imports Beacon's store code: only when this server runs

            pg = stack.enter_context(Postgres())
            postmaster = int((pg.dir / "data" / "postmaster.pid").read_text().split()[0])
            srv = PostgresBeacon(workdir, pg.url, postmaster)
        else:
            srv = LanggraphDev(workdir)
        stack.callback(srv.stop)
        log(f"starting {srv.label}")
        srv.start(timeout=120)
        yield srv


# -- load ------------------------------------------------------------------------------------------
def drive(specs: list[dict[str, Any]], srv: bench.Server, timeout: float) -> dict[str, Any]:
    """Start the generator processes, read every CPU, let them go, read every CPU again: one window."""
    ctx = mp.get_context("spawn")
    procs, conns = [], []
    for spec in specs:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=flowload.main, args=(child, spec), daemon=True)
        proc.start()
        procs.append(proc)
        conns.append(parent)
    try:
        for conn in conns:
            if not conn.poll(60) or conn.recv() != "ready":
                raise RuntimeError("a load-generator process did not get ready")
        mine, side = server_pids(srv), side_pids(srv)
        cpu0, side0, machine0 = cpu_of(mine), cpu_of(side), psutil.cpu_times()
        for conn in conns:
            conn.send("go")
        replies = []
        for conn in conns:
            if not conn.poll(timeout + 60):
                raise RuntimeError("a load-generator process did not answer in time")
            replies.append(conn.recv())
        cpu1, side1, machine1 = cpu_of(mine), cpu_of(side), psutil.cpu_times()
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    failed = [r["error"] for r in replies if "error" in r]
    if failed:
        raise RuntimeError(f"load generator failed: {failed[0]}")
    window = max(r["t_end"] for r in replies) - min(r["t_start"] for r in replies)
    busy = sum(getattr(machine1, f) - getattr(machine0, f) for f in ("user", "system", "nice", "irq", "softirq"))
    gen_cpu = [r["cpu_s"] for r in replies]
    return {
        "replies": replies,
        "window_s": window,
        "server_cpu_s": cpu1 - cpu0,
        "side_cpu_s": side1 - side0,
        "gen_cpu_percent": [round(100 * c / window, 1) for c in gen_cpu] if window > 0 else [],
        # everything else on the machine in the window (other users), in % of one core; ticks make it ±
        "others_cpu_percent": max(0.0, round(100 * (busy - (cpu1 - cpu0) - (side1 - side0) - sum(gen_cpu)) / window, 1))
        if window > 0 else None,
        "rss_bytes": rss_of(mine),
    }  # fmt: skip


def split(clients: int, procs: int) -> list[tuple[int, int]]:
    """(first client, clients) per generator process."""
    n = max(1, min(procs, clients))
    sizes = [clients // n + (1 if i < clients % n else 0) for i in range(n)]
    return [(sum(sizes[:i]), size) for i, size in enumerate(sizes)]


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measure_flows(srv: bench.Server, api: str, clients: int, flows: int, a: argparse.Namespace) -> dict[str, Any]:
    base = f"http://127.0.0.1:{srv.rest_port}"
    specs = [
        {"api": api, "base": base, "token": srv.token, "clients": n, "first_client": first, "flows": flows,
         "poll": a.flow_poll, "timeout": a.flow_timeout}
        for first, n in split(clients, a.flow_gen_procs)
    ]  # fmt: skip
    got = drive(specs, srv, a.flow_timeout)
    latencies = [x for r in got["replies"] for x in r["latencies"]]
    done, window = len(latencies), got["window_s"]
    p50, p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
    return {
        "clients": clients,
        "flows_per_client": flows,
        "flows": done,
        "expected": clients * flows,
        "errors": sum(r["errors"] for r in got["replies"]),
        "error_samples": [e for r in got["replies"] for e in r["error_samples"]][:5],
        "window_s": round(window, 3),
        "flows_per_s": round(done / window, 2) if window > 0 else None,
        "p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
        "p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "server_cpu_ms_per_flow": round(1000 * got["server_cpu_s"] / done, 2) if done else None,
        "side_cpu_ms_per_flow": round(1000 * got["side_cpu_s"] / done, 2) if done and side_pids(srv) else None,
        "server_cpu_percent": round(100 * got["server_cpu_s"] / window, 1) if window > 0 else None,
        "polls_per_flow": round(sum(r["polls"] for r in got["replies"]) / done, 1) if done else None,
        "rss_mb": round(got["rss_bytes"] / 2**20, 1),
        "gen_cpu_percent": got["gen_cpu_percent"],
        "others_cpu_percent": got["others_cpu_percent"],
    }


def waiting_thread(srv: bench.Server) -> str:
    """A thread waiting for approval, for the GET /status measurement."""
    base = f"http://127.0.0.1:{srv.rest_port}"
    status, body = bench.http("POST", f"{base}/start", {"workflow": "flow", "input": {"topic": "status"}},
                              token=srv.token)  # fmt: skip
    if status != 202:
        raise RuntimeError(f"POST /start answered {status}: {body}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, view = bench.http("GET", f"{base}/status/{body['thread_id']}", token=srv.token)
        if status == 200 and view["status"] == "waiting_approval":
            return str(body["thread_id"])
        time.sleep(0.05)
    raise RuntimeError(f"thread {body['thread_id']} never waited for approval")


def measure_status(srv: bench.Server, a: argparse.Namespace) -> dict[str, Any]:
    tid = waiting_thread(srv)
    spec = {"api": "status", "base": f"http://127.0.0.1:{srv.rest_port}", "token": srv.token, "thread_id": tid,
            "requests": a.flow_status_requests, "concurrency": 10, "timeout": a.flow_timeout}  # fmt: skip
    got = drive([spec], srv, a.flow_timeout)
    (reply,) = got["replies"]
    return {
        "requests": reply["requests"],
        "unexpected_status": reply["unexpected_status"],
        "requests_per_s": round(reply["requests"] / got["window_s"], 1),
        "server_cpu_ms_per_request": round(1000 * got["server_cpu_s"] / reply["requests"], 3),
        "gen_cpu_percent": got["gen_cpu_percent"],
    }


# -- profile ---------------------------------------------------------------------------------------
PROFILE_PASSES = {  # name: (py-spy options, what a sample is)
    "running": ((), "a sample of every thread not waiting: a thread in a system call (SQLite's writes and fsyncs, "
                    "the GIL hand-over) counts as running"),
    "gil": (("--gil",), "a sample of the thread holding the GIL only: Python running, not SQLite's C code or "
                        "system calls"),
}  # fmt: skip


def profile(srv: bench.Server, a: argparse.Namespace, out: Path, stamp: str) -> dict[str, Any]:
    """Two runs under py-spy: every running thread, then only the GIL's holder; one summary of both."""
    clients, texts, passes = 10, [], {}
    for name, (options, what) in PROFILE_PASSES.items():
        raw = out / f"flow-{stamp}-profile-{name}.txt"
        log(f"profile ({name}): {srv.label}, Beacon API, {clients} clients × {a.flow_profile_flows} flows, py-spy")
        srv.settle()
        with bench.py_spy(srv.pid, raw, "--full-filenames", *options, blocking=True):  # true shares per thread
            r = measure_flows(srv, "beacon", clients, a.flow_profile_flows, a)
        log(f"  under py-spy: {describe(r)}")
        title = (f"# py-spy ({name}: {what}): {srv.label}, Beacon API, {clients} clients × {a.flow_profile_flows} "
                 f"flows ({r['flows']} flows, {r['flows_per_s']} flows/s under the profiler)")  # fmt: skip
        texts.append(profile_summary(raw, title, r["server_cpu_ms_per_flow"], r["flows"]) if raw.exists() else title)
        passes[name] = {"run": r, "raw": str(raw)}
    summary = out / f"flow-{stamp}-profile.txt"
    summary.write_text("\n\n".join(texts))
    return {"passes": passes, "summary": str(summary)}


# -- the scenario ----------------------------------------------------------------------------------
def describe(r: dict[str, Any]) -> str:
    side = f" (+{r['side_cpu_ms_per_flow']} ms bus+store)" if r.get("side_cpu_ms_per_flow") is not None else ""
    return (
        f"{r['flows']}/{r['expected']} flows, {r['flows_per_s']} flows/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
        f"server CPU {r['server_cpu_ms_per_flow']} ms/flow{side}, RSS {r['rss_mb']} MB, "
        f"generator {r['gen_cpu_percent']} %, others {r['others_cpu_percent']} %, errors {r['errors']}"
    )


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median flows/s (its own figures stay together), with every run's figures kept."""
    ordered = sorted(runs, key=lambda r: r["flows_per_s"] or 0.0)
    return {**ordered[len(ordered) // 2], "runs": runs} if len(runs) > 1 else dict(runs[0])


def one_server(kind: str, a: argparse.Namespace, workdir: Path, out: Path, stamp: str) -> dict[str, Any]:
    result: dict[str, Any] = {"server": kind, "label": SERVERS[kind], "cases": []}
    apis = ["agent"] if kind == "langgraph-dev" else a.flow_apis
    with started(kind, workdir) as srv:
        if isinstance(srv, LanggraphDev):
            result["version"] = srv.version
        for api in apis:  # a warm-up flow per API: imports, first compiles, connection pools
            measure_flows(srv, api, 1, 2, a)
        for api in apis:
            for clients in a.flow_clients:
                runs = []
                for _ in range(a.flow_repeat):
                    srv.settle()
                    r = measure_flows(srv, api, clients, a.flow_flows, a)
                    log(f"{kind} {api} {clients} clients: {describe(r)}")
                    runs.append(r)
                result["cases"].append({"api": api, **median_run(runs)})
        if kind != "langgraph-dev":
            srv.settle()
            result["status"] = measure_status(srv, a)
            log(f"{kind} GET /status: {result['status']}")
            if kind == "beacon" and a.flow_profile:
                srv.settle()
                result["profile"] = profile(srv, a, out, stamp)
            if a.flow_waiting:  # last: the threads it leaves waiting stay
                log(f"{kind}: {a.flow_waiting} threads waiting for approval at once")
                try:  # the figures above are kept, and the servers after this one still run
                    result["waiting"] = measure_waiting(
                        srv, a.flow_waiting, lambda: rss_of(server_pids(srv)), a.flow_timeout * 4, a.flow_waiting_batch
                    )
                except Exception as exc:
                    result["waiting_failed"] = repr(exc)
                    log(f"{kind} waiting failed: {exc!r}")
                else:
                    log(f"{kind} waiting: {result['waiting']}")
    return result


def cpu_reference() -> float:
    """Milliseconds of CPU for a fixed pure-Python loop, best of 5: this machine's speed right now.

    The host shares its cores: the same code has measured twice the CPU per flow on two days. Runs
    compare by their ratios; this says how fast the machine was when the absolute figures were taken."""
    best = float("inf")
    for _ in range(5):
        t, total = time.process_time(), 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.process_time() - t)
    return round(1000 * best, 1)


def usable(a: argparse.Namespace) -> str | None:
    bad = set(a.flow_servers) - set(SERVERS) or set(a.flow_apis) - set(APIS)
    if bad:
        return f"unknown --flow-servers/--flow-apis: {', '.join(sorted(bad))}"
    if "langgraph-dev" in a.flow_servers and not LANGGRAPH.exists():
        return (f"the langgraph dev reference is not installed ({LANGGRAPH.relative_to(bench.ROOT)}): make bench "
                f"builds it from {(REF / 'requirements.lock').relative_to(bench.ROOT)}; or leave it out with "
                "--flow-servers beacon,beacon-pg")  # fmt: skip
    if "beacon-pg" in a.flow_servers and not (shutil.which("redis-server") and list(Path("/usr/lib/postgresql").glob(
            "*/bin/initdb"))):  # fmt: skip
        return "beacon-pg needs redis-server and Postgres (initdb, pg_ctl); or leave it out with --flow-servers"
    return None


def run(a: argparse.Namespace, command: str) -> int:
    if a.quick:
        for key, value in QUICK.items():
            if getattr(a, key) == DEFAULTS[key]:
                setattr(a, key, value)
    problem = usable(a)
    if problem:
        print(f"bench flow: {problem}", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = Path(tempfile.mkdtemp(prefix="beacon-bench-flow-"))
    meta: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "args": {k: v for k, v in vars(a).items() if k.startswith("flow_") or k in ("quick", "out")},
        "machine": {
            "cpus": psutil.cpu_count(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "cpu_reference_ms_start": cpu_reference(),
        },
        "git": bench.git_info(),
    }
    log(f"reproduce: {command}")
    began, results, failed = time.monotonic(), [], None
    try:
        for kind in a.flow_servers:
            results.append(one_server(kind, a, workdir, out, stamp))
    except Exception as exc:
        failed = repr(exc)
        log(f"failed: {exc!r}")
    finally:
        if not a.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    meta.update(seconds=round(time.monotonic() - began), loadavg_end=[round(x, 2) for x in os.getloadavg()])
    meta["machine"]["cpu_reference_ms_end"] = cpu_reference()
    waits = [f"{r['server']}: {r['waiting_failed']}" for r in results if "waiting_failed" in r]
    failed = "; ".join([failed, *waits] if failed else waits)
    if failed:
        meta["failed"] = failed
    report = {"meta": meta, "servers": results}
    (out / f"flow-{stamp}.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    text = render(report)
    (out / f"flow-{stamp}.md").write_text(text)
    print(text)
    log(f"wrote {out / f'flow-{stamp}.json'} and flow-{stamp}.md in {meta['seconds']} s")
    return 1 if failed else 0


if __name__ == "__main__":  # `python bench/flow.py …` is `python bench/run.py --scenarios flow …`
    sys.exit(bench.main(["--scenarios", "flow", *sys.argv[1:]]))
