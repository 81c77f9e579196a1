"""Fuzzing (TESTPLAN F1, F2): schemathesis over /openapi.json; arbitrary JSON to every Socket.IO event."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import requests
import schemathesis
import socketio
from conftest import AUTH_HEADER, TOKEN, Beacon, make_config, running_beacon
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# ---------------------------------------------------------------- F1: schemathesis over /openapi.json

F1_EXAMPLES = 25  # per operation and generation mode
F1_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


KNOWN_START = {"workflow": "review", "input": {"topic": "fuzz", "delay": 0}}


def _fuzz_openapi(rest: str) -> dict[str, Any]:
    """Runs in a worker thread (sync requests) while the Beacon serves from the test's event loop."""
    schema = schemathesis.openapi.from_url(rest + "/openapi.json", timeout=10)
    failures: list[str] = []
    calls: dict[str, int] = {}
    statuses: dict[int, int] = {}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            strategies = [(mode.value, operation.as_strategy(generation_mode=mode)) for mode in GenerationMode]
            if label == "POST /start":  # random workflow names are all 404: also start real runs
                strategies.append(("known workflow", operation.as_strategy(body=KNOWN_START)))
            for mode, strategy in strategies:

                @settings(
                    max_examples=F1_EXAMPLES,
                    deadline=None,
                    database=None,
                    phases=[Phase.explicit, Phase.generate],  # no shrinking: report the first failure as is
                    suppress_health_check=list(HealthCheck),
                    derandomize=True,
                )
                @given(case=strategy)
                def run(case: schemathesis.Case) -> None:
                    response = case.call(base_url=rest, session=session, headers=dict(AUTH_HEADER), timeout=10)
                    calls[label] = calls.get(label, 0) + 1
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    try:
                        case.validate_response(response, checks=F1_CHECKS, headers=dict(AUTH_HEADER))
                    except Exception as exc:  # collect every operation's failure, not only the first
                        failures.append(f"{label} [{mode}]: {exc}\n{case.as_curl_command(dict(AUTH_HEADER))}")
                        raise

                try:
                    run()
                except Exception:
                    pass  # recorded in `failures`
    return {"failures": failures, "calls": calls, "statuses": statuses}


async def test_f1_schemathesis_finds_no_server_error_and_no_schema_mismatch(beacon: Beacon) -> None:
    started = time.monotonic()
    report = await asyncio.to_thread(_fuzz_openapi, beacon.rest)
    assert not report["failures"], "\n\n".join(report["failures"])
    assert 500 not in report["statuses"], report["statuses"]
    assert report["statuses"].get(202), report["statuses"]  # at least one run was started
    status, _ = await beacon.call("GET", "/health")
    assert status == 200
    status, spec = await beacon.call("GET", "/openapi.json")
    operations = sum(len(methods) for methods in spec["paths"].values())
    assert len(report["calls"]) == operations, report["calls"]  # every operation was exercised
    assert time.monotonic() - started < 90


# ---------------------------------------------------------------- F2: arbitrary JSON to every client event

F2_EXAMPLES = 100
MAX_DEPTH = 20
MAX_PAYLOAD = 128 * 1024
LIMIT = 65536  # realtime.max_message_bytes (the default): a larger websocket message closes the connection
NAMESPACES = ("/logs", "/admin")


class Big(str):
    """A long string with a short repr (Hypothesis prints failing examples)."""

    def __repr__(self) -> str:
        return f"<{len(self)} x {self[:1]!r}>"


TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    st.sampled_from(["x1", "", "../x", "a" * 65, "WARNING", "DEBUG", "nope", "-1", "1e309"]),
    # the occasional big string, so that payloads reach and pass the 64 KB message limit
    st.builds(lambda c, n: Big(c * n), st.sampled_from("xé€"), st.sampled_from([1000, 30000, 60000, 70000, 128000])),
)


def json_values(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return LEAVES
    inner = st.deferred(lambda: json_values(depth - 1))
    return st.one_of(
        LEAVES,
        st.lists(inner, max_size=4),
        st.dictionaries(TEXT, inner, max_size=4),
    )


def deep(value: Any, kinds: list[bool]) -> Any:
    for as_list in kinds:
        value = [value] if as_list else {"thread_id": value}
    return value


# Shapes the handlers look at (thread_id, since, level) with arbitrary values, plus arbitrary JSON at
# any depth: random trees rarely go deep, so chains of up to MAX_DEPTH lists/objects are drawn too.
FIELDS = st.fixed_dictionaries(
    {},
    optional={"thread_id": json_values(2), "since": json_values(2), "level": json_values(2), "extra": json_values(3)},
)
PAYLOADS = st.one_of(
    FIELDS,
    json_values(4),
    st.builds(deep, json_values(2), st.lists(st.booleans(), max_size=MAX_DEPTH - 2)),
)
EVENTS = st.one_of(st.sampled_from(["subscribe", "unsubscribe", "no_such_event"]), st.text(min_size=1, max_size=20))


def encoded_size(event: str, payload: Any) -> int:
    return len(json.dumps([event, payload], separators=(",", ":")).encode()) + 16  # as python-socketio sends it


def json_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(json_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(json_depth, value.values()), default=0)
    return 0


async def _fresh_client(beacon: Beacon) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        beacon.realtime, namespaces=list(NAMESPACES), auth={"token": TOKEN}, transports=["websocket"], wait_timeout=5
    )
    return client


async def _one_call(beacon: Beacon, state: dict[str, Any], namespace: str, event: str, payload: Any) -> str:
    """Send one event; returns "acked" or "closed" (payload over the message limit)."""
    client: socketio.AsyncClient = state["client"]
    if not client.connected:
        await client.disconnect()
        client = state["client"] = await _fresh_client(beacon)
    size = encoded_size(event, payload)
    try:
        ack = await client.call(event, payload, namespace=namespace, timeout=2)
    except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError) as exc:
        if size <= LIMIT - 1024:
            raise AssertionError(f"no ack within 2 s for {event!r} on {namespace} ({size} bytes): {exc!r}") from exc
        state["closed"] += 1
        return "closed"
    assert size <= LIMIT + 1024, f"a {size}-byte message was acked: {ack!r}"
    assert isinstance(ack, dict), ack
    if event in ("subscribe", "unsubscribe") and namespace == "/logs":
        assert "error" in ack or ack.get("thread_id") is not None, ack
    else:
        assert ack.get("error", "").startswith("unknown event"), ack
    assert not ack.get("error", "").startswith("rate limited"), ack
    state["acked"] += 1
    return "acked"


async def test_f2_arbitrary_json_to_every_client_event(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, **{"auth.subscribe_rate": 1000.0})
    async with running_beacon(cfg) as beacon:
        loop = asyncio.get_running_loop()
        state: dict[str, Any] = {"client": await _fresh_client(beacon), "acked": 0, "closed": 0}

        # Hypothesis runs in a worker thread and hands each call to the server's (this test's) loop;
        # the test itself is not decorated with @given, so no function-scoped fixture is reused.
        @settings(
            max_examples=F2_EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
        )
        @given(namespace=st.sampled_from(NAMESPACES), event=EVENTS, payload=PAYLOADS)
        def run(namespace: str, event: str, payload: Any) -> None:
            if encoded_size(event, payload) > MAX_PAYLOAD:
                payload = Big("x" * (MAX_PAYLOAD - 1024))  # stay within the plan's 128 KB
            assert json_depth(payload) <= MAX_DEPTH
            call = _one_call(beacon, state, namespace, event, payload)
            asyncio.run_coroutine_threadsafe(call, loop).result(timeout=15)

        try:
            await asyncio.to_thread(run)
        finally:
            await state["client"].disconnect()
        assert state["closed"] >= 1, state  # some payloads were over the 64 KB message limit
        assert state["acked"] >= F2_EXAMPLES // 2, state

        # The server never crashed: both listeners answer, and a fresh client works on both namespaces.
        async with aiohttp.ClientSession() as http:
            async with http.get(beacon.realtime + "/health") as resp:
                assert resp.status == 200, await resp.text()
        status, _ = await beacon.call("GET", "/health")
        assert status == 200
        fresh = await _fresh_client(beacon)
        try:
            ack = await fresh.call("subscribe", {"thread_id": "x1"}, namespace="/logs", timeout=2)
            assert ack["recovered"] is True, ack
            ack = await fresh.call("hello", {}, namespace="/admin", timeout=2)
            assert ack["error"].startswith("unknown event"), ack
        finally:
            await fresh.disconnect()
