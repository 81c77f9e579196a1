"""The REST side of the CLI: one aiohttp session, server errors turned into one readable line."""

from __future__ import annotations

import asyncio
import errno
import json as jsonlib
import os
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp


class CliError(Exception):
    """Something to tell the user in one line before exiting with status 1."""


async def tcp_error(url: str) -> OSError | None:
    """Why a TCP connection to the URL's host and port fails, or None when it opens."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), 10)
    except TimeoutError:
        return TimeoutError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))
    except OSError as exc:
        return exc
    writer.close()
    return None


def unreachable(url: str, exc: BaseException | None = None) -> CliError:
    code = exc.errno if isinstance(exc, OSError) else None
    reason = os.strerror(code) if isinstance(code, int) and code > 0 else getattr(exc, "strerror", None)
    return CliError(f"Beacon isn't reachable at {url}" + (f" ({str(reason).lower()})" if reason else ""))


def _flatten(details: Any, prefix: str = "") -> list[str]:
    """`{"input": {"topic": ["Missing…"]}}` → `["input.topic: Missing…"]`."""
    if isinstance(details, dict):
        return [item for key, value in details.items() for item in _flatten(value, f"{prefix}{key}.")]
    if isinstance(details, list) and not any(isinstance(v, dict | list) for v in details):
        text = ", ".join(map(str, details))
    elif isinstance(details, list):
        return [item for i, value in enumerate(details) for item in _flatten(value, f"{prefix}{i}.")]
    else:
        text = str(details)
    return [f"{prefix[:-1]}: {text}" if prefix else text]


def error_line(status: int, body: Any) -> str:
    """One line for an error answer `{error, message, details}` (or whatever a proxy sends)."""
    if not isinstance(body, dict) or "message" not in body:
        return f"HTTP {status} with no Beacon error body"
    fields = "; ".join(_flatten(body.get("details") or {}))
    return f"{body['message']} ({status} {body.get('error', 'error')})" + (f": {fields}" if fields else "")


class Api:
    """Beacon's REST API with the token: `async with Api(url, token) as api: await api.call(…)`."""

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Api:
        timeout = aiohttp.ClientTimeout(total=30, sock_connect=10)
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=timeout)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        """The answer's JSON; an error answer, or none, raises CliError."""
        assert self._session is not None, "use Api in `async with`"
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self._session.request(method, self.base + path, json=json, params=query) as resp:
                text = await resp.text()
        except aiohttp.ClientConnectorError as exc:
            raise unreachable(self.base, exc.os_error) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CliError(f"{method} {self.base}{path} failed: {str(exc) or type(exc).__name__}") from None
        try:
            body = jsonlib.loads(text) if text else None
        except ValueError:
            body = None
        if resp.status >= 400:
            raise CliError(error_line(resp.status, body))
        if body is None:
            raise CliError(f"{method} {self.base}{path}: expected JSON, got {text[:60]!r}")
        return body
