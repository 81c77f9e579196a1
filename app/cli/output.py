"""How the CLI prints: log lines coloured by level (on a terminal only) and plain aligned tables."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from app.escape import visible

COLOURS = {
    "DEBUG": "\033[2m",  # dim
    "WARNING": "\033[33m",  # yellow
    "ERROR": "\033[31m",  # red
    "CRITICAL": "\033[1;31m",  # bold red
}
RESET = "\033[0m"


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _clock(timestamp: str) -> str:
    try:
        return datetime.fromisoformat(timestamp).astimezone().strftime("%H:%M:%S.%f")[:-3]
    except ValueError:
        return timestamp


def format_line(line: Mapping[str, Any], colour: bool) -> str:
    """`  12 14:03:07.120 WARNING Draft rejected: …` — seq, local time, level, text.

    A log text is whatever a run (or a reviewer's comment) put in it: its control characters are
    printed escaped, so it cannot retitle the terminal, erase lines or forge a line of its own.
    """
    level = visible(str(line.get("level", "")))
    text = f"{line['seq']:>5} {_clock(str(line.get('timestamp', '')))} {level:<8}{visible(str(line.get('text', '')))}"
    start = COLOURS.get(level, "") if colour else ""
    return f"{start}{text}{RESET}" if start else text


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    cells = [[str(h) for h in headers], *([("" if c is None else visible(str(c))) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(f"beacon: {visible(text)}\n")  # a server's message may quote what a client sent
    sys.stderr.flush()
