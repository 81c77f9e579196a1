"""`tail`: a run's log lines in seq order, each exactly once — stored ones over REST, live over Socket.IO."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from typing import Any

import socketio

from app.background import cancel
from app.cli.client import Api, CliError, tcp_error, unreachable
from app.cli.output import err, format_line, out, use_colour
from app.names import LEVELS

FINAL = ("completed", "failed", "cancelled")
QUIET = 0.5  # seconds without a new line, once the run is final, before the last catch-up over REST
POLL = 5.0  # /status is asked this often too, in case a run_status event is missed

# python-socketio would otherwise log reconnect attempts through a handler of its own.
_transport_log = logging.getLogger("app.cli.transport")
_transport_log.addHandler(logging.NullHandler())
_transport_log.propagate = False


class Printer:
    """Prints a thread's lines in seq order exactly once; a line that comes early waits for the gap.

    Levels are filtered here rather than by the server, so the stream stays contiguous in seq
    and a held-back line always means a missing one.
    """

    def __init__(self, thread_id: str, since: int, level: str | None, colour: bool) -> None:
        self.thread_id = thread_id
        self.last = since  # highest seq handled (printed, or skipped for its level)
        self.min_level = LEVELS[level] if level else 0
        self.colour = colour
        self.early: dict[int, dict[str, Any]] = {}
        self.arrived = time.monotonic()

    def feed(self, line: Any) -> None:
        if not isinstance(line, dict) or line.get("thread_id") != self.thread_id:
            return  # another thread: a server without `firehose: false` sends all until we subscribe
        seq = line.get("seq")
        if not isinstance(seq, int) or seq <= self.last:
            return
        self.arrived = time.monotonic()
        if seq > self.last + 1:
            self.early[seq] = line
            return
        self._show(line)
        while (following := self.early.pop(self.last + 1, None)) is not None:
            self._show(following)

    def _show(self, line: dict[str, Any]) -> None:
        self.last = line["seq"]
        if LEVELS.get(str(line.get("level")), 0) >= self.min_level:
            out(format_line(line, self.colour))


async def catch_up(api: Api, printer: Printer) -> None:
    """Feed every stored line after the last one handled."""
    after = printer.last
    while True:
        page = await api.call("GET", f"/admin/runs/{printer.thread_id}/logs", params={"after": after, "limit": 1000})
        for line in page["lines"]:
            printer.feed(line)
        if page.get("next_after") is None or not page["lines"]:
            return
        after = page["next_after"]


class Follower:
    """One Socket.IO client on /logs and /admin that resubscribes after each reconnect."""

    def __init__(self, args: argparse.Namespace, api: Api, printer: Printer) -> None:
        self.url, self.token, self.api, self.printer = args.socketio, args.token, api, printer
        self.final: str | None = None
        self.done = asyncio.Event()
        self.failure: CliError | None = None
        self.connections = 0
        self._subscribing: asyncio.Task[None] | None = None
        self.sio = socketio.AsyncClient(
            reconnection_delay=0.2,
            reconnection_delay_max=2,
            randomization_factor=0.2,
            handle_sigint=False,  # its handler cancels every task; asyncio.run turns Ctrl+C into KeyboardInterrupt
            logger=_transport_log,
            engineio_logger=_transport_log,
        )
        self.sio.on("connect", self._on_connect, namespace="/logs")
        self.sio.on("disconnect", self._on_disconnect, namespace="/logs")
        self.sio.on("log", printer.feed, namespace="/logs")
        self.sio.on("admin_event", self._on_admin, namespace="/admin")

    async def connect(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            await self.sio.connect(
                self.url,
                headers=headers,
                # No firehose: after a reconnect nothing may arrive before the resubscribe's replay.
                auth={"firehose": False, **({"token": self.token} if self.token else {})},
                namespaces=["/logs", "/admin"],
                wait_timeout=10,
            )
        except socketio.exceptions.ConnectionError as exc:
            if (cause := await tcp_error(self.url)) is not None:
                raise unreachable(self.url, cause) from None
            raise CliError(f"Socket.IO at {self.url} refused the connection: {exc}") from None

    async def close(self) -> None:
        await cancel(self._subscribing)
        await self.sio.disconnect()

    def finish(self, status: str) -> None:
        self.final = status
        self.done.set()

    def _on_connect(self) -> None:
        self.connections += 1
        if self.connections > 1:
            err(f"reconnected; resuming after seq {self.printer.last}")
        if self._subscribing is not None:
            self._subscribing.cancel()
        self._subscribing = asyncio.create_task(self._subscribe())

    def _on_disconnect(self, reason: Any = None) -> None:
        if self._subscribing is not None:
            self._subscribing.cancel()
        if not self.done.is_set() and reason != self.sio.reason.CLIENT_DISCONNECT:
            err(f"lost the connection to {self.url}; reconnecting…")

    def _on_admin(self, event: Any) -> None:
        if not isinstance(event, dict) or event.get("type") != "run_status":
            return
        data = event.get("data")
        if isinstance(data, dict):
            if data.get("thread_id") == self.printer.thread_id and data.get("status") in FINAL:
                self.finish(data["status"])

    async def _subscribe(self) -> None:
        while True:
            payload = {"thread_id": self.printer.thread_id, "since": self.printer.last}
            try:
                ack = await self.sio.call("subscribe", payload, namespace="/logs", timeout=10)
            except socketio.exceptions.SocketIOError:
                return  # the connection went: the next connect subscribes again
            problem = ack.get("error") if isinstance(ack, dict) else f"unexpected answer {ack!r}"
            if problem is None:
                break
            if "try again" not in str(problem):  # "store unavailable, try again" passes
                self.failure = CliError(f"subscribe to {self.printer.thread_id} refused: {problem}")
                self.done.set()
                return
            await asyncio.sleep(1)
        # Not recovered: more was missing than a replay carries; live lines wait in `early`.
        with contextlib.suppress(CliError):
            if not ack.get("recovered", True) or self.printer.early:
                await catch_up(self.api, self.printer)
            await self.check_status()  # the run may have ended while we were away

    async def check_status(self) -> None:
        status = (await self.api.call("GET", f"/status/{self.printer.thread_id}"))["status"]
        if status in FINAL:
            self.finish(status)


async def follow(args: argparse.Namespace, api: Api, printer: Printer) -> str:
    """Print until the run is final; returns its final status."""
    status = (await api.call("GET", f"/status/{args.thread_id}"))["status"]  # 404 → CliError
    if status in FINAL:
        await catch_up(api, printer)
        return str(status)
    follower = Follower(args, api, printer)
    await follower.connect()
    try:
        while not follower.done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(follower.done.wait(), POLL)
            if not follower.done.is_set():
                with contextlib.suppress(CliError):
                    if printer.early:
                        await catch_up(api, printer)
                    await follower.check_status()
        if follower.failure is not None:
            raise follower.failure
        # A run's last lines may still be on their way when its final status is announced.
        deadline = time.monotonic() + 5
        while time.monotonic() - printer.arrived < QUIET and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await catch_up(api, printer)
    finally:
        await follower.close()
    return str(follower.final)


async def tail(args: argparse.Namespace, api: Api) -> int:
    printer = Printer(args.thread_id, args.since, args.level, use_colour(sys.stdout))
    if not args.follow:
        await catch_up(api, printer)  # 404 for an unknown thread
        return 0
    final = await follow(args, api, printer)
    err(f"run {args.thread_id} {final}")
    return 0
