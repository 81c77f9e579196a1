"""`--log-format json`: one JSON object per line, with the run's thread id when there is one."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

from app.runs.context import current_thread


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
        thread_id = current_thread.get()
        if thread_id is not None:
            entry["thread_id"] = thread_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()
