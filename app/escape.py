"""Client-supplied text made safe for a terminal and for line-oriented logs; imports nothing of ours."""

from __future__ import annotations

import re

# C0 controls but tab, DEL, C1 controls (0x9b is a CSI on some terminals), line and paragraph
# separators, bidirectional overrides (text that reads other than it is) and lone surrogates.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}
_UNSAFE_BUT_NEWLINE = re.compile(_UNSAFE.pattern.replace("\x0a-", "\x0b-"))
_SURROGATES = re.compile("[\ud800-\udfff]")
# What JSON lets through raw but a terminal (C1 CSI), a line splitter (U+2028) or a reader (bidi) acts on.
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(text: str) -> str:
    """`text` on one line, every control character shown as its escape (`\\n`, `\\x1b`, `\\u202e`)."""
    return _UNSAFE.sub(_escape, text)


def visible_lines(text: str) -> str:
    """Like visible() but keeping newlines: for a traceback, whose lines are the server's own."""
    return _UNSAFE_BUT_NEWLINE.sub(_escape, text)


def without_surrogates(text: str) -> str:
    """`text` encodable as UTF-8 (JSON logs): lone surrogates, as a non-UTF-8 byte arrives, escaped."""
    return _SURROGATES.sub(_escape, text)


def json_line(encoded: str) -> str:
    """A JSON document with the characters JSON leaves raw (DEL, C1, separators, bidi) as \\u escapes."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)
