"""Webhooks against real aiohttp receivers on free ports: signing, retries, dead and slow receivers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import socket
import tomllib
import typing
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from conftest import ROOT, Beacon, eventually, free_port, make_config, running_beacon

from app.config import Config, ConfigError, WebhookConfig, load_config, parse_webhooks
from app.store import Store
from app.store.base import Delivery

SECRET = "receiver-secret-0123456789"
README = (ROOT / "README.md").read_text()


def readme_verify() -> Callable[..., bool]:
    """The verification snippet exactly as the README shows it."""
    [block] = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "def verify(" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    return namespace["verify"]  # type: ignore[no-any-return]


verify = readme_verify()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """A real HTTP receiver: answers `answers` in order (then 200), optionally holding each request."""

    port: int
    answers: list[int] = field(default_factory=list)
    gate: asyncio.Event | None = None  # set: requests are answered; unset: they hang
    requests: list[Request] = field(default_factory=list)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def events(self, path: str | None = None) -> list[str]:
        return [r.headers["X-Beacon-Event"] for r in self.requests if path is None or r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Request(request.path, dict(request.headers), await request.read()))
        if self.gate is not None:
            await self.gate.wait()
        return web.Response(status=self.answers.pop(0) if self.answers else 200)


@contextlib.asynccontextmanager
async def receiver(answers: list[int] | None = None, gate: asyncio.Event | None = None) -> AsyncIterator[Receiver]:
    rec = Receiver(free_port(), list(answers or []), gate)
    app = web.Application()
    app.router.add_post("/{path:.*}", rec.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", rec.port).start()
    try:
        yield rec
    finally:
        if gate is not None:
            gate.set()
        await runner.cleanup()


def with_hooks(tmp_path: Path, hooks: list[dict[str, Any]], **overrides: Any) -> Config:
    """make_config plus [[webhooks]] tables, validated as the file's would be."""
    tables = [{"secret": SECRET, "backoff": 0.05, **h} for h in hooks]
    return dataclasses.replace(make_config(tmp_path, **overrides), webhooks=parse_webhooks(tables, "test"))


async def deliveries(beacon: Beacon, **query: Any) -> dict[str, Any]:
    status, body = await beacon.call("GET", "/admin/webhooks", params=query)
    assert status == 200, body
    return dict(body)


async def settled(beacon: Beacon, count: int) -> list[dict[str, Any]]:
    """The log once `count` deliveries exist and none is pending."""

    async def check() -> list[dict[str, Any]] | None:
        log = (await deliveries(beacon))["deliveries"]
        return log if len(log) == count and all(d["state"] != "pending" for d in log) else None

    return list(await eventually(check, 30, 0.05, f"{count} deliveries never settled"))


async def review(beacon: Beacon) -> tuple[str, dict[str, Any]]:
    thread_id = await beacon.start("review", {"topic": "webhooks", "delay": 0})
    return thread_id, await beacon.wait_status(thread_id, "waiting_approval")


async def metric(beacon: Beacon, outcome: str) -> float:
    async with beacon.http.get(beacon.rest + "/metrics") as resp:
        text = await resp.text()
    found = re.search(rf'^beacon_webhook_deliveries_total{{outcome="{outcome}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_waiting_then_completed_signed_and_logged(tmp_path: Path, stack: dict[str, str]) -> None:
    async with receiver() as rec, running_beacon(with_hooks(tmp_path, [{"url": rec.url()}], **stack)) as beacon:
        thread_id, waiting = await review(beacon)
        await eventually(lambda: rec.events() == ["waiting_approval"], 10, message="no waiting_approval hook")
        first = rec.requests[0]
        assert verify(SECRET, first.body, first.headers["X-Beacon-Timestamp"], first.headers["X-Beacon-Signature"])
        assert not verify("another-secret-0123456789", first.body, first.headers["X-Beacon-Timestamp"],
                          first.headers["X-Beacon-Signature"])
        assert not verify(SECRET, first.body + b" ", first.headers["X-Beacon-Timestamp"],
                          first.headers["X-Beacon-Signature"])
        body = first.json
        assert body["event"] == body["status"] == "waiting_approval"
        assert (body["thread_id"], body["workflow"]) == (thread_id, "review")
        assert body["delivery_id"] == first.headers["X-Beacon-Delivery"] and body["at"]
        assert body["pending"] == waiting["pending"]  # what /approve needs, without asking /status
        assert first.headers["Content-Type"] == "application/json"

        status, _ = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
        assert status == 200
        await beacon.wait_status(thread_id, "completed")
        await eventually(lambda: rec.events() == ["waiting_approval", "completed"], 10, message="no completed hook")
        done = rec.requests[1]
        assert verify(SECRET, done.body, done.headers["X-Beacon-Timestamp"], done.headers["X-Beacon-Signature"])
        assert done.json["event"] == "completed" and done.json["thread_id"] == thread_id

        log = await settled(beacon, 2)
        assert [d["event"] for d in log] == ["completed", "waiting_approval"]  # newest first
        assert all((d["state"], d["attempts"], d["status_code"], d["error"]) == ("delivered", 1, 200, None)
                   for d in log)
        assert {d["id"] for d in log} == {r.headers["X-Beacon-Delivery"] for r in rec.requests}
        assert log[1]["payload"] == first.json and log[0]["hook"] == rec.url()

        page = await deliveries(beacon, limit=1)
        assert [d["event"] for d in page["deliveries"]] == ["completed"] and page["next_cursor"]
        rest = await deliveries(beacon, limit=1, cursor=page["next_cursor"])
        assert [d["event"] for d in rest["deliveries"]] == ["waiting_approval"] and rest["next_cursor"] is None
        assert page["hooks"] == [{"url": rec.url(), "events": ["waiting_approval", "completed", "failed"],
                                  "timeout": 10.0, "attempts": 5, "backoff": 0.05}]
        status, raw = await beacon.call("GET", "/admin/webhooks")
        assert SECRET not in json.dumps(raw)
        status, err = await beacon.call("GET", "/admin/webhooks", params={"cursor": "not-a-cursor"})
        assert status == 400 and "cursor" in err["details"]
        status, err = await beacon.call("GET", "/admin/webhooks", params={"limit": "0"})
        assert status == 400 and "limit" in err["details"]
        assert await metric(beacon, "delivered") == 2


async def test_receiver_failing_twice_is_delivered_on_the_third_attempt(tmp_path: Path) -> None:
    async with receiver([500, 503]) as rec, running_beacon(with_hooks(tmp_path, [{"url": rec.url()}])) as beacon:
        await review(beacon)
        [entry] = await settled(beacon, 1)
        assert (entry["state"], entry["attempts"], entry["status_code"], entry["error"]) == ("delivered", 3, 200, None)
        assert len(rec.requests) == 3
        assert {r.headers["X-Beacon-Delivery"] for r in rec.requests} == {entry["id"]}  # one delivery, retried
        for r in rec.requests:
            assert verify(SECRET, r.body, r.headers["X-Beacon-Timestamp"], r.headers["X-Beacon-Signature"])
        assert await metric(beacon, "delivered") == 1 and await metric(beacon, "failed") == 0


async def test_client_error_is_not_retried(tmp_path: Path) -> None:
    async with receiver([404, 404]) as rec, running_beacon(with_hooks(tmp_path, [{"url": rec.url()}])) as beacon:
        await review(beacon)
        [entry] = await settled(beacon, 1)
        assert (entry["state"], entry["attempts"], entry["status_code"]) == ("failed", 1, 404)
        assert entry["error"] == "HTTP 404 Not Found" and len(rec.requests) == 1


async def test_dead_receiver_never_blocks_a_run(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there: connection refused
    cfg = with_hooks(tmp_path, [{"url": dead, "attempts": 3}])
    async with running_beacon(cfg) as beacon:
        thread_id, _ = await review(beacon)
        status, _ = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
        assert status == 200
        await beacon.wait_status(thread_id, "completed")
        log = await settled(beacon, 2)
        for entry in log:
            assert (entry["state"], entry["attempts"], entry["status_code"]) == ("failed", 3, None)
            assert "Connect" in entry["error"]
        assert await metric(beacon, "failed") == 2


async def test_hanging_receiver_never_blocks_a_run(tmp_path: Path) -> None:
    gate = asyncio.Event()
    async with receiver(gate=gate) as rec, running_beacon(with_hooks(tmp_path, [{"url": rec.url()}])) as beacon:
        thread_id, _ = await review(beacon)
        await eventually(lambda: len(rec.requests) == 1, 10, message="the hook was not called")
        # The receiver holds the waiting_approval request; the run goes on regardless.
        status, _ = await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
        assert status == 200
        await beacon.wait_status(thread_id, "completed")
        await eventually(lambda: len(rec.requests) == 2, 10, message="the completed hook was not sent")
        log = (await deliveries(beacon))["deliveries"]
        assert [(d["state"], d["attempts"]) for d in log] == [("pending", 0), ("pending", 0)]  # both in flight
        assert (await deliveries(beacon))["backlog"] == 2
        gate.set()
        log = await settled(beacon, 2)
        assert [(d["state"], d["attempts"]) for d in log] == [("delivered", 1), ("delivered", 1)]
        await eventually(lambda: _backlog_is(beacon, 0), 10, message="the backlog never emptied")


async def _backlog_is(beacon: Beacon, n: int) -> bool:
    return (await deliveries(beacon))["backlog"] == n


async def test_credentials_in_the_url_are_sent_but_never_shown(tmp_path: Path) -> None:
    async with receiver() as rec:
        url = f"http://hook-user:s3cr3t-pass@127.0.0.1:{rec.port}/hook?token=query-secret&x="
        async with running_beacon(with_hooks(tmp_path, [{"url": url}])) as beacon:
            await review(beacon)
            [entry] = await settled(beacon, 1)
            assert rec.requests[0].headers["Authorization"].startswith("Basic ")  # userinfo → basic auth
            shown = f"http://***@127.0.0.1:{rec.port}/hook?token=***&x=***"
            assert entry["hook"] == shown and (await deliveries(beacon))["hooks"][0]["url"] == shown
            status, raw = await beacon.call("GET", "/admin/webhooks")
            assert "s3cr3t-pass" not in json.dumps(raw) and "query-secret" not in json.dumps(raw)


async def test_slow_receiver_times_out_and_fails(tmp_path: Path) -> None:
    gate = asyncio.Event()  # never set while the hook is tried: every attempt waits past the timeout
    async with receiver(gate=gate) as rec:
        cfg = with_hooks(tmp_path, [{"url": rec.url(), "timeout": 0.3, "attempts": 2}])
        async with running_beacon(cfg) as beacon:
            thread_id, _ = await review(beacon)
            [entry] = await settled(beacon, 1)
            assert (entry["state"], entry["attempts"], entry["status_code"]) == ("failed", 2, None)
            assert entry["error"] == "no answer within 0.3s" and len(rec.requests) == 2
            assert (await beacon.status(thread_id))["status"] == "waiting_approval"


async def test_each_hook_gets_only_its_events(tmp_path: Path) -> None:
    async with receiver() as rec:
        hooks = [
            {"url": rec.url("/done"), "events": ["completed"]},
            {"url": rec.url("/wait"), "events": ["waiting_approval"]},
            {"url": rec.url("/failed"), "events": ["failed", "cancelled"]},
        ]
        async with running_beacon(with_hooks(tmp_path, hooks)) as beacon:
            thread_id, _ = await review(beacon)
            await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
            await beacon.wait_status(thread_id, "completed")
            cancelled, _ = await review(beacon)
            status, _ = await beacon.call("POST", f"/admin/runs/{cancelled}/cancel")
            assert status == 200
            await settled(beacon, 4)
            assert rec.events("/done") == ["completed"]
            assert rec.events("/wait") == ["waiting_approval", "waiting_approval"]
            [request] = [r for r in rec.requests if r.path == "/failed"]
            assert request.json["event"] == "cancelled" and request.json["thread_id"] == cancelled
            assert request.json["cancelled_by"] == "test-admin"


async def test_failed_run_sends_the_error(tmp_path: Path) -> None:
    async with receiver() as rec:
        cfg = with_hooks(tmp_path, [{"url": rec.url(), "events": ["failed"]}])
        async with running_beacon(cfg) as beacon:
            thread_id = await beacon.start("deploy", {"step_delay": 0, "fail_at": "build"})
            await beacon.wait_status(thread_id, "waiting_approval")
            await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
            failed = await beacon.wait_status(thread_id, "failed")
            [entry] = await settled(beacon, 1)
            assert entry["state"] == "delivered" and rec.events() == ["failed"]
            body = rec.requests[0].json
            assert body["error"] == failed["error"] == "RuntimeError: step build failed"
            assert (body["thread_id"], body["workflow"]) == (thread_id, "deploy")


async def test_pending_delivery_is_sent_again_after_a_restart(tmp_path: Path) -> None:
    gate = asyncio.Event()
    port = free_port()  # the node's name is host:port: the restarted process must have the same
    async with receiver(gate=gate) as rec:
        cfg = with_hooks(tmp_path, [{"url": rec.url()}], **{"rest.port": port})
        async with running_beacon(cfg) as beacon:
            await review(beacon)
            await eventually(lambda: len(rec.requests) == 1, 10, message="the hook was not called")
        # Stopped while the receiver held the request: the delivery stays pending in the store.
        gate.set()
        async with running_beacon(cfg) as beacon:
            [entry] = await settled(beacon, 1)
            assert (entry["state"], entry["attempts"]) == ("delivered", 1)
            assert entry["node"] == f"{socket.gethostname()}:{port}"
            assert [r.headers["X-Beacon-Delivery"] for r in rec.requests] == [entry["id"], entry["id"]]
            assert rec.requests[0].body == rec.requests[1].body


async def test_pending_delivery_of_a_removed_hook_fails_after_a_restart(tmp_path: Path) -> None:
    gate = asyncio.Event()
    port = free_port()
    async with receiver(gate=gate) as rec:
        async with running_beacon(with_hooks(tmp_path, [{"url": rec.url()}], **{"rest.port": port})) as beacon:
            await review(beacon)
            await eventually(lambda: len(rec.requests) == 1, 10, message="the hook was not called")
        async with running_beacon(make_config(tmp_path, **{"rest.port": port})) as beacon:  # no hooks now
            [entry] = await settled(beacon, 1)
            assert (entry["state"], entry["error"]) == ("failed", "the hook is no longer configured for this event")
            assert len(rec.requests) == 1


async def test_two_rest_nodes_send_each_transition_once(
    tmp_path: Path, redis_server: Any, postgres_server: Any
) -> None:
    shared = {"pubsub.url": redis_server.url, "store.url": postgres_server.create_database()}
    async with receiver() as rec, contextlib.AsyncExitStack() as stack:
        hooks = [{"url": rec.url(), "events": ["waiting_approval", "completed", "cancelled"]}]
        a = await stack.enter_async_context(running_beacon(with_hooks(tmp_path / "a", hooks, **shared)))
        b = await stack.enter_async_context(running_beacon(with_hooks(tmp_path / "b", hooks, **shared)))
        approved, _ = await review(a)
        cancelled, _ = await review(a)
        await b.call("POST", f"/approve/{approved}", {"decision": "approve"})  # b executes the rest
        await b.wait_status(approved, "completed")
        await b.call("POST", f"/admin/runs/{cancelled}/cancel")
        log = await settled(a, 4)
        assert sorted((r.json["thread_id"], r.json["event"]) for r in rec.requests) == sorted(
            [(approved, "waiting_approval"), (approved, "completed"), (cancelled, "waiting_approval"),
             (cancelled, "cancelled")]
        )
        nodes = {(d["thread_id"], d["event"]): d["node"] for d in log}
        node_a, node_b = (f"{socket.gethostname()}:{x.running.rest_port}" for x in (a, b))
        assert nodes[(approved, "waiting_approval")] == node_a and nodes[(approved, "completed")] == node_b
        assert nodes[(cancelled, "cancelled")] == node_b
        assert (await deliveries(b))["deliveries"] == log  # one log, seen from every node


# -- configuration ------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "beacon.toml"
    path.write_text(text)
    return path


def test_webhooks_from_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'[[webhooks]]\nurl = "https://a.example/x"\nsecret = "{SECRET}"\n'
        f'[[webhooks]]\nurl = "http://b.example:8080/y"\nsecret = "{SECRET}"\nevents = ["failed"]\ntimeout = 2\n',
    )
    cfg, _ = load_config(path, {})
    assert cfg.webhooks == (
        WebhookConfig("https://a.example/x", SECRET),
        WebhookConfig("http://b.example:8080/y", SECRET, events=("failed",), timeout=2.0),
    )
    assert load_config(None, {})[0].webhooks == ()


HOOK = f'[[webhooks]]\nurl = "https://a.example/x"\nsecret = "{SECRET}"\n'


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[webhooks]\nurl = "https://a.example"\n', "webhooks must be an array of tables like [[webhooks]]"),
        ('[[webhooks]]\nurl = "https://a.example"\n', "webhooks[0]: secret is required"),
        (f'[[webhooks]]\nsecret = "{SECRET}"\n', "webhooks[0]: url is required"),
        (HOOK + f'[[webhooks]]\nurl = "ftp://b.example"\nsecret = "{SECRET}"\n', "webhooks[1].url: expected an http"),
        (f'[[webhooks]]\nurl = "https:///nohost"\nsecret = "{SECRET}"\n', "webhooks[0].url: expected an http"),
        (f'[[webhooks]]\nurl = "http://h:99999/"\nsecret = "{SECRET}"\n', "webhooks[0].url: expected an http"),
        ('[[webhooks]]\nurl = "https://a.example"\nsecret = "short"\n', "webhooks[0].secret: must be at least 16"),
        (HOOK + 'events = ["started"]\n', "webhooks[0].events=['started']: expected some of waiting_approval"),
        (HOOK + "events = []\n", "webhooks[0].events=[]: expected some of"),
        (HOOK + "timeout = 0\n", "webhooks[0].timeout=0.0: must be positive"),
        (HOOK + "attempts = 0\n", "webhooks[0].attempts=0: must be between 1 and 20"),
        (HOOK + "attempts = 2.5\n", "webhooks[0].attempts=2.5: expected an integer"),
        (HOOK + "backoff = -1\n", "webhooks[0].backoff=-1.0: must not be negative"),
        (HOOK + "retries = 3\n", "webhooks[0]: unknown key 'retries'"),
    ],
)
def test_bad_webhooks_name_the_entry_and_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), {})
    message = str(exc.value)
    assert needle in message and "\n" not in message
    assert message.startswith(str(tmp_path / "beacon.toml"))


def test_config_errors_never_echo_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, '[[webhooks]]\nurl = "ftp://user:hunter2@a.example"\nsecret = "tiny-secret"\n'), {})
    assert "hunter2" not in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, '[[webhooks]]\nurl = "https://a.example"\nsecret = "tiny-secret"\n'), {})
    assert "tiny-secret" not in str(exc.value)


def test_webhooks_have_no_environment_form() -> None:
    cfg, warnings = load_config(None, {"BEACON_WEBHOOKS_URL": "https://a.example"})
    assert cfg.webhooks == () and warnings == ["ignoring unknown environment variable BEACON_WEBHOOKS_URL"]


def test_readme_documents_every_webhook_key_and_its_example_loads(tmp_path: Path) -> None:
    for key in typing.get_type_hints(WebhookConfig):
        assert f"`webhooks[].{key}`" in README, f"webhooks[].{key} missing from the README's config table"
    [example] = [b for b in re.findall(r"```toml\n(.*?)```", README, re.S) if "[[webhooks]]" in b]
    cfg, _ = load_config(write(tmp_path, example), {})
    assert [h.events for h in cfg.webhooks] == [("waiting_approval", "failed")]
    assert tomllib.loads(example)["webhooks"][0].keys() == typing.get_type_hints(WebhookConfig).keys()


# -- the delivery log in both stores ------------------------------------------------------


def delivery(n: int, node: str = "node-a:8000") -> Delivery:
    body = json.dumps({"event": "completed", "delivery_id": f"d{n}", "text": "ünïcode ✓"})
    return Delivery(f"d{n}", "https://a.example/x", "completed", f"t{n}", body, node,
                    created_at=f"2026-01-01T00:00:0{n}+00:00")


async def test_store_keeps_the_delivery_log(store: Store) -> None:
    for n in range(1, 6):
        await store.add_delivery(delivery(n, "node-a:8000" if n % 2 else "node-b:8000"))
    await store.update_delivery("d2", state="delivered", attempts=3, status_code=200, error=None)
    await store.update_delivery("d3", state="pending", attempts=1, status_code=503, error="HTTP 503 \x00 x")
    await store.update_delivery("d5", state="failed", attempts=5, status_code=None, error="ClientConnectorError")

    first, cursor = await store.list_deliveries(limit=2)
    assert [d.id for d in first] == ["d5", "d4"] and cursor
    second, cursor = await store.list_deliveries(limit=2, cursor=cursor)
    third, end = await store.list_deliveries(limit=2, cursor=cursor)
    assert [d.id for d in second + third] == ["d3", "d2", "d1"] and end is None
    d2 = second[1]
    assert (d2.state, d2.attempts, d2.status_code, d2.error) == ("delivered", 3, 200, None)
    assert d2.updated_at >= d2.created_at == "2026-01-01T00:00:02+00:00"
    assert json.loads(d2.body)["text"] == "ünïcode ✓" and d2.node == "node-b:8000"

    pending = await store.pending_deliveries("node-a:8000")
    assert [(d.id, d.attempts) for d in pending] == [("d1", 0), ("d3", 1)]  # oldest first; d5 failed
    assert await store.pending_deliveries("node-c:8000") == []
    with pytest.raises(ValueError):
        await store.list_deliveries(cursor="bogus")
