"""The console answers interrupts of any shape, and shows a thread's runs: real Chromium, real Beacon.

- Beacon's own approval request, answered through "Reply with JSON" (the advanced option);
- an interrupt of the graph's own shape, answered with a JSON value that reaches `interrupt()` as sent;
- LangChain's HumanInTheLoopMiddleware (the `agent` example workflow): approve, edit, reject; and two
  calls whose review configs allow different decisions (respond among them);
- the run page's table of the thread's runs, live across a resume.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
from conftest import TOKEN, Beacon, make_config, need_binary, running_beacon
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from playwright.async_api import Locator, Page, Request, Route, async_playwright, expect
from test_ui import CHROMIUM_ARGS, UI, need_ui, shot

expect.set_options(timeout=15_000)


class PickState(TypedDict, total=False):
    choice: Any


def pick_colour(state: PickState) -> dict[str, Any]:
    # Neither a Beacon approval request nor HITL-shaped: only the graph knows what the answer is.
    return {"choice": interrupt({"pick": "a colour", "options": ["red", "green", "blue"]})}


def pick_graph() -> StateGraph[Any]:
    """A workflow factory (`module:factory`) whose interrupt has a shape of its own."""
    graph = StateGraph(PickState)
    graph.add_node("pick_colour", pick_colour)
    graph.add_edge(START, "pick_colour")
    graph.add_edge("pick_colour", END)
    return graph


class ReviewState(TypedDict, total=False):
    answer: Any


TWO_CALLS = {
    "action_requests": [
        {"name": "ask_user", "args": {"question": "Which quarter?"}},
        {"name": "delete_file", "args": {"path": "/srv/q3.csv"}, "description": "Delete /srv/q3.csv"},
    ],
    "review_configs": [
        {"action_name": "ask_user", "allowed_decisions": ["approve", "respond"]},
        {"action_name": "delete_file", "allowed_decisions": ["approve", "reject"]},
    ],
}


def review_two_calls(state: ReviewState) -> dict[str, Any]:
    # The HumanInTheLoopMiddleware shape with two calls, each allowing other decisions.
    return {"answer": interrupt(TWO_CALLS)}


def two_calls_graph() -> StateGraph[Any]:
    graph = StateGraph(ReviewState)
    graph.add_node("review_two_calls", review_two_calls)
    graph.add_edge(START, "review_two_calls")
    graph.add_edge("review_two_calls", END)
    return graph


@pytest.fixture
async def ui(tmp_path: Path) -> AsyncIterator[UI]:
    """test_ui's fixture, with the pick graph registered beside the default workflows (agent among them)."""
    chromium = need_binary("chromium")
    ui_dir = need_ui()
    cfg = make_config(
        tmp_path,
        **{
            "rest.ui_dir": str(ui_dir),
            "workflows.pick": f"{__name__}:pick_graph",
            "workflows.two_calls": f"{__name__}:two_calls_graph",
        },
    )
    async with running_beacon(cfg) as beacon, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        ui = UI(beacon, browser)
        try:
            yield ui
        finally:
            await browser.close()
    assert not ui.errors, f"uncaught errors in the page: {ui.errors}"


async def open_run(ui: UI, thread_id: str, width: int = 1280) -> Page:
    page = await ui.page(width)
    await page.goto(ui.url(f"/ui/run/?id={thread_id}"))
    await expect(page.locator(".conn")).to_have_attribute("data-state", "connected")
    return page


def badge(page: Page) -> Locator:
    return page.locator(".runhead .badge")


def notices(page: Page) -> Locator:
    return page.locator(".notices")


async def start_agent(beacon: Beacon, text: str) -> str:
    thread_id = await beacon.start("agent", {"messages": [{"role": "user", "content": text}]})
    await beacon.wait_status(thread_id, "waiting_approval", timeout=20)
    return thread_id


def messages(values: dict[str, Any]) -> str:
    """The final state's conversation as one text, whatever form the messages were serialized in."""
    return json.dumps(values.get("messages"))


async def decided(beacon: Beacon, thread_id: str) -> list[tuple[str, Any]]:
    done = await beacon.wait_status(thread_id, "completed", timeout=20)
    return [(d["decision"], d.get("data")) for d in done["decisions"]]


async def test_reply_with_json_to_a_beacon_approval(ui: UI) -> None:
    """(a) Beacon's own request keeps approve/reject, and takes a raw JSON reply beside it."""
    beacon = ui.beacon
    thread_id = await beacon.start("review", {"topic": "raw reply", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    page = await open_run(ui, thread_id)
    approval = page.locator(".approval")
    await expect(approval).to_contain_text("Publish this draft?")
    await expect(approval.get_by_role("button", name="Approve…")).to_be_visible()  # the usual form stays

    toggle = approval.get_by_role("button", name="Reply with JSON…")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    editor = approval.get_by_label("Resume value (JSON)")
    send = approval.get_by_role("button", name="Send reply…")
    await expect(send).to_be_disabled()  # nothing typed yet
    await editor.fill('{"decision": "approve",')
    await expect(approval.locator(".json-reply .field-errors")).to_contain_text("Not valid JSON")
    await expect(editor).to_have_attribute("aria-invalid", "true")
    await expect(send).to_be_disabled()
    await editor.fill('{"decision": "approve"}')
    await expect(editor).to_have_attribute("aria-invalid", "false")
    await expect(approval.locator(".json-reply .field-errors li")).to_have_count(0)
    await send.click()
    confirm = approval.get_by_role("group", name="Confirm reply")
    await confirm.get_by_role("button", name="Yes, send reply").click()

    await expect(notices(page)).to_contain_text("Reply sent — the run continues.")
    await expect(badge(page)).to_have_text("completed")
    await expect(page.locator(".decisions")).to_contain_text("answered")
    await expect(page.locator(".notices")).not_to_contain_text("Someone else")  # the event was this page's own
    assert await decided(beacon, thread_id) == [("resume", {"decision": "approve"})]
    assert (await beacon.status(thread_id))["values"]["published"] is True


async def test_an_interrupt_of_its_own_shape_gets_the_json_editor(ui: UI) -> None:
    """Neither Beacon's nor HITL-shaped: the JSON editor is the form; a 409 is explained."""
    beacon = ui.beacon
    thread_id = await beacon.start("pick", {})
    waiting = await beacon.wait_status(thread_id, "waiting_approval")
    page = await open_run(ui, thread_id, 390)
    approval = page.locator(".approval")
    await expect(approval.get_by_role("heading", name="Waiting for input")).to_be_visible()
    await expect(approval).to_contain_text("a colour")
    await expect(approval.get_by_role("button", name="Approve…")).to_have_count(0)
    await expect(approval.get_by_role("button", name="Reply with JSON…")).to_have_count(0)  # no toggle: it is the form
    editor = approval.get_by_label("Resume value (JSON)")
    await editor.fill("green")  # not JSON: a bare word
    await expect(approval.locator(".field-errors")).to_contain_text("Not valid JSON")
    await expect(approval.get_by_role("button", name="Send reply…")).to_be_disabled()
    await editor.fill('"green"')  # a JSON string, not an object
    await shot(page, "run-detail-raw-interrupt")

    # Someone else answers between the click and this page's request: the page's answer is refused.
    async def other_first(route: Route) -> None:
        status, _ = await beacon.call(
            "POST", f"/approve/{thread_id}", {"resume": "blue", "interrupt_id": waiting["pending"][0]["interrupt_id"]}
        )
        assert status == 200
        await route.continue_()

    await page.route("**/approve/**", other_first)
    await approval.get_by_role("button", name="Send reply…").click()
    await approval.get_by_role("button", name="Yes, send reply").click()
    await expect(notices(page)).to_contain_text("Not recorded: someone else already decided this approval")
    await expect(badge(page)).to_have_text("completed")
    assert await decided(beacon, thread_id) == [("resume", "blue")]
    assert (await beacon.status(thread_id))["values"]["choice"] == "blue"


async def test_raw_reply_reaches_interrupt_as_sent(ui: UI) -> None:
    beacon = ui.beacon
    thread_id = await beacon.start("pick", {})
    await beacon.wait_status(thread_id, "waiting_approval")
    page = await open_run(ui, thread_id)
    approval = page.locator(".approval")
    value = {"colour": "green", "shades": [1, 2.5, None], "ok": True}
    await approval.get_by_label("Resume value (JSON)").fill(json.dumps(value))
    await approval.get_by_role("button", name="Send reply…").click()
    await approval.get_by_role("button", name="Yes, send reply").click()
    await expect(notices(page)).to_contain_text("Reply sent — the run continues.")
    await expect(badge(page)).to_have_text("completed")
    await expect(page.locator(".json.state")).to_contain_text('"colour": "green"')
    assert await decided(beacon, thread_id) == [("resume", value)]
    assert (await beacon.status(thread_id))["values"]["choice"] == value


async def review_send_email(page: Page) -> tuple[Locator, Locator]:
    """The HITL panel's one tool call (send_email to Alice): its fieldset and its decision buttons."""
    approval = page.locator(".approval")
    await expect(approval.get_by_role("heading", name="Waiting for review")).to_be_visible()
    action = approval.get_by_role("group", name="Tool call 1 of 1: send_email")
    description = "Send an email to alice@example.com: 'Send the Q3 report to Alice'"
    await expect(action).to_contain_text(description)
    await expect(action.locator(".fields")).to_contain_text("alice@example.com")  # the arguments
    choices = action.get_by_role("group", name="Decision for send_email")
    await expect(choices.get_by_role("button")).to_have_text(["Approve", "Edit", "Reject"])  # what the config allows
    await expect(approval.get_by_role("button", name="Send decisions…")).to_be_disabled()  # nothing chosen yet
    await expect(approval.get_by_role("button", name="Approve…")).to_have_count(0)  # not Beacon's form
    return action, choices


async def send_decisions(page: Page, plan: str) -> None:
    approval = page.locator(".approval")
    await approval.get_by_role("button", name="Send decisions…").click()
    confirm = approval.get_by_role("group", name="Confirm decisions")
    await expect(confirm).to_contain_text(f"Send this decision: {plan}?")
    await confirm.get_by_role("button", name="Yes, send decisions").click()
    await expect(notices(page)).to_contain_text("Decisions sent — the run continues.")
    await expect(badge(page)).to_have_text("completed")


async def test_hitl_tool_call_approved(ui: UI) -> None:
    """(b) approve: the email goes to the address the agent looked up."""
    beacon = ui.beacon
    thread_id = await start_agent(beacon, "Send the Q3 report to Alice")
    page = await open_run(ui, thread_id)
    _, choices = await review_send_email(page)
    await shot(page, "run-detail-hitl")
    approve = choices.get_by_role("button", name="Approve")
    await approve.click()
    await expect(approve).to_have_attribute("aria-pressed", "true")
    await send_decisions(page, "approve send_email")

    assert await decided(beacon, thread_id) == [("resume", {"decisions": [{"type": "approve"}]})]
    said = messages((await beacon.status(thread_id))["values"])
    assert "Email to alice@example.com sent: 'Send the Q3 report to Alice'" in said
    await expect(page.locator(".log")).to_contain_text("Sending email to alice@example.com")
    await expect(page.locator(".decisions")).to_contain_text("approve")


async def test_hitl_tool_call_edited(ui: UI) -> None:
    """(b) edit: the arguments are checked as JSON before sending; the tool runs with the edited ones."""
    beacon = ui.beacon
    thread_id = await start_agent(beacon, "Send the Q3 report to Alice")
    page = await open_run(ui, thread_id)
    action, choices = await review_send_email(page)
    await choices.get_by_role("button", name="Edit").click()
    args = action.get_by_label("Arguments for send_email (JSON)")
    await expect(args).to_have_value(re.compile(r'"to": "alice@example\.com"'))  # starts from the agent's arguments
    send = page.get_by_role("button", name="Send decisions…")
    errors = action.locator(".field-errors")

    await args.fill('{"to": "bob@example.com",')
    await expect(errors).to_contain_text("Not valid JSON")
    await expect(args).to_have_attribute("aria-invalid", "true")
    await expect(send).to_be_disabled()
    await args.fill('["bob@example.com"]')
    await expect(errors).to_have_text("The arguments must be a JSON object: { … }.")
    await expect(send).to_be_disabled()
    edited = {"to": "bob@example.com", "subject": "Q3 report (edited)", "body": "Figures attached."}
    await args.fill(json.dumps(edited))
    await expect(args).to_have_attribute("aria-invalid", "false")
    await expect(errors.locator("li")).to_have_count(0)
    await send_decisions(page, "edit send_email")

    sent = {"decisions": [{"type": "edit", "edited_action": {"name": "send_email", "args": edited}}]}
    assert await decided(beacon, thread_id) == [("resume", sent)]
    said = messages((await beacon.status(thread_id))["values"])
    assert "Email to bob@example.com sent: 'Q3 report (edited)'" in said  # the tool's result, with the edit
    assert "Email to alice@example.com sent" not in said
    await expect(page.locator(".log")).to_contain_text("Sending email to bob@example.com: Q3 report (edited)")


async def test_hitl_tool_call_rejected_with_a_message(ui: UI) -> None:
    """(b) reject: the tool does not run; the agent gets the reviewer's message."""
    beacon = ui.beacon
    thread_id = await start_agent(beacon, "Send the Q3 report to Alice")
    page = await open_run(ui, thread_id, 390)
    action, choices = await review_send_email(page)
    await choices.get_by_role("button", name="Reject").click()
    await action.get_by_label("Message to the agent (optional)").fill("not before the board meeting")
    await send_decisions(page, "reject send_email")

    sent = {"decisions": [{"type": "reject", "message": "not before the board meeting"}]}
    assert await decided(beacon, thread_id) == [("resume", sent)]
    said = messages((await beacon.status(thread_id))["values"])
    assert "User rejected the tool call for `send_email` with reason: not before the board meeting" in said
    assert "I did not send the email." in said
    await expect(page.locator(".log")).to_contain_text("run completed")
    await expect(page.locator(".log")).not_to_contain_text("Sending email")


async def test_hitl_decisions_follow_each_review_config_in_order(ui: UI) -> None:
    """Two tool calls: each offers only what its config allows; one answer carries both, in order."""
    beacon = ui.beacon
    thread_id = await beacon.start("two_calls", {})
    await beacon.wait_status(thread_id, "waiting_approval")
    page = await open_run(ui, thread_id)
    approval = page.locator(".approval")
    ask = approval.get_by_role("group", name="Tool call 1 of 2: ask_user")
    delete = approval.get_by_role("group", name="Tool call 2 of 2: delete_file")
    await expect(ask.get_by_role("button")).to_have_text(["Approve", "Respond"])
    await expect(delete.get_by_role("button")).to_have_text(["Approve", "Reject"])
    await expect(delete).to_contain_text("Delete /srv/q3.csv")
    send = approval.get_by_role("button", name="Send decisions…")
    await expect(send).to_be_disabled()
    await expect(approval).to_contain_text("Choose a decision for every tool call (2 of 2 left).")

    await ask.get_by_role("button", name="Respond").click()
    await expect(ask.locator(".field-errors")).to_have_text("Write the response the agent gets.")
    await ask.get_by_label("Response to the agent").fill("Q3, as always")
    await expect(approval).to_contain_text("(1 of 2 left)")
    await expect(send).to_be_disabled()
    await delete.get_by_role("button", name="Reject").click()  # no message: it is optional
    await send.click()
    confirm = approval.get_by_role("group", name="Confirm decisions")
    await expect(confirm).to_contain_text("Send these 2 decisions: respond ask_user, reject delete_file?")
    await confirm.get_by_role("button", name="Yes, send decisions").click()
    await expect(notices(page)).to_contain_text("Decisions sent — the run continues.")
    await expect(badge(page)).to_have_text("completed")

    sent = {"decisions": [{"type": "respond", "message": "Q3, as always"}, {"type": "reject"}]}
    assert await decided(beacon, thread_id) == [("resume", sent)]
    assert (await beacon.status(thread_id))["values"]["answer"] == sent
    await expect(page.locator(".decisions")).to_contain_text("answered")
    await expect(page.locator(".decisions")).to_contain_text("respond, reject")


async def test_runs_table_follows_a_resume(ui: UI) -> None:
    """(c) the thread's runs, newest first: the interrupted first run, then the resume's run, live."""
    beacon = ui.beacon
    thread_id = await beacon.start("review", {"topic": "runs table", "delay": 0})
    await beacon.wait_status(thread_id, "waiting_approval")
    page = await open_run(ui, thread_id)
    await page.evaluate("window.__sameDocument = true")
    table = page.get_by_role("table", name=re.compile("^Runs"))
    rows = table.locator("tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator(".badge")).to_have_text("interrupted")

    approval = page.locator(".approval")
    await approval.get_by_role("button", name="Approve…").click()
    await approval.get_by_role("button", name="Yes, approve").click()
    await expect(badge(page)).to_have_text("completed")
    await expect(rows).to_have_count(2)  # refreshed by the thread's admin events, no reload
    await expect(rows.locator(".badge")).to_have_text(["success", "interrupted"])
    await shot(page, "run-detail-runs")

    status, runs = await beacon.call("GET", f"/threads/{thread_id}/runs?limit=50&offset=0")
    assert status == 200, runs
    assert [r["status"] for r in runs] == ["success", "interrupted"]
    assert [await row.get_attribute("data-run") for row in await rows.all()] == [r["run_id"] for r in runs]
    assert (await beacon.status(thread_id))["run_id"] == runs[0]["run_id"]
    await expect(rows.first).to_have_attribute("aria-current", "true")  # the thread's latest run
    await expect(rows.first.locator("td").first).to_have_attribute("title", runs[0]["run_id"])
    assert await page.evaluate("window.__sameDocument") is True, "the page reloaded"


async def test_console_calls_carry_the_token(ui: UI) -> None:
    """The runs listing is a viewer route like the others: the page's bearer token opens it."""
    thread_id = await ui.beacon.start("review", {"topic": "auth", "delay": 0})
    await ui.beacon.wait_status(thread_id, "waiting_approval")
    page = await ui.page()
    seen: list[str | None] = []

    def runs_request(request: Request) -> None:
        if re.search(r"/threads/[^/]+/runs", request.url):
            seen.append(request.headers.get("authorization"))

    page.on("request", runs_request)
    await page.goto(ui.url(f"/ui/run/?id={thread_id}"))
    await expect(page.get_by_role("table", name=re.compile("^Runs")).locator("tbody tr")).to_have_count(1)
    assert seen and all(h == f"Bearer {TOKEN}" for h in seen)
