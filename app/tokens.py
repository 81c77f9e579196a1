"""Token management: tokens created over the API and revocations live in the store, and every
node follows them (a bus message now, a periodic re-read as the fallback when the bus is down)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from app.auth import RANK, Auth, digest
from app.background import background
from app.errors import LastAdmin, NotFound, TokenExists
from app.names import now_iso
from app.pubsub import Bus
from app.store import Store, TokenRecord

logger = logging.getLogger(__name__)

CHANNEL = "auth"
REFRESH_SECONDS = 5.0  # how stale a node may be about tokens when it missed the bus message


class Tokens:
    def __init__(self, auth: Auth, store: Store, bus: Bus, refresh: float = REFRESH_SECONDS) -> None:
        self.auth = auth
        self.store = store
        self.bus = bus
        self.refresh_seconds = refresh
        self._records: dict[str, TokenRecord] = {}

    async def create(self, name: str, role: str, by: str) -> tuple[TokenRecord, str]:
        """A new API token; its secret is returned once and only its SHA-256 is stored."""
        if self.auth.find(name):
            raise TokenExists(f"a token named {name!r} exists")
        secret = secrets.token_urlsafe(32)
        record = TokenRecord(digest(secret), name, role, "api", now_iso(), by)
        await self.store.add_token(record)
        await self._changed()
        return record, secret

    async def revoke(self, name: str, by: str) -> TokenRecord:
        """Revoke any token, configured ones included (they stay revoked across restarts)."""
        token = self.auth.find(name)
        if token is None:
            raise NotFound(f"no token named {name!r}")
        guarded = self.auth.enabled and token.role == "admin"
        if guarded and [t for t in self.auth.tokens() if t.role == "admin"] == [token]:
            raise LastAdmin()
        known = self._records.get(token.digest)
        ts = now_iso()
        record = replace(known, revoked_at=ts, revoked_by=by) if known else (
            TokenRecord(token.digest, token.name, token.role, token.source, ts, None, ts, by)
        )
        try:  # what this node knows may be stale: the store decides, atomically, across nodes
            await self.store.revoke_token(record, self.auth.fixed_admins() if guarded else None)
        except LastAdmin:
            await self._refresh_quietly()  # another admin went meanwhile: catch up with it
            raise
        await self._changed()
        return record

    def listing(self) -> list[dict[str, Any]]:
        """The live tokens, without secrets or digests."""
        rows = []
        for token in self.auth.tokens():
            record = self._records.get(token.digest)
            rows.append(
                {
                    "name": token.name,
                    "role": token.role,
                    "source": token.source,
                    "created_at": record.created_at if record else None,
                    "created_by": record.created_by if record else None,
                }
            )
        return sorted(rows, key=lambda r: (-RANK[r["role"]], r["name"]))

    async def refresh(self) -> None:
        records = await self.store.token_records()
        self._records = {r.digest: r for r in records}
        self.auth.apply(records)

    async def _changed(self) -> None:
        await self.refresh()
        try:
            await self.bus.publish(CHANNEL, "refresh")
        except Exception:
            logger.warning("could not announce a token change; other nodes see it within %.0f s", self.refresh_seconds)

    @contextlib.asynccontextmanager
    async def following(self) -> AsyncIterator[Tokens]:
        await self.refresh()
        if self.auth.enabled and not any(t.role == "admin" for t in self.auth.tokens()):
            logger.warning(
                "no usable admin token: every admin token is revoked, so nobody can create or revoke tokens; "
                "add an admin to auth.tokens with a new secret and restart"
            )
        async with background(tokens_listen=self._listen(), tokens_poll=self._poll()):
            yield self

    async def _listen(self) -> None:
        async with self.bus.subscribe(CHANNEL) as queue:
            async for _ in queue:
                await self._refresh_quietly()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self._refresh_quietly()

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception:
            logger.warning("could not re-read tokens from the store", exc_info=True)
