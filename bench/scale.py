"""The `scale` scenario (issue 15): Beacon's store at 100,000 runs and 10,000,000 log lines.

For each store (SQLite, and Postgres on a throw-away cluster) the script fills the tables straight
through the database (the schema from Beacon's own migrations), starts `python run.py` on it and
measures, from this process, one request at a time:

- start-up: spawn → `/health` answers 200;
- `/admin/runs` pages (no filter, by status, by workflow, both), each followed 5 pages down its
  keyset cursor; `/admin/runs/{id}/logs?after=` at random threads and offsets; `/admin/approvals`
  pages with `--scale` × 10,000 runs waiting;
- a `/logs` `subscribe` with `since=0` on a 10,000-line thread: time to its last replayed line;
- a retention pass (retention_days 30: about half the finished threads are older) run beside the
  serving Beacon, its duration, what it removed, the store's size before and after, and the p99
  of `/admin/runs/{id}/logs` while it ran.

`--scale 0.01` fills 1,000 runs and 100,000 lines (a minute); `--scale 1` is the issue's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import socketio  # noqa: E402

from app.config import StoreConfig  # noqa: E402
from app.runs.checkpoints import open_checkpointer  # noqa: E402
from app.runs.retention import Retention  # noqa: E402
from app.store import open_store  # noqa: E402

TOKEN = "bench-scale-admin-0123456789abcdef"
REPLAY_LINES = 10_000
WORKFLOWS = ("review", "deploy", "bench")
FINISHED = ("completed", "failed", "cancelled")
NOW = datetime.now(UTC)
DAYS = 60  # created_at spread over the last 60 days


def log(msg: str) -> None:
    print(f"[bench scale {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Sizes:
    runs: int
    lines: int
    waiting: int

    @classmethod
    def of(cls, scale: float) -> Sizes:
        return cls(max(100, int(100_000 * scale)), max(20_000, int(10_000_000 * scale)), max(10, int(10_000 * scale)))


def thread_id(i: int) -> str:
    return f"t{i:07d}"


def runs_rows(sizes: Sizes) -> Iterator[tuple[Any, ...]]:
    """Thread 0 holds the replay thread's 10,000 lines; every 10th thread waits for approval."""
    rnd = random.Random(15)
    step, every = DAYS * 86400 / sizes.runs, sizes.runs // sizes.waiting
    for i in range(sizes.runs):
        ts = (NOW - timedelta(seconds=(sizes.runs - i) * step)).isoformat()
        status = "waiting_approval" if i % every == 1 else rnd.choice(FINISHED)
        yield (thread_id(i), WORKFLOWS[i % 3], status, '{"topic": "scale"}', ts, ts, None, "{}", f"r{i}")


def lines_per_thread(sizes: Sizes) -> Iterator[tuple[str, int]]:
    rest = sizes.lines - REPLAY_LINES
    per, extra = divmod(rest, sizes.runs - 1)
    yield thread_id(0), REPLAY_LINES
    for i in range(1, sizes.runs):
        yield thread_id(i), per + (1 if i <= extra else 0)


def log_rows(sizes: Sizes) -> Iterator[tuple[Any, ...]]:
    text = "step finished: " + "x" * 85  # ~100 bytes, the seed's shape
    ts = NOW.isoformat()
    for tid, n in lines_per_thread(sizes):
        for seq in range(1, n + 1):
            yield (tid, seq, "INFO", text, ts)


def approval_rows(sizes: Sizes) -> Iterator[tuple[Any, ...]]:
    for row in runs_rows(sizes):
        if row[2] == "waiting_approval":
            yield (row[0], "i-" + row[0], row[1], '{"question": "ship it?"}', row[4], None, None)


def chunks(rows: Iterator[tuple[Any, ...]], n: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def fill_sqlite(path: Path, sizes: Sizes) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        for table, rows, marks in (
            ("runs", runs_rows(sizes), 9),
            ("approvals", approval_rows(sizes), 7),
            ("logs", log_rows(sizes), 5),
        ):
            for batch in chunks(rows):
                db.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * marks)})", batch)
                db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def fill_postgres(url: str, sizes: Sizes) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        for table, rows in (("runs", runs_rows(sizes)), ("approvals", approval_rows(sizes)), ("logs", log_rows(sizes))):
            with db.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        db.execute("VACUUM ANALYZE")


class Postgres:
    """A throw-away cluster on a free port (as the test suite's), removed at the end."""

    def __init__(self) -> None:
        self.bin = Path(next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin")))))
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="beacon-bench-pg-"))
        self.user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.user, *args], check=True, capture_output=True, timeout=120)

    def __enter__(self) -> Postgres:
        data = str(self.dir / "data")
        self._run(str(self.bin / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_wal_size=4GB"
        self._run(str(self.bin / "pg_ctl"), "start", "-w", "-D", data, "-l", str(self.dir / "pg.log"), "-o", options)
        return self

    def __exit__(self, *exc: Any) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bin / "pg_ctl"), "stop", "-m", "fast", "-D", str(self.dir / "data"))
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def size(self) -> int:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            row = db.execute("SELECT pg_database_size(current_database())").fetchone()
            return int(row[0]) if row else 0


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


def p50(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1000


class Beacon:
    def __init__(self, store_url: str, workdir: Path) -> None:
        self.rest_port, self.realtime_port = free_port(), free_port()
        self.env = {
            **os.environ,
            "STORE_URL": store_url,
            "REST_API_PORT": str(self.rest_port),
            "SOCKETIO_PORT": str(self.realtime_port),
            "BEACON_AUTH_TOKENS": f"bench:admin:{TOKEN}",
            "BEACON_LOGGING_LEVEL": "WARNING",
        }
        self.log = (workdir / "beacon.log").open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> float:
        """Seconds from spawn until /health answers 200."""
        began = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "run.py"], cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        async with aiohttp.ClientSession() as http:
            while time.monotonic() - began < 120:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.rest}/health") as resp:
                        if resp.status == 200:
                            return time.monotonic() - began
                if self.proc.poll() is not None:
                    raise RuntimeError(f"Beacon exited with {self.proc.returncode}; see {self.log.name}")
                await asyncio.sleep(0.02)
        raise RuntimeError("Beacon did not become healthy within 120 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"


async def timed_get(http: aiohttp.ClientSession, url: str) -> tuple[float, Any]:
    began = time.perf_counter()
    async with http.get(url) as resp:
        body = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"GET {url}: {resp.status} {body}")
    return time.perf_counter() - began, body


async def runs_pages(http: aiohttp.ClientSession, rest: str, rounds: int) -> list[float]:
    filters = ["", "status=completed", "workflow=deploy", "status=waiting_approval&workflow=review", "status=failed"]
    samples = []
    for i in range(rounds):
        cursor = None
        for _ in range(5):
            q = filters[i % len(filters)]
            url = f"{rest}/admin/runs?limit=50&{q}" + (f"&cursor={cursor}" if cursor else "")
            took, body = await timed_get(http, url)
            samples.append(took)
            if not (cursor := body["next_cursor"]):
                break
    return samples


async def logs_pages(http: aiohttp.ClientSession, rest: str, sizes: Sizes, n: int, lo: int = 1) -> list[float]:
    rnd = random.Random(7 + lo)
    samples = []
    per = sizes.lines // sizes.runs
    for _ in range(n):
        tid = thread_id(rnd.randrange(lo, sizes.runs))
        took, _ = await timed_get(http, f"{rest}/admin/runs/{tid}/logs?after={rnd.randrange(0, per)}&limit=100")
        samples.append(took)
    return samples


async def approval_pages(http: aiohttp.ClientSession, rest: str, rounds: int) -> list[float]:
    samples = []
    for i in range(rounds):
        cursor, q = None, ("", "&workflow=review")[i % 2]
        for _ in range(5):
            url = f"{rest}/admin/approvals?limit=50{q}" + (f"&cursor={cursor}" if cursor else "")
            took, body = await timed_get(http, url)
            samples.append(took)
            if not (cursor := body["next_cursor"]):
                break
    return samples


async def replay(beacon: Beacon, repeat: int) -> list[float]:
    """Seconds from `subscribe since=0` to the 10,000th replayed line."""
    samples = []
    for _ in range(repeat):
        client = socketio.AsyncClient(reconnection=False)
        last = asyncio.Event()
        client.on("log", lambda line: line["seq"] == REPLAY_LINES and last.set(), namespace="/logs")
        await client.connect(
            f"http://127.0.0.1:{beacon.realtime_port}", namespaces=["/logs"], auth={"token": TOKEN}, wait_timeout=10
        )
        began = time.perf_counter()
        ack = await client.call("subscribe", {"thread_id": thread_id(0), "since": 0}, namespace="/logs", timeout=60)
        await asyncio.wait_for(last.wait(), 60)
        samples.append(time.perf_counter() - began)
        if ack.get("replayed") != REPLAY_LINES:
            raise RuntimeError(f"replay acked {ack}")
        await client.disconnect()
    return samples


async def retention_pass(url: str, beacon: Beacon, http: aiohttp.ClientSession, sizes: Sizes) -> dict[str, Any]:
    """A pass with retention_days=30 beside the serving Beacon; requests measured meanwhile."""
    cfg = StoreConfig(url=url, retention_days=30)
    during: list[float] = []
    async with open_store(url) as store, open_checkpointer(url) as saver:
        retention = Retention(cfg, store, saver, lambda: "bench-retention")
        task = asyncio.create_task(retention.prune())
        while not task.done():
            # Threads of the last 30 days (the newer half), which the pass keeps.
            during.extend(await logs_pages(http, beacon.rest, sizes, 20, lo=int(sizes.runs * 0.55)))
        totals = await task
    assert totals is not None
    return {
        "seconds": totals.last_pass_seconds,
        "threads": totals.threads,
        "log_lines": totals.log_lines,
        "logs_p99_ms_during": round(p99(during), 1) if during else None,
        "requests_during": len(during),
    }


def sqlite_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def measure(kind: str, url: str, size: Any, workdir: Path, sizes: Sizes, repeat: int) -> dict[str, Any]:
    result: dict[str, Any] = {"store": kind}
    beacon = Beacon(url, workdir)
    try:
        result["startup_s"] = [round(await beacon.start(), 2)]
        for _ in range(repeat - 1):  # start-up again: the first after a fill pays for a cold cache
            beacon.stop()
            result["startup_s"].append(round(await beacon.start(), 2))
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            for name, samples in (
                ("runs_pages", await runs_pages(http, beacon.rest, 40 * repeat)),
                ("logs_after", await logs_pages(http, beacon.rest, sizes, 200 * repeat)),
                ("approvals_pages", await approval_pages(http, beacon.rest, 20 * repeat)),
            ):
                result[name] = {"p50_ms": round(p50(samples), 1), "p99_ms": round(p99(samples), 1), "n": len(samples)}
                log(f"{kind}: {name} p50 {result[name]['p50_ms']} ms, p99 {result[name]['p99_ms']} ms")
            took = await replay(beacon, repeat)
            result["replay_10k_s"] = round(sorted(took)[len(took) // 2], 3)
            log(f"{kind}: replay of {REPLAY_LINES} lines {result['replay_10k_s']} s")
            result["size_before"] = size()
            result["retention"] = await retention_pass(url, beacon, http, sizes)
            result["size_after"] = size()
            log(f"{kind}: retention {result['retention']}, size {result['size_before']} → {result['size_after']}")
    finally:
        beacon.stop()
    return result


async def one_store(kind: str, sizes: Sizes, workdir: Path, repeat: int) -> dict[str, Any]:
    began = time.monotonic()
    if kind == "sqlite":
        path = workdir / "scale.sqlite"
        url = f"sqlite:///{path}"
        async with open_store(url):
            pass  # the schema, from the migrations
        fill_sqlite(path, sizes)
        fill_s = time.monotonic() - began
        log(f"sqlite: filled {sizes} in {fill_s:.0f} s")
        result = await measure(kind, url, lambda: sqlite_size(path), workdir, sizes, repeat)
    else:
        with Postgres() as pg:
            url = pg.url
            async with open_store(url):
                pass
            fill_postgres(url, sizes)
            fill_s = time.monotonic() - began
            log(f"postgres: filled {sizes} in {fill_s:.0f} s")
            result = await measure(kind, url, pg.size, workdir, sizes, repeat)
    return {**result, "fill_s": round(fill_s, 1)}


def table(results: list[dict[str, Any]], sizes: Sizes) -> str:
    def mb(n: int) -> str:
        return f"{n / 1e6:,.0f} MB"

    rows = [
        ("start-up (spawn → /health 200), s", lambda r: " / ".join(map(str, r["startup_s"])), "< 5"),
        ("`/admin/runs` pages (filters, 5 cursor pages) p99, ms", lambda r: r["runs_pages"]["p99_ms"], "< 50"),
        ("`/admin/runs/{id}/logs?after=` p99, ms", lambda r: r["logs_after"]["p99_ms"], "< 50"),
        (f"`/admin/approvals` pages, {sizes.waiting:,} waiting, p99, ms", lambda r: r["approvals_pages"]["p99_ms"],
         "< 50"),
        (f"`subscribe since=0`, {REPLAY_LINES:,} lines → last line, s", lambda r: r["replay_10k_s"], "< 0.5"),
        ("retention pass (30 days): threads / log lines removed", lambda r: (
            f"{r['retention']['threads']:,} / {r['retention']['log_lines']:,}"), ""),
        ("retention pass, s", lambda r: r["retention"]["seconds"], ""),
        ("`/logs?after=` p99 during the pass, ms", lambda r: r["retention"]["logs_p99_ms_during"], ""),
        ("store size before → after the pass", lambda r: f"{mb(r['size_before'])} → {mb(r['size_after'])}", ""),
        ("fill (bulk insert, not Beacon), s", lambda r: r["fill_s"], ""),
    ]  # fmt: skip
    head = "| measure | " + " | ".join(r["store"] for r in results) + " | target |"
    lines = [head, "|---|" + "---|" * len(results) + "---|"]
    for title, get, target in rows:
        lines.append(f"| {title} | " + " | ".join(str(get(r)) for r in results) + f" | {target} |")
    return "\n".join(lines)


def run(scale: float, stores: list[str], repeat: int, command: str) -> int:
    sizes = Sizes.of(scale)
    workdir = Path(tempfile.mkdtemp(prefix="beacon-bench-scale-"))
    log(f"scale {scale}: {sizes.runs:,} runs, {sizes.lines:,} log lines, {sizes.waiting:,} waiting; in {workdir}")
    began = time.monotonic()
    try:
        results = [asyncio.run(one_store(kind, sizes, workdir, repeat)) for kind in stores]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = f"# scale {scale}\n\n`{command}` ({time.monotonic() - began:.0f} s)\n\n{table(results, sizes)}\n"
    (out / f"scale-{stamp}.md").write_text(text)
    print(text)
    return 0
