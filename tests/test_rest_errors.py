"""TESTPLAN "Bad input → answer": each bad request gets a clear JSON error and changes nothing."""

from __future__ import annotations

import gzip
import json

import pytest
from conftest import Beacon

from app.names import SECURITY_HEADERS

JSON = {"Content-Type": "application/json"}


def assert_error(status: int, body: dict, expected: int, code: str | None = None) -> None:
    assert status == expected, body
    assert set(body) >= {"error", "message", "details", "request_id"}, body
    assert body["message"] and "Traceback" not in json.dumps(body)
    if code:
        assert body["error"] == code, body


async def raw(beacon: Beacon, method: str, path: str, data: bytes | str | None = None, headers=None):
    async with beacon.http.request(method, beacon.rest + path, data=data, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def run_count(beacon: Beacon) -> int:
    _, body = await beacon.call("GET", "/admin/runs")
    return int(body["total"])


@pytest.mark.parametrize(
    ("data", "headers", "status", "code"),
    [
        (b'{"workflow": "review"}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (b'{"workflow": "review"}', {}, 415, "unsupported_media_type"),
        (b'{"workflow": ', JSON, 400, "bad_request"),
        (b"[1, 2]", JSON, 400, "bad_request"),
        (b"null", JSON, 400, "bad_request"),
        (b"", JSON, 400, "bad_request"),
        (b'{"workflow": "review", "input": {"topic": "x"}, "pad": "' + b"x" * 65536 + b'"}', JSON, 413, "too_large"),
        (b'{"input": {}}', JSON, 422, "validation_error"),
        (b'{"workflow": 5}', JSON, 422, "validation_error"),
        (b'{"workflow": "review", "input": []}', JSON, 422, "validation_error"),
        (b'{"workflow": "nope"}', JSON, 404, "not_found"),
        (b'{"workflow": "review", "input": {}}', JSON, 422, "validation_error"),
        (b'{"workflow": "review", "input": {"topic": "x"}, "extra": 1}', JSON, 422, "validation_error"),
    ],
)
async def test_start_rejects(beacon: Beacon, data: bytes, headers: dict, status: int, code: str) -> None:
    got, body, _ = await raw(beacon, "POST", "/start", data, headers)
    assert_error(got, body, status, code)
    assert await run_count(beacon) == 0


@pytest.mark.parametrize("thread_id", ["", "x" * 65, "../x", "a b", 5, "-lead", "a/b"])
async def test_start_rejects_bad_thread_ids(beacon: Beacon, thread_id: object) -> None:
    status, body = await beacon.call(
        "POST", "/start", {"workflow": "review", "input": {"topic": "t"}, "thread_id": thread_id}
    )
    assert_error(status, body, 422, "validation_error")
    assert "thread_id" in body["details"]
    assert await run_count(beacon) == 0


async def test_start_field_messages_name_the_input_field(beacon: Beacon) -> None:
    status, body = await beacon.call("POST", "/start", {"workflow": "deploy", "input": {"environment": "moon"}})
    assert_error(status, body, 422)
    assert "environment" in body["details"]["input"]


async def test_start_get_is_405_with_allow(beacon: Beacon) -> None:
    status, body, headers = await raw(beacon, "GET", "/start")
    assert_error(status, body, 405, "method_not_allowed")
    assert headers["Allow"] == "POST"


async def test_gzip_bomb_is_refused(beacon: Beacon) -> None:
    bomb = gzip.compress(b'{"workflow": "review", "input": {"topic": "' + b"a" * 10_000_000 + b'"}}')
    status, body, _ = await raw(beacon, "POST", "/start", bomb, {**JSON, "Content-Encoding": "gzip"})
    assert status in (400, 413), body
    assert await run_count(beacon) == 0


async def test_second_start_on_a_thread_is_409(beacon: Beacon) -> None:
    thread_id = await beacon.start("review", {"topic": "t", "delay": 0}, thread_id="dup-1")
    status, body = await beacon.call(
        "POST", "/start", {"workflow": "review", "input": {"topic": "t"}, "thread_id": thread_id}
    )
    assert_error(status, body, 409, "thread_exists")


async def test_status_errors(beacon: Beacon) -> None:
    status, body = await beacon.call("GET", "/status/nope")
    assert_error(status, body, 404, "not_found")
    status, body = await beacon.call("GET", "/status/..%2Fx")
    assert status in (404, 422), body
    status, body = await beacon.call("GET", "/status/" + "x" * 65)
    assert_error(status, body, 422, "validation_error")


async def test_approve_errors_change_nothing(beacon: Beacon) -> None:
    status, body = await beacon.call("POST", "/approve/unknown", {"decision": "approve"})
    assert_error(status, body, 404, "not_found")  # R4: unknown
    thread_id = await beacon.start("review", {"topic": "t", "delay": 0})
    waiting = await beacon.wait_status(thread_id, "waiting_approval")
    for payload, expected in (
        ({"decision": "maybe"}, 422),
        ({}, 422),
        ({"decision": "approve", "interrupt_id": "stale"}, 409),  # R4: wrong interrupt id
        ({"decision": "approve", "comment": 5}, 422),
    ):
        status, body = await beacon.call("POST", f"/approve/{thread_id}", payload)
        assert_error(status, body, expected)
    status, body, _ = await raw(beacon, "POST", f"/approve/{thread_id}", b"{", JSON)
    assert_error(status, body, 400)
    after = await beacon.status(thread_id)
    assert after["status"] == "waiting_approval" and after["pending"] == waiting["pending"]
    assert after["decisions"] == []

    old = waiting["pending"][0]["interrupt_id"]
    await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve", "interrupt_id": old})
    await beacon.wait_status(thread_id, "completed")
    status, body = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    assert_error(status, body, 409, "not_waiting")  # R4: completed
    status, body = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve", "interrupt_id": old})
    assert_error(status, body, 409)  # R4: stale


async def test_approve_on_a_running_run_is_409(beacon: Beacon) -> None:
    thread_id = await beacon.start("deploy", {"step_delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    status, body = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    assert_error(status, body, 409)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=-1", "limit"),
        ("limit=1000000000", "limit"),
        ("limit=abc", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=eyJhIjogMX0=", "cursor"),
        ("status=sleeping", "status"),
        ("colour=blue", "colour"),
    ],
)
async def test_admin_list_rejects_bad_paging(beacon: Beacon, query: str, field: str) -> None:
    status, body = await beacon.call("GET", f"/admin/runs?{query}")
    assert_error(status, body, 400, "invalid_query")
    assert field in body["details"], body


async def test_admin_logs_and_history_reject_bad_paging(beacon: Beacon) -> None:
    thread_id = await beacon.start("review", {"topic": "t", "delay": 0})
    for path in (
        f"/admin/runs/{thread_id}/logs?after=-1",
        f"/admin/runs/{thread_id}/logs?limit=0",
        f"/admin/runs/{thread_id}/history?limit=x",
    ):
        status, body = await beacon.call("GET", path)
        assert_error(status, body, 400, "invalid_query")
    status, body = await beacon.call("GET", "/admin/runs/missing/logs")
    assert_error(status, body, 404)
    status, body = await beacon.call("GET", f"/admin/runs/{thread_id}/cancel")
    assert_error(status, body, 405)  # destructive actions are POST


async def test_unknown_route_is_json_404_with_headers(beacon: Beacon) -> None:
    status, body, headers = await raw(beacon, "GET", "/nowhere")
    assert_error(status, body, 404, "not_found")
    for name, value in {**SECURITY_HEADERS, "X-Frame-Options": "DENY"}.items():
        assert headers[name] == value, name
    assert headers["X-Request-Id"] == body["request_id"]
