"""One error middleware: every failure becomes `{error, message, details, request_id}`."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from marshmallow import ValidationError

from app.errors import BeaconError
from app.metrics import Metrics

logger = logging.getLogger(__name__)

request_id_key = web.RequestKey("request_id", str)


class BadRequest(BeaconError):
    status, code = 400, "bad_request"


class UnsupportedMediaType(BeaconError):
    status, code = 415, "unsupported_media_type"


class InvalidQuery(BeaconError):
    status, code = 400, "invalid_query"


HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


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
    request[request_id_key] = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    try:
        return await handler(request)
    except asyncio.CancelledError:
        raise
    except BeaconError as exc:
        return error_response(request, exc.status, exc.code, exc.message, exc.details)
    except ValidationError as exc:
        return error_response(request, 422, "validation_error", "invalid request body", exc.messages)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        if exc.status == 413:
            message = f"request body is larger than {request.app._client_max_size} bytes"
        else:
            message = exc.reason
        return error_response(request, exc.status, HTTP_CODES.get(exc.status, "http_error"), message, headers=headers)
    except Exception:
        logger.exception("unhandled error in %s %s (request %s)", request.method, request.path, request[request_id_key])
        return error_response(request, 500, "internal", "internal server error")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request_id_key in request:
        response.headers.setdefault("X-Request-Id", request[request_id_key])
