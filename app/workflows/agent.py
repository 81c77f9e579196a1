"""Agent: a LangChain agent whose email tool waits for a human's approve, edit or reject."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware, InterruptOnConfig
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import BaseTool, tool
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer
from pydantic import Field

logger = logging.getLogger(__name__)


@tool
def lookup_contact(name: str) -> str:
    """Look up a colleague's email address by name."""
    return f"{name.strip().lower() or 'team'}@example.com"


@tool
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email."""
    # Nothing leaves the machine: the "sending" is this log line.
    logger.info("Sending email to %s: %s", to, subject)
    return f"Email to {to} sent: {subject!r}"


def reply(history: Sequence[BaseMessage]) -> AIMessage:
    """The script: look the recipient up, ask to send the email, then report what happened."""
    asked = max((i for i, m in enumerate(history) if isinstance(m, HumanMessage)), default=-1)
    request = history[asked].text if asked >= 0 else ""
    results = [m for m in history[asked + 1 :] if isinstance(m, ToolMessage)]
    # Derived from the history, so a replayed turn gets the same id and threads never share state.
    call_id = f"call_{len(history)}"
    if not results:
        name = re.search(r"\bto ([A-Z][\w-]*)", request)
        args: dict[str, Any] = {"name": name.group(1) if name else "team"}
        return AIMessage(content="", tool_calls=[{"name": "lookup_contact", "args": args, "id": call_id}])
    last = results[-1]
    if last.name == "lookup_contact":
        args = {"to": last.text, "subject": request[:60], "body": request}
        return AIMessage(content="", tool_calls=[{"name": "send_email", "args": args, "id": call_id}])
    # The tool's own result is the last line; an edit puts the reviewer's notice above it.
    outcome = last.text.splitlines()[-1] if last.text else ""
    if last.status == "error":
        return AIMessage(content=f"I did not send the email. {outcome}")
    return AIMessage(content=f"Done. {outcome}")


class ScriptedChatModel(GenericFakeChatModel):
    """`GenericFakeChatModel` that answers from the conversation (`reply`), not a shared iterator."""

    messages: Iterator[AIMessage | str] = Field(default_factory=lambda: iter(()))  # unused

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=reply(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = reply(messages)
        if not message.tool_calls:
            yield from super()._stream(messages, stop, run_manager, **kwargs)
            return
        # The parent streams only text, so a bare tool call (stream_mode="messages") had no chunks.
        chunks = [
            tool_call_chunk(name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=i)
            for i, call in enumerate(message.tool_calls)
        ]
        yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=chunks, chunk_position="last"))

    @property
    def _llm_type(self) -> str:
        return "scripted-fake-chat-model"


def describe(tool_call: ToolCall, state: Any, runtime: Any) -> str:
    """What the reviewer reads for one `send_email` call."""
    args = tool_call["args"]
    return f"Send an email to {args.get('to')}: {args.get('subject')!r}"


def build(checkpointer: Checkpointer = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled agent; Beacon gives it its checkpointer, tests may pass one."""
    tools: list[BaseTool | Callable[..., Any]] = [lookup_contact, send_email]
    gated: InterruptOnConfig = {"allowed_decisions": ["approve", "edit", "reject"], "description": describe}
    review = HumanInTheLoopMiddleware(
        interrupt_on={"send_email": gated},
        # Explicit: the interrupt value is one HITLRequest per model turn even if the default changes.
        interrupt_mode="batched",
    )
    return create_agent(
        ScriptedChatModel(),
        tools,
        system_prompt="You send emails for the team, and only with a human's approval.",
        middleware=[review],
        checkpointer=checkpointer,
        name="agent",
    )


graph = build()
