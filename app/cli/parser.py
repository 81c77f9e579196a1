"""The CLI's argparse tree: one sub-command each, the connection options shared."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from app.names import LEVEL_NAMES

COMMANDS = ("tail", "start", "approve", "reject", "runs", "delete", "tokens")
DEFAULT_API = "http://127.0.0.1:8000"
DEFAULT_SOCKETIO = "http://127.0.0.1:7000"

EXAMPLES = {
    "tail": "examples:\n  python run.py tail 3f2c… --level WARNING\n  python run.py tail 3f2c… --since 120 --no-follow",
    "start": 'example:\n  python run.py start review --input \'{"topic": "Q3 report"}\'',
    "approve": "example:\n  python run.py approve 3f2c… --comment 'ship it'",
    "reject": "example:\n  python run.py reject 3f2c… --comment 'add the figures'",
    "runs": "example:\n  python run.py runs --status waiting_approval --limit 20",
    "delete": "example:\n  python run.py delete 3f2c… --yes   # its export first: GET /admin/runs/3f2c…/export",
    "tokens": "examples:\n  python run.py tokens\n  python run.py tokens create ci-bot --role operator"
    "\n  python run.py tokens revoke ci-bot",
}


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('expected a JSON object, like {"topic": "Q3"}')
    return value


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _connection() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    api = os.environ.get("BEACON_API") or DEFAULT_API
    sio = os.environ.get("BEACON_SOCKETIO") or DEFAULT_SOCKETIO
    group.add_argument("--api", default=api, metavar="URL", help="REST API (env BEACON_API; now %(default)s)")
    group.add_argument(
        "--socketio", default=sio, metavar="URL", help="Socket.IO server (env BEACON_SOCKETIO; now %(default)s)"
    )
    group.add_argument(
        "--token",
        default=os.environ.get("BEACON_TOKEN") or None,
        metavar="TOKEN",
        help="sent as `Authorization: Bearer` and as Socket.IO auth {token} (env BEACON_TOKEN)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python run.py",
        description="Talk to a running Beacon over REST and Socket.IO.",
        epilog="Each command has --help. Server modes: python run.py [all|rest|realtime] --help",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_connection()]

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=common,
            help=summary,
            description=summary,
            epilog=EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    tail = command("tail", "Print a run's log lines, live, until the run finishes.")
    tail.add_argument("thread_id")
    tail.add_argument("--since", type=non_negative, default=0, metavar="N", help="only lines after seq N (default 0)")
    tail.add_argument("--level", type=str.upper, choices=LEVEL_NAMES, help="minimum level (INFO skips DEBUG)")
    tail.add_argument(
        "--follow",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="follow live until the run is completed, failed or cancelled (default); "
        "--no-follow prints the stored lines and exits",
    )

    start = command("start", "Start a workflow run and print its thread id.")
    start.add_argument("workflow")
    start.add_argument("--input", type=json_object, default={}, metavar="JSON", help="the workflow's input object")
    start.add_argument("--thread-id", metavar="ID", help="choose the thread id (default: Beacon makes one up)")

    for name, verb in (("approve", "Approve"), ("reject", "Reject")):
        decide = command(name, f"{verb} the approval a run is waiting for.")
        decide.add_argument("thread_id")
        decide.add_argument("--comment", metavar="TEXT", help="recorded with the decision; the workflow sees it")
        decide.add_argument(
            "--interrupt-id", metavar="ID", help="which approval, when the run waits for several (see /status)"
        )

    runs = command("runs", "List runs, newest first, as a table.")
    runs.add_argument("--status", metavar="S", help="running, waiting_approval, completed, failed or cancelled")
    runs.add_argument("--workflow", metavar="W", help="only runs of this workflow")
    runs.add_argument("--limit", type=non_negative, metavar="N", help="at most N runs (default 50, at most 500)")

    delete = command("delete", "Delete a thread and everything of it (needs an admin token); audited.")
    delete.add_argument("thread_id")
    delete.add_argument("--yes", action="store_true", help="required: the thread, its logs and checkpoints are gone")

    tokens = command("tokens", "List, create or revoke tokens (needs an admin token).")
    tokens.add_argument("action", nargs="?", choices=("list", "create", "revoke"), default="list")
    tokens.add_argument("name", nargs="?", help="the token's name (create, revoke)")
    tokens.add_argument("--role", choices=("viewer", "operator", "admin"), default="viewer", help="for create")
    return parser
