"""The `agent` example: a LangChain agent whose send_email calls wait for approve, edit or reject."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from app.workflows import agent

REQUEST = "Send the Q3 report to Ada"
ADA = {"to": "ada@example.com", "subject": REQUEST, "body": REQUEST}
HITL_REQUEST = {
    "action_requests": [
        {"name": "send_email", "args": ADA, "description": f"Send an email to ada@example.com: {REQUEST!r}"}
    ],
    "review_configs": [{"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject"]}],
}
EDITED = {"to": "bob@example.com", "subject": "Q3", "body": "Attached."}


def with_saver() -> CompiledStateGraph[Any, Any, Any, Any]:
    """The shipped graph with a checkpointer attached afterwards, as Beacon attaches its own."""
    return agent.graph.copy(update={"checkpointer": InMemorySaver()})


def config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


async def ask(graph: CompiledStateGraph[Any, Any, Any, Any], thread_id: str, text: str = REQUEST) -> Any:
    await graph.ainvoke({"messages": [{"role": "user", "content": text}]}, config(thread_id))
    return await graph.aget_state(config(thread_id))


async def decide(graph: CompiledStateGraph[Any, Any, Any, Any], thread_id: str, decision: dict[str, Any]) -> Any:
    await graph.ainvoke(Command(resume={"decisions": [decision]}), config(thread_id))
    return await graph.aget_state(config(thread_id))


def tool_results(messages: list[BaseMessage], name: str) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage) and m.name == name]


def sent_to(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.args[0] for r in caplog.records if r.name == agent.__name__ and isinstance(r.args, tuple)]


def test_the_shipped_graph_is_compiled_without_a_checkpointer() -> None:
    assert agent.graph.checkpointer is None
    assert agent.build().checkpointer is None


async def test_a_send_email_call_waits_with_a_hitl_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=agent.__name__)
    state = await ask(with_saver(), "waits")

    assert [i.value for i in state.interrupts] == [HITL_REQUEST]
    assert json.loads(json.dumps(state.interrupts[0].value)) == HITL_REQUEST  # storable as JSON
    # The harmless lookup ran without asking; the email did not go out.
    assert [m.content for m in tool_results(state.values["messages"], "lookup_contact")] == ["ada@example.com"]
    assert tool_results(state.values["messages"], "send_email") == []
    assert sent_to(caplog) == []


@pytest.mark.parametrize(
    ("decision", "recipients", "status", "result", "answer"),
    [
        (
            {"type": "approve"},
            ["ada@example.com"],
            "success",
            f"Email to ada@example.com sent: {REQUEST!r}",
            f"Done. Email to ada@example.com sent: {REQUEST!r}",
        ),
        (
            {"type": "edit", "edited_action": {"name": "send_email", "args": EDITED}},
            ["bob@example.com"],
            "success",
            "Email to bob@example.com sent: 'Q3'",
            "Done. Email to bob@example.com sent: 'Q3'",
        ),
        (
            {"type": "reject", "message": "no"},
            [],
            "error",
            "User rejected the tool call for `send_email` with reason: no",
            "I did not send the email. User rejected the tool call for `send_email` with reason: no",
        ),
    ],
    ids=["approve", "edit", "reject"],
)
async def test_a_decision_resumes_the_agent(
    caplog: pytest.LogCaptureFixture,
    decision: dict[str, Any],
    recipients: list[str],
    status: str,
    result: str,
    answer: str,
) -> None:
    caplog.set_level(logging.INFO, logger=agent.__name__)
    graph = with_saver()
    await ask(graph, decision["type"])
    state = await decide(graph, decision["type"], decision)

    assert state.next == () and state.interrupts == ()
    assert sent_to(caplog) == recipients
    [sent] = tool_results(state.values["messages"], "send_email")
    assert sent.status == status
    assert sent.text.splitlines()[-1] == result
    final = state.values["messages"][-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert final.text == answer


async def test_interleaved_threads_follow_their_own_script(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=agent.__name__)
    graph = with_saver()
    first = await ask(graph, "one")
    second = await ask(graph, "two", "Send the minutes to Grace")
    assert first.interrupts[0].value == HITL_REQUEST
    assert second.interrupts[0].value["action_requests"][0]["args"]["to"] == "grace@example.com"

    second = await decide(graph, "two", {"type": "reject", "message": "not yet"})
    first = await decide(graph, "one", {"type": "approve"})

    assert sent_to(caplog) == ["ada@example.com"]
    assert first.values["messages"][-1].text == f"Done. Email to ada@example.com sent: {REQUEST!r}"
    assert second.values["messages"][-1].text.startswith("I did not send the email.")

    # A second request on a finished thread is a new turn of the same script, with new call ids.
    again = await ask(graph, "one", "Send the slides to Lin")
    assert again.interrupts[0].value["action_requests"][0]["args"]["to"] == "lin@example.com"
    ids = [c["id"] for m in again.values["messages"] if isinstance(m, AIMessage) for c in m.tool_calls]
    assert len(ids) == len(set(ids)) == 4


async def test_streaming_messages_carries_the_tool_calls() -> None:
    """stream_mode="messages" (the SDKs' messages-tuple) streams tool calls, which the parent fake drops."""
    graph = with_saver()
    chunks = [
        chunk
        async for chunk, _ in graph.astream(
            {"messages": [{"role": "user", "content": REQUEST}]}, config("stream"), stream_mode="messages"
        )
    ]
    calls = [c["name"] for chunk in chunks for c in getattr(chunk, "tool_calls", [])]
    assert calls == ["lookup_contact", "send_email"]
    state = await graph.aget_state(config("stream"))
    assert state.interrupts[0].value == HITL_REQUEST
