"""The flow scenario's report: the markdown table, Beacon ÷ langgraph dev, issue 16's targets, the profile."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVERS = {
    "beacon": "Beacon (SQLite, memory bus)",
    "beacon-pg": "Beacon (Postgres, Redis; rest + realtime)",
    "langgraph-dev": "langgraph dev (in memory)",
}
APIS = {"beacon": "Beacon API", "agent": "Agent Server API"}


def short(path: str) -> str:
    """A file as its package path: `langgraph/pregel/main.py`, `app/runs/manager.py`, `asyncio/tasks.py`."""
    for mark in ("site-packages/", f"{ROOT}/", f"python{sys.version_info.major}.{sys.version_info.minor}/"):
        if mark in path:
            return path.split(mark, 1)[1]
    return path


def package(module: str) -> str:
    """`app/runs/manager.py` → `app/runs`, `langgraph/pregel/main.py` → `langgraph`, `selectors.py` → itself."""
    parts = module.split("/")
    return "/".join(parts[:2]) if parts[0] == "app" and len(parts) > 2 else parts[0]


def frame_parts(frame: str) -> tuple[str, str, str]:
    """py-spy's `func (/full/path:line)` as (`func (path)`, path, `func (path:line)`)."""
    func, _, where = frame.rpartition(" (")
    file, _, line = where.rstrip(")").rpartition(":")
    path = short(file)
    return f"{func} ({path})", path, f"{func} ({path}:{line})"


# py-spy here samples waiting threads too (its idle detection does not see them): leaves that only wait
IDLE = ("EpollSelector.select (selectors.py:", "_connection_worker_thread (aiosqlite/core.py:59)",
        "wait (threading.py:", "_worker (concurrent/futures/thread.py:", "get (queue.py:")  # fmt: skip


def profile_summary(raw: Path, title: str, cpu_ms_per_flow: float | None, flows: int, top: int = 30) -> str:
    """Own (leaf) and cumulative samples by function, by module and by package, from py-spy's raw output."""
    own: dict[str, Counter[str]] = {"function": Counter(), "module": Counter(), "package": Counter()}
    cum: dict[str, Counter[str]] = {"function": Counter(), "module": Counter(), "package": Counter()}
    total = idle = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        parts = [frame_parts(f) for f in stack.split(";")]
        if any(i in parts[-1][2] for i in IDLE):
            idle += n
            continue
        total += n
        keys = {"function": [p[0] for p in parts], "module": [p[1] for p in parts],
                "package": [package(p[1]) for p in parts]}  # fmt: skip
        for kind, names in keys.items():
            own[kind][names[-1]] += n
            for name in set(names):
                cum[kind][name] += n
    if not total:
        return f"{title}\n\npy-spy recorded no samples (is ptrace allowed?)\n"
    per = cpu_ms_per_flow or 0.0
    out = [
        title,
        "",
        f"{total} samples ({idle} more only waited: epoll, aiosqlite's queue, thread waits; left out), "
        f"{total / 100:.1f} s at 100 Hz against {per * flows / 1000:.1f} s of server CPU in the window. "
        f"Percentages of the samples kept; ms = share × {per:.2f} ms server CPU per flow.",
    ]
    for kind, label in (("package", "own"), ("function", "own"), ("function", "cumulative"), ("module", "own"),
                        ("module", "cumulative"), ("package", "cumulative")):  # fmt: skip
        out += ["", f"## by {kind}, {label} samples (top {top})", ""]
        for name, n in (own if label == "own" else cum)[kind].most_common(top):
            out.append(f"{100 * n / total:6.1f}%  {per * n / total:7.2f} ms  {name}")
    return "\n".join(out) + "\n"


def _batches(w: dict[str, Any]) -> str:
    batch = w.get("batch", w["waiting"])
    return "" if batch >= w["waiting"] else f", started {batch:,} at a time"


def fmt(v: Any, unit: str = "") -> str:
    return "–" if v is None else f"{v:,}{unit}" if isinstance(v, int) else f"{v:,.1f}{unit}"


def case(results: list[dict[str, Any]], server: str, api: str, clients: int) -> dict[str, Any] | None:
    for s in results:
        for c in s["cases"] if s["server"] == server else []:
            if c["api"] == api and c["clients"] == clients:
                return dict(c)
    return None


def ratio_lines(results: list[dict[str, Any]], clients: list[int]) -> list[str]:
    lines = []
    for server in ("beacon", "beacon-pg"):
        for api in APIS:
            for n in (c for c in clients if c in (10, 50)):
                mine, ref = case(results, server, api, n), case(results, "langgraph-dev", "agent", n)
                if mine and ref and mine["flows_per_s"] and ref["flows_per_s"]:
                    x = mine["flows_per_s"] / ref["flows_per_s"]
                    lines.append(
                        f"- {SERVERS[server]}, {APIS[api]}, {n} clients: {x:.2f}× langgraph dev's flows/s; "
                        f"p99 {fmt(mine['p99_ms'])} ms against {fmt(ref['p99_ms'])} ms"
                    )
    return lines


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else "PASS" if ok else "FAIL"


def target_lines(results: list[dict[str, Any]], clients: list[int]) -> list[str]:
    out = []
    status = {s["server"]: s.get("status") for s in results}
    for api in APIS:
        cases = [c for c in (case(results, "beacon", api, n) for n in clients) if c]
        if not cases:
            continue
        worst = max((c["server_cpu_ms_per_flow"] or float("inf")) for c in cases)
        out.append(f"- {verdict(worst <= 5)} {APIS[api]}: ≤ 5 ms server CPU per flow (worst case {worst:.1f} ms)")
        at50 = case(results, "beacon", api, 50)
        if at50:
            fps = at50["flows_per_s"] or 0
            out.append(f"- {verdict(fps >= 150)} {APIS[api]}: ≥ 150 flows/s at 50 clients ({fps:.1f})")
        for n in (10, 50):
            mine, ref = case(results, "beacon", api, n), case(results, "langgraph-dev", "agent", n)
            if mine and ref and ref["flows_per_s"]:
                x = (mine["flows_per_s"] or 0) / ref["flows_per_s"]
                lower = mine["p99_ms"] is not None and ref["p99_ms"] is not None and mine["p99_ms"] < ref["p99_ms"]
                out.append(
                    f"- {verdict(x >= 4 and lower)} {APIS[api]}: ≥ 4× langgraph dev's flows/s at {n} clients "
                    f"with a lower p99 ({x:.2f}×, p99 {fmt(mine['p99_ms'])} vs {fmt(ref['p99_ms'])} ms)"
                )
        pg = [c for c in (case(results, "beacon-pg", api, n) for n in clients) if c]
        if pg:
            per = max((c["server_cpu_ms_per_flow"] or float("inf")) + (c["side_cpu_ms_per_flow"] or 0) for c in pg)
            out.append(
                f"- {verdict(per <= 10)} {APIS[api]}, Postgres + Redis: within 2× of 5 ms per flow, "
                f"redis-server and Postgres included (worst case {per:.1f} ms; SQLite's {worst:.1f} ms)"
            )
    if status.get("beacon"):
        ms = status["beacon"]["server_cpu_ms_per_request"]
        out.append(f"- {verdict(ms <= 0.3)} GET /status ≤ 0.3 ms server CPU ({ms:.3f} ms)")
    if status.get("beacon-pg"):
        ms = status["beacon-pg"]["server_cpu_ms_per_request"]
        out.append(f"- {verdict(ms <= 0.6)} GET /status on Postgres + Redis within 2× of 0.3 ms ({ms:.3f} ms)")
    for s in results:
        w = s.get("waiting")
        if s["server"] == "beacon" and "waiting_failed" in s:
            out.append(f"- FAIL 10,000 threads waiting: the phase failed ({s['waiting_failed']})")
        if w and s["server"] == "beacon":
            ok = w["rss_bytes_per_waiting_thread"] <= 2000 and w["approvals_p99_ms"] < 50
            short = "" if w["waiting"] >= 10_000 else " (fewer than 10,000: not the target)"
            out.append(
                f"- {verdict(ok and not short)} {w['waiting']:,} threads waiting: RSS ≤ 2 KB each "
                f"({w['rss_bytes_per_waiting_thread']:,} B), `/admin/approvals` p99 < 50 ms "
                f"({w['approvals_p99_ms']} ms){short}"
            )
    return out


def _speed(machine: dict[str, Any]) -> str:
    """The CPU reference loop's time at the start and the end (older reports have none)."""
    if "cpu_reference_ms_start" not in machine:
        return ""
    return f" CPU reference {machine['cpu_reference_ms_start']} → {machine.get('cpu_reference_ms_end')} ms;"


def render(report: dict[str, Any]) -> str:
    meta, results = report["meta"], report["servers"]
    clients = meta["args"]["flow_clients"]
    head = [
        "# flow: a human-in-the-loop flow, Beacon against `langgraph dev` (issue 16)",
        "",
        f"`{meta['command']}` ({meta['seconds']} s; {meta['machine']['cpus']} CPUs; load average "
        f"{meta['machine']['loadavg_start']} → {meta.get('loadavg_end')};{_speed(meta['machine'])} "
        f"commit {meta['git']['commit'][:10]}"
        f"{', app/ modified' if meta['git']['app_dirty'] else ''})",
        "",
        f"One flow: start → interrupt → approve → completed; {meta['args']['flow_flows']} flows per client; "
        f"median of {meta['args']['flow_repeat']}. Server CPU per flow: the server's processes over the window ÷ "
        "flows (`beacon-pg`: both Beacon nodes; redis-server and Postgres in brackets). Generator: % of one core "
        "per load-generator process; others: the rest of the machine in the same window.",
        "",
    ]
    if meta.get("failed"):
        head += [f"**FAILED**: {meta['failed']}", ""]
    rows = ["| server | API | clients | flows/s | p50 ms | p99 ms | server CPU/flow ms | RSS MB | generator % | "
            "others % | flows | errors |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in results:
        label = s["label"] + (f" {s['version']}" if s.get("version") else "")
        for c in s["cases"]:
            side = f" (+{fmt(c['side_cpu_ms_per_flow'])})" if c.get("side_cpu_ms_per_flow") is not None else ""
            rows.append(
                f"| {label} | {APIS[c['api']]} | {c['clients']} | {fmt(c['flows_per_s'])} | {fmt(c['p50_ms'])} | "
                f"{fmt(c['p99_ms'])} | {fmt(c['server_cpu_ms_per_flow'])}{side} | {fmt(c['rss_mb'])} | "
                f"{' / '.join(map(str, c['gen_cpu_percent']))} | {fmt(c['others_cpu_percent'])} | "
                f"{c['flows']}/{c['expected']} | {c['errors']} |"
            )
    status = [
        f"- {s['label']}: {s['status']['requests']} × `GET /status` of a waiting thread, 10 at a time: "
        f"{s['status']['server_cpu_ms_per_request']:.3f} ms server CPU each, {s['status']['requests_per_s']:,.0f} "
        f"req/s, {s['status']['unexpected_status']} not 200"
        for s in results
        if s.get("status")
    ]
    errors = [f"- {s['server']} {c['api']} {c['clients']}: {e}" for s in results for c in s["cases"]
              for e in c.get("error_samples", [])]  # fmt: skip
    waiting = [
        f"- {s['label']}: {w['waiting']:,} threads waiting (all waiting {w['seconds_until_all_wait']} s after the "
        f"first start{_batches(w)}; {w.get('starts_retried', 0)} starts and {w['busy_answers_while_starting']} counts "
        "answered 503 meanwhile): "
        f"RSS {w['rss_before_mb']} → {w['rss_after_mb']} MB, {w['rss_bytes_per_waiting_thread']:,} B per thread; "
        f"{w['approvals_requests']} × `/admin/approvals?limit=50`: p50 {w['approvals_p50_ms']} ms, "
        f"p99 {w['approvals_p99_ms']} ms"
        for s in results
        if (w := s.get("waiting"))
    ] + [f"- {s['label']}: failed: {s['waiting_failed']}" for s in results if "waiting_failed" in s]
    text = head + rows + ["", "**GET /status CPU**", "", *status]
    text += ["", "**Threads waiting for approval at once**", "", *(waiting or ["- (not in this run)"])]
    text += ["", "**Beacon ÷ langgraph dev**", ""]
    text += ratio_lines(results, clients) or ["- (langgraph dev not in this run)"]
    text += ["", "**Issue 16's targets** (memory bus + SQLite unless named)", "", *target_lines(results, clients)]
    if errors:
        text += ["", "**Errors** (first of each run)", "", *errors]
    prof = next((s["profile"] for s in results if s.get("profile")), None)
    if prof:
        summary = Path(prof["summary"]).read_text().splitlines()
        text += ["", f"**Profile**: `{prof['summary']}` (raw stacks beside it)", "", "```",
                 *summary, "```"]  # fmt: skip
    return "\n".join(text) + "\n"
