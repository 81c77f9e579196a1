"""What of a stored log line a reader sees: a traceback is for operators and admins."""

from __future__ import annotations

from app.store.base import LogLine

TRACEBACK = "\nTraceback (most recent call last):\n"


def log_line_for(line: LogLine, full: bool) -> LogLine:
    """A stored log line as a caller sees it: a traceback (internal paths, source lines) only for
    operators and admins (`full`); viewers get the message and the exception's own line."""
    text = line["text"]
    if full or TRACEBACK not in text:
        return line
    head, _, trace = text.partition(TRACEBACK)
    last = next((ln for ln in reversed(trace.splitlines()) if ln and not ln.startswith(" ")), "")
    return {**line, "text": f"{head}\n{last}" if last else head}
