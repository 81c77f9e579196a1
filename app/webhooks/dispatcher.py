"""Delivery: each notification is stored, then POSTed with retries in its own task.

A run's status change only calls `notify()`, which creates the delivery task and returns: a
slow or dead receiver holds up nothing but its own deliveries. The node that executes a run is
the one that changes its status, so each transition is sent once per hook in a cluster (once or
more after a crash: receivers dedupe by X-Beacon-Delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import orjson

from app.background import Tasks
from app.config import WebhookConfig
from app.metrics import Metrics
from app.names import now_iso
from app.store import Store
from app.store.base import Delivery
from app.webhooks.signing import headers, redact

logger = logging.getLogger(__name__)

RETRYABLE = (408, 429)  # besides 5xx, timeouts and connection errors
BACKOFF_CAP = 60.0
CONCURRENCY = 8  # requests in flight per process
CAPACITY = 1000  # deliveries waiting or retrying per process; past it new ones are dropped, and counted

Outcome = tuple[int | None, str | None, float | None]  # status code, error, Retry-After seconds


class Dispatcher:
    def __init__(self, hooks: Sequence[WebhookConfig], store: Store, metrics: Metrics, node: Callable[[], str]):
        self.hooks = tuple(hooks)
        self.store = store
        self.metrics = metrics
        self._node = node  # the run manager's name for this process, final once the REST port is bound
        self._session: aiohttp.ClientSession | None = None
        self._tasks = Tasks()
        self._slots = asyncio.Semaphore(CONCURRENCY)

    def notify(self, data: dict[str, Any]) -> None:
        """A run's status change (the run manager's status event): queue a delivery per interested hook."""
        event = data.get("status")
        for hook in self.hooks:
            if event not in hook.events:
                continue
            try:
                delivery_id = uuid.uuid4().hex
                fields = {k: v for k, v in data.items() if k != "event"}  # "event" there means started/resumed
                payload = {"event": event, "delivery_id": delivery_id, **fields}
                body = orjson.dumps(payload, default=str).decode()
                delivery = Delivery(
                    id=delivery_id,
                    hook=redact(hook.url),
                    event=str(event),
                    thread_id=str(data.get("thread_id")),
                    body=body,
                    node=self._node(),
                    created_at=now_iso(),
                )
                self._spawn(hook, delivery, stored=False)
            except Exception:  # never let a notification break the run that caused it
                logger.exception("could not queue a webhook for %s", redact(hook.url))

    async def resume(self) -> int:
        """Send again what this node left pending when it last stopped (at-least-once)."""
        resumed = 0
        for delivery in await self.store.pending_deliveries(self._node()):
            hook = next((h for h in self.hooks if redact(h.url) == delivery.hook and delivery.event in h.events), None)
            if hook is None:
                await self._record(
                    self.store.update_delivery(
                        delivery.id, state="failed", attempts=delivery.attempts, status_code=delivery.status_code,
                        error="the hook is no longer configured for this event",
                    )
                )
                continue
            self._spawn(hook, delivery, stored=True)
            resumed += 1
        if resumed:
            logger.info("sending %d pending webhook deliveries again", resumed)
        return resumed

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Dispatcher]:
        """One HTTP session for every hook; on exit unfinished deliveries stay pending for the next start."""
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:
            self._session = session
            try:
                yield self
            finally:
                self._session = None
                await self._tasks.close()

    @property
    def backlog(self) -> int:
        return len(self._tasks)

    # -- internals --------------------------------------------------------------------

    def _spawn(self, hook: WebhookConfig, delivery: Delivery, *, stored: bool) -> None:
        if self._session is None or len(self._tasks) >= CAPACITY:
            self.metrics.webhooks.labels(outcome="dropped").inc()
            logger.warning("webhook %s for %s dropped: %d deliveries are already queued", delivery.event,
                           delivery.hook, len(self._tasks))
            return
        self._tasks.spawn(self._deliver(hook, delivery, stored), name=f"webhook:{delivery.id}")

    async def _deliver(self, hook: WebhookConfig, d: Delivery, stored: bool) -> None:
        if not stored:
            await self._record(self.store.add_delivery(d))
        attempts = d.attempts
        while True:
            attempts += 1
            code, error, retry_after = await self._attempt(hook, d)
            delivered = code is not None and 200 <= code < 300
            transient = code is None or code >= 500 or code in RETRYABLE
            retry = not delivered and transient and attempts < hook.attempts
            state = "delivered" if delivered else "pending" if retry else "failed"
            await self._record(
                self.store.update_delivery(d.id, state=state, attempts=attempts, status_code=code, error=error)
            )
            if not retry:
                self.metrics.webhooks.labels(outcome=state).inc()
                if not delivered:
                    logger.warning("webhook %s to %s failed after %d attempt(s): %s", d.event, d.hook, attempts, error)
                return
            base = min(BACKOFF_CAP, hook.backoff * 2 ** (attempts - 1))
            delay = base * random.uniform(0.5, 1.0)  # jitter: receivers that come back are not stampeded
            await asyncio.sleep(max(delay, min(retry_after or 0.0, BACKOFF_CAP)))

    async def _attempt(self, hook: WebhookConfig, d: Delivery) -> Outcome:
        assert self._session is not None
        body = d.body.encode()
        try:
            async with self._slots, self._session.post(
                hook.url,
                data=body,
                headers=headers(hook.secret, body, d.event, d.id),
                timeout=aiohttp.ClientTimeout(total=hook.timeout),
                allow_redirects=False,
            ) as resp:
                await resp.content.readany()  # a little of the answer; the connection may be reused
                if 200 <= resp.status < 300:
                    return resp.status, None, None
                return resp.status, f"HTTP {resp.status} {resp.reason or ''}".strip(), _retry_after(resp)
        except TimeoutError:
            return None, f"no answer within {hook.timeout:g}s", None
        except Exception as exc:  # connection refused, DNS, TLS, a reset mid-answer…
            return None, f"{type(exc).__name__}: {exc}"[:500], None

    async def _record(self, write: Awaitable[None]) -> None:
        """The log is for people; a store that is down must not stop the delivery itself."""
        try:
            await write
        except Exception as exc:
            logger.warning("could not record a webhook delivery: %s", exc)


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    try:
        return float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None
