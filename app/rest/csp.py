"""The console's Content-Security-Policy: scripts from /ui/ and, by hash, the inline ones each page
was built with; connections to this host only (the API here, Socket.IO on a port of the same host)."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", re.S)
_INLINE_STYLE = re.compile(rb"<style[^>]*>(.*?)</style>", re.S)
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,253})(:\d{1,5})?")  # a Host header's parts

FIXED = (
    "default-src 'none'",
    "img-src 'self' data:",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def _sha256(body: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"


class PagePolicy:
    """The policy of each page of the export, its inline hashes read once per file version."""

    def __init__(self) -> None:
        self._hashes: dict[Path, tuple[tuple[int, int], str, str]] = {}

    def __call__(self, page: Path, host: str) -> str:
        stat = page.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        known = self._hashes.get(page)
        if known is None or known[0] != version:
            html = page.read_bytes()
            scripts = " ".join(_sha256(body) for body in _INLINE_SCRIPT.findall(html))
            styles = " ".join(_sha256(body) for body in _INLINE_STYLE.findall(html))
            known = self._hashes[page] = (version, scripts, styles)
        _, scripts, styles = known
        # Socket.IO on another port of this host (?rt= may name any): each scheme named, as Chromium
        # does not extend a scheme-less source to ws: (CSP3 says it should).
        match = _HOST.fullmatch(host)
        host_only = match.group(1) if match else None
        realtime = "".join(f" {scheme}://{host_only}:*" for scheme in ("http", "https", "ws", "wss") if host_only)
        dynamic = (
            f"script-src 'self' {scripts}".rstrip(),
            f"style-src 'self' {styles}".rstrip(),
            f"connect-src 'self'{realtime}",
        )
        return "; ".join((*FIXED, *dynamic))
