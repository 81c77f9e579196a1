"""Start Beacon: `python run.py [all|rest|realtime] [--config PATH] [flags]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import signal
import sys
from typing import TYPE_CHECKING

from app.config import MODES, NAMED, Config, ConfigError, load_config, log_level
from app.errors import SchemaTooNew

if TYPE_CHECKING:
    from app.runs.logsink import LogSink

logger = logging.getLogger("beacon")
FLUSH_SECONDS = 1.0  # how long a forced exit waits for the log sink to store the lines it holds


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python run.py",
        description="Beacon: human-in-the-loop LangGraph workflows with a live Socket.IO console.",
        epilog="Precedence: flags > environment (REST_API_PORT, SOCKETIO_PORT, PUBSUB_URL, STORE_URL, "
        "BEACON_<SECTION>_<KEY>, …) > config.toml > built-in defaults. "
        "Client commands for a running Beacon: python run.py tail|start|approve|reject|runs --help.",
    )
    parser.add_argument(
        "mode",
        nargs="?",
        default="all",
        choices=MODES,
        help="all: REST (8000) and Socket.IO (7000) in one process; rest or realtime: one listener "
        "(needs PUBSUB_URL=redis://…)",
    )
    parser.add_argument("--config", metavar="PATH", help="TOML config file (default: ./config.toml if present)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow auth.enabled = false on a non-loopback address (anyone who reaches Beacon is admin)",
    )
    for named in NAMED:
        parser.add_argument(named.flag, dest=named.key, metavar="VALUE", help=named.help)
    return parser.parse_args(argv)


def configure_logging(level: int, fmt: str = "plain") -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "plain": {"()": "app.logformat.PlainFormatter"},
                "json": {"()": "app.logformat.JsonFormatter"},
            },
            "filters": {"bad_http": {"()": "app.logformat.BadRequestFilter"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt, "level": level}},
            "root": {"handlers": ["console"], "level": level},
            "loggers": {
                "app.realtime.socketio": {"level": "WARNING"},
                "app.realtime.engineio": {"level": "WARNING"},
                "aiohttp.access": {"level": "WARNING"},
                "aiohttp.server": {"filters": ["bad_http"]},
            },
        }
    )


def login_line(host: str, port: int, token: str | None, cfg: Config, terminal: bool = True) -> str:
    """Like Jupyter: a URL that logs the admin UI in with the token file's admin token.

    Only on a terminal: redirected, stdout ends up in files and log collectors, and the URL holds
    an admin secret."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{shown}:{port}/ui/"
    if not cfg.auth.enabled:
        return f"Admin UI          {url}  (auth disabled)"
    if token is None:
        return f"Admin UI          {url}  (log in with a configured token)"
    from app.auth import token_path

    if not terminal:
        return f"Admin UI          {url}  (log in with the token in {token_path(cfg)})"
    return f"Admin UI          {url}?token={token}  (token in {token_path(cfg)})"


class Shutdown:
    """The first signal asks for a graceful stop; a second one, or the deadline, forces the exit."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.sink: LogSink | None = None  # once serve() runs, where the REST listener runs
        self._exiting: asyncio.Task[None] | None = None

    def on_signal(self, signame: str) -> None:
        if not self.requested.is_set():
            logger.info("%s received: shutting down (press Ctrl+C again to force)", signame)
            self.requested.set()
            return
        logger.warning("second %s: exiting now", signame)
        self.force()

    @property
    def forced(self) -> asyncio.Task[None] | None:
        return self._exiting

    def on_deadline(self) -> None:
        logger.error("shutdown timeout reached")
        self.force()

    def force(self) -> None:
        """Exit with status 1 once the log lines already logged are stored; another signal meanwhile exits at once."""
        if self._exiting is None:
            self._exiting = asyncio.create_task(self._exit(), name="forced-exit")
        else:
            os._exit(1)

    async def _exit(self) -> None:
        if self.sink is not None:
            await self.sink.flushed(FLUSH_SECONDS)
        os._exit(1)


async def main(args: argparse.Namespace) -> int:
    path = args.config or ("config.toml" if os.path.exists("config.toml") else None)
    given = vars(args)
    overrides = {n.key: given[n.key] for n in NAMED if given[n.key] is not None}
    cfg, warnings = load_config(path, os.environ, overrides)
    configure_logging(log_level(cfg), cfg.logging.format)
    from app.auth import check_exposure

    for warning in [*warnings, *check_exposure(cfg, args.insecure)]:
        logger.warning(warning)

    from app.server import serve  # LangGraph and friends load only for server modes

    shutdown = Shutdown()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, shutdown.on_signal, sig.name)

    async with serve(cfg, args.mode) as running:
        shutdown.sink = running.services.sink
        if running.rest_port:
            print(
                f"Beacon REST API   http://{cfg.rest.host}:{running.rest_port}  (OpenAPI at /openapi.json)", flush=True
            )
            login = login_line(cfg.rest.host, running.rest_port, running.services.login_token, cfg, sys.stdout.isatty())
            print(login, flush=True)
        if running.realtime_port:
            print(
                f"Beacon Socket.IO  http://{cfg.realtime.host}:{running.realtime_port}  "
                "(namespaces /logs and /admin; /health, /stats)",
                flush=True,
            )
        print(f"Store {cfg.store.url} · bus {cfg.pubsub.url} · press Ctrl+C to stop", flush=True)
        await shutdown.requested.wait()
        loop.call_later(cfg.runs.grace_period + 15, shutdown.on_deadline)
    if shutdown.forced is not None:
        await shutdown.forced  # a forced exit under way (exits 1) outlives the graceful end
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    import app.cli

    if sys.argv[1:2] and sys.argv[1] in app.cli.COMMANDS:  # a client command, not a server mode
        sys.exit(app.cli.main(sys.argv[1:]))
    arguments = parse_args(sys.argv[1:])
    try:
        sys.exit(asyncio.run(main(arguments)))
    except ConfigError as exc:
        print(f"beacon: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except SchemaTooNew as exc:  # a store migrated by a newer release: one line, nothing touched
        print(f"beacon: {exc}", file=sys.stderr)
        sys.exit(2)
