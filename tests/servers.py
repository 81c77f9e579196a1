"""Real Redis and Postgres servers for the tests: started on free loopback ports, killed by PID.

Import the fixtures into a test module (`from servers import postgres_server, redis_server`).
Session-scoped servers serve the conformance suites; the fault tests take their own
function-scoped ones (`redis_proc`, `postgres_proc`) because they kill them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, need_binary


def _wait_port(port: int, probe: bytes, expect: bytes, timeout: float) -> None:
    """Block until something on `port` answers `probe` with a reply starting with `expect`."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if not probe:
                    return
                s.sendall(probe)
                if s.recv(64).startswith(expect):
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.02)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port} within {timeout}s ({last!r})")


def _children(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (Postgres backends of a postmaster)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # the command name may hold spaces and parentheses: split after the last ')'
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _gone(pid: int, timeout: float) -> bool:
    """Wait until `pid` has exited (a zombie counts: its parent may be slow to reap it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


class RedisServer:
    """`redis-server` on a fixed free port, so a restart comes back at the same address."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="beacon-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        _wait_port(self.port, b"PING\r\n", b"+PONG", timeout=10)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    def send(self, sig: int) -> None:
        _kill(self.pid, sig)

    def kill(self) -> None:
        """`kill -9` and reap, so the port is free for a restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def command(self, *args: str) -> str:
        """Send one command (raw RESP, no client library) and return the raw reply."""
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            parts.append(f"${len(arg.encode())}\r\n{arg}\r\n".encode())
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"".join(parts))
            return s.recv(65536).decode()

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)  # a test may have left it stopped
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """A throw-away cluster: `initdb` into a temp dir, `pg_ctl start` on a free port."""

    def __init__(self) -> None:
        self.initdb = need_binary("initdb")
        self.pg_ctl = need_binary("pg_ctl")
        self.port = free_port()
        # Not under pytest's tmp_path: as root the cluster belongs to `postgres`, who must reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="beacon-pg-"))
        self.data = self.dir / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def init(self) -> None:
        self._run([self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, args: list[str]) -> None:
        result = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=60)
        if result.returncode:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stdout}{result.stderr}")

    @property
    def pid(self) -> int:
        """The postmaster's PID, from its lock file."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += " -c full_page_writes=off"  # fsync=off survives a process kill, not an OS crash
        log = self.dir / "postgres.log"
        self._run([self.pg_ctl, "start", "-w", "-t", "30", "-D", str(self.data), "-l", str(log), "-o", options])
        _wait_port(self.port, b"", b"", timeout=10)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    def kill(self) -> None:
        """`kill -9` the postmaster and its backends (by PID), as a crash would."""
        pid = self.pid
        backends = _children(pid)
        _kill(pid)
        for child in backends:
            _kill(child)
        if all([_gone(p, 10) for p in (pid, *backends)]):
            # Dead, if perhaps not yet reaped by init: a restart must not mistake the zombie's
            # PID in the lock file for a live postmaster.
            for lock in (self.data / "postmaster.pid", self.dir / f".s.PGSQL.{self.port}.lock"):
                lock.unlink(missing_ok=True)

    def send(self, sig: int) -> None:
        """Signal the postmaster and every backend, e.g. SIGSTOP to stall the whole server."""
        pid = self.pid
        for p in (pid, *_children(pid)):
            _kill(p, sig)

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.kill()  # a throw-away cluster: no need for a clean shutdown
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One Redis for a whole session (the conformance suites); do not kill it."""
    server = RedisServer(need_binary("redis-server"))
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_proc() -> Iterator[RedisServer]:
    """A Redis of this test's own, to kill, stop and restart."""
    server = RedisServer(need_binary("redis-server"))
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One cluster for the session; each test takes a fresh database with `create_database()`."""
    need_binary("initdb")
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_proc() -> Iterator[PostgresServer]:
    """A cluster of this test's own, to kill and restart."""
    need_binary("initdb")
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.close()
