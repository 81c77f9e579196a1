"""The route table: every endpoint, its schemas and its summary, on one screen."""

from __future__ import annotations

from aiohttp import web

from app.rest import approvals as a
from app.rest import handlers as h
from app.rest import lifecycle as lc
from app.rest import schemas as s
from app.rest import tokens as t
from app.rest import webhooks as w
from app.rest.agent.routes import AGENT_ROUTES
from app.rest.route import Route

ROUTES = (
    Route(
        "POST",
        "/start",
        h.start,
        "Start a workflow run",
        s.StartResponse,
        202,
        body=s.StartRequest,
        errors=(400, 404, 409, 413, 415, 422, 503),
        role="operator",
    ),
    Route(
        "GET",
        "/status/{thread_id}",
        h.status,
        "A run's status, pending approval and state",
        s.Status,
        errors=(404, 422, 503),
        role="viewer",
    ),
    Route(
        "POST",
        "/approve/{thread_id}",
        h.approve,
        "Approve or reject the pending approval",
        s.ApproveResponse,
        body=s.ApproveRequest,
        errors=(400, 404, 409, 413, 415, 422, 503),
        role="operator",
    ),
    Route(
        "GET",
        "/admin/runs",
        h.list_runs,
        "List runs, newest first",
        s.RunsPage,
        query=s.RunsQuery,
        errors=(400, 503),
        tag="admin",
        role="viewer",
    ),
    Route(
        "GET",
        "/admin/approvals",
        a.list_approvals,
        "Pending approvals across threads, oldest first, with deadlines",
        s.ApprovalsPage,
        query=s.ApprovalsQuery,
        errors=(400, 503),
        tag="admin",
        role="viewer",  # read-only, like /admin/runs; deciding needs operator (POST /approve)
    ),
    Route(
        "GET",
        "/admin/runs/{thread_id}",
        h.get_run,
        "One run in detail",
        s.Status,
        errors=(404, 422, 503),
        tag="admin",
        role="viewer",
    ),
    Route(
        "GET",
        "/admin/runs/{thread_id}/history",
        h.history,
        "The run's checkpoints, newest first",
        s.History,
        query=s.HistoryQuery,
        errors=(400, 404, 422, 503),
        tag="admin",
        role="viewer",
    ),
    Route(
        "GET",
        "/admin/runs/{thread_id}/logs",
        h.logs,
        "The run's stored log lines after a seq",
        s.LogsPage,
        query=s.LogsQuery,
        errors=(400, 404, 422, 503),
        tag="admin",
        role="viewer",
    ),
    Route(
        "DELETE",
        "/admin/runs/{thread_id}",
        lc.delete_run,
        "Delete a thread and everything of it (a running one is cancelled first); audited",
        s.Deleted,
        errors=(404, 409, 422, 503),
        tag="admin",
        role="admin",
    ),
    Route(
        "GET",
        "/admin/audit",
        lc.audit,
        "Deletions of threads (by hand or by retention), newest first: who, when, what was removed",
        s.AuditLog,
        query=s.AuditQuery,
        errors=(400, 503),
        tag="admin",
        role="admin",
    ),
    Route(
        "GET",
        "/admin/runs/{thread_id}/export",
        lc.export_run,
        "Everything kept of a thread as one JSON document: run, runs, decisions, checkpoints, log lines",
        s.Export,
        errors=(404, 422, 503),
        tag="admin",
        role="viewer",  # nothing a viewer cannot read already, one page at a time
    ),
    Route(
        "POST",
        "/admin/runs/{thread_id}/cancel",
        h.cancel,
        "Cancel a running or waiting run",
        s.RunOut,
        errors=(404, 409, 422, 503),
        tag="admin",
        role="operator",
    ),
    Route(
        "GET",
        "/admin/workflows",
        h.workflows,
        "Registered workflows and their input schemas",
        s.Workflows,
        tag="admin",
        role="viewer",
    ),
    Route(
        "GET",
        "/admin/tokens",
        t.list_tokens,
        "Live tokens (names and roles, never secrets)",
        s.TokenList,
        errors=(503,),
        tag="tokens",
        role="admin",
    ),
    Route(
        "POST",
        "/admin/tokens",
        t.create_token,
        "Create a token; its secret is in this response only",
        s.TokenCreated,
        201,
        body=s.TokenCreate,
        errors=(400, 409, 413, 415, 422, 503),
        tag="tokens",
        role="admin",
    ),
    Route(
        "DELETE",
        "/admin/tokens/{name}",
        t.revoke_token,
        "Revoke a token on every node; its open sockets are disconnected",
        s.TokenRevoked,
        errors=(404, 409, 422, 503),
        tag="tokens",
        role="admin",
    ),
    Route("GET", "/admin/stats", h.stats, "Run counts and server statistics", s.Stats, tag="admin", role="admin"),
    Route(
        "GET",
        "/admin/webhooks",
        w.webhooks,
        "Configured webhooks and their delivery log, newest first",
        s.Webhooks,
        query=s.WebhooksQuery,
        errors=(400, 503),
        tag="admin",
        role="admin",
    ),
    Route(
        "GET",
        "/health",
        h.health,
        "Liveness and the state of the store and the bus",
        s.Health,
        errors=(503,),
        tag="health",
        role="public",
    ),
    *AGENT_ROUTES,
)


def setup_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
