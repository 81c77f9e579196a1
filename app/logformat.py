"""Log formats: `plain` and `--log-format json`, one line per record, client text escaped in both."""

from __future__ import annotations

import logging
import textwrap
from datetime import UTC, datetime

import orjson
from aiohttp.http_exceptions import HttpProcessingError

from app.escape import json_line, visible, visible_lines, without_surrogates
from app.runs.context import current_thread_id

PLAIN = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class PlainFormatter(logging.Formatter):
    """PLAIN with the message on one line, control characters shown escaped: a client's newline,
    ESC or CR in a path, a token or a log text cannot forge a line or drive the terminal. A
    traceback follows indented, so every line that starts at column 0 starts a record."""

    def __init__(self, fmt: str = PLAIN) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        record.message = visible(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        tail = [t for t in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)) if t]
        if tail:
            text += "\n" + textwrap.indent(visible_lines("\n".join(tail)), "  ")
        return text


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", "thread_id"?, "exc_info"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": without_surrogates(record.getMessage()),  # JSON escapes the control characters
        }
        # Handlers format in the logging call's own context, so this is the run that logged.
        thread_id = current_thread_id()
        if thread_id is not None:
            entry["thread_id"] = thread_id
        if record.exc_info:
            entry["exc_info"] = without_surrogates(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack_info"] = without_surrogates(self.formatStack(record.stack_info))
        return json_line(orjson.dumps(entry, default=str).decode())


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
