"""The base every route module stands on: request readers, paging, rendering and the guard.

Route modules (`web_*.py`) each define `register(app, ctx)`, which unpacks what it needs
from the context, defines its handlers, and ends with its route table:

    app.route("/api/v1/jobs", "GET", list_jobs, role="read")

A handler reads its input only through the helpers here (`json_body`, the `*_param`
readers, `page_params`), returns a dict (sent as JSON), a list page from `paged`, or HTML
from `render`, and raises a `HarmonyError` for anything else: `Guard` renders every error in
one place (`render_error`). Every route under `/api/` declares its role (`read`,
`operator`, `admin`); the guard authenticates the request for it. No SQL lives in route
modules: they call the domain modules.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import apsw
import bottle
from bottle import HTTPResponse, request

from . import __version__, auth
from .errors import (
    BadInput,
    DiskFull,
    HarmonyError,
    ReadOnly,
    TooLarge,
    TooManyRequests,
    Unauthorized,
)

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

MAX_PAGE = 500
DEFAULT_PAGE = 50
MAX_BODY = 1024 * 1024
MAX_DEPTH = 32  # nesting of a JSON body; no route takes more than a few levels
MAX_ID = 2**63 - 1  # what SQLite stores in an INTEGER
ID_PATTERN = re.compile(r"[1-9][0-9]{0,18}")
STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
TEMPLATE_DIR = os.path.join(os.path.dirname(__file__), "templates")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


# --- reading the request ---------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise BadInput(f"duplicate key {key!r} in the JSON body", field=key[:100])
        seen[key] = value
    return seen


def _check_value(value: Any, path: str, depth: int) -> None:
    """Every string encodes to UTF-8 (no lone surrogates) and nesting stays shallow."""
    if depth > MAX_DEPTH:
        raise BadInput(f"the JSON body is nested more than {MAX_DEPTH} levels deep", field=path)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput(f"{path or 'the body'} holds text that is not valid Unicode", field=path) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value(key, path, depth + 1)
            _check_value(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]", depth + 1)


def json_body(allowed: Iterable[str] | None = None) -> dict[str, Any]:
    """The request body as a JSON object, or BadInput. An empty body counts as `{}`.

    Refuses bodies over MAX_BODY (413), a content type other than JSON, invalid JSON,
    duplicate keys, nesting deeper than MAX_DEPTH, text that is not valid Unicode, and
    non-finite numbers. With `allowed`, a key outside it is refused, naming the key.
    """
    length = request.content_length
    if length > MAX_BODY:
        raise TooLarge(f"request body too large (over {MAX_BODY} bytes)", limit=MAX_BODY)
    raw = request.body.read(MAX_BODY + 1) if length != 0 else b""
    if len(raw) > MAX_BODY:
        raise TooLarge(f"request body too large (over {MAX_BODY} bytes)", limit=MAX_BODY)
    if not raw.strip():
        return {}
    ctype = request.content_type.split(";")[0].strip().lower()
    if ctype and ctype != "application/json":
        raise BadInput("request body must be application/json", content_type=ctype[:100])
    try:
        body = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except RecursionError:
        raise BadInput(f"the JSON body is nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, BadInput):
            raise
        raise BadInput(f"request body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise BadInput("request body must be a JSON object")
    _check_value(body, "", 0)
    if allowed is not None:
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise BadInput(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
    return body


class _NotJson(BadInput, ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


def _query(name: str) -> str | None:
    """A query parameter as text; None when absent or empty. Bad Unicode is BadInput."""
    try:
        raw = request.query.getunicode(name)
    except UnicodeError:
        raw = None
    if raw is None:
        if name in request.query:
            raise BadInput(f"query parameter {name} is not valid UTF-8", parameter=name)
        return None
    return raw or None


def int_param(name: str, default: int | None = None, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """A query-string integer (ASCII digits) within bounds, or BadInput naming the parameter."""
    raw = _query(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", raw):
        raise BadInput(f"query parameter {name} must be an integer", parameter=name, value=raw[:100])
    value = int(raw)
    if not minimum <= value <= maximum:
        raise BadInput(f"query parameter {name} must be between {minimum} and {maximum}", parameter=name)
    return value


def str_param(name: str, max_length: int = 200) -> str | None:
    """A query-string text of at most `max_length` printable characters, or None."""
    raw = _query(name)
    if raw is None:
        return None
    if len(raw) > max_length or not raw.isprintable():
        raise BadInput(
            f"query parameter {name} must be at most {max_length} printable characters", parameter=name
        )
    return raw


def choice_param(name: str, choices: Iterable[str]) -> str | None:
    raw = _query(name)
    if raw is None:
        return None
    allowed = list(choices)
    if raw not in allowed:
        raise BadInput(f"query parameter {name} must be one of {', '.join(allowed)}", parameter=name)
    return raw


def bool_param(name: str) -> bool | None:
    raw = _query(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise BadInput(f"query parameter {name} must be true or false", parameter=name)
    return raw == "true"


def path_id(value: str, name: str = "id") -> int:
    """A positive integer id from the path (ASCII digits, within SQLite's range), or BadInput."""
    if not ID_PATTERN.fullmatch(value) or int(value) > MAX_ID:
        raise BadInput(f"{name} must be a positive integer", **{name: value[:40]})
    return int(value)


def body_id(value: Any, field: str) -> int:
    """A positive integer id from a JSON body, within SQLite's range, or BadInput naming the field."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise BadInput(f"{field} must be a positive integer id", field=field)
    return value


# --- paging -------------------------------------------------------------------------------------
# A cursor is the sort key of the last row of a page (a tuple of ints and strings), sent as an
# opaque URL-safe string, so a list can page over composite keys (artist name, then id).

Key = tuple[Any, ...]


def encode_cursor(key: Sequence[Any]) -> str:
    text = json.dumps(list(key), separators=(",", ":"), ensure_ascii=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(raw: str, shape: Sequence[type]) -> Key:
    """The key in `raw`, checked against `shape` (the type of each element), or BadInput."""
    bad = BadInput("query parameter cursor is not a cursor from this list", parameter="cursor")
    if len(raw) > 700:
        raise bad
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        key = json.loads(text)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(key, list) or len(key) != len(shape):
        raise bad
    for value, kind in zip(key, shape):
        if kind is float and isinstance(value, int):
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise bad
        if isinstance(value, int) and not -MAX_ID <= value <= MAX_ID:
            raise bad
        if isinstance(value, float) and not math.isfinite(value):
            raise bad
    return tuple(key)


def page_params(shape: Sequence[type] = (int,)) -> tuple[int, Key | None]:
    """(limit, after) from `?limit=&cursor=`; `after` is None for the first page."""
    limit = int_param("limit", DEFAULT_PAGE, 1, MAX_PAGE)
    assert limit is not None
    raw = _query("cursor")
    return limit, None if raw is None else decode_cursor(raw, shape)


def paged(
    items: Sequence[Any],
    limit: int,
    key: Callable[[Any], Sequence[Any]] = lambda item: (item["id"],),
    *,
    total: int | None = None,
) -> dict[str, Any]:
    """One page: callers fetch `limit + 1` items so the next cursor is known. Items that are
    not dicts are sent as their `to_dict()`."""
    page = list(items[:limit])
    more = len(items) > limit
    body: dict[str, Any] = {
        "items": [item if isinstance(item, dict) else item.to_dict() for item in page],
        "next_cursor": encode_cursor(key(page[-1])) if more and page else None,
    }
    if total is not None:
        body["total"] = total
    return body


def current_key() -> dict[str, Any] | None:
    """The authenticated API key row of this request, if the route needed one."""
    return request.environ.get("harmony.key")  # type: ignore[no-any-return]


# --- rendering ----------------------------------------------------------------------------------


def ago(then: float | None, now: float) -> str:
    """`12s ago`, `5m ago`, `in 3m`; an em dash for never."""
    if not then:
        return "—"
    delta = now - then
    text = span(abs(delta))
    return f"{text} ago" if delta >= 0 else f"in {text}"


def span(seconds: float) -> str:
    """`45s`, `5m`, `2h`, `3d`: the largest whole unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def render(template: str, **values: Any) -> str:
    """An HTML page from `templates/<template>.tpl`, with the security headers every page
    carries. Templates get `version`, `now`, `ago` and `span` besides `values`."""
    for name, value in PAGE_HEADERS.items():
        bottle.response.set_header(name, value)
    values.setdefault("now", time.time())
    return str(
        bottle.template(
            template, template_lookup=[TEMPLATE_DIR], version=__version__, ago=ago, span=span, **values
        )
    )


def wants_json(path: str) -> bool:
    """JSON for the API and the machine endpoints; an HTML page for what a browser opens."""
    return path.startswith(("/api/", "/live", "/ready", "/env", "/metrics"))


def error_json(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    """The one error shape, as JSON bytes."""
    return json.dumps({"error": {"code": code, "message": message, "details": details or {}}}).encode()


def render_error(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> HTTPResponse:
    """The one error renderer: JSON `{"error": {code, message, details}}` or an HTML page."""
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="harmony"'
    retry_after = (details or {}).get("retry_after")
    if status in (429, 503) and isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if wants_json(request.path):
        body: bytes | str = error_json(code, message, details)
        headers["Content-Type"] = "application/json"
    else:
        body = render("error", status=status, code=code, message=message)
        headers["Content-Type"] = "text/html; charset=utf-8"
        for name, value in PAGE_HEADERS.items():
            headers[name] = value
    return HTTPResponse(body, status, **headers)


def _credential() -> str | None:
    """The API key from `X-API-Key` or `Authorization: Bearer`, as sent.

    WSGI hands header values over as latin-1 text; a key is ASCII, so anything else (an
    undecodable or non-ASCII value) is an invalid key, never a server error.
    """
    environ = request.environ
    header = environ.get("HTTP_AUTHORIZATION", "")
    bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
    key = environ.get("HTTP_X_API_KEY") or bearer
    if key is not None and not (key.isascii() and key.isprintable()):
        raise Unauthorized("invalid API key")
    return key


class Guard:
    """Bottle plugin on every route: authentication for the route's role, then error rendering.

    Failed authentication is counted per client address; past the limit the address gets 429
    with `Retry-After` before any key is looked at, and only a sample of failures is logged.
    """

    name = "harmony_guard"
    api = 2

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        need: str | None = route.config.get("role")
        db, throttle = self.ctx.db, self.ctx.auth_throttle

        def authenticate() -> None:
            address = request.environ.get("REMOTE_ADDR") or "-"
            wait = throttle.blocked(address)
            if wait:
                request.environ["harmony.quiet"] = True
                raise TooManyRequests(
                    "too many failed authentications from this address; try again later",
                    retry_after=round(wait, 1),
                )
            try:
                request.environ["harmony.key"] = auth.authenticate(db, _credential(), need or "read")
            except Unauthorized:
                if not throttle.failed(address):
                    request.environ["harmony.quiet"] = True
                raise

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                if need:
                    authenticate()
                return callback(*args, **kwargs)
            except HTTPResponse:
                raise
            except HarmonyError as exc:
                return render_error(exc.status, exc.code, exc.message, exc.details)
            except apsw.FullError:
                error: HarmonyError = DiskFull("the data directory is full; free some space and retry")
                return render_error(error.status, error.code, error.message)
            except (apsw.ReadOnlyError, apsw.CantOpenError):
                error = ReadOnly("the database cannot be written (read-only); check the data directory")
                return render_error(error.status, error.code, error.message)
            except Exception:
                log.exception(
                    "unhandled_error",
                    extra={
                        "fields": {
                            "request_id": request.environ.get("harmony.request_id"),
                            "route": route.rule,
                        }
                    },
                )
                return render_error(500, "internal", "internal error; see the server log for this request id")

        return wrapper
