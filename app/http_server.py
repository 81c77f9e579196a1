"""aiohttp's HTTP server as both listeners run it: no version banner, and a request its parser
refuses gets a JSON error that echoes nothing of it (aiohttp's own text/plain answer quotes the
offending line, a bearer token included). Written against aiohttp 3.14: it replaces
`AppRunner._make_server` and `RequestHandler.handle_error`; a later aiohttp keeps the public
path working (TCPSite over `runner.server`)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web, web_protocol

from app.names import SECURITY_HEADERS

SERVER = "Beacon"  # instead of "Python/3.11 aiohttp/3.14.5": no versions to look vulnerabilities up by


async def no_banner(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER  # aiohttp adds its banner only where none is set


class Handler(web_protocol.RequestHandler):
    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs it; raises if a response already began
        phrase = HTTPStatus(status).phrase
        body = {
            "error": "internal" if status >= 500 else phrase.lower().replace(" ", "_"),
            "message": "internal server error" if status >= 500 else f"{phrase}: the request could not be parsed",
            "details": {},
        }
        response = web.json_response(body, status=status, headers={**SECURITY_HEADERS, "Server": SERVER})
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return Handler(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """An AppRunner whose connections answer as above, whatever app it runs."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        app.on_response_prepare.append(no_banner)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _Server(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )
