"""Names every side of Beacon shares (ids, bus channels, levels, clocks); imports nothing of ours."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

# Python's $ also matches before a trailing newline ("abc\n" would pass); (?!\n) refuses it and
# keeps the pattern one that JSON Schema (ECMA-262, where \Z means "Z") reads the same in /openapi.json.
THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$(?!\n)")

# Bus channels.
LOGS_CHANNEL = "logs"  # batches of stored log lines
ADMIN_CHANNEL = "admin"  # run events and status changes
CONTROL_CHANNEL = "control"  # REST nodes tell each other to cancel what they execute
RUNS_CHANNEL = "runs"  # batches of stored server-sent events of runs (the Agent API's streams)

MAX_SEQ = 2**63 - 1  # seqs, event ids and cursors are 64-bit integers in both stores

LEVEL_NAMES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LEVELS: dict[str, int] = logging.getLevelNamesMapping()  # also WARN, FATAL, NOTSET, as logging spells them


def now_iso() -> str:
    """The current time as ISO 8601 in UTC, as every record and event carries it."""
    return datetime.now(UTC).isoformat()


def iso(timestamp: float) -> str:
    """A POSIX timestamp as ISO 8601 in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()

# Sent with every HTTP response on both listeners (REST adds X-Frame-Options for its pages).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
