"""The README's examples run: its workflow example works as written, its config table is complete."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import types
from pathlib import Path

from conftest import ROOT, TOKEN, Beacon, ClientFactory, eventually, make_config, need_binary, running_beacon

from app.config import SECTIONS

README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_readme_opens_with_the_two_commands() -> None:
    first = code_blocks("bash")[0]
    assert first.splitlines()[0].startswith("make run") and first.splitlines()[1].startswith("make test")


def test_config_table_names_every_key() -> None:
    import typing

    for section, cls in SECTIONS.items():
        for key in typing.get_type_hints(cls):
            assert f"`{section}.{key}`" in README, f"{section}.{key} missing from the README's config table"


async def test_workflow_example_runs(tmp_path: Path, connect: ClientFactory) -> None:
    [example] = [block for block in code_blocks("python") if "def build() -> Workflow" in block]
    module = types.ModuleType("readme_invoice")
    exec(compile(example, "README.md", "exec"), module.__dict__)
    sys.modules["readme_invoice"] = module
    try:
        cfg = make_config(tmp_path, **{"workflows.invoice": "readme_invoice:build"})
        async with running_beacon(cfg) as beacon:
            await _invoice_flow(beacon, connect)
    finally:
        del sys.modules["readme_invoice"]


async def _invoice_flow(beacon: Beacon, connect: ClientFactory) -> None:
    client = await connect(beacon.realtime, ("/logs",))
    status, body = await beacon.call("POST", "/start", {"workflow": "invoice", "input": {}})
    assert status == 422 and "amount" in body["details"]["input"]
    thread_id = await beacon.start("invoice", {"amount": 12.5})
    waiting = await beacon.wait_status(thread_id, "waiting_approval")
    assert waiting["pending"][0]["value"] == {"question": "Pay 12.50?"}
    await beacon.call("POST", f"/approve/{thread_id}", {"decision": "approve"})
    done = await beacon.wait_status(thread_id, "completed")
    assert done["values"]["paid"] is True
    await eventually(lambda: any(line["text"] == "checking invoice of 12.50" for line in client.logs))
    await client.sio.disconnect()


def shell_commands(needle: str) -> list[str]:
    """The commands of the README's bash block that mentions `needle`, continuation lines joined."""
    [block] = [b for b in code_blocks("bash") if needle in b]
    text = block.replace("\\\n", " ")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


async def run_shell(command: str, beacon: Beacon) -> str:
    """Run a README command against `beacon` (its `localhost:8000` is the test's REST port)."""
    command = command.replace("localhost:8000", beacon.rest.removeprefix("http://"))
    env = {**os.environ, "BEACON_TOKEN": TOKEN}
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, (command, err.decode())
    return out.decode()


async def test_token_management_examples_run(beacon: Beacon) -> None:
    need_binary("curl")
    create, listing, revoke = shell_commands("/admin/tokens")
    created = json.loads(await run_shell(create, beacon))
    assert (created["name"], created["role"], created["created_by"]) == ("ci-bot", "operator", "test-admin")
    names = [t["name"] for t in json.loads(await run_shell(listing, beacon))["tokens"]]
    assert "ci-bot" in names
    assert json.loads(await run_shell(revoke, beacon))["revoked_by"] == "test-admin"
    status, body = await beacon.call("GET", "/admin/runs", headers={"Authorization": f"Bearer {created['token']}"})
    assert status == 401, body


async def test_approvals_examples_run(beacon: Beacon) -> None:
    need_binary("curl")
    start, queue = shell_commands("/admin/approvals")
    started = json.loads(await run_shell(start, beacon))
    await beacon.wait_status(started["thread_id"], "waiting_approval")
    body = json.loads(await run_shell(queue, beacon))
    [item] = body["approvals"]
    assert item["thread_id"] == started["thread_id"] and item["workflow"] == "deploy"
    assert item["value"]["question"] == "Deploy billing to staging?" and item["value"]["deadline_seconds"] == 600
    assert item["default_action"] == "reject" and 0 < item["seconds_left"] <= 600
    # Every key the README's sample answer names is in the real one.
    [block] = [b for b in code_blocks("bash") if "/admin/approvals" in b]
    shown = set(re.findall(r'"(\w+)":', block.split("# →", 1)[1]))
    assert shown <= {*body, *item, *item["value"]}, shown - {*body, *item, *item["value"]}


async def test_langgraph_sdk_example_runs(beacon: Beacon) -> None:
    [example] = [block for block in code_blocks("python") if "from langgraph_sdk import get_client" in block]
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)
    answer = await namespace["main"](beacon.rest, TOKEN)  # type: ignore[operator]
    assert answer.startswith("Done. Email to ada@example.com sent")
