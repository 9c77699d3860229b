"""The HTTP surface: `make_app(ctx)` builds a new Bottle app with every route.

This module holds the factory, the machine endpoints (`/live`, `/ready`, `/metrics`, `/env`,
`/api/v1/system/status`, `/api/v1/openapi.json`) and the request observer (request id, one log
line, metrics). Every other route lives in a route module listed in `ROUTE_MODULES`; each has
`register(app, ctx)` and stands on `web_base` (request helpers, paging, rendering, the guard),
never on this module. To add a family of routes, write `web_<family>.py` and add it to the tuple.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import bottle
import waitress.channel
import waitress.task
from bottle import HTTPResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import (
    __version__,
    auth,
    wanted,
    web_backfill,
    web_downloads,
    web_events,
    web_jobs,
    web_keys,
    web_library,
    web_library_pages,
    web_playlists,
    web_quarantine,
    web_settings,
    web_spotify,
    web_ui,
    web_wanted,
    web_watchlist,
    web_webhooks,
)
from .web_base import Guard, current_key, error_json, render_error

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

ROUTE_MODULES = (
    web_spotify,
    web_watchlist,
    web_playlists,
    web_wanted,
    web_downloads,
    web_quarantine,
    web_library,
    web_library_pages,
    web_backfill,
    web_events,
    web_jobs,
    web_keys,
    web_settings,
    web_webhooks,
    web_ui,
)
QUIET_ROUTES = frozenset({"/live", "/ready", "/metrics"})
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The method label of the request metrics is one of these or "other": any token is a valid
# method to the HTTP layer, and a label per invented method would grow without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


_HTTP_CODES = {400: "bad_input", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


def _bottle_error(error: bottle.HTTPError) -> HTTPResponse:
    """Errors raised by Bottle itself (no route, wrong method, bad request line)."""
    code = _HTTP_CODES.get(error.status_code, "http_error")
    if error.status_code >= 500:
        code, message = "internal", "internal error"
    elif error.status_code == 404:
        message = f"no such path: {bottle.request.path[:200]}"
    elif error.status_code == 405:
        message = f"method {bottle.request.method[:20]} is not allowed here"
    else:
        message = str(error.body or error.status_line)
    resp = render_error(error.status_code, code, message)
    for name, value in error.headerlist:
        if name.lower() == "allow":
            resp.set_header("Allow", value)
    return resp


class ErrorTask(waitress.task.ErrorTask):
    """Errors the HTTP layer raises before the app sees the request (a malformed header, headers
    or a body over the limits) in the one error shape. Waitress closes the connection after
    them; it still writes its own text for a request line it cannot parse at all."""

    def execute(self) -> None:
        error = self.request.error
        code = {400: "bad_input", 413: "too_large", 431: "too_large"}.get(error.code, "http_error")
        body = error_json(code, f"{error.reason}: {error.body}"[:300])
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend([("Content-Type", "application/json"), ("Cache-Control", "no-store")])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class Channel(waitress.channel.HTTPChannel):
    error_task_class = ErrorTask


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
            label = method if method in METHODS else "other"
            metrics.http_requests.labels(rule, label, status_seen[0]).inc()
            metrics.http_latency.labels(rule).observe(elapsed)
            status = int(status_seen[0])
            # Probes and scrapes arrive every few seconds, and a guessing client's failures are
            # counted, not logged one by one: keep them out of the journal.
            quiet = (rule in QUIET_ROUTES and status < 400) or environ.get("harmony.quiet", False)
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "request",
                extra={
                    "fields": {
                        "request_id": rid,
                        "method": label if label != "other" else method[:20],
                        "path": environ.get("PATH_INFO", "")[:500],
                        "route": rule,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    }
                },
            )

    return wsgi


def make_app(ctx: Context) -> bottle.Bottle:
    """A new app over `ctx`; no module state is shared between apps."""
    app = bottle.Bottle(catchall=True, autojson=True)
    app.install(Guard(ctx))
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

    # The API's description, as docs/openapi.json has it: the package carries a copy (a test
    # keeps them the same), so it is there in a zipapp too.
    spec = importlib.resources.files(__package__).joinpath("openapi.json").read_bytes()

    def openapi() -> HTTPResponse:
        return HTTPResponse(spec, 200, Content_Type="application/json")

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
            "artists": ctx.watcher.counts(),
            "playlists": {
                "followed": int(ctx.db.scalar("SELECT count(*) FROM playlists")),
                "stale": ctx.playlists.stale_count(),
            },
            "items": wanted.counts_by_state(ctx.db),
            "backup": ctx.backups.status(ctx.config["backup.interval"]),
        }

    app.route("/live", "GET", live)
    app.route("/ready", "GET", ready)
    app.route("/env", "GET", env, role="read")
    app.route("/metrics", "GET", metrics, role="read" if ctx.config["metrics.require_key"] else None)
    app.route("/api/v1/system/status", "GET", status, role="read")
    app.route("/api/v1/openapi.json", "GET", openapi, role="read")
    for module in ROUTE_MODULES:
        module.register(app, ctx)

    for route in app.routes:
        if route.rule.startswith("/api/") and route.config.get("role") not in auth.ROLES:
            raise RuntimeError(f"route {route.method} {route.rule} must declare role=read|operator|admin")
    app.wsgi = _observe(app, ctx)  # type: ignore[method-assign]
    return app
