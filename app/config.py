"""Typed configuration: defaults here, then config.toml, then environment, then flags."""

from __future__ import annotations

import dataclasses
import logging
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from app.names import LEVEL_NAMES


class Named(NamedTuple):
    """A setting with names of its own besides BEACON_<SECTION>_<KEY>."""

    key: str  # section.key
    flag: str  # run.py's command-line option
    help: str
    env: str = ""  # the seed document's variable name, where it has one


NAMED = (
    Named("rest.host", "--rest-host", "REST API bind address", "REST_API_HOST"),
    Named("rest.port", "--rest-port", "REST API port (0 picks a free one)", "REST_API_PORT"),
    Named("realtime.host", "--socketio-host", "Socket.IO bind address", "SOCKETIO_HOST"),
    Named("realtime.port", "--socketio-port", "Socket.IO port (0 picks a free one)", "SOCKETIO_PORT"),
    Named(
        "realtime.cors_origins",
        "--cors-origins",
        "comma-separated origins allowed to connect, or *",
        "SOCKETIO_CORS_ORIGINS",
    ),
    Named("rest.cors_origins", "--rest-cors-origins", "comma-separated origins that may call the REST API, or *"),
    Named("pubsub.url", "--pubsub-url", "memory:// or redis://host:port/db", "PUBSUB_URL"),
    Named("store.url", "--store-url", "sqlite:///path or postgresql://…", "STORE_URL"),
    Named("logging.level", "--log-level", "DEBUG, INFO, WARNING, ERROR"),
    Named("logging.format", "--log-format", "plain, or json: one JSON object per line"),
    Named("runs.grace_period", "--grace-period", "seconds running steps get to reach a checkpoint on shutdown"),
    Named("graphs.config", "--graphs", "a LangGraph CLI langgraph.json whose graphs Beacon serves beside [workflows]"),
)
SEED_ENV = {n.env: n.key for n in NAMED if n.env}
FLAGS = {n.key: n.flag for n in NAMED}


MODES = ("all", "rest", "realtime")
# Read by the command-line client (app.cli), not by the server: no "unknown variable" warning.
CLIENT_ENV = ("BEACON_API", "BEACON_SOCKETIO", "BEACON_TOKEN")


class ConfigError(ValueError):
    """A configuration value that stops start-up; the message names the key."""


# `{rest_port}` is the port the REST listener bound (the console's own origin, port 0 included);
# :3000 is `next dev` in admin-ui/ (and where chat front ends usually run).
CONSOLE_ORIGINS = (
    "http://localhost:{rest_port}",
    "http://127.0.0.1:{rest_port}",
    "http://localhost:3000",
    "http://127.0.0.1:3000",
)


@dataclass(frozen=True)
class RestConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 65536
    head_timeout: float = 15.0  # seconds for each request head on a connection
    ui_dir: str = "admin-ui/out"
    # Browser origins that may call the API; unless set, those of realtime.cors_origins.
    cors_origins: tuple[str, ...] = CONSOLE_ORIGINS


@dataclass(frozen=True)
class RealtimeConfig:
    host: str = "127.0.0.1"
    port: int = 7000
    cors_origins: tuple[str, ...] = CONSOLE_ORIGINS  # browser origins allowed to connect
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_message_bytes: int = 65536
    send_buffer_bytes: int = 1048576  # unsent bytes per /logs client before its lines are skipped (`dropped`)
    head_timeout: float = 15.0  # seconds for each request head on a connection
    connect_timeout: float = 10.0  # seconds for a new Engine.IO connection to join a namespace
    batch_interval: float = 0.025  # seconds: /logs lines that come fast go out one batch per interval (0: at once)
    fast_path: bool = True  # Beacon's own websocket framing and fan-out (app/realtime/hooks/); off: the libraries'


@dataclass(frozen=True)
class AuthConfig:
    enabled: bool = True
    # "name:role:secret" or "name:role:sha256:<hex digest of the secret>"; role viewer|operator|admin
    tokens: tuple[str, ...] = ()
    token_file: str = ""  # default: beacon.token beside the SQLite store (else data/beacon.token)
    max_connections_per_token: int = 100
    subscribe_rate: float = 20.0  # `subscribe`/`unsubscribe` events per second per connection (burst: 2 s)


@dataclass(frozen=True)
class PubSubConfig:
    url: str = "memory://"
    queue_size: int = 10000


@dataclass(frozen=True)
class StoreConfig:
    url: str = "sqlite:///data/beacon.sqlite"
    retention_days: float = 0.0  # finished threads older than this are erased; 0 keeps them forever
    log_retention_days: float = 0.0  # their log lines may go sooner; 0: as long as the thread


@dataclass(frozen=True)
class RunsConfig:
    grace_period: float = 10.0
    replay_cap: int = 10000
    max_line_bytes: int = 65536


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    format: str = "plain"  # or "json": one object per line (app/logformat.py)


@dataclass(frozen=True)
class GraphsConfig:
    config: str = ""  # path of a langgraph.json (app/workflows/langgraph_json.py); "" for none


WEBHOOK_EVENTS = ("waiting_approval", "completed", "failed", "cancelled")


@dataclass(frozen=True)
class WebhookConfig:
    """One `[[webhooks]]` entry: where to POST which run status changes, signed with `secret`."""

    url: str
    secret: str
    events: tuple[str, ...] = ("waiting_approval", "completed", "failed")
    timeout: float = 10.0  # seconds per attempt
    attempts: int = 5  # the first try included
    backoff: float = 1.0  # seconds before the second attempt; doubles each time (jittered, capped at 60)


DEFAULT_WORKFLOWS = {
    "review": "app.workflows.review:build",
    "deploy": "app.workflows.deploy:build",
    "bench": "app.workflows.bench:build",
    "agent": "app.workflows.agent:build",
}


@dataclass(frozen=True)
class Config:
    rest: RestConfig = field(default_factory=RestConfig)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    pubsub: PubSubConfig = field(default_factory=PubSubConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    runs: RunsConfig = field(default_factory=RunsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    graphs: GraphsConfig = field(default_factory=GraphsConfig)
    workflows: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_WORKFLOWS))
    webhooks: tuple[WebhookConfig, ...] = ()  # only from the file: [[webhooks]] tables


SECTIONS: dict[str, type] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(Config)
    if f.name not in ("workflows", "webhooks")
}


def _cast(value: Any, kind: Any, where: str) -> Any:
    """Strictly convert a TOML, environment or flag value to the field's type."""
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind is int:
            if isinstance(value, bool) or isinstance(value, float):
                raise ValueError("expected an integer")
            return int(str(value).strip())
        if kind is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(str(value).strip())
        if kind is str:
            if not isinstance(value, str):
                raise ValueError("expected a string")
            return value
        if typing.get_origin(kind) is tuple:
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ValueError("expected a list of strings")
            return tuple(i.strip() for i in items if i.strip())
    except ValueError as exc:
        nouns = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
        msg = str(exc) if "expected" in str(exc) else f"expected {nouns.get(kind, kind)}"
        raise ConfigError(f"{where}={value!r}: {msg}") from None
    raise ConfigError(f"{where}: unsupported type {kind}")


ROLES = ("viewer", "operator", "admin")
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$(?!\n)")  # (?!\n): see THREAD_ID


def parse_token(entry: str) -> tuple[str, str, str]:
    """`name:role:secret` (or `name:role:sha256:<hex>`) → (name, role, secret); ConfigError if malformed."""
    name, _, rest = entry.partition(":")
    role, _, secret = rest.partition(":")
    shown = f"{name}:{role}:…"  # never echo a secret
    if not TOKEN_NAME.match(name):
        raise ConfigError(f"auth.tokens={shown!r}: expected name:role:secret with a name of letters, digits, _.@-")
    if role not in ROLES:
        raise ConfigError(f"auth.tokens={shown!r}: role must be one of {', '.join(ROLES)}")
    if secret.startswith("sha256:"):
        if not re.fullmatch(r"[0-9a-f]{64}", secret[7:]):
            raise ConfigError(f"auth.tokens={shown!r}: sha256: needs 64 lowercase hex digits")
    elif len(secret) < 16:
        raise ConfigError(f"auth.tokens={shown!r}: the secret must be at least 16 characters")
    return name, role, secret


def parse_webhooks(value: Any, where: str) -> tuple[WebhookConfig, ...]:
    """The `[[webhooks]]` array of tables → typed, validated hooks; ConfigError names the entry and key."""
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ConfigError(f"{where}: webhooks must be an array of tables like [[webhooks]]")
    hints = typing.get_type_hints(WebhookConfig)
    hooks = []
    for i, table in enumerate(value):
        key = f"{where}: webhooks[{i}]"
        for name in table:
            if name not in hints:
                raise ConfigError(f"{key}: unknown key {name!r} (expected {', '.join(hints)})")
        for name in ("url", "secret"):
            if name not in table:
                raise ConfigError(f"{key}: {name} is required")
        hook = WebhookConfig(**{k: _cast(v, hints[k], f"{key}.{k}") for k, v in table.items()})
        try:
            url = urlsplit(hook.url)
            _ = url.port  # ValueError for a port out of range
        except ValueError:
            url = urlsplit("")
        if url.scheme not in ("http", "https") or not url.hostname:
            # The URL may carry credentials: name the key, not the value.
            raise ConfigError(f"{key}.url: expected an http:// or https:// URL with a host")
        if len(hook.secret) < 16:
            raise ConfigError(f"{key}.secret: must be at least 16 characters")  # never echo a secret
        unknown = [e for e in hook.events if e not in WEBHOOK_EVENTS]
        if unknown or not hook.events:
            raise ConfigError(f"{key}.events={list(hook.events)!r}: expected some of {', '.join(WEBHOOK_EVENTS)}")
        for name, bad, rule in (
            ("timeout", hook.timeout <= 0, "must be positive"),
            ("attempts", not 1 <= hook.attempts <= 20, "must be between 1 and 20"),
            ("backoff", hook.backoff < 0, "must not be negative"),
        ):
            if bad:
                raise ConfigError(f"{key}.{name}={getattr(hook, name)!r}: {rule}")
        hooks.append(hook)
    return tuple(hooks)


def _validate(cfg: Config) -> None:
    for name, port in (("rest.port", cfg.rest.port), ("realtime.port", cfg.realtime.port)):
        if not 0 <= port <= 65535:
            raise ConfigError(f"{name}={port}: must be between 0 and 65535")
    scheme = cfg.pubsub.url.split("://", 1)[0]
    if "://" not in cfg.pubsub.url or scheme not in ("memory", "redis", "rediss"):
        raise ConfigError(f"pubsub.url={cfg.pubsub.url!r}: expected memory:// or redis://host:port/db")
    scheme = cfg.store.url.split("://", 1)[0]
    if "://" not in cfg.store.url or scheme not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(f"store.url={cfg.store.url!r}: expected sqlite:///path or postgresql://…")
    if cfg.logging.level.upper() not in LEVEL_NAMES:
        raise ConfigError(f"logging.level={cfg.logging.level!r}: expected one of {', '.join(LEVEL_NAMES)}")
    if cfg.logging.format not in ("plain", "json"):
        raise ConfigError(f"logging.format={cfg.logging.format!r}: expected plain or json")
    for key, value in (
        ("rest.max_body_bytes", cfg.rest.max_body_bytes),
        ("realtime.max_message_bytes", cfg.realtime.max_message_bytes),
        ("pubsub.queue_size", cfg.pubsub.queue_size),
        ("runs.replay_cap", cfg.runs.replay_cap),
        ("runs.max_line_bytes", cfg.runs.max_line_bytes),
        ("auth.max_connections_per_token", cfg.auth.max_connections_per_token),
        ("auth.subscribe_rate", cfg.auth.subscribe_rate),
        ("rest.head_timeout", cfg.rest.head_timeout),
        ("realtime.head_timeout", cfg.realtime.head_timeout),
        ("realtime.connect_timeout", cfg.realtime.connect_timeout),
    ):
        if value <= 0:
            raise ConfigError(f"{key}={value}: must be positive")
    for key, days in (("store.retention_days", cfg.store.retention_days),
                      ("store.log_retention_days", cfg.store.log_retention_days)):
        if days < 0:
            raise ConfigError(f"{key}={days}: must not be negative (0 keeps forever)")
    if cfg.realtime.batch_interval < 0:
        raise ConfigError(f"realtime.batch_interval={cfg.realtime.batch_interval}: must not be negative")
    if cfg.runs.grace_period < 0:
        raise ConfigError(f"runs.grace_period={cfg.runs.grace_period}: must not be negative")
    names: set[str] = set()
    for entry in cfg.auth.tokens:
        name, role, secret = parse_token(entry)
        if name in names:
            raise ConfigError(f"auth.tokens: the name {name!r} is used twice")
        names.add(name)
    for name, target in cfg.workflows.items():
        if not isinstance(target, str) or ":" not in target:
            raise ConfigError(f"workflows.{name}={target!r}: expected 'module:factory'")


def load_config(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[Config, list[str]]:
    """Merge defaults < file < environment < overrides ("section.key": value).

    Returns the config and warnings (unknown BEACON_* variables). A missing file is an
    error only when a path was given explicitly.
    """
    environ = environ or {}
    raw: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    workflows: dict[str, str] = dict(DEFAULT_WORKFLOWS)
    webhooks: tuple[WebhookConfig, ...] = ()
    warnings: list[str] = []
    sources: dict[tuple[str, str], str] = {}

    def put(section: str, key: str, value: Any, where: str) -> None:
        if section == "workflows":
            if value == "":  # how a default workflow is dropped (say, for a langgraph.json graph of its name)
                workflows.pop(key, None)
            else:
                workflows[key] = value
            return
        if section not in raw:
            raise ConfigError(f"{where}: unknown section {section!r}")
        hints = typing.get_type_hints(SECTIONS[section])
        if key not in hints:
            raise ConfigError(f"{where}: unknown key {section}.{key}")
        raw[section][key] = _cast(value, hints[key], where)
        sources[(section, key)] = where

    if path is not None:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"--config {file}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
        for section, table in data.items():
            if section == "webhooks":
                webhooks = parse_webhooks(table, str(file))
                continue
            if not isinstance(table, dict):
                raise ConfigError(f"{file}: {section!r} must be a table like [{section}]")
            for key, value in table.items():
                put(section, key, value, f"{file}: {section}.{key}")

    for var, value in environ.items():
        if var in SEED_ENV:
            section, _, key = SEED_ENV[var].partition(".")
            put(section, key, value, var)
        elif var.startswith("BEACON_") and var not in CLIENT_ENV:
            section, _, key = var[len("BEACON_") :].lower().partition("_")
            if section == "workflows" and key:
                put(section, key, value, var)
            elif section in raw and key in typing.get_type_hints(SECTIONS[section]):
                put(section, key, value, var)
            else:
                warnings.append(f"ignoring unknown environment variable {var}")

    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        put(section, key, value, FLAGS.get(dotted, dotted))

    if ("rest", "cors_origins") not in sources and "cors_origins" in raw["realtime"]:
        raw["rest"]["cors_origins"] = raw["realtime"]["cors_origins"]  # the console calls both listeners
    cfg = Config(
        **{name: cls(**raw[name]) for name, cls in SECTIONS.items()},
        workflows=workflows,
        webhooks=webhooks,
    )
    try:
        _validate(cfg)
    except ConfigError as exc:
        section_key = str(exc).split("=", 1)[0]
        where = sources.get(tuple(section_key.split(".", 1)))  # type: ignore[arg-type]
        raise ConfigError(f"{where} ({exc})" if where else str(exc)) from None
    return cfg, warnings


def log_level(cfg: Config) -> int:
    return logging.getLevelName(cfg.logging.level.upper())  # type: ignore[no-any-return]
