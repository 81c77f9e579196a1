"""GET /admin/approvals: every pending approval across threads, oldest first, paged; its metrics."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Beacon, eventually
from test_metrics import scrape

FIELDS = set("thread_id workflow interrupt_id value waiting_since deadline default_action seconds_left".split())


async def queue(beacon: Beacon, query: str = "") -> dict[str, Any]:
    status, body = await beacon.call("GET", "/admin/approvals" + query)
    assert status == 200, body
    return dict(body)


async def test_queue_lists_pending_approvals_oldest_first_and_pages(stack_beacon: Beacon) -> None:
    beacon = stack_beacon
    assert await queue(beacon) == {"approvals": [], "total": 0, "next_cursor": None}
    threads = []
    for i in range(3):  # one after the other, so "oldest first" has one right answer
        # A draft takes 0.3 s: a rejected run asks again only after the queue below was read.
        threads.append(await beacon.start("review", {"topic": f"topic {i}", "delay": 0.3}))
        await beacon.wait_status(threads[-1], "waiting_approval")
    deploy = await beacon.start("deploy", {"step_delay": 0, "approval_deadline": 3600, "default_action": "approve"})
    await beacon.wait_status(deploy, "waiting_approval")
    busy = await beacon.start("bench", {"lines": 10_000, "rate": 50})  # running: not in the queue

    body = await queue(beacon)
    items = body["approvals"]
    assert [a["thread_id"] for a in items] == [*threads, deploy]
    assert body["total"] == 4 and body["next_cursor"] is None
    assert all(set(a) == FIELDS for a in items)
    assert [a["waiting_since"] for a in items] == sorted(a["waiting_since"] for a in items)
    for item in items[:3]:
        [pending] = (await beacon.status(item["thread_id"]))["pending"]
        assert (item["interrupt_id"], item["value"]) == (pending["interrupt_id"], pending["value"])
        assert item["workflow"] == "review" and item["value"]["question"] == "Publish this draft?"
        assert item["deadline"] is None and item["default_action"] is None and item["seconds_left"] is None
    last = items[3]
    assert last["workflow"] == "deploy" and last["value"]["deadline_seconds"] == 3600
    assert last["default_action"] == "approve" and 3000 < last["seconds_left"] <= 3600
    assert last["deadline"] > last["waiting_since"]

    first = await queue(beacon, "?limit=3")
    assert [a["thread_id"] for a in first["approvals"]] == threads and first["total"] == 4
    second = await queue(beacon, f"?limit=3&cursor={first['next_cursor']}")
    assert [a["thread_id"] for a in second["approvals"]] == [deploy] and second["next_cursor"] is None
    assert [a["thread_id"] for a in (await queue(beacon, "?workflow=deploy"))["approvals"]] == [deploy]

    # Decided and cancelled runs leave the queue at once; a run asking again comes back, newest.
    status, _ = await beacon.call("POST", f"/approve/{threads[0]}", {"decision": "reject", "comment": "more"})
    assert status == 200
    status, _ = await beacon.call("POST", f"/admin/runs/{threads[1]}/cancel")
    assert status == 200
    assert threads[0] not in [a["thread_id"] for a in (await queue(beacon))["approvals"]]

    async def asks_again() -> list[str] | None:
        ids = [a["thread_id"] for a in (await queue(beacon))["approvals"]]
        return ids if threads[0] in ids else None

    assert await eventually(asks_again, 10) == [threads[2], deploy, threads[0]]
    await beacon.call("POST", f"/admin/runs/{busy}/cancel")


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=1000000000", "limit"),
        ("limit=abc", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=WyJhIl0=", "cursor"),  # a well-formed key of the wrong shape
        ("cursor=" + "x" * 600, "cursor"),
        ("workflow=", "workflow"),
        ("sort=oldest", "sort"),
    ],
)
async def test_bad_query_is_400_naming_the_field(beacon: Beacon, query: str, field: str) -> None:
    status, body = await beacon.call("GET", f"/admin/approvals?{query}")
    assert status == 400, body
    assert body["error"] == "invalid_query" and field in body["details"], body


async def test_metrics_count_waiting_approvals_and_the_oldest_age(beacon: Beacon) -> None:
    async def sample() -> tuple[float, float]:
        m = await scrape(beacon, beacon.rest)
        return m[("beacon_approvals_waiting", ())], m[("beacon_approval_oldest_age_seconds", ())]

    assert await sample() == (0.0, 0.0)
    threads = [await beacon.start("review", {"topic": f"t{i}", "delay": 0}) for i in range(2)]
    for thread_id in threads:
        await beacon.wait_status(thread_id, "waiting_approval")

    async def both_waiting() -> float | None:
        waiting, age = await sample()
        return age if waiting == 2.0 and age > 0 else None

    first_age = await eventually(both_waiting, 10, 0.2)

    async def both_waiting_older(than: float) -> bool:
        waiting, age = await sample()
        return waiting == 2.0 and age > than

    await eventually(lambda: both_waiting_older(first_age), 10, 0.2)  # the age grows while nobody decides
    for thread_id in threads:
        status, _ = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
        assert status == 200

    async def none_waiting() -> bool:
        return await sample() == (0.0, 0.0)

    await eventually(none_waiting, 10, 0.2)
