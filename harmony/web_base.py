"""The base every route module stands on: request readers, paging, rendering and the guard.

Route modules (`web_*.py`) each define `register(app, ctx)`, which unpacks what it needs
from the context, defines its handlers, and ends with its route table:

    app.route("/api/v1/jobs", "GET", list_jobs, role="read")
    app.route("/ui/jobs", "GET", jobs_page, role="read")

A handler reads its input only through the helpers here (`json_body`, the `*_param`
readers, `page_params`), returns a dict (sent as JSON), a list page from `paged`, or HTML
from `render`, and raises a `HarmonyError` for anything else: `Guard` renders every error in
one place (`render_error`). Every route under `/api/` declares its role (`read`,
`operator`, `admin`); the guard authenticates the request for it, with an API key or a web
UI session (`auth.find_session`), and is the one place that checks the CSRF token of a
session's state-changing request. A page under `/ui/` asked for without either is sent to
the login page. No SQL lives in route modules: they call the domain modules.

Pages: a handler returns `render("<family>_<page>", **values)`; templates get the signed-in
`user`, `can(role)`, the CSRF token, the navigation (`NAV`, one row per page family: add a
row to give a new family its entry), a flash message and the URL helpers below. A form
action (`POST /ui/...`) reads its fields with `form_text`/`form_int`/`form_list`, does its
work, and answers `see_other(back, "what happened")`: a 303 to the page it came from, which
shows the message once. htmx requests it the same way and swaps in the part it names, so
every action also works as a plain form when script is off.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import apsw
import bottle
from bottle import HTTPResponse, request

from . import __version__, auth, events, playlists, wanted, watchlist
from .errors import (
    BadInput,
    DiskFull,
    Forbidden,
    HarmonyError,
    Invalid,
    ReadOnly,
    TooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
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
    "Cache-Control": "no-store",
}
SESSION_COOKIE = "harmony_session"
FLASH_COOKIE = "harmony_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_METHODS = frozenset({"GET", "HEAD"})
# Who a request is with no key or session when `auth.open_reads` lets it read.
ANONYMOUS: dict[str, Any] = {"id": None, "name": "anonymous", "role": "read"}
LOGIN_PATH = "/ui/login"
MAX_FORM = 64 * 1024

# The navigation: (family, path, label, least role). A page family gets its entry here; the
# layout shows the entries the signed-in role may open.
NAV: list[tuple[str, str, str, str]] = [
    ("dashboard", "/ui/", "Dashboard", "read"),
    ("watchlist", "/ui/watchlist", "Watchlist", "read"),
    ("wanted", "/ui/wanted", "Wanted", "read"),
    ("downloads", "/ui/downloads", "Downloads", "read"),
    ("library", "/ui/library", "Library", "read"),
    ("quarantine", "/ui/quarantine", "Quarantine", "read"),
    ("playlists", "/ui/playlists", "Playlists", "read"),
    ("activity", "/ui/activity", "Activity", "read"),
    ("jobs", "/ui/jobs", "Jobs", "read"),
    ("settings", "/ui/settings", "Settings", "read"),
    ("spotify", "/ui/spotify", "Spotify", "read"),
    ("keys", "/ui/keys", "API keys", "admin"),
    ("system", "/ui/system", "System", "read"),
]


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
    """The request body as a JSON object. An empty body counts as `{}`.

    Refuses a body over MAX_BODY (413 TooLarge), a content type other than JSON (415
    UnsupportedMediaType), and a body that cannot be read as one JSON object (400 BadInput):
    invalid JSON, not an object, duplicate keys, nesting deeper than MAX_DEPTH, text that is
    not valid Unicode, non-finite numbers. With `allowed`, a key outside it is a wrong field
    of a well-formed body (422 Invalid, naming the key), as a handler's own checks of each
    field are: every route that takes no body passes `allowed=()`, so a body it would ignore
    is refused instead.
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
        raise UnsupportedMediaType("request body must be application/json", content_type=ctype[:100])
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
            named = [name[:100] for name in unknown[:20]]
            raise Invalid(f"unknown field(s): {', '.join(named)}", field=named[0], fields=named)
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


def listed(rows: Sequence[Any], limit: int, after: Key | None) -> dict[str, Any]:
    """One page of a list held whole in memory (tasks, settings, a search's candidates, the
    Spotify user's playlists), by position: the cursor is the offset of the page's end, and
    `total` counts the whole list. Call with `page_params()` (shape `(int,)`)."""
    start = after[0] if after is not None else 0
    if not 0 <= start <= len(rows):
        raise BadInput("query parameter cursor is not a cursor from this list", parameter="cursor")
    page = rows[start : start + limit]
    end = start + len(page)
    return {
        "items": [row if isinstance(row, dict) else row.to_dict() for row in page],
        "next_cursor": encode_cursor((end,)) if end < len(rows) else None,
        "total": len(rows),
    }


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


def countdown(seconds: float) -> str:
    """`45s`, `4m 05s`, `2h 10m`, `3d 4h`: the two largest units, for a time that ticks down."""
    left = max(0, int(seconds))
    days, rest = divmod(left, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def nbytes(count: float | None) -> str:
    """A size as `812 B`, `4.2 kB`, `38.1 MB`, `1.4 GB` (powers of 1,000, as slskd shows them)."""
    if count is None:
        return "—"
    value, unit = float(count), "B"
    for bigger in ("kB", "MB", "GB"):
        if abs(value) < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"


def when(then: float | None) -> str:
    """A UTC time as `2026-05-01 14:03`; an em dash for never."""
    if not then:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(then))


def signed_in() -> dict[str, Any] | None:
    """Who made this request: the API key's or the session's `id`, `name` and `role`."""
    return current_key()


def can(need: str) -> bool:
    """Whether the signed-in role meets `need`: pages hide what it cannot do."""
    user = signed_in()
    return bool(user) and auth.role_allows(user["role"], need)  # type: ignore[index]


def here() -> str:
    """This request's path and query: what a form sends back as `back`."""
    query = request.query_string
    return request.path + (f"?{query}" if query else "")


def url(path: str, params: Mapping[str, Any] | None = None, **changes: Any) -> str:
    """`path` with a query built from `params` and `changes` (a None value drops the key)."""
    merged = {**(params or {}), **changes}
    query = urlencode({k: v for k, v in merged.items() if v is not None and v != ""})
    return f"{path}?{query}" if query else path


def badge(state: str) -> str:
    """A state as a coloured badge (markup: templates print it with `{{!badge(x)}}`)."""
    text = html.escape(str(state))
    return f'<span class="badge {text}">{text.replace("_", " ")}</span>'


def _take_flash() -> tuple[str, str] | None:
    raw = request.get_cookie(FLASH_COOKIE)
    if not raw:
        return None
    bottle.response.delete_cookie(FLASH_COOKIE, path="/ui/")
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None
    if kind not in ("ok", "error") or not isinstance(text, str):
        return None
    return kind, text[:500]


def take_flash() -> tuple[str, str] | None:
    """The message the last action left for this page, taken now: for a page that shows it next
    to what it concerns (it then passes `flash=()` to `render`, so it is not shown twice)."""
    return _take_flash()


def render(template: str, *, fragments: Mapping[str, str] | None = None, **values: Any) -> str:
    """An HTML page from `templates/<template>.tpl`, with the security headers every page
    carries. Templates get `version`, `now`, `ago`, `span`, `countdown`, `nbytes`, `when`, `url`,
    the signed-in `user`, `can`, `csrf`, `nav`, `here` and a `flash` message besides `values`.

    `fragments` maps element ids to partials (`{"wanted-table": "_wanted_table"}`): an htmx
    request that targets one of them gets that partial alone."""
    for name, value in PAGE_HEADERS.items():
        bottle.response.set_header(name, value)
    values.setdefault("now", time.time())
    target = request.environ.get("HTTP_HX_TARGET")
    fragment = (
        fragments
        and target in fragments
        and request.environ.get("HTTP_HX_REQUEST") == "true"
        and request.environ.get("HTTP_HX_BOOSTED") != "true"
    )
    if fragment:
        assert fragments is not None and target is not None
        template = fragments[target]
    user = signed_in()
    session = request.environ.get("harmony.session")
    role = user["role"] if user else None
    given = values.pop("flash", None)  # a message to show, or () for none
    last_flash = [given if given is not None else _take_flash()]
    html = str(
        bottle.template(
            template,
            template_lookup=[TEMPLATE_DIR],
            version=__version__,
            ago=ago,
            span=span,
            countdown=countdown,
            nbytes=nbytes,
            when=when,
            url=url,
            badge=badge,
            user=user,
            can=can,
            csrf=session["csrf_token"] if session else "",
            session=session,
            nav=[row for row in NAV if role and auth.role_allows(role, row[3])],
            here=here(),
            flash=last_flash[0],
            **values,
        )
    )
    if fragment:  # the message of the action that led here goes along (`hx-select-oob="#flash"`)
        html += str(bottle.template("_flash", template_lookup=[TEMPLATE_DIR], flash=last_flash[0]))
    return html


def event_rows(db: Any, items: Sequence[events.Event]) -> list[dict[str, Any]]:
    """Events as the activity lists show them: when, what, a link to what they concern and
    the reason, with the names of the items, artists and playlists looked up once."""
    titles = wanted.titles(db, [e.item_id for e in items if e.item_id])
    artists = watchlist.artist_names(db, [e.artist_id for e in items if e.artist_id])
    lists = playlists.names(db, [e.playlist_id for e in items if e.playlist_id])
    rows = []
    for event in items:
        if event.item_id:
            subject = titles.get(event.item_id, f"item {event.item_id}")
            link = f"/ui/wanted/{event.item_id}" if event.item_id in titles else None
        elif event.artist_id:
            subject = artists.get(event.artist_id, f"artist {event.artist_id}")
            link = f"/ui/artists/{event.artist_id}" if event.artist_id in artists else None
        elif event.playlist_id:
            subject = lists.get(event.playlist_id, f"playlist {event.playlist_id}")
            link = f"/ui/playlists#playlist-{event.playlist_id}" if event.playlist_id in lists else None
        else:
            subject, link = "", None
        change = ""
        if event.to_state:
            change = f"{event.from_state} → {event.to_state}" if event.from_state else event.to_state
        rows.append(
            {
                "id": event.id,
                "at": event.at,
                "kind": event.kind,
                "subject": subject,
                "link": link,
                "change": change,
                "code": event.code or "",
                "message": event.message or "",
            }
        )
    return rows


# --- forms and redirects (the UI's actions) ---------------------------------------------------


def _form() -> bottle.FormsDict:
    if request.content_length > MAX_FORM:
        raise TooLarge(f"form too large (over {MAX_FORM} bytes)", limit=MAX_FORM)
    try:
        return request.forms
    except Exception:  # a body Bottle cannot parse as a form
        raise BadInput("the request body is not a form") from None


def _decoded(raw: str) -> str:
    # Bottle hands form values over as latin-1 text; a browser sends UTF-8.
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise BadInput("a form field is not valid UTF-8 text") from None


def form_text(name: str, max_length: int = 200, *, required: bool = False) -> str | None:
    """A form field as stripped text (None when absent or blank), at most `max_length`
    printable characters, or BadInput naming the field."""
    raw = _form().get(name)
    value = _decoded(raw).strip() if isinstance(raw, str) else ""
    if not value:
        if required:
            raise BadInput(f"{name} is required", field=name)
        return None
    if len(value) > max_length or not value.isprintable():
        raise BadInput(f"{name} must be at most {max_length} printable characters", field=name)
    return value


def form_int(name: str, minimum: int, maximum: int, *, required: bool = True) -> int | None:
    """A form field as an integer within bounds, or BadInput naming the field."""
    value = form_text(name, 20, required=required)
    if value is None:
        return None
    if not re.fullmatch(r"[+-]?[0-9]{1,19}", value) or not minimum <= int(value) <= maximum:
        raise BadInput(f"{name} must be a whole number from {minimum} to {maximum}", field=name)
    return int(value)


def form_list(name: str, max_items: int = 500, max_length: int = 200) -> list[str]:
    """Every value of a repeated field (checkboxes), stripped and non-empty."""
    values = [_decoded(raw).strip() for raw in _form().getall(name)[: max_items + 1]]
    if len(values) > max_items:
        raise BadInput(f"at most {max_items} values of {name}", field=name)
    if any(len(v) > max_length or not v.isprintable() for v in values):
        raise BadInput(f"{name} values must be at most {max_length} printable characters", field=name)
    return [v for v in values if v]


def local_path(value: str | None, default: str) -> str:
    """`value` if it is a path of this UI (`/ui/...`), else `default`: where a redirect may go."""
    if (
        value
        and len(value) <= 2000
        and value.startswith("/ui/")
        and "\\" not in value
        and "//" not in value
        and value.isprintable()
        and value.isascii()
    ):
        return value
    return default


def flash(kind: str, text: str) -> None:
    """A message shown once, by the next page this browser opens (a short-lived cookie)."""
    payload = json.dumps([kind, text[:300]], ensure_ascii=True).encode()
    value = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    bottle.response.set_cookie(
        FLASH_COOKIE, value, path="/ui/", max_age=60, httponly=True, samesite="lax", secure=_https()
    )


def see_other(
    default: str, message: str | None = None, *, error: bool = False, back: bool = True
) -> HTTPResponse:
    """A 303 to the page the form names in `back` (a path of this UI; unless `back` is False),
    else to `default`, with a message for it to show once."""
    target = None
    if back:
        try:
            target = form_text("back", 2000)
        except HarmonyError:
            target = None
    if message:
        flash("error" if error else "ok", message)
    res = bottle.response.copy(cls=HTTPResponse)
    res.status = 303
    res.body = ""
    # The default may carry a path parameter as sent: it too must be a clean path of this UI.
    res.set_header("Location", local_path(target, local_path(default, "/ui/")))
    return res


def action(default: str, fn: Callable[[], str | None], *, back: bool = True) -> HTTPResponse:
    """Run a form action: its message (or its error's) is flashed and the browser sent back
    (to the form's `back`, unless `back` is False, else to `default`)."""
    try:
        message = fn()
    except HarmonyError as exc:
        return see_other(default, exc.message, error=True)
    return see_other(default, message, back=back)


def _https() -> bool:
    return request.urlparts.scheme == "https"


def set_session_cookie(session_id: str, max_age: float) -> None:
    bottle.response.set_cookie(
        SESSION_COOKIE,
        session_id,
        path="/",
        max_age=int(max_age),
        httponly=True,
        samesite="lax",
        secure=_https(),
    )


def clear_session_cookie() -> None:
    bottle.response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_https())


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


def _login_redirect() -> HTTPResponse:
    """Where a browser without a session goes: the login page, coming back here after."""
    target = url(LOGIN_PATH, next=here() if request.method == "GET" else None)
    if request.environ.get("HTTP_HX_REQUEST") == "true":
        # htmx would follow a 303 and swap the login page into a fragment: send it there whole.
        return HTTPResponse("", 401, **{"HX-Redirect": target, "Cache-Control": "no-store"})
    return HTTPResponse("", 303, Location=target, **{"Cache-Control": "no-store"})


def _sent_csrf() -> str | None:
    header = request.environ.get("HTTP_X_CSRF_TOKEN")
    if header:
        return str(header)
    ctype = request.content_type.split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            value = _form().get(CSRF_FIELD)
        except HarmonyError:
            return None
        return value if isinstance(value, str) else None
    return None


class Guard:
    """Bottle plugin on every route: authentication for the route's role, then error rendering.

    A route's role is met by an API key (`X-API-Key` or `Authorization: Bearer`) or by a web
    UI session (its cookie). A session's POST, PUT, PATCH or DELETE must also carry the
    session's CSRF token (the `csrf_token` form field or the `X-CSRF-Token` header): without
    it, or with another session's, the request gets 403 and the handler never runs. A key
    needs no token (a browser cannot send a key header across sites). A page under `/ui/`
    asked for with neither a key nor a live session redirects to the login page, unless
    `auth.open_reads` lets such a request read: then a GET of a `read` route runs as `ANONYMOUS`.

    Failed authentication is counted per client address; past the limit the address gets 429
    with `Retry-After` before any key is looked at, and only a sample of failures is logged.
    """

    name = "harmony_guard"
    api = 2

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        need: str | None = route.config.get("role")
        db, throttle, ctx = self.ctx.db, self.ctx.auth_throttle, self.ctx
        page = route.rule.startswith("/ui/")

        def from_session(cookie: str) -> bool:
            """Authenticate by the session cookie; False when it names no live session."""
            session = auth.find_session(db, cookie, idle_s=ctx.config["auth.session_idle"])
            if session is None:
                return False
            role = session["role"]
            if not auth.role_allows(role, need or "read"):
                raise Forbidden(
                    f"this needs the {need} role; you are signed in as {role}", need=need, role=role
                )
            if request.method in UNSAFE_METHODS and not auth.csrf_ok(session, _sent_csrf()):
                request.environ["harmony.quiet"] = False
                raise Forbidden(
                    "this request did not carry this session's CSRF token, so nothing was changed; "
                    "reload the page and try again",
                    reason="csrf",
                )
            request.environ["harmony.session"] = session
            request.environ["harmony.key"] = {"id": session["key_id"], "name": session["name"], "role": role}
            return True

        def authenticate() -> None:
            address = request.environ.get("REMOTE_ADDR") or "-"
            wait = throttle.blocked(address)
            if wait:
                request.environ["harmony.quiet"] = True
                raise TooManyRequests(
                    "too many failed authentications from this address; try again later",
                    retry_after=round(wait, 1),
                )
            key = _credential()
            cookie = request.get_cookie(SESSION_COOKIE) if key is None else None
            if cookie and from_session(cookie):
                return
            if (
                key is None
                and need == "read"
                and request.method in READ_METHODS
                and ctx.config["auth.open_reads"]
            ):
                request.environ["harmony.key"] = dict(ANONYMOUS)
                return
            if key is None and page:
                raise _login_redirect()
            try:
                request.environ["harmony.key"] = auth.authenticate(db, key, need or "read")
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
