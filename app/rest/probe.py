"""Cached dependency probes, so `/health` answers at once even when a dependency hangs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from app.names import now_iso
from app.services import Services
from app.store import STATUSES

INTERVAL = 2.0
TIMEOUT = 1.0


class Probe:
    def __init__(self, services: Services) -> None:
        self._services = services
        self.store: dict[str, Any] = {"ok": None, "checked_at": None}
        self.runs_by_status: dict[str, float] = {}
        self.approvals_waiting = 0
        self.oldest_waiting_since: datetime | None = None

    async def check(self) -> None:
        started = time.monotonic()
        try:
            counts = await asyncio.wait_for(self._services.store.count_by_status(), TIMEOUT)
            self.runs_by_status = {status: float(counts.get(status, 0)) for status in STATUSES}
            waiting, oldest = await asyncio.wait_for(self._services.store.approval_stats(), TIMEOUT)
            self.approvals_waiting = waiting
            self.oldest_waiting_since = datetime.fromisoformat(oldest) if oldest else None
            self.store = {"ok": True}
        except Exception as exc:  # TimeoutError included: a hung store is a down store
            self.store = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
        self.store["latency_ms"] = round((time.monotonic() - started) * 1000, 3)
        self.store["checked_at"] = now_iso()

    def oldest_approval_age(self) -> float:
        """Seconds the oldest pending approval has waited, at scrape time (0 when none waits)."""
        since = self.oldest_waiting_since
        return max(0.0, (datetime.now(UTC) - since).total_seconds()) if since else 0.0

    def report(self, request: web.Request) -> dict[str, Any]:
        pubsub = self._services.bus.status()
        healthy = self.store["ok"] is not False and pubsub.get("connected", False)
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        return {
            "status": "healthy" if healthy else "degraded",
            "service": "rest",
            "port": int(sockname[1]) if sockname else 0,
            "store": self.store,
            "pubsub": pubsub,
        }
