"""The server-rendered pages under `/ui/` and the static files they use.

Pages show what the open health endpoints already show (readiness, background tasks, queue
depth), so they need no key. Every page is sent with a strict Content-Security-Policy: no
inline script, styles and images from this origin only.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import bottle

from . import __version__

if TYPE_CHECKING:
    from .context import Context

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
TEMPLATE_DIR = os.path.join(os.path.dirname(__file__), "templates")
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"


def page(name: str, **values: Any) -> str:
    bottle.response.set_header("Content-Security-Policy", CSP)
    bottle.response.set_header("X-Content-Type-Options", "nosniff")
    bottle.response.set_header("Referrer-Policy", "same-origin")
    return str(bottle.template(name, template_lookup=[TEMPLATE_DIR], version=__version__, **values))


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


def register(app: bottle.Bottle, ctx: Context) -> None:
    def home() -> None:
        bottle.redirect("/ui/")

    def status() -> str:
        ready, checks = ctx.health.report()
        return page(
            "status",
            ready=ready,
            checks=checks,
            tasks=ctx.wheel.tasks(),
            jobs=ctx.queue.stats(),
            now=time.time(),
            started_at=ctx.started_at,
            ago=ago,
            span=span,
        )

    def static(filename: str) -> Any:
        return bottle.static_file(
            filename, root=STATIC_DIR, headers={"Cache-Control": "public, max-age=3600"}
        )

    app.route("/", "GET", home)
    app.route("/ui/", "GET", status)
    app.route("/static/<filename:path>", "GET", static)
