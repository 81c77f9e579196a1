"""Webhooks: run status changes POSTed, signed, to the receivers configured in `[[webhooks]]`."""

from __future__ import annotations

from app.webhooks.dispatcher import Dispatcher
from app.webhooks.signing import redact, sign

__all__ = ["Dispatcher", "redact", "sign"]
