"""`bench/run.py --quick` works end to end: every scenario ran, lines arrived, none were lost.

A smoke test, not a benchmark: no timing is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import IN_CI, need_binary

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "reference_node"


def node_reference() -> None:
    """The Node reference server needs its node_modules: install them from the lock file if missing."""
    if (NODE_DIR / "node_modules" / "socket.io").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        if IN_CI:
            pytest.fail("node and npm are needed for the bench smoke test")
        pytest.skip("node/npm are not installed")
    subprocess.run(
        [npm, "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", "--loglevel=error"], check=True, timeout=300
    )


@pytest.mark.timeout(240)
def test_bench_quick_run(tmp_path: Path) -> None:
    node_reference()
    need_binary("redis-server")  # the `redis` scenario: Beacon as a REST and a realtime node over Redis
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (json_path,) = out.glob("*.json")
    (md_path,) = out.glob("*.md")
    report = json.loads(json_path.read_text())
    assert "failed" not in report["meta"]
    servers = ["beacon", "python", "node"]
    scenarios = report["scenarios"]
    assert set(scenarios) >= {"fanout", "steady", "memory", "rest", "redis"}

    assert len(scenarios["fanout"]) == 2 and scenarios["steady"]
    assert [list(case["servers"]) for case in scenarios["redis"]] == [["beacon-redis"]] * 2
    for case in scenarios["fanout"] + scenarios["steady"] + scenarios["redis"]:
        for name in case["servers"]:
            for run in case["servers"][name]["runs"]:
                where = (case["clients"], name, run, proc.stdout[-3000:])
                assert run["received"] > 0, where
                assert run["received"] == run["expected"], where
                assert run["lost"] == 0 and run["duplicates"] == 0, where

    for name in servers:
        (run,) = scenarios["memory"]["servers"][name]["runs"]
        assert run["connected"] == scenarios["memory"]["connections"] and run["failed"] == 0
        assert run["bytes_per_connection"] is not None

    for endpoint in scenarios["rest"]["endpoints"].values():
        (run,) = endpoint["runs"]
        assert run["requests"] > 0 and run["unexpected_status"] == 0, run

    text = md_path.read_text()
    assert "Beacon ÷ python-socketio" in text and "Beacon ÷ Node socket.io" in text
    assert "**Redis bus fan-out** (Beacon as `run.py rest` + `run.py realtime`" in text
    assert "bench/run.py --quick" in text
