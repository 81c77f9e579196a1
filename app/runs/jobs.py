"""A job: one run as the executing task needs it, made from what the run was asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from app.store import ThreadRun

# The Agent API's stream modes, as LangGraph names them (`messages-tuple` streams `messages`).
STREAM_MODES = {
    "values": "values",
    "updates": "updates",
    "custom": "custom",
    "messages-tuple": "messages",
    "messages": "messages",
    "checkpoints": "checkpoints",
    "tasks": "tasks",
    "debug": "debug",
}


@dataclass(frozen=True, slots=True)
class Job:
    thread_id: str
    workflow: str
    payload: Any  # the input, a Command, or None: continue from the last checkpoint
    run_id: str | None = None
    modes: tuple[str, ...] = ()  # LangGraph stream modes whose chunks become events
    subgraphs: bool = False
    configurable: dict[str, Any] = field(default_factory=dict)  # the caller's, checkpoint_id included
    context: Any = None
    interrupt_before: Any = None
    interrupt_after: Any = None
    attempt: int = 1
    seq: int = 0  # the run's last stored event (a run taken over continues its numbering)
    resumes: str | None = None  # the checkpoint a decision read under the lease: streamed again, not news

    def config(self) -> RunnableConfig:
        configurable = {**self.configurable, "thread_id": self.thread_id}
        config: RunnableConfig = {"configurable": configurable}
        if self.run_id:  # checkpoints name the run that wrote them (a rollback finds where it began)
            config["metadata"] = {"run_id": self.run_id}
        return config


def thread_config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def payload_of(kwargs: dict[str, Any]) -> Any:
    """What a run was asked to do: its input, or its command (resume, goto, update)."""
    command = kwargs.get("command")
    if command:
        return Command(resume=command.get("resume"), goto=command.get("goto") or (), update=command.get("update"))
    return kwargs.get("input")


ASKED = object()  # job_of's default payload: what the run was asked (None continues from the checkpoint)


def job_of(run: ThreadRun, payload: Any = ASKED, *, attempt: int = 1, seq: int = 0) -> Job:
    kwargs = run.kwargs
    modes = tuple(dict.fromkeys(STREAM_MODES[m] for m in kwargs.get("stream_mode", ())))
    configurable = dict((kwargs.get("config") or {}).get("configurable") or {})
    if kwargs.get("checkpoint_id"):
        configurable["checkpoint_id"] = kwargs["checkpoint_id"]
    return Job(
        run.thread_id,
        run.workflow,
        payload_of(kwargs) if payload is ASKED else payload,
        run.run_id,
        modes,
        bool(kwargs.get("stream_subgraphs")),
        configurable,
        kwargs.get("context"),
        kwargs.get("interrupt_before"),
        kwargs.get("interrupt_after"),
        attempt,
        seq,
    )
