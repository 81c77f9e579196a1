"""Many threads waiting for approval at once (issue 16): what each costs in RSS, and `/admin/approvals`.

Starts `--flow-waiting` flows (they stop at their `interrupt()` and stay there), from a pool of
threads of this process, after a warm-up of WARM flows so that every code path and cache is in the
RSS before the first reading. RSS per waiting thread is the Beacon processes' growth from that
reading, once every thread waits and the RSS holds still, ÷ threads (the warm-up already filled
Beacon's bounded caches, so this is what one more waiting thread costs); then APPROVALS_REQUESTS
`/admin/approvals?limit=50` pages (every other one filtered by workflow), one at a time, once all
wait. While the runs are started, a start or a count may get 503 (the store answers within 1.5 s
or not at all, and thousands of runs in flight queue for its connections): counted, and asked
again. With `batch`, the runs are started `batch` at a time, each batch
once the one before it all waits: at most `batch` runs are in flight (started, not yet waiting),
which tells the memory a waiting thread holds from the high-water mark of many runs in flight.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import run as bench

WARM = 200  # flows started (and left waiting) before the first RSS reading
STARTERS = 16  # threads sending POST /start
APPROVALS_REQUESTS = 300
STILL = 0.01  # RSS within this share of itself over STILL_FOR seconds counts as settled
STILL_FOR = 3.0


def _start(base: str, token: str, busy: list[int], deadline: float) -> None:
    while True:
        flow = {"workflow": "flow", "input": {"topic": "wait"}}
        status, body = bench.http("POST", f"{base}/start", flow, token=token)
        if status == 202:
            return
        if status != 503 or time.monotonic() > deadline:
            raise RuntimeError(f"POST /start answered {status}: {body}")
        busy.append(1)  # no answer in time (it may have started anyway: the counts wait for at least n)
        time.sleep(0.1)


def _waiting(base: str, token: str, busy: list[int]) -> int:
    """How many threads wait; -1 while the store is too busy to say (a 503, counted in `busy`)."""
    status, body = bench.http("GET", f"{base}/admin/approvals?limit=1", token=token, timeout=30)
    if status == 503:
        busy.append(1)
        return -1
    if status != 200:
        raise RuntimeError(f"GET /admin/approvals answered {status}: {body}")
    return int(body["total"])


def _count(base: str, token: str, busy: list[int], deadline: float) -> int:
    """How many threads wait, asked until the store answers."""
    while (n := _waiting(base, token, busy)) < 0:
        if time.monotonic() > deadline:
            raise RuntimeError("gave up waiting: a count of the waiting threads")
        time.sleep(0.5)
    return n


def _start_many(base: str, token: str, n: int, deadline: float, busy: list[int]) -> None:
    with ThreadPoolExecutor(STARTERS) as pool:
        for f in [pool.submit(_start, base, token, busy, deadline) for _ in range(n)]:
            f.result(timeout=max(1.0, deadline - time.monotonic()))


def _until(check: Callable[[], bool], deadline: float, what: str) -> None:
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting: {what}")
        time.sleep(0.5)


def _settled_rss(rss: Callable[[], int], deadline: float) -> int:
    """The RSS once it holds still for STILL_FOR seconds (bounded by the deadline)."""
    last, since = rss(), time.monotonic()
    while time.monotonic() - since < STILL_FOR and time.monotonic() < deadline:
        time.sleep(0.5)
        now = rss()
        if abs(now - last) > STILL * last:
            last, since = now, time.monotonic()
    return last


def measure_waiting(
    srv: bench.Server, n: int, rss: Callable[[], int], timeout: float, batch: int = 0
) -> dict[str, Any]:
    base, token = f"http://127.0.0.1:{srv.rest_port}", srv.token
    deadline = time.monotonic() + timeout
    busy: list[int] = []  # counts answered 503 while the runs were being started (the store's 1.5 s bound)
    retried: list[int] = []  # starts answered 503, sent again
    before = _waiting(base, token, busy)
    _start_many(base, token, WARM, deadline, retried)
    _until(lambda: _waiting(base, token, busy) >= before + WARM, deadline, f"{WARM} warm-up flows waiting")
    rss0 = _settled_rss(rss, deadline)
    began, started = time.monotonic(), 0
    while started < n:
        step = min(n - started, batch or n)
        _start_many(base, token, step, deadline, retried)
        started += step
        want = before + WARM + started
        _until(lambda: _waiting(base, token, busy) >= want, deadline, f"{started} flows waiting")
    all_waiting_s = time.monotonic() - began
    rss1 = _settled_rss(rss, deadline)
    # A start answered 503 may have started its run anyway (the store's write landed after the
    # deadline): what waits now, not what was asked for, is what the RSS holds.
    waiting = _count(base, token, busy, deadline) - before - WARM
    times = []
    for i in range(APPROVALS_REQUESTS):
        query = "?limit=50" if i % 2 == 0 else "?limit=50&workflow=flow"
        t = time.perf_counter()
        status, body = bench.http("GET", f"{base}/admin/approvals{query}", token=token)
        times.append(1000 * (time.perf_counter() - t))
        if status != 200 or len(body["approvals"]) != 50:
            raise RuntimeError(f"GET /admin/approvals{query} answered {status}: {str(body)[:200]}")
    cuts = statistics.quantiles(times, n=100)
    return {
        "waiting": waiting,
        "batch": batch or n,
        "seconds_until_all_wait": round(all_waiting_s, 1),
        "busy_answers_while_starting": len(busy),
        "starts_retried": len(retried),
        "rss_before_mb": round(rss0 / 2**20, 1),
        "rss_after_mb": round(rss1 / 2**20, 1),
        "rss_bytes_per_waiting_thread": round((rss1 - rss0) / waiting),
        "approvals_requests": APPROVALS_REQUESTS,
        "approvals_p50_ms": round(cuts[49], 2),
        "approvals_p99_ms": round(cuts[98], 2),
    }
