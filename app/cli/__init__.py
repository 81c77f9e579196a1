"""`python run.py tail|start|approve|reject|runs|delete|tokens`: a client of a running Beacon (REST, Socket.IO)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

from app.cli.client import Api, CliError
from app.cli.commands import decide, delete, runs, start, tokens
from app.cli.output import err
from app.cli.parser import COMMANDS, build_parser
from app.cli.tail import tail

__all__ = ["COMMANDS", "main"]

Command = Callable[[argparse.Namespace, Api], Awaitable[int]]
HANDLERS: dict[str, Command] = {
    "tail": tail,
    "start": start,
    "approve": decide,
    "reject": decide,
    "runs": runs,
    "delete": delete,
    "tokens": tokens,
}


async def _run(args: argparse.Namespace) -> int:
    async with Api(args.api, args.token) as api:
        return await HANDLERS[args.command](args, api)


def main(argv: list[str]) -> int:
    """Run one command; 0 on success, 1 for an error (printed as one line), 2 for bad usage."""
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except CliError as exc:
        err(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `python run.py tail … | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
