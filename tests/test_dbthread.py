"""The SQLite thread helper: calls in order, one loop iteration's calls as one batch, a group commit fails as one."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.store.dbthread import DbThread


async def test_calls_run_in_order_on_one_thread_and_errors_reach_their_caller() -> None:
    thread = DbThread("t")
    try:
        seen: list[tuple[int, int]] = []

        def record(i: int) -> int:
            seen.append((i, threading.get_ident()))
            if i == 3:
                raise KeyError(i)
            return i * 10

        results = await asyncio.gather(*(thread.call(record, i) for i in range(6)), return_exceptions=True)
        assert results[:3] == [0, 10, 20] and isinstance(results[3], KeyError) and results[4:] == [40, 50]
        assert [i for i, _ in seen] == list(range(6)) and len({t for _, t in seen}) == 1
        assert seen[0][1] != threading.get_ident()
    finally:
        thread.stop()
    with pytest.raises(ValueError):
        await thread.call(int)


async def test_after_batch_runs_before_any_answer_and_its_failure_fails_the_batch() -> None:
    thread, commits = DbThread("t"), []
    thread.after_batch = lambda: commits.append(len(commits))
    try:
        assert await asyncio.gather(thread.call(lambda: 1), thread.call(lambda: 2)) == [1, 2]
        assert commits == [0]  # both calls of that loop iteration: one batch, one commit

        def refuse() -> None:
            raise OSError("disk full")

        thread.after_batch = refuse
        results = await asyncio.gather(thread.call(lambda: 1), thread.call(lambda: 2), return_exceptions=True)
        assert all(isinstance(r, OSError) for r in results)
    finally:
        thread.stop()


async def test_a_cancelled_caller_leaves_the_others_their_answers() -> None:
    thread = DbThread("t")
    release = threading.Event()
    try:
        slow = asyncio.ensure_future(thread.call(release.wait, 5))
        fast = asyncio.ensure_future(thread.call(lambda: "ok"))
        await asyncio.sleep(0.05)
        slow.cancel()
        release.set()
        assert await fast == "ok"
        assert slow.cancelled()
    finally:
        thread.stop()
