"""The OpenAPI document, generated from the route table and its marshmallow schemas."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from app.config import TOKEN_NAME
from app.names import THREAD_ID
from app.rest.schemas import Error

if TYPE_CHECKING:
    from app.rest.route import Route

ERROR_TEXT = {
    400: "Malformed request",
    401: "No or unknown bearer token",
    403: "The token's role is too small",
    404: "Not found",
    409: "Wrong state",
    413: "Body too large",
    415: "Not JSON",
    422: "Validation failed",
    503: "A dependency is down",
}


def _spec() -> APISpec:
    spec = APISpec(
        "Beacon",
        "1.0.0",
        "3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Human-in-the-loop LangGraph workflows: runs, approvals, administration."},
    )
    spec.components.schema("Error", schema=Error)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    return spec


PATH_PATTERNS = {
    "thread_id": THREAD_ID.pattern,
    "name": TOKEN_NAME.pattern,
    "run_id": THREAD_ID.pattern,
    "assistant_id": THREAD_ID.pattern,
    "checkpoint_id": THREAD_ID.pattern,
}


def _content(route: Route) -> dict[str, Any]:
    if route.stream:
        return {"text/event-stream": {"schema": {"type": "string", "description": "server-sent events"}}}
    schema: Any = {"type": "array", "items": route.response} if route.many else route.response
    return {"application/json": {"schema": schema}}


def build_openapi(routes: Sequence[Route]) -> dict[str, Any]:
    spec = _spec()
    paths: dict[str, dict[str, Any]] = {}
    names: dict[str, int] = {}
    for route in routes:
        name = route.handler.__name__  # one handler may serve two paths: the second gets a suffix
        names[name] = names.get(name, 0) + 1
        op: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": name if names[name] == 1 else f"{name}_{names[name]}",
            "responses": {
                str(route.status): (
                    {"description": "No content"}
                    if route.status == 204
                    else {"description": "OK", "content": _content(route)}
                )
            },
        }
        if route.role != "public":
            op["security"] = [{"bearer": []}]
            op["description"] = f"Needs a token with role {route.role} or above."
        params = []
        for name in re.findall(r"{(\w+)}", route.path):
            params.append(
                {
                    "in": "path",
                    "name": name,
                    "required": True,
                    "schema": {"type": "string", "pattern": PATH_PATTERNS[name]},
                }
            )
        if route.query is not None:
            params.append({"in": "query", "schema": route.query})
        if params:
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
        auth_errors = (401, 403) if route.role != "public" else ()
        for code in sorted({*route.errors, *auth_errors, 500}):
            op["responses"][str(code)] = {
                "description": ERROR_TEXT.get(code, "Internal error"),
                "content": {"application/json": {"schema": "Error"}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = op
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def openapi(routes: Sequence[Route]) -> Handler:
    """GET /openapi.json: the document of the route table it is given."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(build_openapi(routes))

    return handler
