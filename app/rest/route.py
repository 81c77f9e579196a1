"""One endpoint of the route table: its handler, schemas, summary and the role it needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from marshmallow import Schema


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    summary: str
    response: type[Schema]
    status: int = 200
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    errors: tuple[int, ...] = ()
    tag: str = "runs"
    # The smallest role allowed (viewer < operator < admin), or "public": no default, so a new
    # route cannot ship without a decision (tests/test_auth.py walks this table).
    role: str = field(kw_only=True)
    many: bool = False  # the response is a JSON array of `response`
    stream: bool = False  # the response is server-sent events


