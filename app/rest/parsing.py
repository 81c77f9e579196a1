"""Request parsing shared by the handlers: JSON bodies, query strings, path ids."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from aiohttp import web
from marshmallow import Schema, ValidationError

from app.errors import Invalid
from app.names import THREAD_ID
from app.rest.middlewares import BadRequest, InvalidQuery, UnreadableBody, UnsupportedMediaType
from app.rest.schemas import THREAD_ID_RULE


async def json_body(request: web.Request, schema: Schema) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the body as JSON with Content-Type: application/json")
    try:
        raw = await request.read()  # raises 413 past client_max_size
    except web.RequestPayloadError:
        request.content.feed_eof()  # nothing more comes: aiohttp then skips draining it (which raises again)
        encoding = request.headers.get("Content-Encoding", "")
        raise UnreadableBody(f"the body is not valid {encoding or 'data'}", {"Content-Encoding": encoding}) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return schema.load(data)  # type: ignore[no-any-return]


def query(request: web.Request, schema: Schema) -> dict[str, Any]:
    try:
        return schema.load(dict(request.query))  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise InvalidQuery("invalid query parameters", exc.normalized_messages()) from None


def thread_id(request: web.Request) -> str:
    value = request.match_info["thread_id"]
    if not THREAD_ID.match(value):
        raise Invalid("invalid thread_id", {"thread_id": [THREAD_ID_RULE]})
    return value


@contextmanager
def cursor_errors() -> Iterator[None]:
    """A page cursor the store did not produce (its ValueError) is a bad query naming `cursor`."""
    try:
        yield
    except ValueError as exc:
        raise InvalidQuery("invalid query parameters", {"cursor": [str(exc)]}) from None
