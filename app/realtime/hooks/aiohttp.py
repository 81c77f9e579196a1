"""aiohttp's HTTP server as both listeners run it. Written against aiohttp 3.14.5.

- `Runner`: no version banner, and a request its parser refuses gets a JSON error that echoes
  nothing of it (aiohttp's own text/plain answer quotes the offending line, a bearer token
  included). It replaces `AppRunner._make_server` and `RequestHandler.handle_error` and reads
  `web.Server`'s `_loop` and `_kwargs`.
- `Site`: a TCPSite whose connections start at a protocol of ours (it sets the `_server` and
  `_bound_port` fields `TCPSite.start` would, from `_host`, `_port`, `_ssl_context`, `_backlog`,
  `_reuse_address`, `_reuse_port`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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


class Site(web.TCPSite):
    """aiohttp's TCPSite, with every connection starting at `protocol` (which may hand it to aiohttp)."""

    def __init__(
        self, runner: web.BaseRunner, protocol: Callable[[], asyncio.Protocol], host: str, port: int, **kwargs: Any
    ) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.protocol = protocol

    async def start(self) -> None:
        await web.BaseSite.start(self)
        self._server = await asyncio.get_running_loop().create_server(
            self.protocol,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port
