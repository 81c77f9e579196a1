"""Tokens and roles: who a bearer token names, what its role allows, and the generated admin token."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from app.config import ROLES, Config, ConfigError, parse_token
from app.store.base import TokenRecord
from app.store.urls import sqlite_path

logger = logging.getLogger(__name__)

RANK = {role: rank for rank, role in enumerate(ROLES)}
PUBLIC = "public"
ANONYMOUS = "anonymous"  # the identity of every caller while auth.enabled is false


def digest(secret: str) -> str:
    # surrogatepass: aiohttp hands a non-UTF-8 header byte over as a lone surrogate, and so may a
    # Socket.IO auth payload; such a secret must digest (and match nothing), not raise.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Token:
    name: str
    role: str
    digest: str
    source: str = "config"  # config | file | api

    def allows(self, role: str) -> bool:
        return role == PUBLIC or RANK[self.role] >= RANK[role]


class Denied(Exception):
    """Why a caller is refused: `unauthorized` (no or unknown token) or `forbidden` (role too small)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Auth:
    """Known tokens by the SHA-256 of their secret: the secrets themselves are never kept."""

    def __init__(self, enabled: bool, tokens: list[Token]) -> None:
        self.enabled = enabled
        self._fixed = {t.digest: t for t in tokens}  # from the config and the token file
        self._by_digest = dict(self._fixed)
        self._revoke_listeners: list[Callable[[Token], None]] = []

    def identify(self, secret: object) -> Token | None:
        if not self.enabled:
            return Token(ANONYMOUS, "admin", "")
        if not isinstance(secret, str) or not secret or len(secret) > 512:
            return None
        return self._by_digest.get(digest(secret))

    def check(self, secret: object, role: str) -> Token:
        """The caller's token if its role is at least `role`; raises Denied otherwise."""
        token = self.identify(secret)
        if role == PUBLIC:
            return token or Token(ANONYMOUS, "viewer", "")
        if token is None:
            raise Denied("unauthorized")
        if not token.allows(role):
            raise Denied("forbidden")
        return token

    def fixed_admins(self) -> frozenset[str]:
        """Digests of the admin tokens from the config and the token file (the store holds the rest)."""
        return frozenset(d for d, t in self._fixed.items() if t.role == "admin")

    def tokens(self) -> list[Token]:
        return sorted(self._by_digest.values(), key=lambda t: t.name)

    def find(self, name: str) -> Token | None:
        return next((t for t in self._by_digest.values() if t.name == name), None)

    def apply(self, records: Iterable[TokenRecord]) -> None:
        """Follow the store: add live API tokens, drop every revoked digest, and tell the listeners
        (the realtime app disconnects the sockets of a token that went away)."""
        records = list(records)
        revoked = {r.digest for r in records if r.revoked_at}
        live = {d: t for d, t in self._fixed.items() if d not in revoked}
        for r in records:
            if r.revoked_at is None and r.source == "api":
                live[r.digest] = Token(r.name, r.role, r.digest, "api")
        gone = [t for d, t in self._by_digest.items() if d not in live]
        self._by_digest = live
        for token in gone:
            for listener in self._revoke_listeners:
                listener(token)

    def on_revoke(self, listener: Callable[[Token], None]) -> None:
        self._revoke_listeners.append(listener)


def request_secret(headers: Mapping[str, str]) -> str | None:
    """The secret a request carries: `Authorization: Bearer …`, else `x-api-key` (the LangGraph SDKs')."""
    scheme, _, secret = headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else headers.get("x-api-key")


def token_path(cfg: Config) -> Path:
    if cfg.auth.token_file:
        return Path(cfg.auth.token_file)
    if cfg.store.url.startswith("sqlite:"):
        return sqlite_path(cfg.store.url).parent / "beacon.token"
    return Path("data") / "beacon.token"


def read_or_create_token_file(path: Path) -> tuple[str, bool]:
    """The admin secret in `path`, created with mode 0600 when absent; (secret, created)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("%s is readable by other users (mode %o): chmod 600 it", path, stat.S_IMODE(mode))
        secret = path.read_text().strip()
        if len(secret) < 16:
            raise ValueError(f"{path}: expected a token of at least 16 characters") from None
        return secret, False
    secret = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret, True


def load_auth(cfg: Config) -> tuple[Auth, str | None]:
    """The token registry, and the admin secret of the token file when there is one (for the login URL).

    Configured tokens come from `auth.tokens`. With none configured, the token file (created on
    first start) holds an admin token named `admin`.
    """
    tokens = []
    for entry in cfg.auth.tokens:
        name, role, secret = parse_token(entry)
        tokens.append(Token(name, role, secret[7:] if secret.startswith("sha256:") else digest(secret)))
    login: str | None = None
    path = token_path(cfg)
    if cfg.auth.enabled and (not tokens or path.exists()):
        path.parent.mkdir(parents=True, exist_ok=True)
        login, created = read_or_create_token_file(path)
        if created:
            logger.info("generated an admin token in %s", path)
        if all(t.name != "admin" for t in tokens):
            tokens.append(Token("admin", "admin", digest(login), "file"))
    return Auth(cfg.auth.enabled, tokens), login


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def check_exposure(cfg: Config, insecure: bool) -> list[str]:
    """Refuse auth.enabled = false on a non-loopback listener unless --insecure; the warnings to log."""
    if cfg.auth.enabled:
        return []
    exposed = [h for h in (cfg.rest.host, cfg.realtime.host) if not is_loopback(h)]
    if not exposed:
        return ["auth is disabled: every local process may start, approve and cancel runs"]
    if not insecure:
        raise ConfigError(
            f"auth.enabled=false while listening on {', '.join(exposed)}: anyone who can reach Beacon could "
            "approve a run. Enable auth, listen on 127.0.0.1, or pass --insecure"
        )
    return [f"INSECURE: auth is disabled and Beacon listens on {', '.join(exposed)}; anyone who reaches it is admin"]
