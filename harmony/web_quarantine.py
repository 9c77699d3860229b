"""Routes for the quarantine: files set aside by the import, with the reason.

GET    /api/v1/quarantine               newest first
GET    /api/v1/quarantine/{id}
POST   /api/v1/quarantine/{id}/retry    import it for its item after all (verified again)
DELETE /api/v1/quarantine/{id}          delete the file and its record

The quarantine page (the UI section at the end):

GET    /ui/quarantine                   ?cursor=  each file with its reason, item and peer
POST   /ui/quarantine/{id}/retry        import it after all; a refusal is shown next to its row
                                        (the 303 goes back with `held={id}`)
POST   /ui/quarantine/{id}/delete       delete the file and its record
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import bottle
from bottle import HTTPResponse

from . import wanted
from .errors import HarmonyError
from .web_base import (
    DEFAULT_PAGE,
    Key,
    action,
    encode_cursor,
    form_text,
    int_param,
    json_body,
    local_path,
    page_params,
    paged,
    path_id,
    render,
    see_other,
    take_flash,
)

if TYPE_CHECKING:
    from .context import Context


def register(app: bottle.Bottle, ctx: Context) -> None:
    importer = ctx.importer

    def listing() -> dict[str, Any]:
        limit, after = page_params()
        return paged(importer.quarantined(after=after, limit=limit + 1), limit, lambda row: (row["id"],))

    def show(quarantine_id: str) -> dict[str, Any]:
        return importer.held(path_id(quarantine_id, "quarantine_id"))

    def retry(quarantine_id: str) -> dict[str, Any]:
        json_body(allowed=())
        outcome = importer.retry(path_id(quarantine_id, "quarantine_id"))
        return {"outcome": outcome.outcome, "path": outcome.path}

    def delete(quarantine_id: str) -> HTTPResponse:
        json_body(allowed=())
        importer.delete(path_id(quarantine_id, "quarantine_id"))
        return HTTPResponse(status=204)

    # --- pages (the web UI) ------------------------------------------------------------------

    def held_page(limit: int, after: Key | None, held: int | None) -> str:
        rows = importer.quarantined(after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        # A refused retry comes back with `held=<id>` and its reason as the message: shown next
        # to that row, or where every message goes when this page does not show the row.
        message = take_flash()
        errors: dict[int, str] = {}
        if held is not None and message and message[0] == "error" and held in {row["id"] for row in rows}:
            errors[held], message = message[1], None
        return render(
            "quarantine",
            title="Quarantine",
            section="quarantine",
            rows=rows,
            titles=wanted.titles(ctx.db, [row["item_id"] for row in rows if row["item_id"]]),
            errors=errors,
            flash=message or (),
            params={"limit": limit if limit != DEFAULT_PAGE else None},
            next_cursor=encode_cursor((rows[-1]["id"],)) if more and rows else None,
            paged=after is not None,
        )

    def quarantine_page() -> str:
        limit, after = page_params()
        return held_page(limit, after, int_param("held", None, 1))

    def retry_page(quarantine_id: str) -> Any:
        number = path_id(quarantine_id, "quarantine_id")
        try:
            outcome = importer.retry(number)
        except HarmonyError as exc:
            # Back to the page it came from, marked, so the reason shows next to its row.
            back = urlsplit(local_path(form_text("back", 2000), "/ui/quarantine"))
            query = [(k, v) for k, v in parse_qsl(back.query) if k != "held"] + [("held", str(number))]
            return see_other(f"{back.path}?{urlencode(query)}", exc.message, error=True, back=False)
        where = f" as {outcome.path}" if outcome.path else ""
        return see_other("/ui/quarantine", f"Quarantined file {number}: {outcome.outcome}{where}.")

    def delete_page(quarantine_id: str) -> Any:
        def act() -> str:
            number = path_id(quarantine_id, "quarantine_id")
            held = importer.held(number)
            importer.delete(number)
            return f"Deleted {held['path']}."

        return action("/ui/quarantine", act)

    app.route("/api/v1/quarantine", "GET", listing, role="read")
    app.route("/api/v1/quarantine/<quarantine_id>", "GET", show, role="read")
    app.route("/api/v1/quarantine/<quarantine_id>/retry", "POST", retry, role="operator")
    app.route("/api/v1/quarantine/<quarantine_id>", "DELETE", delete, role="operator")
    app.route("/ui/quarantine", "GET", quarantine_page, role="read")
    app.route("/ui/quarantine/<quarantine_id>/retry", "POST", retry_page, role="operator")
    app.route("/ui/quarantine/<quarantine_id>/delete", "POST", delete_page, role="operator")
