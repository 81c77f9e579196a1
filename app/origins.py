"""Which browser origins may call Beacon: one rule for both listeners."""

from __future__ import annotations

from collections.abc import Callable


class Origins:
    """The browser origins allowed on the realtime listener, with `{rest_port}` read at each check.

    The realtime app is built before the REST listener binds its port (port 0 picks it then), so
    python-socketio gets this callable for `cors_allowed_origins`, not a list fixed at start.
    """

    def __init__(self, patterns: tuple[str, ...], rest_port: Callable[[], int]) -> None:
        self.patterns = patterns
        self.any = "*" in patterns
        self._rest_port = rest_port

    def __call__(self, origin: str | None, environ: object = None) -> bool:
        return origin is not None and (self.any or origin in self.allowed())

    def allowed(self) -> tuple[str, ...]:
        port = str(self._rest_port())
        return tuple(pattern.replace("{rest_port}", port) for pattern in self.patterns)
