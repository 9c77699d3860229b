"""Routes for the live options: look with a read key, change with an admin key.

    GET   /api/v1/settings    every live option: value, source, whether it can change here
    PATCH /api/v1/settings    {"option.key": value, ...}; null forgets a stored value

A change is checked with the option's own converter and applied all or nothing; the new
configuration replaces the context's at once, and objects that honour live options read it at
their next cycle.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import bottle

from . import config
from .web_base import json_body

if TYPE_CHECKING:
    from .context import Context


def register(app: bottle.Bottle, ctx: Context) -> None:
    def show() -> dict[str, Any]:
        return {"items": config.describe_live(ctx.config)}

    def change() -> dict[str, Any]:
        body = json_body()
        ctx.config = config.change(ctx.db, ctx.base_config, ctx.config, body)
        logging.getLogger().setLevel(ctx.config["log.level"].upper())
        return show()

    app.route("/api/v1/settings", "GET", show, role="read")
    app.route("/api/v1/settings", "PATCH", change, role="admin")
