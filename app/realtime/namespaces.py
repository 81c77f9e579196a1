"""The `/logs` and `/admin` namespaces: connection bookkeeping and client events."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from app.names import LEVELS, THREAD_ID
from app.realtime.guard import Guard
from app.realtime.subscriptions import Subscriptions

logger = logging.getLogger(__name__)

FIREHOSE = "firehose"
MAX_SUBSCRIPTIONS = 100
MAX_SEQ = 2**63 - 1  # a line number the store can hold


class Counted(socketio.AsyncNamespace):
    """A namespace that admits clients by token and role and knows them (for /health and /stats)."""

    role = "admin"

    def __init__(self, namespace: str, guard: Guard) -> None:
        super().__init__(namespace)
        self.guard = guard
        self.clients: set[str] = set()

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        # Every client event: rate limited, and answered even when unknown, so a call never hangs.
        if not self.guard.allow_event(args[0], self.namespace):
            return {"error": "rate limited: too many events"}
        if not hasattr(self, f"on_{event}"):
            return {"error": f"unknown event {event[:64]!r}"}
        return await super().trigger_event(event, *args)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        self.guard.admit(sid, self.namespace, auth, self.role, environ)
        self.clients.add(sid)

    async def on_disconnect(self, sid: str, reason: str | None = None) -> None:
        self.guard.release(sid, self.namespace)
        self.clients.discard(sid)


class LogsNamespace(Counted):
    """`log` to everyone (the firehose) unless a client subscribes to threads."""

    role = "viewer"

    def __init__(self, subscriptions: Subscriptions, guard: Guard) -> None:
        super().__init__("/logs", guard)
        self.subs = subscriptions
        # Clients that connected with auth {"firehose": false}: a reconnecting client that will
        # resubscribe with `since` must not see live lines before its replay.
        self.no_firehose: set[str] = set()

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await super().on_connect(sid, environ, auth)
        if isinstance(auth, dict) and auth.get("firehose") is False:
            self.no_firehose.add(sid)
        else:
            await self.enter_room(sid, FIREHOSE)

    async def on_disconnect(self, sid: str, reason: str | None = None) -> None:
        self.subs.drop_client(sid)
        self.no_firehose.discard(sid)
        await super().on_disconnect(sid, reason)

    async def on_subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        if not isinstance(data, dict):
            return {"error": "expected an object {thread_id, since?, level?}"}
        thread_id = data.get("thread_id")
        if not isinstance(thread_id, str) or not THREAD_ID.match(thread_id):
            return {"error": "invalid thread_id"}
        since = data.get("since")
        if since is not None and (type(since) is not int or not 0 <= since <= MAX_SEQ):
            return {"error": "invalid since"}
        level = data.get("level")
        if level is not None and (not isinstance(level, str) or level.upper() not in LEVELS):
            return {"error": "invalid level"}
        if self.subs.count(sid) >= MAX_SUBSCRIPTIONS and not self.subs.follows(sid, thread_id):
            return {"error": f"at most {MAX_SUBSCRIPTIONS} subscriptions per client"}
        await self.leave_room(sid, FIREHOSE)
        try:
            ack = await self.subs.subscribe(sid, thread_id, since, LEVELS[level.upper()] if level else 0)
        except Exception:
            logger.warning("replay for %s on %s failed", sid, thread_id, exc_info=True)
            await self._maybe_firehose(sid)
            return {"error": "store unavailable, try again"}
        return {"thread_id": thread_id, **ack.as_dict()}

    async def on_unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        thread_id = data.get("thread_id") if isinstance(data, dict) else None
        if not isinstance(thread_id, str) or not THREAD_ID.match(thread_id):
            return {"error": "invalid thread_id"}
        removed = self.subs.remove(sid, thread_id)
        await self._maybe_firehose(sid)
        return {"thread_id": thread_id, "unsubscribed": removed}

    async def _maybe_firehose(self, sid: str) -> None:
        if not self.subs.has(sid) and sid in self.clients and sid not in self.no_firehose:
            await self.enter_room(sid, FIREHOSE)


class AdminNamespace(Counted):
    """`admin_event` to every client: run events, status changes, decisions."""

    def __init__(self, guard: Guard) -> None:
        super().__init__("/admin", guard)
