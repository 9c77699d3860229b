"""Routes for acquisition: an item's candidates, searching now, downloads, blocked users, the budget.

GET    /api/v1/wanted/{id}/candidates               the last search's candidates, ranked, with reasons
POST   /api/v1/wanted/{id}/candidates/{cid}/pick    download this candidate
POST   /api/v1/wanted/{id}/search                   search now (spends budget; 429 when spent)
POST   /api/v1/wanted/{id}/wrong                    the downloaded file is wrong: never again, search anew
GET    /api/v1/downloads                            ?active=&item=  with live slskd data
GET    /api/v1/downloads/{id}
POST   /api/v1/downloads/{id}/cancel
GET    /api/v1/users/blocked
POST   /api/v1/users/blocked                        {"username", "reason"}
DELETE /api/v1/users/blocked/{username}
GET    /api/v1/search/budget                        spent, remaining, next free slot
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse

from . import transfers
from .errors import BadInput
from .web_base import bool_param, int_param, json_body, page_params, paged, path_id

if TYPE_CHECKING:
    from .context import Context


def register(app: bottle.Bottle, ctx: Context) -> None:
    db, searcher, downloads, importer = ctx.db, ctx.searcher, ctx.transfers, ctx.importer

    def candidates(item_id: str) -> dict[str, Any]:
        number = path_id(item_id, "item_id")
        rows = searcher.candidates(number)
        return {
            "items": [row.to_dict() for row in rows],
            "searches": searcher.searches(number),
            "next_cursor": None,
        }

    def pick(item_id: str, candidate_id: str) -> dict[str, Any]:
        json_body(allowed=())
        return searcher.pick(path_id(item_id, "item_id"), path_id(candidate_id, "candidate_id")).to_dict()

    def search_now(item_id: str) -> HTTPResponse:
        json_body(allowed=())
        item = searcher.search_now(path_id(item_id, "item_id"))
        return HTTPResponse(item.to_dict(), 202)

    def wrong(item_id: str) -> dict[str, Any]:
        json_body(allowed=())
        return importer.wrong(path_id(item_id, "item_id")).to_dict()

    def list_downloads() -> dict[str, Any]:
        limit, after = page_params()
        rows = downloads.list_downloads(
            after=after, limit=limit + 1, active=bool_param("active"), item_id=int_param("item", None, 1)
        )
        live, views = downloads.live_view(rows[:limit])
        return {**paged(rows, limit, lambda row: (row.id,)), "items": views, "live_current": live}

    def show(transfer_id: str) -> dict[str, Any]:
        live, views = downloads.live_view([downloads.get(path_id(transfer_id, "transfer_id"))])
        return {**views[0], "live_current": live}

    def cancel(transfer_id: str) -> dict[str, Any]:
        json_body(allowed=())
        return downloads.cancel(path_id(transfer_id, "transfer_id")).to_dict()

    def blocked() -> dict[str, Any]:
        limit, after = page_params((str,))
        return paged(
            transfers.list_blocked(db, after=after, limit=limit + 1), limit, lambda row: (row["username"],)
        )

    def block() -> HTTPResponse:
        body = json_body(allowed={"username", "reason"})
        reason = body.get("reason", "blocked by the operator")
        if not isinstance(reason, str) or len(reason) > 300:
            raise BadInput("reason must be text of at most 300 characters", field="reason")
        row = transfers.block(db, body.get("username"), reason)  # type: ignore[arg-type]
        return HTTPResponse(row, 201, Location=f"/api/v1/users/blocked/{row['username']}")

    def unblock(username: str) -> HTTPResponse:
        transfers.unblock(db, username)
        return HTTPResponse(status=204)

    def budget() -> dict[str, Any]:
        return searcher.budget.status()

    app.route("/api/v1/wanted/<item_id>/candidates", "GET", candidates, role="read")
    app.route("/api/v1/wanted/<item_id>/candidates/<candidate_id>/pick", "POST", pick, role="operator")
    app.route("/api/v1/wanted/<item_id>/search", "POST", search_now, role="operator")
    app.route("/api/v1/wanted/<item_id>/wrong", "POST", wrong, role="operator")
    app.route("/api/v1/downloads", "GET", list_downloads, role="read")
    app.route("/api/v1/downloads/<transfer_id>", "GET", show, role="read")
    app.route("/api/v1/downloads/<transfer_id>/cancel", "POST", cancel, role="operator")
    app.route("/api/v1/users/blocked", "GET", blocked, role="read")
    app.route("/api/v1/users/blocked", "POST", block, role="operator")
    app.route("/api/v1/users/blocked/<username:path>", "DELETE", unblock, role="operator")
    app.route("/api/v1/search/budget", "GET", budget, role="read")
