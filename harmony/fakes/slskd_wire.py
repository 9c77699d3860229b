"""How the fake slskd writes: JSON bodies, error bodies, timestamps, TimeSpans, ids and usernames.

Shared by the fake slskd's route modules (`slskd.py`, `slskd_searches.py`, `slskd_transfers.py`).
Real slskd (ASP.NET Core, System.Text.Json) leaves null properties out, writes error messages
as JSON strings, answers a bare `NotFound()`/`BadRequest()` with an empty body, tags UTC
timestamps with `Z` (7 fraction digits, trailing zeros trimmed) and durations as TimeSpans.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, NoReturn
from urllib.parse import unquote

import bottle

BUSY_MESSAGE = "Only one concurrent operation is permitted. Wait until the previous request completes"


def error_body(status: int, message: str) -> tuple[bytes, str]:
    """slskd's error shape: a JSON string, or an empty body for bare 400/401/403/404."""
    if not message and status in (400, 401, 403, 404):
        return b"", "application/json"
    return json.dumps(message or "An unexpected error occurred").encode(), "application/json"


def iso(ts: float, *, utc: bool) -> str:
    """ISO-8601 as slskd writes it: `Z` and up to 7 fraction digits (trailing zeros trimmed)
    when the value is UTC-kind, else 6 digits and no zone (read back from its database)."""
    moment = dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)
    text = moment.isoformat(timespec="microseconds")
    if not utc:
        return text
    whole, fraction = text.split(".")
    fraction = (fraction + "0").rstrip("0")
    return f"{whole}.{fraction}Z" if fraction else f"{whole}Z"


def timespan(seconds: float) -> str:
    """.NET TimeSpan constant format: `[d.]hh:mm:ss[.fffffff]`."""
    ticks = max(0, round(seconds * 10_000_000))
    total, fraction = divmod(ticks, 10_000_000)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{days}." if days else ""
    text += f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return text + (f".{fraction:07d}" if fraction else "")


def json_response(data: Any, status: int = 200) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(
        json.dumps(data, ensure_ascii=False).encode(), status, headers={"Content-Type": "application/json"}
    )


def empty(status: int) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(b"", status)


def fail(status: int, message: str = "") -> NoReturn:
    body, ctype = error_body(status, message)
    raise bottle.HTTPResponse(body, status, headers={"Content-Type": ctype} if body else {})


def body(kind: type) -> Any:
    """The request's JSON body, which must be a `kind` (list or dict); 400 otherwise."""
    try:
        data = json.loads(bottle.request.body.read() or b"null")
    except ValueError:
        fail(400, "The request body is not valid JSON")
    if not isinstance(data, kind):
        fail(400, f"The request body must be a JSON {'array' if kind is list else 'object'}")
    return data


def guid(value: str) -> str:
    """A route id that must be a GUID; a bare, empty 400 otherwise (model binding fails)."""
    try:
        uuid.UUID(value)
    except ValueError:
        raise bottle.HTTPResponse(b"", 400) from None
    return value


def route_value(raw: str, *, decode_slash: bool) -> str:
    """A route segment as the controller sees it. The fake routes on the raw request target, so
    segments arrive percent-encoded. slskd 0.25+ (`[UrlEncoded]`) decodes them once, `%2F`
    included; older ones got Kestrel's decoding, which leaves `%2F` encoded."""
    if decode_slash:
        return unquote(raw)
    return "%2F".join(unquote(part) for part in raw.replace("%2f", "%2F").split("%2F"))


def disconnected(action: str) -> str:
    return (
        f"The server connection must be connected and logged in to perform a {action} "
        "(currently: Disconnected)"
    )
