"""The official langgraph-sdk Python client against a real Beacon, on each stack."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, TOKEN, Beacon, ClientFactory, eventually, free_port, make_config, running_beacon
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError

GRAPHS = ROOT / "tests" / "graphs" / "langgraph.json"


@pytest.fixture
async def agent(tmp_path: Path, stack: dict[str, str]) -> AsyncIterator[tuple[Beacon, LangGraphClient]]:
    cfg = make_config(tmp_path, **stack, **{"graphs.config": str(GRAPHS)})
    async with running_beacon(cfg) as b, get_client(url=b.rest, api_key=TOKEN) as client:
        yield b, client


async def parts(stream: AsyncIterator[Any]) -> list[tuple[str, Any, str | None]]:
    return [(p.event, p.data, p.id) async for p in stream]


async def test_stream_interrupt_resume_and_continue(agent: tuple[Beacon, LangGraphClient]) -> None:
    b, client = agent
    thread = await client.threads.create(metadata={"user": "ada"})
    tid = thread["thread_id"]
    got = await parts(
        client.runs.stream(
            tid, "chat", input={"messages": ["hi"]}, stream_mode=["values", "updates", "messages-tuple", "custom"]
        )
    )
    events = [e for e, _, _ in got]
    assert events[0] == "metadata" and events[-1] == "end", events
    assert "custom" in events and "updates" in events
    ids = [int(i) for _, _, i in got if i is not None]
    assert ids == list(range(1, len(got) + 1))  # every event has an id, in order, gap-free
    last_values = [d for e, d, _ in got if e == "values"][-1]
    [interrupt] = last_values["__interrupt__"]
    assert interrupt["value"] == {"question": "ok?", "draft": "draft 1"}

    state = await client.threads.get_state(tid)
    [task] = state["tasks"]
    assert [i["id"] for i in task["interrupts"]] == [interrupt["id"]]
    fetched = await client.threads.get(tid)
    assert fetched["status"] == "interrupted"
    assert [i["id"] for i in fetched["interrupts"][task["id"]]] == [interrupt["id"]]
    assert fetched["metadata"]["graph_id"] == "chat" and fetched["metadata"]["user"] == "ada"

    # Resume with a value of the graph's own shape: it reaches interrupt() as sent.
    done = await client.runs.wait(tid, "chat", command={"resume": {"ok": True, "note": "ship it"}})
    assert done["messages"][-1] == "answer {'ok': True, 'note': 'ship it'}"
    assert (await client.threads.get(tid))["status"] == "idle"

    # A second run continues the conversation from the thread's last checkpoint.
    await client.runs.wait(tid, "chat", input={"messages": ["again"]})
    state = await client.threads.get_state(tid)
    assert state["values"]["messages"][:4] == ["hi", "draft 1", "answer {'ok': True, 'note': 'ship it'}", "again"]
    runs = await client.runs.list(tid)
    assert [r["status"] for r in runs] == ["interrupted", "success", "interrupted"]  # newest first
    found = await client.threads.search(metadata={"graph_id": "chat", "user": "ada"})
    assert [t["thread_id"] for t in found] == [tid]

    # The seed's API sees the same thread.
    status = await b.status(tid)
    assert status["status"] == "waiting_approval" and status["workflow"] == "chat"


async def test_parallel_interrupts_answered_by_id_and_a_stale_id_is_refused(
    agent: tuple[Beacon, LangGraphClient],
) -> None:
    _, client = agent
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "pair", input={"messages": []})
    state = await client.threads.get_state(tid)
    by_value = {i["value"]: i["id"] for i in state["interrupts"]}
    assert set(by_value) == {"left?", "right?"}
    with pytest.raises(httpx.HTTPStatusError) as conflict:
        await client.runs.wait(tid, "pair", command={"resume": {"0" * 32: "nope"}})
    assert conflict.value.response.status_code == 409
    assert conflict.value.response.json()["error"] == "stale_interrupt"
    assert (await client.threads.get(tid))["status"] == "interrupted"  # the refusal changed nothing
    done = await client.runs.wait(tid, "pair", command={"resume": {by_value["left?"]: "L", by_value["right?"]: "R"}})
    assert sorted(done["messages"]) == ["left 'L'", "right 'R'"]
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_background_run_join_and_rejoin_from_an_event_id(agent: tuple[Beacon, LangGraphClient]) -> None:
    _, client = agent
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "slow", input={"delay": 0.3}, stream_mode=["values", "updates"])
    assert run["status"] in ("pending", "running")
    values = await client.runs.join(tid, run["run_id"])
    assert values["messages"] == ["step 0"]
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
    everything = await parts(client.runs.join_stream(tid, run["run_id"], last_event_id="-1"))
    assert [e for e, _, _ in everything][0] == "metadata" and everything[-1][0] == "end"
    rest = await parts(client.runs.join_stream(tid, run["run_id"], last_event_id="2"))
    assert rest == everything[2:]  # no gap, no double
    assert await parts(client.runs.join_stream(tid, run["run_id"])) == []  # finished: nothing more


async def test_reject_and_enqueue_on_a_busy_thread(agent: tuple[Beacon, LangGraphClient]) -> None:
    _, client = agent
    tid = (await client.threads.create())["thread_id"]
    first = await client.runs.create(tid, "slow", input={"delay": 0.5})
    with pytest.raises(httpx.HTTPStatusError) as conflict:
        await client.runs.create(tid, "slow", input={"delay": 0})
    assert conflict.value.response.status_code == 409
    queued = await asyncio.gather(
        *(client.runs.create(tid, "slow", input={"delay": 0}, multitask_strategy="enqueue") for _ in range(5))
    )
    await client.runs.join(tid, queued[-1]["run_id"])
    for r in [first, *queued]:
        await client.runs.join(tid, r["run_id"])
    runs = await client.runs.list(tid, limit=20)
    assert [r["status"] for r in runs] == ["success"] * 6
    state = await client.threads.get_state(tid)
    assert state["values"]["messages"] == [f"step {i}" for i in range(6)]  # one after another


async def test_cancel_a_running_run(agent: tuple[Beacon, LangGraphClient]) -> None:
    _, client = agent
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "slow", input={"delay": 30})
    await client.runs.cancel(tid, run["run_id"], wait=True)
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "interrupted"
    assert (await client.threads.get(tid))["status"] == "idle"
    with pytest.raises(NotFoundError):
        await client.runs.get(tid, "no-such-run")


async def test_approve_passes_a_resume_value_through(agent: tuple[Beacon, LangGraphClient]) -> None:
    b, client = agent
    tid = await b.start("chat", {"messages": ["hi"]})
    waiting = await b.wait_status(tid, "waiting_approval")
    first_run = waiting["run_id"]
    status, body = await b.call("POST", f"/approve/{tid}", {"decision": "approve", "resume": 1})
    assert status == 422 and "decision" in body["details"]  # one of the two, not both
    status, body = await b.call("POST", f"/approve/{tid}", {"resume": {"ok": "yes"}, "comment": "fine"})
    assert status == 200, body
    assert body["decision"]["decision"] == "resume" and body["decision"]["data"] == {"ok": "yes"}
    done = await b.wait_status(tid, "completed")
    assert done["values"]["messages"][-1] == "answer {'ok': 'yes'}"
    assert done["run_id"] != first_run
    runs = await client.runs.list(tid)
    assert [(r["run_id"], r["status"]) for r in runs][1] == (first_run, "interrupted")
    assert runs[0]["status"] == "success"


async def test_a_resume_command_keeps_its_update_as_langgraph_does(
    agent: tuple[Beacon, LangGraphClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`command: {resume, update}` reaches the graph whole: the same values as LangGraph itself gives."""
    _, client = agent
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "chat", input={"messages": ["hi"]})
    command = {"resume": {"ok": True}, "update": {"messages": ["a note"]}}
    done = await client.runs.wait(tid, "chat", command=command)

    spec = importlib.util.spec_from_file_location("hitl_here", GRAPHS.parent / "hitl.py")
    assert spec is not None and spec.loader is not None
    hitl = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, hitl)  # its annotations resolve in its own namespace
    spec.loader.exec_module(hitl)
    own = hitl._chat().compile(checkpointer=InMemorySaver())  # the graph Beacon serves, on LangGraph alone
    config = {"configurable": {"thread_id": "x"}}
    await own.ainvoke({"messages": ["hi"]}, config)
    expected = await own.ainvoke(Command(resume={"ok": True}, update={"messages": ["a note"]}), config)
    assert "a note" in expected["messages"]
    assert done["messages"] == expected["messages"]


async def test_twenty_concurrent_creates_reject_all_but_one_and_enqueue_keeps_their_order(
    agent: tuple[Beacon, LangGraphClient],
) -> None:
    _, client = agent
    tid = (await client.threads.create())["thread_id"]

    async def attempt() -> int:
        try:
            await client.runs.create(tid, "slow", input={"delay": 0.2})
        except httpx.HTTPStatusError as exc:
            return exc.response.status_code
        return 200

    codes = await asyncio.gather(*(attempt() for _ in range(20)))
    assert sorted(codes) == [200] + [409] * 19
    [accepted] = await client.runs.list(tid)
    await client.runs.join(tid, accepted["run_id"])

    other = (await client.threads.create())["thread_id"]
    created = await asyncio.gather(
        *(client.runs.create(other, "slow", input={"delay": 0}, multitask_strategy="enqueue") for _ in range(20))
    )
    for run in created:
        await client.runs.join(other, run["run_id"])
    runs = await client.runs.list(other, limit=50)
    assert [r["status"] for r in runs] == ["success"] * 20
    # Executed one after another in creation order: each step saw every earlier one's message.
    state = await client.threads.get_state(other)
    assert state["values"]["messages"] == [f"step {i}" for i in range(20)]
    history = await client.threads.get_history(other, limit=200)
    order = [h["metadata"].get("run_id") for h in reversed(history) if h["metadata"].get("source") == "input"]
    assert order == [r["run_id"] for r in reversed(runs)]


@pytest.mark.parametrize("decision", ["approve", "edit", "reject"])
async def test_the_example_agents_tool_call_waits_for_a_decision(
    agent: tuple[Beacon, LangGraphClient], decision: str
) -> None:
    _, client = agent
    tid = (await client.threads.create())["thread_id"]
    ask = {"messages": [{"role": "user", "content": "Send the Q3 report to Ada"}]}
    waiting = await client.runs.wait(tid, "agent", input=ask)
    [request] = waiting["__interrupt__"]
    [action] = request["value"]["action_requests"]
    assert action["name"] == "send_email" and action["args"]["to"] == "ada@example.com"
    answer = {
        "approve": {"type": "approve"},
        "edit": {
            "type": "edit",
            "edited_action": {"name": "send_email", "args": {**action["args"], "to": "bob@example.com"}},
        },
        "reject": {"type": "reject", "message": "not now"},
    }[decision]
    done = await client.runs.wait(tid, "agent", command={"resume": {"decisions": [answer]}})
    tool = [m for m in done["messages"] if m["type"] == "tool" and m["name"] == "send_email"]
    final = done["messages"][-1]
    assert final["type"] == "ai" and not final.get("tool_calls")
    if decision == "reject":
        assert tool[0]["status"] == "error" and "not now" in tool[0]["content"]
    else:
        recipient = "bob@example.com" if decision == "edit" else "ada@example.com"
        assert f"Email to {recipient} sent" in tool[0]["content"]
    assert (await client.threads.get(tid))["status"] == "idle"


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
async def test_interrupt_and_rollback_stop_the_current_run(
    agent: tuple[Beacon, LangGraphClient], strategy: str
) -> None:
    _, client = agent
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "slow", input={"delay": 0})  # the state before the run to stop
    long = await client.runs.create(tid, "slow", input={"delay": 30})
    await client.runs.create(tid, "slow", input={"delay": 0}, multitask_strategy=strategy)
    runs = await client.runs.list(tid)
    for r in runs:
        if r["status"] in ("pending", "running"):
            await client.runs.join(tid, r["run_id"])
    statuses = {r["run_id"]: r["status"] for r in await client.runs.list(tid)}
    if strategy == "interrupt":
        assert statuses[long["run_id"]] == "interrupted" and len(statuses) == 3
    else:
        assert long["run_id"] not in statuses and len(statuses) == 2  # the stopped run is gone
    assert sorted(statuses.values()).count("success") == 2
    assert (await client.threads.get_state(tid))["values"]["messages"] == ["step 0", "step 1"]


async def test_a_run_survives_a_restart_and_its_stream_continues(tmp_path: Path, stack: dict[str, str]) -> None:
    cfg = make_config(tmp_path, **stack, **{"graphs.config": str(GRAPHS), "rest.port": free_port()})
    async with running_beacon(cfg) as b, get_client(url=b.rest, api_key=TOKEN) as client:
        tid = (await client.threads.create())["thread_id"]
        run = await client.runs.create(tid, "ticks", input={"steps": 6, "delay": 0.4}, stream_mode=["updates"])
        before: list[tuple[str, Any, str | None]] = []
        async for p in client.runs.join_stream(tid, run["run_id"], last_event_id="-1"):
            before.append((p.event, p.data, p.id))
            if p.event == "updates" and len(before) >= 3:
                break  # then the server stops mid-run (at its next checkpoint)
    async with running_beacon(cfg) as b, get_client(url=b.rest, api_key=TOKEN) as client:
        rest = await parts(client.runs.join_stream(tid, run["run_id"], last_event_id=before[-1][2]))
        everything = await parts(client.runs.join_stream(tid, run["run_id"], last_event_id="-1"))
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
        assert (await client.threads.get_state(tid))["values"]["ticks"] == list(range(6))
        history = await client.threads.get_history(tid, limit=100)
        inputs = [h for h in history if h["metadata"].get("source") == "input"]
        assert len(inputs) == 1  # continued from its checkpoint, not started again from its input
    assert everything == before + rest  # nothing lost or doubled across the restart
    assert [int(i) for _, _, i in everything if i] == list(range(1, len(everything) + 1))
    attempts = [d["attempt"] for e, d, _ in everything if e == "metadata"]
    assert attempts == [1, 2] and everything[-1][0] == "end"


async def test_stateless_runs_are_deleted_unless_kept(agent: tuple[Beacon, LangGraphClient]) -> None:
    b, client = agent
    status, body = await b.call("POST", "/runs/wait", {"assistant_id": "nope", "input": {}})
    assert status == 404 and body["error"] == "not_found"
    status, body = await b.call("POST", "/runs/wait", {"assistant_id": "slow", "stream_mode": ["nope"]})
    assert status == 422 and "stream_mode" in body["details"]
    assert await client.threads.search() == []  # bad input made no thread
    gone = await client.runs.wait(None, "slow", input={"delay": 0})
    assert gone["messages"] == ["step 0"]
    kept = [p async for p in client.runs.stream(None, "slow", input={"delay": 0}, on_completion="keep")]
    run_id = kept[0].data["run_id"]
    threads = await client.threads.search(limit=100)
    assert len(threads) == 1  # only the kept one
    [run] = await client.runs.list(threads[0]["thread_id"])
    assert run["run_id"] == run_id and run["status"] == "success"


async def test_a_cancelled_queued_run_never_starts_and_its_stream_ends(agent: tuple[Beacon, LangGraphClient]) -> None:
    _, client = agent
    tid = (await client.threads.create())["thread_id"]
    first = await client.runs.create(tid, "slow", input={"delay": 1})
    queued = await client.runs.create(tid, "slow", input={"delay": 0}, multitask_strategy="enqueue")
    await client.runs.cancel(tid, queued["run_id"])
    assert [p.event async for p in client.runs.join_stream(tid, queued["run_id"], last_event_id="-1")] == ["end"]
    await client.runs.join(tid, first["run_id"])
    statuses = {r["run_id"]: r["status"] for r in await client.runs.list(tid)}
    assert statuses == {first["run_id"]: "success", queued["run_id"]: "interrupted"}
    assert (await client.threads.get_state(tid))["values"]["messages"] == ["step 0"]


async def test_deleting_a_thread_stops_its_runs_and_forgets_it(agent: tuple[Beacon, LangGraphClient]) -> None:
    b, client = agent
    tid = (await client.threads.create())["thread_id"]
    await client.runs.create(tid, "slow", input={"delay": 30})
    await client.runs.create(tid, "slow", input={"delay": 30}, multitask_strategy="enqueue")
    await client.threads.delete(tid)
    with pytest.raises(NotFoundError):
        await client.threads.get(tid)
    assert b.running.services.runs is not None
    assert tid not in b.running.services.runs.executing  # neither the running nor the queued run goes on


async def test_a_stream_whose_client_leaves_cancels_its_run_when_asked(agent: tuple[Beacon, LangGraphClient]) -> None:
    b, client = agent
    tid = (await client.threads.create())["thread_id"]
    stream = client.runs.stream(tid, "slow", input={"delay": 30}, on_disconnect="cancel")
    first = await anext(stream)
    await stream.aclose()  # the client goes away mid-run
    run_id = first.data["run_id"]

    async def cancelled() -> bool:
        return (await client.runs.get(tid, run_id))["status"] == "interrupted"

    await eventually(cancelled, 30, 0.1, "the run went on without its client")  # noticed at the next heartbeat


async def test_server_assistants_and_their_graphs(agent: tuple[Beacon, LangGraphClient]) -> None:
    b, client = agent
    status, body = await b.call("GET", "/ok", headers={"Authorization": ""})
    assert (status, body) == (200, {"ok": True})  # public, as the Agent Server's
    status, body = await b.call("GET", "/info")
    assert status == 200 and body["flags"]["assistants"] is True
    found = await client.assistants.search(graph_id="chat")
    [chat] = found
    assert chat["assistant_id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "chat"))  # LangGraph's own default id
    assert (await client.assistants.get(chat["assistant_id"]))["graph_id"] == "chat"
    assert (await client.assistants.get("chat"))["assistant_id"] == chat["assistant_id"]
    graph = await client.assistants.get_graph("chat")
    assert {n["id"] for n in graph["nodes"]} >= {"think", "ask"}
    schemas = await client.assistants.get_schemas("chat")
    assert "messages" in schemas["input_schema"]["properties"]
    everything = await client.assistants.search(limit=100)
    assert {a["graph_id"] for a in everything} >= {"chat", "pair", "slow", "review", "agent"}
    with pytest.raises(NotFoundError):
        await client.assistants.get("no-such-assistant")
    # A run by assistant id: the thread's metadata names both.
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, chat["assistant_id"], input={"messages": ["hi"]})
    meta = (await client.threads.get(tid))["metadata"]
    assert meta["graph_id"] == "chat" and meta["assistant_id"] == chat["assistant_id"]
    assert [t["thread_id"] for t in await client.threads.search(metadata={"assistant_id": chat["assistant_id"]})] == [
        tid
    ]


async def test_thread_crud_search_and_state(agent: tuple[Beacon, LangGraphClient]) -> None:
    _, client = agent
    one = await client.threads.create(thread_id="thread-one", metadata={"team": "a", "n": 1})
    assert one["status"] == "idle" and one["thread_id"] == "thread-one"
    with pytest.raises(httpx.HTTPStatusError) as taken:
        await client.threads.create(thread_id="thread-one")
    assert taken.value.response.status_code == 409
    assert (await client.threads.create(thread_id="thread-one", if_exists="do_nothing"))["metadata"]["team"] == "a"
    two = await client.threads.create(metadata={"team": "b"})
    patched = await client.threads.update("thread-one", metadata={"n": 2})
    assert patched["metadata"] == {"team": "a", "n": 2}
    assert [t["thread_id"] for t in await client.threads.search(metadata={"team": "a", "n": 2})] == ["thread-one"]
    assert [t["thread_id"] for t in await client.threads.search(metadata={"n": 1})] == []
    assert {t["thread_id"] for t in await client.threads.search(status="idle")} == {"thread-one", two["thread_id"]}
    assert [t["thread_id"] for t in await client.threads.search(ids=[two["thread_id"]])] == [two["thread_id"]]

    await client.runs.wait("thread-one", "chat", input={"messages": ["hi"]})
    assert [t["thread_id"] for t in await client.threads.search(status="interrupted")] == ["thread-one"]
    history = await client.threads.get_history("thread-one")
    assert history[0]["checkpoint"] == (await client.threads.get_state("thread-one"))["checkpoint"]  # newest first
    assert history[0]["values"]["messages"] == ["hi", "draft 1"] and history[-1]["metadata"]["source"] == "input"
    older = history[-1]
    at = await client.threads.get_state("thread-one", checkpoint_id=older["checkpoint"]["checkpoint_id"])
    assert at["values"] == older["values"] and at["checkpoint"] == older["checkpoint"]
    with pytest.raises(NotFoundError):
        await client.threads.get_state("thread-one", checkpoint_id="1f000000-0000-6000-8000-000000000000")
    updated = await client.threads.update_state("thread-one", {"messages": ["edited"]}, as_node="think")
    assert updated["checkpoint"]["checkpoint_id"]
    assert (await client.threads.get_state("thread-one"))["values"]["messages"][-1] == "edited"

    await client.threads.delete(two["thread_id"])
    with pytest.raises(NotFoundError):
        await client.threads.get(two["thread_id"])


async def test_stream_modes_subgraphs_and_errors(agent: tuple[Beacon, LangGraphClient]) -> None:
    _, client = agent
    tid = (await client.threads.create())["thread_id"]
    modes = ["values", "updates", "checkpoints", "tasks", "debug"]
    got = await parts(
        client.runs.stream(tid, "nested", input={"messages": []}, stream_mode=modes, stream_subgraphs=True)
    )
    names = {e for e, _, _ in got}
    assert {"metadata", "values", "updates", "checkpoints", "tasks", "debug", "end"} <= names
    sub = sorted(n for n in names if "|" in n)
    assert sub and all(n.split("|", 1)[0] in modes and n.split("|", 1)[1].startswith("child:") for n in sub), sub
    assert got[-1][1]["status"] == "success"

    tid = (await client.threads.create())["thread_id"]
    got = await parts(client.runs.stream(tid, "boom", input={"messages": []}))
    assert [e for e, _, _ in got][-2:] == ["error", "end"]
    assert got[-2][1] == {"error": "ValueError", "message": "kaboom"}
    assert (await client.threads.get(tid))["status"] == "error"
    failed = await client.runs.wait(tid, "boom", input={"messages": []}, raise_error=False)
    assert failed["__error__"] == {"error": "ValueError", "message": "kaboom"}
    assert [r["status"] for r in await client.runs.list(tid)] == ["error", "error"]


async def test_agent_runs_show_in_the_console_feeds_in_order(
    agent: tuple[Beacon, LangGraphClient], connect: ClientFactory
) -> None:
    b, client = agent
    console = await connect(b.realtime)
    tid = (await client.threads.create())["thread_id"]
    await console.subscribe(tid)
    first = await client.runs.create(tid, "chat", input={"messages": ["hi"], "delay": 0.3})
    second = await client.runs.create(tid, "slow", input={"delay": 0}, multitask_strategy="enqueue")
    await client.runs.join(tid, second["run_id"])

    def statuses() -> list[tuple[str, str | None]]:
        return [
            (e["data"]["status"], e["data"].get("run_id"))
            for e in console.admin
            if e["type"] == "run_status" and e["data"]["thread_id"] == tid
        ]

    await eventually(lambda: len(statuses()) >= 4, 10, 0.05, f"saw only {statuses()}")
    # The wait the first run ends in comes before the queued run starts, as the thread went.
    assert statuses() == [
        ("running", first["run_id"]),
        ("waiting_approval", first["run_id"]),
        ("running", second["run_id"]),
        ("completed", second["run_id"]),
    ]
    await eventually(lambda: any(line["text"] == "thinking about 1 messages" for line in console.logs), 10, 0.05)
    assert console.seqs(tid) == list(range(1, len(console.seqs(tid)) + 1))  # one numbering across the runs
