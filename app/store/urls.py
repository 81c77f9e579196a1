"""What a store URL names, for the store and for what Beacon keeps beside it (checkpoints, token file)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def sqlite_path(url: str) -> Path:
    """`sqlite:///rel/path` is relative to the working directory, `sqlite:////abs` absolute."""
    return Path(url.split("://", 1)[1][1:] or "beacon.sqlite")


def private_file(path: Path) -> Path:
    """`path`, created empty with mode 0600 when absent (like the token file): a database holds runs'
    inputs and decisions. SQLite gives its -wal and -shm files the database file's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path
