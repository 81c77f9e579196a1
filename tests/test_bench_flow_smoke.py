"""`bench/run.py --scenarios flow --quick` works end to end: every flow completed, none failed.

A smoke test, not a benchmark: counts are asserted, never speed. The Beacon test runs both stores
(SQLite + memory bus, Postgres + Redis) and both APIs; the `langgraph dev` test builds the reference's
venv from its lock file when it is missing, as the Node reference's test runs `npm ci`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, need_binary

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "bench" / "reference_langgraph"


def run_flow(out: Path, *args: str, timeout: float = 240) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--scenarios", "flow", "--quick", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (json_path,) = out.glob("flow-*.json")
    (md_path,) = out.glob("flow-*.md")
    report = json.loads(json_path.read_text())
    assert "failed" not in report["meta"], report["meta"]
    return report, md_path.read_text()


def check_cases(server: dict[str, Any], apis: list[str], clients: list[int]) -> None:
    assert [(c["api"], c["clients"]) for c in server["cases"]] == [(a, n) for a in apis for n in clients]
    for c in server["cases"]:
        where = (server["server"], c["api"], c["clients"], c.get("error_samples"))
        assert c["errors"] == 0, where
        assert c["flows"] == c["expected"] == c["clients"] * c["flows_per_client"], where
        assert c["server_cpu_ms_per_flow"] is not None and c["rss_mb"] > 0, where


@pytest.mark.timeout(300)
def test_flow_on_beacon_both_stores_both_apis(tmp_path: Path) -> None:
    need_binary("redis-server")
    need_binary("initdb")
    report, text = run_flow(tmp_path, "--flow-servers", "beacon,beacon-pg", "--flow-profile")
    assert [s["server"] for s in report["servers"]] == ["beacon", "beacon-pg"]
    for server in report["servers"]:
        check_cases(server, ["beacon", "agent"], [1, 3])
        status = server["status"]
        assert status["requests"] == 50 and status["unexpected_status"] == 0, status
        waiting = server["waiting"]  # --quick: 100 threads left waiting at once
        assert waiting["waiting"] == 100 and waiting["approvals_requests"] == 300, waiting
        assert waiting["rss_after_mb"] > 0 and waiting["approvals_p99_ms"] > 0, waiting
    pg = report["servers"][1]["cases"]
    assert all(c["side_cpu_ms_per_flow"] is not None for c in pg)  # redis-server and Postgres are counted apart
    profile = report["servers"][0]["profile"]
    assert list(profile["passes"]) == ["running", "gil"]  # every thread not waiting, then the GIL's holder
    for name, one in profile["passes"].items():
        assert one["run"]["flows"] == 30 and one["run"]["errors"] == 0, (name, one["run"])
    summary = Path(profile["summary"]).read_text()
    assert summary.count("## by function, own samples") == 2 and "## by function, cumulative samples" in summary
    assert "| Beacon (SQLite, memory bus) | Beacon API | 1 |" in text
    assert "| Beacon (Postgres, Redis; rest + realtime) | Agent Server API | 3 |" in text
    assert "≤ 5 ms server CPU per flow" in text and "GET /status ≤ 0.3 ms" in text
    assert "100 threads waiting: RSS ≤ 2 KB each" in text and "(fewer than 10,000: not the target)" in text
    assert "bench/run.py --scenarios flow --quick" in text


def langgraph_reference() -> None:
    """The reference's venv from its lock file, when missing (`make bench` builds it the same way)."""
    venv = REF / ".venv"
    if (venv / "bin" / "langgraph").exists():
        return
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(REF / "requirements.lock")],
            check=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        if IN_CI:
            pytest.fail(f"cannot build the langgraph dev reference ({exc}): bench/reference_langgraph/.venv")
        pytest.skip(f"the langgraph dev reference could not be built here ({exc})")


@pytest.mark.timeout(900)
def test_flow_on_langgraph_dev_and_the_ratios(tmp_path: Path) -> None:
    langgraph_reference()
    report, text = run_flow(
        tmp_path, "--flow-servers", "beacon,langgraph-dev", "--flow-apis", "agent", "--flow-clients", "1,10",
        "--flow-flows", "1", "--flow-waiting", "0",
    )  # fmt: skip
    beacon, ref = report["servers"]
    check_cases(beacon, ["agent"], [1, 10])
    check_cases(ref, ["agent"], [1, 10])
    assert ref["version"] == "0.16.7" and "status" not in ref
    assert "Agent Server API, 10 clients:" in text and "langgraph dev's flows/s" in text
