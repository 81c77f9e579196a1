"""TESTPLAN S16–S20, S22, S26 on the REST side: what an outside client sends must not change
state, crash a handler, forge a log line or leak what it should not."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from conftest import ROOT, TOKEN, TOKEN_ENTRY, Beacon, ClientFactory, eventually, free_port, make_config, running_beacon
from test_auth import run_py

from app.auth import digest
from app.config import ConfigError, load_config
from app.store import Store, TokenRecord, open_store

GRAPHS = ROOT / "tests" / "graphs" / "langgraph.json"
JSON = {"Content-Type": "application/json"}


DEEP = "<deep>"  # stands for the nested value in a body that send() encodes


async def send(beacon: Beacon, method: str, path: str, body: Any, depth: int) -> tuple[int, Any]:
    """`body` with every DEEP replaced by `depth` nested lists (as text: JSON encoders recurse, and stop)."""
    data = json.dumps(body).replace(json.dumps(DEEP), "[" * depth + "]" * depth)
    async with beacon.http.request(method, beacon.rest + path, data=data, headers=JSON) as resp:
        return resp.status, await resp.json(content_type=None)


async def call(beacon: Beacon, method: str, path: str, body: Any = None, token: str | None = TOKEN, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, beacon.rest + path, json=body, headers=headers, **kw) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if resp.content_type == "application/json" else text)


@pytest.fixture
async def agent_beacon(tmp_path: Path, stack: dict[str, str]) -> AsyncIterator[Beacon]:
    async with running_beacon(make_config(tmp_path, **stack, **{"graphs.config": str(GRAPHS)})) as b:
        yield b


# -- S16: every JSON value a client supplies is bounded in depth and size -----------------------


@pytest.mark.parametrize("depth", [300, 1000])
async def test_s16_nested_json_is_422(agent_beacon: Beacon, depth: int) -> None:
    b, deep = agent_beacon, DEEP
    status, body = await send(b, "POST", "/start", {"workflow": "chat", "input": {"messages": deep}}, depth)
    assert status == 422 and "nested deeper" in body["details"]["input"][0], body
    _, runs = await b.call("GET", "/admin/runs")
    assert runs["total"] == 0, "a refused /start stored a run"

    thread_id = await b.start("review", {"topic": "t", "delay": 0})
    waiting = await b.wait_status(thread_id, "waiting_approval")
    answers = ({"decision": "approve", "data": deep}, {"resume": deep}, {"decision": "reject", "data": {"a": deep}})
    for answer in answers:
        status, body = await send(b, "POST", f"/approve/{thread_id}", answer, depth)
        assert status == 422 and body["error"] == "validation_error", body
        assert "nested deeper" in str(body["details"]), body
    after = await b.status(thread_id)
    assert after["status"] == "waiting_approval" and after["pending"] == waiting["pending"]
    assert after["decisions"] == []

    # The Agent API: input, command, metadata, state values.
    status, thread = await b.call("POST", "/threads", {"metadata": {"user": "ada"}})
    assert status == 200, thread
    tid = thread["thread_id"]
    for path, sent in (
        (f"/threads/{tid}/runs/wait", {"assistant_id": "chat", "input": {"messages": deep}}),
        (f"/threads/{tid}/runs", {"assistant_id": "chat", "command": {"resume": deep}}),
        (f"/threads/{tid}/runs", {"assistant_id": "chat", "input": {}, "metadata": {"m": deep}}),
        (f"/threads/{tid}/state", {"values": {"messages": deep}}),
        ("/threads", {"metadata": {"deep": deep}}),
        ("/runs/wait", {"assistant_id": "chat", "input": {"messages": deep}}),
    ):
        status, body = await send(b, "POST", path, sent, depth)
        assert status == 422 and "nested deeper" in str(body["details"]), (path, body)
    status, body = await send(b, "PATCH", f"/threads/{tid}", {"metadata": {"deep": deep}}, depth)
    assert status == 422, body
    status, runs = await b.call("GET", f"/threads/{tid}/runs")
    assert status == 200 and runs == [], runs
    status, found = await b.call("POST", "/threads/search", {"limit": 100})
    assert len(found) == 2 and all("deep" not in t["metadata"] for t in found), found  # the review's and tid


async def test_s16_oversized_json_is_422(agent_beacon: Beacon) -> None:
    beacon = agent_beacon
    wide = {"input": {"messages": [0] * 15_000}}
    status, body = await beacon.call("POST", "/start", {"workflow": "chat", **wide})
    assert status == 422 and "values" in body["details"]["input"][0], body
    status, body = await beacon.call("GET", "/admin/runs")
    assert body["total"] == 0


# -- S19: ids and names match as a whole (no trailing newline) ----------------------------------


async def test_s19_ids_and_names_with_a_trailing_newline_are_422(beacon: Beacon, connect: ClientFactory) -> None:
    start = {"workflow": "review", "input": {"topic": "t"}, "thread_id": "abc\n"}
    status, body = await beacon.call("POST", "/start", start)
    assert status == 422 and "thread_id" in body["details"], body
    status, body = await beacon.call("GET", "/status/abc%0A")
    assert status == 422, body
    status, body = await beacon.call("POST", "/admin/tokens", {"name": "op1\n", "role": "operator"})
    assert status == 422 and "name" in body["details"], body
    status, body = await beacon.call("DELETE", "/admin/tokens/test-admin%0A")
    assert status == 422, body
    status, body = await beacon.call("POST", "/threads", {"thread_id": "t1\n"})
    assert status == 422 and "thread_id" in body["details"], body
    _, runs = await beacon.call("GET", "/admin/runs")
    _, tokens = await beacon.call("GET", "/admin/tokens")
    assert runs["total"] == 0 and [t["name"] for t in tokens["tokens"]] == ["test-admin"]
    client = await connect(beacon.realtime, namespaces=("/logs",))
    ack = await client.subscribe("a\n")
    assert "error" in ack, ack
    with pytest.raises(ConfigError, match="auth.tokens"):
        load_config(None, {}, {"auth.tokens": "op1\n:admin:a-secret-of-twenty-chars"})


# -- S22: bad encodings, 64-bit overflows, long paths: 400 / 404, never 5xx ---------------------


async def test_s22_bad_content_encoding_cursor_overflow_and_long_path(agent_beacon: Beacon) -> None:
    b = agent_beacon
    thread_id = await b.start("review", {"topic": "t", "delay": 0})
    await b.wait_status(thread_id, "waiting_approval")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:  # keep-alive
        for encoding in ("gzip", "deflate", "br"):  # br: refused by the parser when Brotli is absent
            headers = {**JSON, "Content-Encoding": encoding}
            async with http.post(b.rest + "/start", data=b'{"workflow": "review"}', headers=headers) as resp:
                text = await resp.text()
                assert resp.status == 400 and json.loads(text)["error"] == "bad_request", (encoding, text)
            async with http.get(b.rest + "/health") as resp:  # the session goes on (a clean close, no reset)
                assert resp.status == 200
        for after in ("9223372036854775808", "1" + "0" * 30, "-1"):
            async with http.get(f"{b.rest}/admin/runs/{thread_id}/logs", params={"after": after}) as resp:
                body = await resp.json()
                assert resp.status == 400 and "after" in body["details"], (after, body)
        async with http.get(b.rest + "/ui/" + "a" * 5000) as resp:
            assert resp.status == 404 and (await resp.json())["error"] == "not_found"
        async with http.get(b.rest + "/ui/" + "/".join(["a" * 255] * 20)) as resp:
            assert resp.status == 404
        async with http.post(b.rest + "/threads", json={}) as resp:
            tid = (await resp.json())["thread_id"]
        body = {"assistant_id": "chat", "input": {"messages": []}}
        async with http.post(f"{b.rest}/threads/{tid}/runs", json=body) as resp:
            run_id = (await resp.json())["run_id"]
        for last in ("9223372036854775808", "-5"):
            headers = {"Last-Event-ID": last}
            async with http.get(f"{b.rest}/threads/{tid}/runs/{run_id}/stream", headers=headers) as resp:
                assert resp.status == 422, (last, resp.status, await resp.text())
    _, runs = await b.call("GET", "/admin/runs")
    assert runs["total"] == 2  # the review and the chat run; no /start got through


# -- S18: non-UTF-8 bytes and control characters from clients: 401/400, escaped in the log -------


@contextlib.asynccontextmanager
async def beacon_process(tmp_path: Path, *args: str) -> AsyncIterator[tuple[str, str, Path]]:
    """`python run.py ARGS` on free ports, stderr to a file; yields the REST and Socket.IO URLs and that file."""
    rest, realtime = free_port(), free_port()
    argv = ["run.py", "--rest-port", str(rest), "--socketio-port", str(realtime), *args]
    argv += ["--store-url", f"sqlite:///{tmp_path}/p.sqlite"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BEACON_AUTH_TOKENS": TOKEN_ENTRY}
    err = tmp_path / f"stderr-{rest}"
    with (tmp_path / f"stdout-{rest}").open("wb") as out, err.open("wb") as errfile:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=errfile
        )
    api = f"http://127.0.0.1:{rest}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def healthy() -> bool:
                assert proc.returncode is None, err.read_text()
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(api + "/health") as resp:
                        return resp.status == 200
                return False

            await eventually(healthy, 30, 0.1, "beacon never became healthy")
        yield api, f"http://127.0.0.1:{realtime}", err
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0, err.read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def raw_request(url: str, head: bytes) -> bytes:
    """Send `head` (a request without a body) as bytes; what comes back until the server closes or idles."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head)
    try:
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) + await asyncio.wait_for(reader.read(4096), 2)
    except TimeoutError:
        return b""
    finally:
        writer.close()


FORGED = "2026-12-01 00:00:00,000 CRITICAL beacon: forged"
CONTROL = [chr(c) for c in range(32) if chr(c) not in "\t\n"] + ["\x7f", "\x9b", "\u202e", "\u2028"]


def assert_log_is_clean(text: str) -> None:
    """No raw control byte (ESC, CR, BEL, C1 CSI, ...) and no forged line in a log."""
    for char in CONTROL:
        assert char not in text, f"raw {char!r} in the log"
    assert not any(line.lstrip().startswith(FORGED) for line in text.splitlines()), text


@pytest.mark.parametrize("fmt", ["plain", "json"])
async def test_s18_non_utf8_tokens_are_401_and_client_text_is_escaped_in_the_log(tmp_path: Path, fmt: str) -> None:
    async with beacon_process(tmp_path, "--log-format", fmt) as (api, realtime, err):
        evil_path = "/status/x%0a" + FORGED.replace(" ", "%20") + "%1b]0;pwned%07"
        for header in (b"Authorization: Bearer \xff\xfe", b"Authorization: Bearer a\x80b", b"x-api-key: \xffkey"):
            head = b"GET " + evil_path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n"
            answer = await raw_request(api, head)
            assert answer.startswith(b"HTTP/1.1 401 "), answer
            assert b'"error": "unauthorized"' in answer, answer
        # A request id that is not a plain token is not echoed (nor logged): the server makes one.
        answer = await raw_request(api, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\xffb\r\n\r\n")
        [request_id] = [h for h in answer.split(b"\r\n") if h.lower().startswith(b"x-request-id:")]
        assert len(request_id.split(b":", 1)[1].strip()) == 32, answer
        # A lone surrogate in a Socket.IO token: refused like any unknown token, no traceback.
        client = socketio.AsyncClient(reconnection=False)
        refusals: list[Any] = []
        client.on("connect_error", refusals.append, namespace="/logs")
        with pytest.raises(socketio.exceptions.ConnectionError):
            await client.connect(realtime, namespaces=["/logs"], auth={"token": "tok\udcff"}, wait_timeout=5)
        await client.disconnect()
        assert refusals == [{"message": "unauthorized"}], refusals
        # A request aiohttp's parser refuses, with control bytes: logged as one escaped line.
        answer = await raw_request(api, b"GET /x\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ") or answer.startswith(b"HTTP/1.0 400 "), answer
    log = err.read_text(errors="surrogateescape")
    assert "Traceback" not in log.partition("SIGTERM received")[0], log  # what the requests above logged
    assert_log_is_clean(log)
    if fmt == "json":
        assert all(json.loads(line) for line in log.splitlines() if line.strip())


# -- S17: the last admin survives two admins revoking each other at once ------------------------


async def test_s17_two_admins_revoking_each_other_leave_one(stack_beacon: Beacon) -> None:
    b = stack_beacon
    survivor = (TOKEN, "test-admin")
    for round_ in range(3):  # a race: every round must leave exactly one admin
        status, created = await call(b, "POST", "/admin/tokens", {"name": f"a{round_}", "role": "admin"}, survivor[0])
        assert status == 201, created
        admins = [survivor, (created["token"], created["name"])]
        results = await asyncio.gather(
            call(b, "DELETE", f"/admin/tokens/{admins[1][1]}", token=admins[0][0]),
            call(b, "DELETE", f"/admin/tokens/{admins[0][1]}", token=admins[1][0]),
        )
        statuses = [status for status, _ in results]
        assert statuses.count(200) == 1, results  # 409 for the other (401 had it come after the revocation)
        [refused] = [body for status, body in results if status != 200]
        assert refused["error"] in ("conflict", "unauthorized"), refused
        survivor = admins[statuses.index(200)]
        status, listing = await call(b, "GET", "/admin/tokens", token=survivor[0])
        assert status == 200 and [t["name"] for t in listing["tokens"] if t["role"] == "admin"] == [survivor[1]]
    records = await b.running.services.store.token_records()
    revoked = {r.name for r in records if r.revoked_at is not None}
    assert revoked == {"test-admin", "a0", "a1", "a2"} - {survivor[1]}


async def test_s17_two_nodes_revoking_each_others_admin_leave_one(
    tmp_path: Path, redis_server: Any, postgres_server: Any
) -> None:
    """Each node's own view says two admins are left: only the store's transaction can tell."""
    shared = {"pubsub.url": redis_server.url, "store.url": postgres_server.create_database()}
    async with (
        running_beacon(make_config(tmp_path / "a", **shared)) as a,
        running_beacon(make_config(tmp_path / "b", **shared)) as b,
    ):
        status, created = await call(a, "POST", "/admin/tokens", {"name": "a2", "role": "admin"})
        assert status == 201, created

        async def b_knows_a2() -> bool:
            return (await call(b, "GET", "/admin/tokens", token=created["token"]))[0] == 200

        await eventually(b_knows_a2, 10, message="node b never learnt of a2")
        results = await asyncio.gather(
            call(a, "DELETE", "/admin/tokens/a2", token=TOKEN),
            call(b, "DELETE", "/admin/tokens/test-admin", token=created["token"]),
        )
        assert sorted(status for status, _ in results).count(200) == 1, results
        records = await a.running.services.store.token_records()
        assert len([r for r in records if r.revoked_at is not None]) == 1, records


async def test_s17_the_store_refuses_the_last_admins_revocation(store: Store) -> None:
    """The store's side of the rule, on each backend: concurrent revocations of every admin leave one."""
    ts = "2026-12-01T00:00:00+00:00"
    fixed = frozenset({"d-config"})  # an admin from the config: known to the node, not to the store
    for name in ("api1", "api2"):
        await store.add_token(TokenRecord(f"d-{name}", name, "admin", "api", ts, "x"))
    await store.add_token(TokenRecord("d-viewer", "viewer", "viewer", "api", ts, "x"))
    revocations = [
        TokenRecord("d-config", "config", "admin", "config", ts, None, ts, "x"),
        TokenRecord("d-api1", "api1", "admin", "api", ts, "x", ts, "x"),
        TokenRecord("d-api2", "api2", "admin", "api", ts, "x", ts, "x"),
    ]
    results = await asyncio.gather(*(store.revoke_token(r, fixed) for r in revocations), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["LastAdmin", "bool", "bool"], results
    live = {r.digest for r in await store.token_records() if r.revoked_at is None and r.role == "admin"}
    assert len(live | (fixed - {r.digest for r in await store.token_records() if r.revoked_at})) == 1
    # A viewer's revocation is never refused.
    assert await store.revoke_token(TokenRecord("d-viewer", "viewer", "viewer", "api", ts, "x", ts, "x"), fixed)


async def test_s17_a_start_with_no_usable_admin_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_config(tmp_path)
    async with open_store(cfg.store.url) as store:  # as a race before the fix could leave it
        ts = "2026-12-01T00:00:00+00:00"
        await store.revoke_token(TokenRecord(digest(TOKEN), "test-admin", "admin", "config", ts, None, ts, "a2"))
    with caplog.at_level(logging.WARNING):
        async with running_beacon(cfg) as b:
            status, _ = await call(b, "GET", "/admin/tokens")
            assert status == 401
    lines = [r.getMessage() for r in caplog.records if "no usable admin token" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "auth.tokens" in lines[0], lines


# -- S20: control characters in log text: `tail` and plain logs show them escaped ---------------

EVIL = f"ok\n{FORGED} approved by admin1\x1b]0;pwned\x07\x1b[1A\x1b[2K\rgone\x9b31m\u202eevil"


@pytest.mark.parametrize("fmt", ["plain", "json"])
async def test_s20_tail_and_plain_logs_render_control_characters_escaped(tmp_path: Path, fmt: str) -> None:
    async with beacon_process(tmp_path, "--log-format", fmt) as (api, realtime, err):
        async with aiohttp.ClientSession(base_url=api, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async with http.post("/start", json={"workflow": "review", "input": {"topic": "t", "delay": 0}}) as resp:
                thread_id = (await resp.json())["thread_id"]

            async def logged(text: str) -> bool:
                async with http.get(f"/admin/runs/{thread_id}/logs") as resp:
                    return any(text in line["text"] for line in (await resp.json())["lines"])

            await eventually(lambda: logged("waiting for approval"), 15)
            async with http.post(f"/approve/{thread_id}", json={"decision": "reject", "comment": EVIL}) as resp:
                assert resp.status == 200, await resp.text()
            await eventually(lambda: logged("Draft rejected"), 15)
        tail = await asyncio.create_subprocess_exec(
            sys.executable, "run.py", "tail", thread_id, "--no-follow", "--api", api, "--socketio", realtime,
            cwd=ROOT, env={**os.environ, "BEACON_TOKEN": TOKEN}, stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(tail.communicate(), 60)
    printed = out.decode()
    assert tail.returncode == 0 and "Draft rejected" in printed, printed
    [rejected] = [line for line in printed.splitlines() if "Draft rejected" in line]
    assert "ok\\n2026-12-01" in rejected and "\\x1b]0;pwned\\x07" in rejected and "\\u202eevil" in rejected
    assert_log_is_clean(printed)
    assert "\u202e" not in printed
    log = err.read_text()
    assert_log_is_clean(log)
    [rejected] = [line for line in log.splitlines() if "Draft rejected" in line]
    if fmt == "plain":
        assert "ok\\n2026-12-01" in rejected and "\\x1b[1A\\x1b[2K\\rgone" in rejected, rejected
    else:  # JSON escapes them its way; the message decodes to the text as logged
        assert json.loads(rejected)["message"] == f"Draft rejected: {EVIL}"


# -- S26: headers and error bodies -------------------------------------------------------------

VIEWER = "viewer-token-0123456789"
OPERATOR = "operator-token-0123456789"


async def test_s26_no_banner_no_echo_strict_csp_private_files_and_trimmed_tracebacks(tmp_path: Path) -> None:
    ui_dir = tmp_path / "ui"
    ui_dir.mkdir()
    inline = "console.log('inline')"
    (ui_dir / "index.html").write_text(f"<html><script src='/ui/a.js'></script><script>{inline}</script></html>")
    tokens = f"test-admin:admin:{TOKEN},ops:operator:{OPERATOR},eve:viewer:{VIEWER}"
    cfg = make_config(tmp_path, **{"auth.tokens": tokens, "rest.ui_dir": str(ui_dir)})
    async with running_beacon(cfg) as b:
        # No version banner, on either listener, for answers, refusals and parser errors alike.
        secret_head = f"Authorization: Bearer {TOKEN}\r\nX-Bad: a\x01b\r\n".encode()
        for url in (b.rest, b.realtime):
            for path in ("/health", "/nope"):
                async with aiohttp.ClientSession() as http, http.get(url + path) as resp:
                    assert resp.headers.get("Server") == "Beacon", (url, path, resp.headers)
            answer = await raw_request(url, b"GET /health HTTP/1.1\r\nHost: x\r\n" + secret_head + b"\r\n")
            head, _, body = answer.partition(b"\r\n\r\n")
            assert b" 400 " in head.split(b"\r\n")[0] and b"\r\nServer: Beacon\r\n" in head, answer
            assert TOKEN.encode() not in answer and b"X-Bad" not in answer, answer
            assert json.loads(body)["error"] == "bad_request", answer

        # A strict CSP on the console's pages: inline scripts by hash only.
        async with aiohttp.ClientSession() as http, http.get(b.rest + "/ui/") as resp:
            policy = resp.headers["Content-Security-Policy"]
        digest_ = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"script-src 'self' 'sha256-{digest_}'" in policy and "unsafe" not in policy, policy
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy, policy
        assert "connect-src 'self' http://127.0.0.1:* https://127.0.0.1:* ws://127.0.0.1:*" in policy, policy

        # A run's traceback is for operators; viewers get the exception's line.
        thread_id = await b.start("deploy", {"step_delay": 0, "fail_at": "verify"})
        await b.wait_status(thread_id, "waiting_approval")
        await b.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
        failed = await b.wait_status(thread_id, "failed")
        texts = {}
        for who, token in (("viewer", VIEWER), ("operator", OPERATOR)):
            status, page = await call(b, "GET", f"/admin/runs/{thread_id}/logs", token=token)
            assert status == 200, page
            [texts[who]] = [line["text"] for line in page["lines"] if line["text"].startswith("run failed")]
        assert "Traceback (most recent call last)" in texts["operator"] and 'File "' in texts["operator"]
        assert "Traceback" not in texts["viewer"] and 'File "' not in texts["viewer"], texts["viewer"]
        assert texts["viewer"].splitlines()[0] == texts["operator"].splitlines()[0]
        assert texts["viewer"].splitlines()[-1] == texts["operator"].splitlines()[-1], texts
        assert failed["error"]

    # Store files readable by their owner only, like the token file.
    files = [p for p in tmp_path.iterdir() if p.name.startswith("beacon.")]
    assert {p.name for p in files} >= {"beacon.sqlite", "beacon.checkpoints.sqlite"}, files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_s26_login_url_only_on_a_terminal(tmp_path: Path) -> None:
    piped = run_py(tmp_path)
    secret = (tmp_path / "data" / "beacon.token").read_text().strip()
    assert "/ui/" in piped and secret not in piped and "token=" not in piped, piped
    assert "data/beacon.token" in piped
    on_terminal = run_py(tmp_path, tty=True)
    assert f"/ui/?token={secret}" in on_terminal, on_terminal
