"""F3: a Hypothesis state machine over start / approve / reject / status / cancel / restart, against a
real `python run.py` that is restarted with SIGTERM or `kill -9` along the way (*long*).

What must hold after every step: every run has one row and a status from the allowed set; a final
status never changes; an answer is never a 5xx; and a restart keeps a waiting run waiting on the
same interrupt.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from conftest import eventually
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from test_restart import BeaconProcess, beacon_proc  # noqa: F401 (a fixture)

from app.store import STATUSES

pytestmark = pytest.mark.long

FINAL = ("completed", "failed", "cancelled")
WORKFLOWS = {
    "review": {"topic": "state machine", "delay": 0},
    "bench": {"lines": 20, "rate": 200},
}


def machine_for(proc: BeaconProcess, loop: asyncio.AbstractEventLoop, counts: dict[str, int]) -> type:
    """The machine class, bound to one Beacon process shared by every example (starts are slow)."""
    serial = itertools.count()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, answer = run(proc.call(method, path, body))
        assert status < 500, (method, path, status, answer)
        counts["calls"] += 1
        return status, answer

    class Runs(RuleBasedStateMachine):
        threads = Bundle("threads")

        @initialize()
        def fresh(self) -> None:
            self.prefix = f"m{next(serial)}-{uuid.uuid4().hex[:6]}"
            self.serial = itertools.count()
            self.final: dict[str, str] = {}  # thread → the final status it reached
            self.known: set[str] = set()

        @rule(target=threads, workflow=st.sampled_from(sorted(WORKFLOWS)))
        def start(self, workflow: str) -> str:
            thread_id = f"{self.prefix}-{next(self.serial)}"
            body = {"workflow": workflow, "input": WORKFLOWS[workflow], "thread_id": thread_id}
            status, body = call("POST", "/start", body)
            assert status == 202, body
            self.known.add(thread_id)
            return thread_id

        @rule(thread_id=threads)
        def start_again(self, thread_id: str) -> None:
            status, body = call("POST", "/start", {"workflow": "bench", "input": {"lines": 1}, "thread_id": thread_id})
            assert status == 409 and body["error"] == "thread_exists", body

        @rule(thread_id=threads, decision=st.sampled_from(["approve", "reject"]))
        def decide(self, thread_id: str, decision: str) -> None:
            self.settle(thread_id)  # a person reads the draft first
            status, body = call("POST", f"/approve/{thread_id}", {"decision": decision})
            if thread_id in self.final:
                assert status == 409, body
            assert status in (200, 409), body
            counts["decided" if status == 200 else "refused"] += 1

        @rule(thread_id=threads)
        def cancel(self, thread_id: str) -> None:
            status, body = call("POST", f"/admin/runs/{thread_id}/cancel")
            if thread_id in self.final:
                assert status == 409, body
            assert status in (200, 409), body
            if status == 200:
                assert body["status"] == "cancelled", body
                self.final[thread_id] = "cancelled"

        @rule(thread_id=threads)
        def status(self, thread_id: str) -> None:
            status, body = call("GET", f"/status/{thread_id}")
            assert status == 200, body
            assert body["status"] in STATUSES
            assert bool(body.get("pending")) == (body["status"] == "waiting_approval"), body

        @rule(thread_id=threads)
        def settle(self, thread_id: str) -> None:
            """Wait until the run stops running (waits for a person, or ended), as a person would."""

            async def settled() -> bool:
                return (await proc.status(thread_id))["status"] != "running"

            run(eventually(settled, 20, 0.05, f"{thread_id} kept running"))

        @precondition(lambda self: bool(self.known))
        @rule(hard=st.booleans())
        def restart(self, hard: bool) -> None:
            waiting = {}
            for thread_id in self.known - set(self.final):
                _, body = call("GET", f"/status/{thread_id}")
                if body["status"] == "waiting_approval":
                    waiting[thread_id] = [p["interrupt_id"] for p in body["pending"]]
            if hard:
                run(proc.kill9())
            else:
                proc.signal(signal.SIGTERM)
                assert run(proc.wait_exit(30)) == 0
            run(proc.launch())
            counts["restarts"] += 1
            for thread_id, interrupts in waiting.items():
                _, body = call("GET", f"/status/{thread_id}")
                assert body["status"] == "waiting_approval", (thread_id, body)
                assert [p["interrupt_id"] for p in body["pending"]] == interrupts

        @invariant()
        def statuses_are_allowed_and_final_ones_stay(self) -> None:
            if not getattr(self, "known", None):
                return
            status, body = call("GET", "/admin/runs?limit=500")
            assert status == 200, body
            mine = [r for r in body["runs"] if r["thread_id"] in self.known]
            assert len(mine) == len({r["thread_id"] for r in mine}) == len(self.known)  # one row per thread
            for row in mine:
                assert row["status"] in STATUSES, row
                before = self.final.get(row["thread_id"])
                assert before in (None, row["status"]), f"{row['thread_id']} went from {before} to {row['status']}"
                if row["status"] in FINAL:
                    self.final[row["thread_id"]] = row["status"]

    return Runs


async def test_f3_state_machine_over_runs_and_restarts(beacon_proc: BeaconProcess, tmp_path: Path) -> None:  # noqa: F811
    await beacon_proc.launch("--grace-period", "5")
    counts = {"calls": 0, "decided": 0, "refused": 0, "restarts": 0}
    machine = machine_for(beacon_proc, asyncio.get_running_loop(), counts)
    config = settings(
        max_examples=10,
        stateful_step_count=15,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    # Hypothesis drives the machine from a worker thread; each HTTP call runs on this loop.
    await asyncio.to_thread(run_state_machine_as_test, machine, settings=config)
    print("F3:", counts)
    assert counts["calls"] > 50 and counts["restarts"] >= 1 and counts["decided"] >= 1, counts
