"""Routes for the live options: look with a read key, change with an admin key.

    GET   /api/v1/settings    every live option: value, source, whether it can change here
    PATCH /api/v1/settings    {"option.key": value, ...}; null forgets a stored value
    GET   /ui/settings        the same options as a form generated from the option table
    POST  /ui/settings        the form: each field checked by its option's converter

A change is checked with the option's own converter and applied all or nothing; the new
configuration replaces the context's at once, and objects that honour live options read it at
their next cycle.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import bottle

from . import config
from .errors import HarmonyError
from .web_base import MAX_PAGE, form_text, json_body, listed, page_params, render, see_other

if TYPE_CHECKING:
    from .context import Context


def register(app: bottle.Bottle, ctx: Context) -> None:
    def show() -> dict[str, Any]:
        return listed(config.describe_live(ctx.config), *page_params())

    def change() -> dict[str, Any]:
        body = json_body()
        ctx.config = config.change(ctx.db, ctx.base_config, ctx.config, body)
        logging.getLogger().setLevel(ctx.config["log.level"].upper())
        return listed(config.describe_live(ctx.config), MAX_PAGE, None)

    # --- pages (the web UI) ------------------------------------------------------------------

    def form_rows(values: dict[str, str] | None = None) -> list[dict[str, Any]]:
        rows = []
        for row in config.describe_live(ctx.config):
            option = config.BY_KEY[row["key"]]
            current = option.convert.render(ctx.config[row["key"]])  # type: ignore[arg-type]
            rows.append({**row, "text": (values or {}).get(row["key"], current), "current": current})
        return rows

    def settings_page() -> str:
        return render("settings", title="Settings", section="settings", rows=form_rows(), errors={})

    def change_page() -> Any:
        changes: dict[str, Any] = {}
        errors: dict[str, str] = {}
        sent: dict[str, str] = {}
        for row in form_rows():
            key = row["key"]
            if not row["editable"]:
                continue
            if form_text(f"reset:{key}", 5):
                if ctx.config.source(key) == config.STORED_SOURCE:
                    changes[key] = None
                continue
            raw = form_text(key, 500)
            if raw is None:
                continue
            sent[key] = raw
            try:
                value = config.BY_KEY[key].convert(raw)
            except ValueError as exc:
                errors[key] = str(exc)
                continue
            if config.BY_KEY[key].convert.render(value) != row["current"]:  # type: ignore[arg-type]
                changes[key] = raw
        if errors:
            bottle.response.status = 422
            return render(
                "settings", title="Settings", section="settings", rows=form_rows(sent), errors=errors
            )
        if not changes:
            return see_other("/ui/settings", "Nothing changed.")
        try:
            ctx.config = config.change(ctx.db, ctx.base_config, ctx.config, changes)
        except HarmonyError as exc:
            bottle.response.status = exc.status
            option = str(exc.details.get("option", ""))
            return render(
                "settings",
                title="Settings",
                section="settings",
                rows=form_rows(sent),
                errors={option: exc.message},
            )
        logging.getLogger().setLevel(ctx.config["log.level"].upper())
        return see_other("/ui/settings", f"Saved {', '.join(sorted(changes))}.")

    app.route("/api/v1/settings", "GET", show, role="read")
    app.route("/api/v1/settings", "PATCH", change, role="admin")
    app.route("/ui/settings", "GET", settings_page, role="read")
    app.route("/ui/settings", "POST", change_page, role="admin")
