"""The Agent Server API's routes: paths as the langgraph-sdk clients call them."""

from __future__ import annotations

from app.rest.agent import runs as r
from app.rest.agent import schemas as s
from app.rest.agent import threads as t
from app.rest.route import Route

T = "/threads/{thread_id}"
R = "/threads/{thread_id}/runs/{run_id}"
ERRORS = (400, 404, 413, 415, 422, 503)


def _route(method: str, path: str, handler: object, summary: str, response: type, **kw: object) -> Route:
    kw.setdefault("tag", "agent")
    kw.setdefault("errors", ERRORS)
    return Route(method, path, handler, summary, response, **kw)  # type: ignore[arg-type]


AGENT_ROUTES = (
    _route("GET", "/ok", t.ok, "Liveness, as the Agent Server answers it", s.Ok, role="public", errors=()),
    _route("GET", "/info", t.info, "Server information and flags", s.Info, role="public", errors=()),
    _route(
        "POST",
        "/assistants/search",
        t.search_assistants,
        "Assistants (one per graph)",
        s.AssistantOut,
        body=s.AssistantSearch,
        many=True,
        role="viewer",
    ),
    _route("GET", "/assistants/{assistant_id}", t.get_assistant, "An assistant", s.AssistantOut, role="viewer"),
    _route(
        "GET",
        "/assistants/{assistant_id}/graph",
        t.assistant_graph,
        "Its graph's nodes and edges",
        s.Values,
        role="viewer",
    ),
    _route(
        "GET",
        "/assistants/{assistant_id}/schemas",
        t.assistant_schemas,
        "Its graph's JSON schemas",
        s.GraphSchemas,
        role="viewer",
    ),
    _route(
        "POST",
        "/threads",
        t.create_thread,
        "Create a thread",
        s.ThreadOut,
        body=s.ThreadCreate,
        errors=(*ERRORS, 409),
        role="operator",
    ),
    _route(
        "POST",
        "/threads/search",
        t.search_threads,
        "Threads by metadata, status or id, newest first",
        s.ThreadOut,
        body=s.ThreadSearch,
        many=True,
        role="viewer",
    ),
    _route("GET", T, t.get_thread, "A thread, its values and what it waits on", s.ThreadOut, role="viewer"),
    _route(
        "PATCH", T, t.patch_thread, "Merge metadata into a thread's", s.ThreadOut, body=s.ThreadPatch, role="operator"
    ),
    _route(
        "DELETE",
        T,
        t.delete_thread,
        "Delete a thread and everything stored of it",
        s.Ok,
        status=204,
        errors=(*ERRORS, 409),
        role="admin",
    ),
    _route("GET", f"{T}/state", t.get_state, "The thread's current state", s.ThreadState, role="viewer"),
    _route(
        "GET", f"{T}/state/{{checkpoint_id}}", t.get_state, "The state at a checkpoint", s.ThreadState, role="viewer"
    ),
    _route(
        "POST",
        f"{T}/state/checkpoint",
        t.get_state_at,
        "The state at a checkpoint",
        s.ThreadState,
        body=s.StateAt,
        role="viewer",
    ),
    _route(
        "POST",
        f"{T}/state",
        t.update_state,
        "Write values as a node would",
        s.StateUpdated,
        body=s.StateUpdate,
        errors=(*ERRORS, 409),
        role="operator",
    ),
    _route(
        "POST",
        f"{T}/history",
        t.thread_history,
        "The thread's checkpoints, newest first",
        s.ThreadState,
        body=s.HistoryRequest,
        many=True,
        role="viewer",
    ),
    _route(
        "POST",
        f"{T}/runs",
        r.create_run,
        "Start a run in the background",
        s.ThreadRunOut,
        body=s.RunCreate,
        errors=(*ERRORS, 409),
        role="operator",
    ),
    _route(
        "POST",
        f"{T}/runs/stream",
        r.stream_run,
        "Start a run and stream it",
        s.Values,
        body=s.RunCreate,
        errors=(*ERRORS, 409),
        stream=True,
        role="operator",
    ),
    _route(
        "POST",
        f"{T}/runs/wait",
        r.wait_run,
        "Start a run and wait for its values",
        s.Values,
        body=s.RunCreate,
        errors=(*ERRORS, 409),
        role="operator",
    ),
    _route(
        "GET",
        f"{T}/runs",
        r.list_runs,
        "The thread's runs, newest first",
        s.ThreadRunOut,
        query=s.RunsListQuery,
        many=True,
        role="viewer",
    ),
    _route("GET", R, r.get_thread_run, "A run", s.ThreadRunOut, role="viewer"),
    _route("GET", f"{R}/join", r.join_run, "Wait for a run to end; the thread's values", s.Values, role="viewer"),
    _route(
        "GET",
        f"{R}/stream",
        r.join_stream,
        "A run's events (from Last-Event-ID)",
        s.Values,
        stream=True,
        query=s.JoinStreamQuery,
        role="viewer",
    ),
    _route(
        "POST",
        f"{R}/cancel",
        r.cancel_run,
        "Cancel a run",
        s.Ok,
        status=204,
        query=s.CancelQuery,
        errors=(*ERRORS, 409),
        role="operator",
    ),
    _route(
        "POST",
        "/runs/stream",
        r.stream_run,
        "A run on a new thread, streamed",
        s.Values,
        body=s.RunCreate,
        stream=True,
        role="operator",
    ),
    _route(
        "POST",
        "/runs/wait",
        r.wait_run,
        "A run on a new thread, waited for",
        s.Values,
        body=s.RunCreate,
        role="operator",
    ),
)
