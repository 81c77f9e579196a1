"""`--log-format json`: one JSON object per line, with the run's thread id when there is one."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson
from aiohttp.http_exceptions import HttpProcessingError

from app.runs.context import current_thread_id


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "thread_id"?, "exc_info"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Handlers format in the logging call's own context, so this is the run that logged.
        thread_id = current_thread_id()
        if thread_id is not None:
            entry["thread_id"] = thread_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


class BadRequestFilter(logging.Filter):
    """aiohttp's parser logs every malformed request at ERROR with a traceback; anyone can send
    them, so one WARNING line without the traceback says enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            reason = str(exc.message or exc).strip().splitlines() or [type(exc).__name__]
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "bad HTTP request from %s: %s", (peer, reason[0])
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True
