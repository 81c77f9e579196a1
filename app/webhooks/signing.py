"""What a receiver checks: an HMAC-SHA256 of `<timestamp>.<body>` keyed with the hook's secret."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qsl, urlsplit, urlunsplit


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Beacon-Signature value: `sha256=` and the hex HMAC of `timestamp.body`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def headers(secret: str, body: bytes, event: str, delivery_id: str) -> dict[str, str]:
    """Signed afresh for each attempt, so a retry carries a current timestamp."""
    timestamp = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "User-Agent": "Beacon-Webhooks/1",
        "X-Beacon-Event": event,
        "X-Beacon-Delivery": delivery_id,
        "X-Beacon-Timestamp": timestamp,
        "X-Beacon-Signature": sign(secret, timestamp, body),
    }


def redact(url: str) -> str:
    """The URL as shown and stored: user:password and query values (often tokens) masked."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"***@{host}" if "@" in parts.netloc else host
    query = "&".join(f"{key}=***" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
