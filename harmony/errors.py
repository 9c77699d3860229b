"""The typed errors Harmony raises; `web.py` renders them in one place.

Each error carries an HTTP status, a short machine code and a message meant for the
user. Handlers and domain code raise these; nothing else turns into a 4xx.
"""

from __future__ import annotations

from typing import Any


class HarmonyError(Exception):
    """Root of every expected error. `details` must be JSON-serialisable."""

    status = 500
    code = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadInput(HarmonyError):
    status = 400
    code = "bad_input"


class Unauthorized(HarmonyError):
    status = 401
    code = "unauthorized"


class Forbidden(HarmonyError):
    status = 403
    code = "forbidden"


class NotFound(HarmonyError):
    status = 404
    code = "not_found"


class Conflict(HarmonyError):
    status = 409
    code = "conflict"


class NotConfigured(Conflict):
    """A feature needs setup that is missing: Spotify has no client id, or no account connected.

    409, not 503: nothing is down and retrying will not help until someone configures or
    connects it, so monitors and clients must not treat it as an outage to wait out; and not
    400, because the request itself was fine; the server's state is what is missing.
    """

    code = "not_configured"


class TooLarge(HarmonyError):
    """A request body over the API's limit."""

    status = 413
    code = "too_large"


class UnsupportedMediaType(HarmonyError):
    """A request body that is not JSON where JSON is expected."""

    status = 415
    code = "unsupported_media_type"


class Invalid(HarmonyError):
    """A well-formed body whose values are wrong (an option value, a field out of range);
    `details` names the field."""

    status = 422
    code = "invalid"


class TooManyRequests(HarmonyError):
    """The client must wait `details['retry_after']` seconds (rendered as `Retry-After`)."""

    status = 429
    code = "too_many_requests"


class UpstreamUnavailable(HarmonyError):
    """An upstream could not be reached, timed out, or answered 5xx."""

    status = 503
    code = "upstream_unavailable"


class UpstreamRejected(HarmonyError):
    """An upstream answered, but refused the request (4xx other than rate limits)."""

    status = 502
    code = "upstream_rejected"


class UpstreamCoolingDown(UpstreamUnavailable):
    """An upstream asked us to wait (429 with a long Retry-After); `details['until']` says until when."""

    code = "upstream_cooling_down"


class DiskFull(HarmonyError):
    """The data directory's filesystem is full (or below its free-space floor): writes wait."""

    status = 503
    code = "disk_full"


class ReadOnly(HarmonyError):
    """The database or the data directory cannot be written (a read-only mount or file)."""

    status = 503
    code = "read_only"


class ConfigError(HarmonyError):
    """A bad configuration value or key. The CLI exits 2 with the message."""

    code = "config"


class DatabaseTooNew(HarmonyError):
    """The database was written by a newer Harmony; refuse to touch it."""

    code = "database_too_new"
