"""Domain errors, each carrying the HTTP status and error code it maps to."""

from __future__ import annotations

from typing import Any


class BeaconError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFound(BeaconError):
    status, code = 404, "not_found"


class Conflict(BeaconError):
    status, code = 409, "conflict"


class ThreadExists(Conflict):
    code = "thread_exists"


class ThreadBusy(Conflict):
    code = "thread_busy"


class TokenExists(Conflict):
    code = "token_exists"


class LastAdmin(Conflict):
    """Revoking this token would leave no admin: nobody could manage tokens any more."""

    def __init__(self) -> None:
        super().__init__("the last admin token cannot be revoked: create another admin token first")


class NotWaiting(Conflict):
    code = "not_waiting"


class StaleInterrupt(Conflict):
    code = "stale_interrupt"


class Invalid(BeaconError):
    status, code = 422, "validation_error"


class StoreUnavailable(BeaconError):
    status, code = 503, "store_unavailable"


class ShuttingDown(BeaconError):
    status, code = 503, "shutting_down"


class SchemaTooNew(BeaconError):
    """The store was migrated by a newer Beacon: start-up stops with this one line."""

    status, code = 503, "store_unavailable"
