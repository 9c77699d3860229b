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
GET    /api/v1/users/blocked/{username}
DELETE /api/v1/users/blocked/{username}
GET    /api/v1/search/budget                        spent, remaining, next free slot

The downloads pages (the UI section at the end):

GET    /ui/downloads                                ?item=&cursor=  active and finished downloads, live
POST   /ui/downloads/{id}/cancel                    cancel a download (the item tries its next candidate)
POST   /ui/wanted/{id}/candidates/{cid}/pick        download this candidate (from the item's page)
POST   /ui/users/blocked                            block a user (form: username, reason)
POST   /ui/users/unblock                            unblock a user (form: username)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import bottle
from bottle import HTTPResponse

from . import transfers, wanted
from .config import Config
from .errors import Invalid
from .transfers import Download
from .web_base import (
    action,
    bool_param,
    encode_cursor,
    form_text,
    int_param,
    json_body,
    listed,
    page_params,
    paged,
    path_id,
    render,
)

if TYPE_CHECKING:
    from .context import Context

BLOCKED_SHOWN = 200  # blocked users listed on the page; the API pages through all of them


def give_up(download: Download, config: Config) -> tuple[float, str] | None:
    """When the reconciler gives this transfer up if nothing changes, and on what condition:
    the earliest of its state's timeout and the item ceiling (the rules of `Transfers._stalled`,
    read from the same options); None once it has finished."""
    if download.finished_at is not None:
        return None
    deadlines = [(download.requested_at + config["transfers.item_ceiling"], "at the time limit for one file")]
    if download.state in ("requested", "queued") and not download.queued_at:
        deadlines.append(
            (download.requested_at + config["transfers.requested_timeout"], "unless the peer queues it")
        )
    elif download.state == "in_progress":
        since = download.progress_at or download.queued_at or download.requested_at
        deadlines.append((since + config["transfers.stall_timeout"], "unless new bytes arrive"))
    elif download.state == "remote_queued":
        since = download.place_at or download.queued_at or download.requested_at
        deadlines.append((since + config["transfers.queue_timeout"], "unless its queue place improves"))
    return min(deadlines)


def leaf(filename: str) -> str:
    """A remote path's file name (peers use `\\` or `/`)."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def register(app: bottle.Bottle, ctx: Context) -> None:
    db, searcher, downloads, importer = ctx.db, ctx.searcher, ctx.transfers, ctx.importer

    def candidates(item_id: str) -> dict[str, Any]:
        number = path_id(item_id, "item_id")
        page = listed(searcher.candidates(number), *page_params())
        return {**page, "searches": searcher.searches(number)}

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
            raise Invalid("reason must be text of at most 300 characters", field="reason")
        row = transfers.block(db, body.get("username"), reason)  # type: ignore[arg-type]
        return HTTPResponse(row, 201, Location=f"/api/v1/users/blocked/{quote(row['username'], safe='')}")

    def blocked_user(username: str) -> dict[str, Any]:
        return transfers.blocked_user(db, username)

    def unblock(username: str) -> HTTPResponse:
        json_body(allowed=())
        transfers.unblock(db, username)
        return HTTPResponse(status=204)

    def budget() -> dict[str, Any]:
        return searcher.budget.status()

    # --- pages (the web UI) ------------------------------------------------------------------

    def downloads_page() -> str:
        limit, after = page_params()
        item = int_param("item", None, 1)
        now = downloads.clock()
        config = ctx.config
        active = downloads.list_downloads(active=True, item_id=item, limit=500) if after is None else []
        recent = downloads.list_downloads(after=after, limit=limit + 1, active=False, item_id=item)
        more = len(recent) > limit
        recent = recent[:limit]
        return render(
            "downloads",
            fragments={"downloads-live": "_downloads_live"},
            title="Downloads",
            section="downloads",
            now=now,
            active=active,
            recent=recent,
            counts=downloads.counts(),
            titles=wanted.titles(db, [d.item_id for d in [*active, *recent] if d.item_id]),
            give_up=lambda download: give_up(download, config),
            leaf=leaf,
            budget=searcher.budget.status(now),
            blocked=transfers.list_blocked(db, limit=BLOCKED_SHOWN + 1),
            blocked_shown=BLOCKED_SHOWN,
            item=item,
            params={"item": item, "limit": limit if limit != 50 else None},
            next_cursor=encode_cursor((recent[-1].id,)) if more and recent else None,
            paged=after is not None,
        )

    def cancel_page(transfer_id: str) -> Any:
        def act() -> str:
            download = downloads.cancel(path_id(transfer_id, "transfer_id"))
            name = leaf(download.filename)
            return f"Cancelled {name} from {download.username}; the item tries its next candidate."

        return action("/ui/downloads", act)

    def pick_page(item_id: str, candidate_id: str) -> Any:
        def act() -> str:
            number = path_id(item_id, "item_id")
            chosen = path_id(candidate_id, "candidate_id")
            picked = next((c for c in searcher.candidates(number) if c.id == chosen), None)
            item = searcher.pick(number, chosen)
            what = f"{picked.username}'s {leaf(picked.filename)}" if picked else "the candidate"
            return f"{item.title}: downloading {what} ({item.state})."

        return action(f"/ui/wanted/{item_id}", act)

    def block_page() -> Any:
        def act() -> str:
            username = form_text("username", 200, required=True) or ""
            row = transfers.block(db, username, form_text("reason", 300) or "blocked by the operator")
            return f"Blocked {row['username']}: never searched from or downloaded from again."

        return action("/ui/downloads", act)

    def unblock_page() -> Any:
        def act() -> str:
            username = form_text("username", 200, required=True) or ""
            transfers.unblock(db, username)
            return f"Unblocked {username}."

        return action("/ui/downloads", act)

    app.route("/api/v1/wanted/<item_id>/candidates", "GET", candidates, role="read")
    app.route("/api/v1/wanted/<item_id>/candidates/<candidate_id>/pick", "POST", pick, role="operator")
    app.route("/api/v1/wanted/<item_id>/search", "POST", search_now, role="operator")
    app.route("/api/v1/wanted/<item_id>/wrong", "POST", wrong, role="operator")
    app.route("/api/v1/downloads", "GET", list_downloads, role="read")
    app.route("/api/v1/downloads/<transfer_id>", "GET", show, role="read")
    app.route("/api/v1/downloads/<transfer_id>/cancel", "POST", cancel, role="operator")
    app.route("/api/v1/users/blocked", "GET", blocked, role="read")
    app.route("/api/v1/users/blocked", "POST", block, role="operator")
    app.route("/api/v1/users/blocked/<username:path>", "GET", blocked_user, role="read")
    app.route("/api/v1/users/blocked/<username:path>", "DELETE", unblock, role="operator")
    app.route("/api/v1/search/budget", "GET", budget, role="read")
    app.route("/ui/downloads", "GET", downloads_page, role="read")
    app.route("/ui/downloads/<transfer_id>/cancel", "POST", cancel_page, role="operator")
    app.route("/ui/wanted/<item_id>/candidates/<candidate_id>/pick", "POST", pick_page, role="operator")
    app.route("/ui/users/blocked", "POST", block_page, role="operator")
    app.route("/ui/users/unblock", "POST", unblock_page, role="operator")
