"""What a store URL names, for the store and for what Beacon keeps beside it (checkpoints, token file)."""

from __future__ import annotations

from pathlib import Path


def sqlite_path(url: str) -> Path:
    """`sqlite:///rel/path` is relative to the working directory, `sqlite:////abs` absolute."""
    return Path(url.split("://", 1)[1][1:] or "beacon.sqlite")
