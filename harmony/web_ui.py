"""The server-rendered pages under `/ui/` and the static files they use.

Pages show what the open health endpoints already show (readiness, background tasks, queue
depth), so they need no key. Every page goes through `web_base.render`, which sends the strict
Content-Security-Policy and the other security headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

from .web_base import STATIC_DIR, render

if TYPE_CHECKING:
    from .context import Context


def register(app: bottle.Bottle, ctx: Context) -> None:
    def home() -> None:
        bottle.redirect("/ui/")

    def status() -> str:
        ready, checks = ctx.health.report()
        return render(
            "status",
            ready=ready,
            checks=checks,
            tasks=ctx.wheel.tasks(),
            jobs=ctx.queue.stats(),
            started_at=ctx.started_at,
        )

    def static(filename: str) -> Any:
        return bottle.static_file(
            filename, root=STATIC_DIR, headers={"Cache-Control": "public, max-age=3600"}
        )

    app.route("/", "GET", home)
    app.route("/ui/", "GET", status)
    app.route("/static/<filename:path>", "GET", static)
