"""The README's examples run: its workflow example works as written, its config table is complete."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from conftest import ROOT, Beacon, ClientFactory, eventually, make_config, running_beacon

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
