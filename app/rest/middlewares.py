"""One error middleware: every failure becomes `{error, message, details, request_id}`."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from marshmallow import ValidationError

from app.auth import Auth, Denied, Token, request_secret
from app.errors import BeaconError
from app.keys import config_key
from app.metrics import Metrics
from app.names import SECURITY_HEADERS
from app.origins import Origins

logger = logging.getLogger(__name__)

request_id_key = web.RequestKey("request_id", str)
token_key = web.RequestKey("token", Token)


class BadRequest(BeaconError):
    status, code = 400, "bad_request"


class UnreadableBody(BadRequest):
    """A body its Content-Encoding does not decode: aiohttp's parser reads nothing more on that
    connection, so the answer closes it (a clean close, where a 500 used to reset it)."""


class UnsupportedMediaType(BeaconError):
    status, code = 415, "unsupported_media_type"


class InvalidQuery(BeaconError):
    status, code = 400, "invalid_query"


REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,64}")
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
# The console's pages must not be framed by another site (the realtime listener serves no pages).
HEADERS = {**SECURITY_HEADERS, "X-Frame-Options": "DENY"}


def error_response(
    request: web.Request, status: int, code: str, message: str, details: Any = None, headers: Any = None
) -> web.Response:
    body = {"error": code, "message": message, "details": details or {}, "request_id": request[request_id_key]}
    return web.json_response(body, status=status, headers=headers)


def timing(metrics: Metrics) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            route = request.match_info.route.resource
            template = route.canonical if route is not None else "unmatched"
            metrics.requests.labels(template, request.method, str(status)).observe(time.perf_counter() - started)

    return middleware


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    # Echoed in a header and logged: a client's id only when it is a plain token (S18).
    request[request_id_key] = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    try:
        return await handler(request)
    except asyncio.CancelledError:
        raise
    except BeaconError as exc:
        response = error_response(request, exc.status, exc.code, exc.message, exc.details)
        if isinstance(exc, UnreadableBody):
            response.force_close()
        return response
    except ValidationError as exc:
        return error_response(request, 422, "validation_error", "invalid request body", exc.messages)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        if exc.status == 413:
            message = f"request body is larger than {request.app[config_key].rest.max_body_bytes} bytes"
        else:
            message = exc.reason
        return error_response(request, exc.status, HTTP_CODES.get(exc.status, "http_error"), message, headers=headers)
    except Exception:
        logger.exception("unhandled error in %s %s (request %s)", request.method, request.path, request[request_id_key])
        return error_response(request, 500, "internal", "internal server error")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request_id_key in request:
        response.headers.setdefault("X-Request-Id", request[request_id_key])


def authenticate(auth: Auth, roles: Mapping[tuple[str, str], str]) -> Any:
    """Bearer tokens against each route's role; a matched route missing from `roles` needs admin."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        match = request.match_info
        if match.http_exception is not None:  # 404 / 405: nothing to protect
            return await handler(request)
        resource = match.route.resource
        method = "GET" if request.method == "HEAD" else request.method
        role = roles.get((method, resource.canonical if resource else ""), "admin")
        header = request.headers.get("Authorization") or request.headers.get("x-api-key", "")
        try:
            request[token_key] = auth.check(request_secret(request.headers), role)
        except Denied as exc:
            if exc.reason == "unauthorized":
                message = "a bearer token is required" if not header else "unknown or revoked token"
                headers = {"WWW-Authenticate": 'Bearer realm="beacon"'}
                return error_response(request, 401, "unauthorized", message, headers=headers)
            return error_response(request, 403, "forbidden", f"this needs the {role} role or above", {"role": role})
        return await handler(request)

    return middleware


def cors(origins: Origins) -> Any:
    """Let the console or a front end on another origin (`rest.cors_origins`) call the API with its token."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origins(origin)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed:
                return web.Response(status=403, text="origin not allowed")
            response: web.StreamResponse = web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE",
                    "Access-Control-Allow-Headers": (
                        "Authorization, Content-Type, X-Request-Id, X-Api-Key, Last-Event-ID, Cache-Control"
                    ),
                    "Access-Control-Max-Age": "600",
                },
            )
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = exc
        if allowed and origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "Content-Location, Location, X-Request-Id"
            response.headers["Vary"] = "Origin"
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return middleware
