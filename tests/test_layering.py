"""Dependencies point one way: the realtime side of Beacon runs without the run engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_realtime_side_does_not_load_langgraph() -> None:
    """A `run.py realtime` process imports app.server and the realtime app, never the engine."""
    probe = (
        "import sys, app.server, app.realtime.app, app.services\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'langgraph' or m.startswith('app.runs.m')"
        " or m.startswith('app.workflows') or m.startswith('app.rest'))\n"
        "print(loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"the realtime side loaded {done.stdout.strip()} {done.stderr[-500:]}"
