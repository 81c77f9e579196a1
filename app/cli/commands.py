"""`start`, `approve`, `reject`, `runs`, `delete` and `tokens`: one REST call each, printed for people and scripts."""

from __future__ import annotations

import argparse
from datetime import datetime

from app.cli.client import Api, CliError
from app.cli.output import err, out, table


async def start(args: argparse.Namespace, api: Api) -> int:
    body = {"workflow": args.workflow, "input": args.input}
    if args.thread_id:
        body["thread_id"] = args.thread_id
    run = await api.call("POST", "/start", body)
    out(run["thread_id"])  # alone on stdout, so `id=$(python run.py start …)` works
    return 0


async def decide(args: argparse.Namespace, api: Api) -> int:
    body = {"decision": args.command, "comment": args.comment, "interrupt_id": args.interrupt_id}
    answer = await api.call("POST", f"/approve/{args.thread_id}", {k: v for k, v in body.items() if v is not None})
    verb = "approved" if args.command == "approve" else "rejected"
    out(f"{verb} {args.thread_id} (interrupt {answer['decision']['interrupt_id']}); the run carries on")
    return 0


def _when(timestamp: str | None) -> str:
    if not timestamp:
        return ""
    try:
        return datetime.fromisoformat(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return timestamp


async def runs(args: argparse.Namespace, api: Api) -> int:
    params = {"status": args.status, "workflow": args.workflow, "limit": args.limit}
    page = await api.call("GET", "/admin/runs", params=params)
    rows = [
        (r["thread_id"], r["workflow"], r["status"], _when(r.get("created_at")), _when(r.get("updated_at")))
        for r in page["runs"]
    ]
    out(table(("THREAD_ID", "WORKFLOW", "STATUS", "CREATED", "UPDATED"), rows))
    if page.get("total", 0) > len(rows):
        err(f"{len(rows)} of {page['total']} runs shown; --limit shows more")
    return 0


async def tokens(args: argparse.Namespace, api: Api) -> int:
    if args.action != "list" and not args.name:
        raise CliError(f"tokens {args.action} needs a NAME")
    if args.action == "create":
        created = await api.call("POST", "/admin/tokens", {"name": args.name, "role": args.role})
        out(created["token"])  # alone on stdout, so `secret=$(python run.py tokens create …)` works
        err(f"created {created['role']} token {created['name']!r}; this is the only time its secret is shown")
    elif args.action == "revoke":
        revoked = await api.call("DELETE", f"/admin/tokens/{args.name}")
        out(f"revoked {revoked['name']}; its sockets are disconnected")
    else:
        listing = await api.call("GET", "/admin/tokens")
        rows = [
            (t["name"], t["role"], t["source"], _when(t.get("created_at")), t.get("created_by"))
            for t in listing["tokens"]
        ]
        out(table(("NAME", "ROLE", "SOURCE", "CREATED", "BY"), rows))
    return 0


async def delete(args: argparse.Namespace, api: Api) -> int:
    if not args.yes:
        raise CliError(f"delete {args.thread_id} removes its runs, logs and checkpoints for good: add --yes")
    answer = await api.call("DELETE", f"/admin/runs/{args.thread_id}")
    removed = ", ".join(f"{n} {table}" for table, n in answer["deleted"].items() if n)
    out(f"deleted {args.thread_id} ({removed})")
    return 0
