"""The CLI (`python run.py tail|start|approve|reject|runs`) as a real subprocess against a real Beacon,
and `--log-format json` from a real `python run.py`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import AUTH_HEADER, ROOT, TOKEN, TOKEN_ENTRY, Beacon, eventually, free_port
from faultproxy import FaultProxy

from app.cli import COMMANDS
from app.config import ConfigError, load_config

# Variables that would steer the child's configuration or the CLI's defaults.
CONFIG_ENV = ("REST_API_", "SOCKETIO_", "PUBSUB_URL", "STORE_URL", "BEACON_", "NO_COLOR")
LINE = re.compile(r"^\s*(\d+) \d\d:\d\d:\d\d\.\d{3} (\w+)\s+(.*)$")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_ENV)}
    return {**env, "PYTHONUNBUFFERED": "1", "BEACON_TOKEN": TOKEN, "BEACON_AUTH_TOKENS": TOKEN_ENTRY, **extra}


@dataclass
class Result:
    code: int
    out: str
    err: str


def against(beacon: Beacon, realtime: str | None = None) -> list[str]:
    return ["--api", beacon.rest, "--socketio", realtime or beacon.realtime]


async def cli(*args: str, timeout: float = 60, **env: str) -> Result:
    """Run `python run.py ARGS` to the end without blocking the loop the in-process Beacon serves on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "run.py",
        *args,
        cwd=ROOT,
        env=child_env(**env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"run.py {' '.join(args)} still running after {timeout}s: {out!r} {err!r}") from None
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@dataclass
class Tail:
    """A `tail` subprocess whose stdout lines are collected as they are printed."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    err: bytes = b""

    @classmethod
    async def start(cls, *args: str) -> Tail:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "run.py",
            "tail",
            *args,
            cwd=ROOT,
            env=child_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def finish(self, timeout: float) -> int:
        async def read_out() -> None:
            assert self.proc.stdout is not None
            async for raw in self.proc.stdout:
                self.lines.append(raw.decode().rstrip("\n"))

        async def read_err() -> None:
            assert self.proc.stderr is not None
            self.err = await self.proc.stderr.read()

        try:
            await asyncio.wait_for(asyncio.gather(read_out(), read_err(), self.proc.wait()), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"tail still running after {timeout}s; stderr {self.err!r}") from None
        assert self.proc.returncode is not None
        return self.proc.returncode


@contextlib.asynccontextmanager
async def tailing(*args: str, timeout: float = 60) -> AsyncIterator[tuple[Tail, asyncio.Task[int]]]:
    tail = await Tail.start(*args)
    task = asyncio.create_task(tail.finish(timeout))
    try:
        yield tail, task
    finally:
        if not task.done():
            tail.proc.kill()
        with contextlib.suppress(Exception):
            await task


def seqs(lines: list[str]) -> list[int]:
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), [line for line, m in zip(lines, parsed, strict=True) if not m]
    return [int(m.group(1)) for m in parsed if m]


async def stored(beacon: Beacon, thread_id: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    while True:
        status, body = await beacon.call("GET", f"/admin/runs/{thread_id}/logs?limit=10000&after={len(lines)}")
        assert status == 200, body
        lines += body["lines"]
        if body["next_after"] is None:
            return lines


async def waiting_again(beacon: Beacon, thread_id: str, decisions: int) -> dict[str, Any]:
    """The run waits for approval with `decisions` decisions already recorded."""

    async def check() -> dict[str, Any] | None:
        body = await beacon.status(thread_id)
        ready = body["status"] == "waiting_approval" and len(body["decisions"]) == decisions
        return body if ready else None

    return dict(await eventually(check, 10, 0.05, f"{thread_id} never waited after {decisions} decision(s)"))


# -- commands ---------------------------------------------------------------------------


async def test_start_prints_the_thread_id_and_runs_lists_it(beacon: Beacon) -> None:
    started = await cli("start", "review", "--input", '{"topic": "Q3", "delay": 0}', *against(beacon))
    assert started.code == 0 and started.err == ""
    thread_id = started.out.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", thread_id), started.out
    chosen = await cli("start", "bench", "--input", '{"lines": 3}', "--thread-id", "cli-bench", *against(beacon))
    assert chosen.out == "cli-bench\n"
    await beacon.wait_status("cli-bench", "completed")
    await beacon.wait_status(thread_id, "waiting_approval")

    listed, waiting, bench = await asyncio.gather(
        cli("runs", *against(beacon)),
        cli("runs", "--status", "waiting_approval", *against(beacon)),
        cli("runs", "--workflow", "bench", "--limit", "1", *against(beacon)),
    )
    assert listed.code == 0, listed.err
    header, *rows = listed.out.splitlines()
    assert header.split() == ["THREAD_ID", "WORKFLOW", "STATUS", "CREATED", "UPDATED"]
    assert [row.split()[:3] for row in rows] == [
        ["cli-bench", "bench", "completed"],
        [thread_id, "review", "waiting_approval"],
    ]
    # aligned: every column starts at the same offset on every line
    for column in ("WORKFLOW", "STATUS", "CREATED"):
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows), listed.out
    assert [row.split()[0] for row in waiting.out.splitlines()[1:]] == [thread_id]
    assert [row.split()[0] for row in bench.out.splitlines()[1:]] == ["cli-bench"]


async def test_tokens_create_list_revoke(beacon: Beacon) -> None:
    created = await cli("tokens", "create", "ci-bot", "--role", "operator", *against(beacon))
    assert created.code == 0 and "only time" in created.err, created.err
    secret = created.out.strip()
    started = await cli("start", "bench", "--input", '{"lines": 1}', *against(beacon), BEACON_TOKEN=secret)
    assert started.code == 0, started.err
    listed = await cli("tokens", *against(beacon))
    header, *rows = listed.out.splitlines()
    assert header.split() == ["NAME", "ROLE", "SOURCE", "CREATED", "BY"]
    assert [r.split()[:3] for r in rows] == [["test-admin", "admin", "config"], ["ci-bot", "operator", "api"]]
    assert secret not in listed.out
    revoked, missing = await asyncio.gather(
        cli("tokens", "revoke", "ci-bot", *against(beacon)), cli("tokens", "revoke", *against(beacon))
    )
    assert revoked.code == 0 and revoked.out.startswith("revoked ci-bot"), revoked.err
    assert missing.code == 1 and "needs a NAME" in missing.err
    again = await cli("runs", *against(beacon), BEACON_TOKEN=secret)
    assert again.code == 1 and "unknown or revoked token (401 unauthorized)" in again.err, again.err


async def test_approve_and_reject_comments_reach_status(beacon: Beacon) -> None:
    thread_id = await beacon.start("review", {"topic": "Q3", "delay": 0})
    first = (await beacon.wait_status(thread_id, "waiting_approval"))["pending"][0]["interrupt_id"]

    rejected = await cli("reject", thread_id, "--comment", "add the figures", *against(beacon))
    assert rejected.code == 0, rejected.err
    assert rejected.out.startswith(f"rejected {thread_id} (interrupt {first})")
    second = (await waiting_again(beacon, thread_id, 1))["pending"][0]["interrupt_id"]

    approved = await cli(
        "approve", thread_id, "--comment", "ship it", "--interrupt-id", second, *against(beacon), BEACON_TOKEN=TOKEN
    )
    assert approved.code == 0, approved.err
    done = await beacon.wait_status(thread_id, "completed")
    assert [(d["interrupt_id"], d["decision"], d["comment"], d["decided_by"]) for d in done["decisions"]] == [
        (first, "reject", "add the figures", "test-admin"),
        (second, "approve", "ship it", "test-admin"),
    ]
    assert "add the figures" in done["values"]["draft"]


# -- tail -------------------------------------------------------------------------------


async def test_tail_no_follow_prints_the_stored_lines_in_order(beacon: Beacon) -> None:
    thread_id = await beacon.start("review", {"topic": "Q3", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    await beacon.call("POST", f"/approve/{thread_id}", {"decision": "reject", "comment": "more"})
    await waiting_again(beacon, thread_id, 1)
    expected = await stored(beacon, thread_id)

    whole, since, warnings = await asyncio.gather(
        cli("tail", thread_id, "--no-follow", *against(beacon)),
        cli("tail", thread_id, "--no-follow", "--since", "3", *against(beacon)),
        cli("tail", thread_id, "--no-follow", "--level", "warning", *against(beacon)),
    )
    assert whole.code == 0 and whole.err == "", whole.err
    assert "\033" not in whole.out  # not a terminal: no colour
    lines = whole.out.splitlines()
    assert seqs(lines) == [line["seq"] for line in expected] == list(range(1, len(expected) + 1))
    for printed, line in zip(lines, expected, strict=True):
        match = LINE.match(printed)
        assert match and (match.group(2), match.group(3)) == (line["level"], line["text"])
    assert seqs(since.out.splitlines()) == list(range(4, len(expected) + 1))
    assert [LINE.match(x).group(3) for x in warnings.out.splitlines()] == ["Draft rejected: more"]  # type: ignore[union-attr]


async def test_tail_colours_by_level_on_a_terminal_unless_no_color(beacon: Beacon) -> None:
    thread_id = await beacon.start("review", {"topic": "Q3", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    await beacon.call("POST", f"/approve/{thread_id}", {"decision": "reject", "comment": "more"})
    await waiting_again(beacon, thread_id, 1)

    async def on_a_terminal(**env: str) -> str:
        master, slave = pty.openpty()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "run.py", "tail", thread_id, "--no-follow", *against(beacon),
            cwd=ROOT, env=child_env(**env), stdin=asyncio.subprocess.DEVNULL, stdout=slave,
        )  # fmt: skip
        os.close(slave)

        def read_all() -> bytes:
            chunks = []
            with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
                while chunk := os.read(master, 65536):
                    chunks.append(chunk)
            return b"".join(chunks)

        try:
            output, code = await asyncio.wait_for(asyncio.gather(asyncio.to_thread(read_all), proc.wait()), 60)
        finally:
            os.close(master)
        assert code == 0
        return output.decode()

    coloured, plain = await asyncio.gather(on_a_terminal(), on_a_terminal(NO_COLOR="1"))
    warning = next(line for line in coloured.splitlines() if "Draft rejected" in line)
    assert warning.startswith("\033[33m") and warning.endswith("\033[0m")
    info = next(line for line in coloured.splitlines() if "waiting for approval" in line)
    assert "\033" not in info
    assert "Draft rejected: more" in plain and "\033" not in plain


async def test_tail_follows_a_bench_run_and_exits_when_it_completes(beacon: Beacon) -> None:
    thread_id = await beacon.start("bench", {"lines": 200, "rate": 100})
    async with tailing(thread_id, *against(beacon)) as (tail, done):
        code = await done
    assert code == 0, tail.err
    assert (await beacon.status(thread_id))["status"] == "completed"
    expected = await stored(beacon, thread_id)
    assert seqs(tail.lines) == list(range(1, len(expected) + 1))  # every line, once, in order
    texts = [LINE.match(line).group(3).split()[:2] for line in tail.lines]  # type: ignore[union-attr]
    assert texts[:200] == [["line", str(i)] for i in range(1, 201)] and texts[-1] == ["run", "completed"]
    assert f"run {thread_id} completed" in tail.err.decode()


async def test_tail_resumes_after_a_disconnect_without_gaps_or_duplicates(beacon: Beacon) -> None:
    async with FaultProxy(beacon.running.realtime_port) as proxy:
        thread_id = await beacon.start("bench", {"lines": 1500, "rate": 200})
        realtime = f"http://127.0.0.1:{proxy.port}"
        async with tailing(thread_id, *against(beacon, realtime)) as (tail, done):
            await eventually(lambda: len(tail.lines) >= 20, 30, 0.02, "tail printed nothing")
            assert (await beacon.status(thread_id))["status"] == "running", "the run ended before the fault"
            proxy.refusing = True
            proxy.reset_all()
            printed = len(tail.lines)

            async def logged_since(count: int) -> bool:
                return len(await stored(beacon, thread_id)) >= count + 50

            # While refused, the run logs 50 more lines the tail must fetch when it is back.
            await eventually(lambda: logged_since(printed), 20, 0.05, "the run made no progress")
            proxy.refusing = False
            backlog = len(await stored(beacon, thread_id))
            # Live lines again, beyond what was stored at reconnect time, while the run still runs.
            await eventually(lambda: len(tail.lines) >= backlog + 50, 20, 0.02, "no live lines after reconnect")
            assert (await beacon.status(thread_id))["status"] == "running"
            code = await done
    assert code == 0, tail.err
    assert proxy.connections >= 2 and "reconnected; resuming after seq" in tail.err.decode(), tail.err
    expected = await stored(beacon, thread_id)
    got = seqs(tail.lines)
    assert len(got) == len(set(got)), "duplicates"
    assert got == list(range(1, len(expected) + 1)), "gaps or disorder"


# -- errors -----------------------------------------------------------------------------


async def test_server_errors_are_one_line_and_exit_1(beacon: Beacon) -> None:
    missing = "no run with thread_id 'nope' (404 not_found)"
    cases = {
        ("start", "review", "--input", "{}"): (
            "invalid input (422 validation_error): input.topic: Missing data for required field."
        ),
        ("start", "nah"): "unknown workflow 'nah' (404 not_found): workflows: agent, bench, deploy, review",
        ("approve", "nope"): missing,
        ("reject", "nope", "--comment", "no"): missing,
        ("tail", "nope"): missing,
        ("tail", "nope", "--no-follow"): missing,
        ("runs", "--status", "lost"): "invalid query parameters (400 invalid_query): status: Must be one of: "
        "idle, running, waiting_approval, completed, failed, cancelled.",
    }
    results = await asyncio.gather(*(cli(*args, *against(beacon)) for args in cases))
    for (args, message), result in zip(cases.items(), results, strict=True):
        assert (result.code, result.out, result.err) == (1, "", f"beacon: {message}\n"), args


async def test_unreachable_beacon_is_one_line_and_exit_1(beacon: Beacon) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    thread_id = await beacon.start("review", {"topic": "Q3", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    results = await asyncio.gather(
        cli("runs", "--api", nobody),
        cli("start", "review", "--input", '{"topic": "x"}', BEACON_API=nobody),
        cli("tail", thread_id, "--api", beacon.rest, "--socketio", nobody),
    )
    for result in results:
        assert (result.code, result.out) == (1, "")
        assert result.err == f"beacon: Beacon isn't reachable at {nobody} (connection refused)\n"


async def test_every_command_has_help() -> None:
    results = await asyncio.gather(*(cli(command, "--help") for command in COMMANDS))
    for command, result in zip(COMMANDS, results, strict=True):
        assert result.code == 0, result.err
        assert result.out.startswith(f"usage: python run.py {command}")
        assert "--api URL" in result.out and "--socketio URL" in result.out and "--token TOKEN" in result.out
    bad = await cli("start", "review", "--input", "[1]")
    assert bad.code == 2 and "expected a JSON object" in bad.err


async def test_token_is_sent_as_a_bearer_header() -> None:
    # A stand-in REST listener that records what the CLI sends (Beacon does not enforce auth yet).
    seen: list[str | None] = []

    async def runs(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"runs": [], "total": 0, "next_cursor": None, "counts": {}})

    app = web.Application()
    app.router.add_get("/admin/runs", runs)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        flag, env = await asyncio.gather(
            cli("runs", "--api", f"http://127.0.0.1:{port}", "--token", "t0k"),
            cli("runs", "--api", f"http://127.0.0.1:{port}", BEACON_TOKEN="env-t0k"),
        )
    finally:
        await runner.cleanup()
    assert flag.code == env.code == 0
    assert sorted(seen, key=str) == ["Bearer env-t0k", "Bearer t0k"]


# -- structured logs --------------------------------------------------------------------


def test_logging_format_is_validated() -> None:
    assert load_config(None, {})[0].logging.format == "plain"
    assert load_config(None, {"BEACON_LOGGING_FORMAT": "json"})[0].logging.format == "json"
    with pytest.raises(ConfigError, match="logging.format='xml': expected plain or json"):
        load_config(None, {}, {"logging.format": "xml"})


async def test_server_modes_keep_their_flags() -> None:
    usage, bad = await asyncio.gather(cli("--help"), cli("--log-format", "xml"))
    assert usage.code == 0 and "{all,rest,realtime}" in usage.out and "--log-format VALUE" in usage.out
    assert bad.code == 2 and bad.err.startswith("beacon: configuration error:") and "'xml'" in bad.err


async def test_log_format_json_tags_a_runs_lines_with_its_thread_id(tmp_path: Path) -> None:
    rest, realtime = free_port(), free_port()
    api = f"http://127.0.0.1:{rest}"
    argv = ["run.py", "--log-format", "json", "--rest-port", str(rest), "--socketio-port", str(realtime)]
    argv += ["--store-url", f"sqlite:///{tmp_path}/x.sqlite"]
    with (tmp_path / "out").open("wb") as out, (tmp_path / "err").open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=ROOT, env=child_env(), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err
        )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5), headers=AUTH_HEADER) as http:

            async def healthy() -> bool:
                assert proc.returncode is None, (tmp_path / "err").read_text()
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(api + "/health") as resp:
                        return resp.status == 200
                return False

            async def status(thread_id: str, wanted: str) -> bool:
                async with http.get(f"{api}/status/{thread_id}") as resp:
                    return (await resp.json())["status"] == wanted

            await eventually(healthy, 30, 0.1, "beacon never became healthy")
            reader, writer = await asyncio.open_connection("127.0.0.1", rest)
            writer.write(b"GET /health HTTP/1.1\nHost: x\n\n")  # malformed: bare LF
            assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.")
            writer.close()
            started = await cli("start", "review", "--input", '{"topic": "Q3", "delay": 0}', "--api", api)
            thread_id = started.out.strip()
            await eventually(lambda: status(thread_id, "waiting_approval"), 10, 0.05)
            assert (await cli("approve", thread_id, "--api", api)).code == 0
            await eventually(lambda: status(thread_id, "completed"), 10, 0.05)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    records = [json.loads(line) for line in (tmp_path / "err").read_text().splitlines() if line.strip()]
    assert records and all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    of_run = [r["message"] for r in records if r.get("thread_id") == thread_id]
    assert of_run[0] == "Drafting revision 1 about 'Q3'" and of_run[-1] == "run completed"
    assert "waiting for approval" in of_run
    [bad] = [r for r in records if r["logger"] == "aiohttp.server"]  # one line for a malformed request
    assert bad["level"] == "WARNING" and bad["message"].startswith("bad HTTP request from 127.0.0.1")
    assert "exc_info" not in bad
    stopped = [r for r in records if r["message"] == "stopped"]
    assert stopped and "thread_id" not in stopped[0] and stopped[0]["logger"] == "beacon"


# -- the README's example ---------------------------------------------------------------


async def test_readme_cli_example_runs(beacon: Beacon) -> None:
    """The README's ```bash block with `python run.py tail` runs line by line, as written."""
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "python run.py tail" in b]
    assert blocks, "README.md has no ```bash example of the CLI (python run.py start … tail …)"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # `python` is this venv's
    env = {"PATH": path, "BEACON_API": beacon.rest, "BEACON_SOCKETIO": beacon.realtime}
    thread_id = ""
    for line in (raw.split("#", 1)[0].strip() for raw in blocks[0].splitlines()):
        if not line:
            continue
        if re.search(r"\b(approve|reject)\b", line):  # a person reads the draft first
            await waiting_again(beacon, thread_id, len((await beacon.status(thread_id))["decisions"]))
        if assign := re.fullmatch(r'(\w+)=\$\((.*)\)', line):
            result = await shell(assign.group(2), env)
            env[assign.group(1)] = thread_id = result.out.strip()
        else:
            result = await shell(line, env)
        assert result.code == 0, (line, result.err)
    done = await beacon.status(thread_id)
    assert done["status"] in ("completed", "failed", "cancelled"), "the example's last tail exits on a final status"
    assert "run completed" in result.out


async def shell(line: str, env: dict[str, str]) -> Result:
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", line, cwd=ROOT, env=child_env(**env),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())
