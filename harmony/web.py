"""The HTTP surface: `make_app(ctx)` builds a new Bottle app with every route.

Conventions for route modules (`web_*.py`, each with `register(app, ctx)`):

- Every route under `/api/` declares the role it needs: `app.route(path, method, fn, role="read")`
  (`read`, `operator` or `admin`); `make_app` refuses to build an app with an undeclared one.
  Routes without a role are open.
- Handlers return a dict (sent as JSON) or raise a `HarmonyError`; `_Guard` renders errors in
  one place: JSON `{"error": {"code", "message", "details"}}` for API and health paths, an HTML
  page elsewhere. Any other exception becomes a 500 that leaks nothing and is logged once.
- Lists are paginated with `page_params()` and returned with `page()`.
- Request bodies are read with `json_body()`, which rejects anything but a JSON object.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import __version__, auth, web_ui
from .errors import BadInput, HarmonyError

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

MAX_PAGE = 500
DEFAULT_PAGE = 50
MAX_BODY = 1024 * 1024
QUIET_ROUTES = frozenset({"/live", "/ready", "/metrics"})
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


# --- helpers for route modules -----------------------------------------------------------


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or BadInput. An empty body counts as `{}`."""
    length = request.content_length
    if length > MAX_BODY:
        raise BadInput(f"request body too large (over {MAX_BODY} bytes)")
    raw = request.body.read(MAX_BODY + 1) if length != 0 else b""
    if not raw.strip():
        return {}
    ctype = request.content_type.split(";")[0].strip().lower()
    if ctype and ctype != "application/json":
        raise BadInput("request body must be application/json", content_type=ctype)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadInput("request body must be a JSON object")
    return body


def int_param(name: str, default: int | None = None, minimum: int = 0, maximum: int = 2**62) -> int | None:
    """A query-string integer within bounds, or BadInput naming the parameter."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"-?\d{1,19}", raw):
        raise BadInput(f"query parameter {name} must be an integer", parameter=name, value=raw[:100])
    value = int(raw)
    if not minimum <= value <= maximum:
        raise BadInput(f"query parameter {name} must be between {minimum} and {maximum}", parameter=name)
    return value


def choice_param(name: str, choices: Iterable[str]) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    allowed = list(choices)
    if raw not in allowed:
        raise BadInput(f"query parameter {name} must be one of {', '.join(allowed)}", parameter=name)
    return raw


def page_params() -> tuple[int, int]:
    """(limit, cursor) from `?limit=&cursor=`: keyset paging by ascending id, cursor 0 = start."""
    limit = int_param("limit", DEFAULT_PAGE, 1, MAX_PAGE)
    cursor = int_param("cursor", 0, 0)
    assert limit is not None and cursor is not None
    return limit, cursor


def page(rows: Sequence[dict[str, Any]], limit: int, key: str = "id") -> dict[str, Any]:
    """Wrap one page of rows; callers fetch `limit + 1` rows so the next cursor is known."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return {"items": items, "next_cursor": str(items[-1][key]) if more and items else None}


def current_key() -> dict[str, Any] | None:
    """The authenticated API key row of this request, if the route needed one."""
    return request.environ.get("harmony.key")  # type: ignore[no-any-return]


# --- error rendering: the one place ------------------------------------------------------


def _wants_json(path: str) -> bool:
    """JSON for the API and the machine endpoints; an HTML page for what a browser opens."""
    return path.startswith(("/api/", "/live", "/ready", "/env", "/metrics"))


def render_error(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> HTTPResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="harmony"'
    if _wants_json(request.path):
        body = json.dumps({"error": {"code": code, "message": message, "details": details or {}}})
        headers["Content-Type"] = "application/json"
    else:
        body = web_ui.page("error", status=status, code=code, message=message)
        headers["Content-Type"] = "text/html; charset=utf-8"
    return HTTPResponse(body, status, **headers)


_HTTP_CODES = {400: "bad_input", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _bottle_error(error: bottle.HTTPError) -> HTTPResponse:
    """Errors raised by Bottle itself (no route, wrong method, bad request line)."""
    code = _HTTP_CODES.get(error.status_code, "http_error")
    if error.status_code >= 500:
        code, message = "internal", "internal error"
    elif error.status_code == 404:
        message = f"no such path: {request.path}"
    elif error.status_code == 405:
        message = f"method {request.method} is not allowed here"
    else:
        message = str(error.body or error.status_line)
    resp = render_error(error.status_code, code, message)
    for name, value in error.headerlist:
        if name.lower() == "allow":
            resp.set_header("Allow", value)
    return resp


class _Guard:
    """Bottle plugin on every route: authentication by role, then error rendering."""

    name = "harmony_guard"
    api = 2

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        need: str | None = route.config.get("role")
        db = self.ctx.db

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                if need:
                    header = request.get_header("Authorization", "")
                    bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
                    key = request.get_header("X-API-Key") or bearer
                    request.environ["harmony.key"] = auth.authenticate(db, key, need)
                return callback(*args, **kwargs)
            except HTTPResponse:
                raise
            except HarmonyError as exc:
                return render_error(exc.status, exc.code, exc.message, exc.details)
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


# --- request observation -----------------------------------------------------------------


def _observe(app: bottle.Bottle, ctx: Context) -> Callable[..., Any]:
    """Wrap the app's WSGI entry: request id, one log line and metrics for every request."""
    inner = app.wsgi
    metrics = ctx.metrics

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        rid = incoming if REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
        environ["harmony.request_id"] = rid
        status_seen = ["500"]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_seen[0] = status.split(" ", 1)[0]
            headers.append(("X-Request-ID", rid))
            return start_response(status, headers, exc_info)

        try:
            return inner(environ, start)
        finally:
            elapsed = time.perf_counter() - started
            route = environ.get("bottle.route")
            rule = route.rule if route is not None else "unmatched"
            method = environ.get("REQUEST_METHOD", "")
            metrics.http_requests.labels(rule, method, status_seen[0]).inc()
            metrics.http_latency.labels(rule).observe(elapsed)
            status = int(status_seen[0])
            # Probes and scrapes arrive every few seconds; keep them out of the journal unless they fail.
            quiet = rule in QUIET_ROUTES and status < 400
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "request",
                extra={
                    "fields": {
                        "request_id": rid,
                        "method": method,
                        "path": environ.get("PATH_INFO", ""),
                        "route": rule,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    }
                },
            )

    return wsgi


# --- the app -----------------------------------------------------------------------------


def make_app(ctx: Context) -> bottle.Bottle:
    """A new app over `ctx`; no module state is shared between apps."""
    from . import web_jobs, web_keys, web_spotify, web_ui  # route modules import this module's helpers

    app = bottle.Bottle(catchall=True, autojson=True)
    app.install(_Guard(ctx))
    app.default_error_handler = _bottle_error  # type: ignore[method-assign]

    def live() -> dict[str, Any]:
        return {"status": "ok"}

    def ready() -> Any:
        ok, checks = ctx.health.report()
        body = {"status": "ok" if ok else "unavailable", "checks": checks}
        if ok:
            return body
        failing = sorted(name for name, result in checks.items() if not result["ok"])
        return render_error(
            503, "not_ready", "not ready: " + ", ".join(failing), {"failing": failing, **body}
        )

    def env() -> dict[str, Any]:
        return {"options": ctx.config.effective(), "upstream_cooldowns": ctx.upstream.cooldowns()}

    def metrics() -> Any:
        return HTTPResponse(generate_latest(ctx.metrics.registry), 200, Content_Type=CONTENT_TYPE_LATEST)

    def status() -> dict[str, Any]:
        ok, checks = ctx.health.report()
        key = current_key() or {}
        return {
            "version": __version__,
            "started_at": ctx.started_at,
            "uptime_seconds": round(time.time() - ctx.started_at, 3),
            "schema_version": ctx.db.user_version(),
            "data_dir": ctx.config["data.dir"],
            "library_dir": ctx.config.library_dir,
            "ready": ok,
            "checks": checks,
            "upstream_cooldowns": ctx.upstream.cooldowns(),
            "key": {"name": key.get("name"), "role": key.get("role")},
        }

    app.route("/live", "GET", live)
    app.route("/ready", "GET", ready)
    app.route("/env", "GET", env, role="read")
    app.route("/metrics", "GET", metrics, role="read" if ctx.config["metrics.require_key"] else None)
    app.route("/api/v1/system/status", "GET", status, role="read")
    web_spotify.register(app, ctx)
    web_jobs.register(app, ctx)
    web_keys.register(app, ctx)
    web_ui.register(app, ctx)

    for route in app.routes:
        if route.rule.startswith("/api/") and route.config.get("role") not in auth.ROLES:
            raise RuntimeError(f"route {route.method} {route.rule} must declare role=read|operator|admin")
    app.wsgi = _observe(app, ctx)  # type: ignore[method-assign]
    return app
