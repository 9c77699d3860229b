"""Routes for followed playlists: look with a read key, change with an operator key.

GET    /api/v1/playlists              followed playlists, by name
POST   /api/v1/playlists              {"spotify": id|URI|URL, "want_tracks": true}
GET    /api/v1/playlists/mine         the Spotify user's own playlists, and which are followed
GET    /api/v1/playlists/{id}         with its items counted by state
PATCH  /api/v1/playlists/{id}         {"want_tracks": true|false}
DELETE /api/v1/playlists/{id}         withdraws the items only this playlist wanted
POST   /api/v1/playlists/{id}/sync    sync now (202)

The playlist pages (the UI section at the end):

GET    /ui/playlists                  followed playlists: stale badge, items by state
GET    /ui/playlists/mine             the Spotify user's own playlists, to follow
POST   /ui/playlists                  follow (form: spotify, want_tracks)
POST   /ui/playlists/{id}             want its tracks on or off (form: want_tracks)
POST   /ui/playlists/{id}/sync        sync now
POST   /ui/playlists/{id}/unfollow    stop following
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse

from .errors import BadInput, HarmonyError, Invalid
from .web_base import (
    action,
    encode_cursor,
    form_text,
    json_body,
    listed,
    page_params,
    paged,
    path_id,
    render,
)

if TYPE_CHECKING:
    from .context import Context


def register(app: bottle.Bottle, ctx: Context) -> None:
    playlists = ctx.playlists

    def list_playlists() -> dict[str, Any]:
        limit, after = page_params((str, int))
        return paged(playlists.list_playlists(after=after, limit=limit + 1), limit, lambda p: (p.name, p.id))

    def follow() -> HTTPResponse:
        body = json_body(allowed={"spotify", "want_tracks"})
        ref, want = body.get("spotify"), body.get("want_tracks", True)
        if not isinstance(ref, str) or not ref.strip():
            raise Invalid("spotify must be a playlist id, URI or URL", field="spotify")
        if not isinstance(want, bool):
            raise Invalid("want_tracks must be true or false", field="want_tracks")
        playlist = playlists.follow(ref, want_tracks=want)
        return HTTPResponse(playlist.to_dict(), 201, Location=f"/api/v1/playlists/{playlist.id}")

    def mine() -> dict[str, Any]:
        return listed(playlists.mine(), *page_params())

    def show(playlist_id: str) -> dict[str, Any]:
        playlist = playlists.get(path_id(playlist_id, "playlist_id"))
        return {**playlist.to_dict(), "items_by_state": playlists.item_counts(playlist.id)}

    def update(playlist_id: str) -> dict[str, Any]:
        body = json_body(allowed={"want_tracks"})
        return playlists.update(path_id(playlist_id, "playlist_id"), body).to_dict()

    def unfollow(playlist_id: str) -> HTTPResponse:
        json_body(allowed=())
        playlists.unfollow(path_id(playlist_id, "playlist_id"))
        return HTTPResponse(status=204)

    def sync(playlist_id: str) -> HTTPResponse:
        json_body(allowed=())
        job = playlists.request_sync(path_id(playlist_id, "playlist_id"))
        return HTTPResponse({"job": job.to_dict()}, 202, Location=f"/api/v1/jobs/{job.id}")

    # --- pages (the web UI) ------------------------------------------------------------------

    def playlists_page() -> str:
        limit, after = page_params((str, int))
        rows = playlists.list_playlists(after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return render(
            "playlists",
            title="Playlists",
            section="playlists",
            playlists=rows,
            counts={p.id: playlists.item_counts(p.id) for p in rows},
            params={},
            next_cursor=encode_cursor((rows[-1].name, rows[-1].id)) if more and rows else None,
            paged=after is not None,
        )

    def mine_page() -> str:
        try:
            mine, problem = playlists.mine(), None
        except HarmonyError as exc:
            mine, problem = [], exc.message
        return render(
            "playlists_mine", title="Your playlists", section="playlists", mine=mine, problem=problem
        )

    def want_flag() -> bool:
        value = form_text("want_tracks", 5) or "true"
        if value not in ("true", "false"):
            raise BadInput("want_tracks must be true or false", field="want_tracks")
        return value == "true"

    def follow_page() -> Any:
        def act() -> str:
            playlist = playlists.follow(
                form_text("spotify", 300, required=True) or "", want_tracks=want_flag()
            )
            return f"Following {playlist.name}; its first sync is queued."

        return action("/ui/playlists", act)

    def change_page(playlist_id: str) -> Any:
        def act() -> str:
            playlist = playlists.update(path_id(playlist_id, "playlist_id"), {"want_tracks": want_flag()})
            if playlist.want_tracks:
                return f"The tracks of {playlist.name} are wanted again from its next sync."
            return f"The tracks of {playlist.name} are no longer wanted."

        return action("/ui/playlists", act)

    def sync_page(playlist_id: str) -> Any:
        def act() -> str:
            playlist = playlists.get(path_id(playlist_id, "playlist_id"))
            playlists.request_sync(playlist.id)
            return f"A sync of {playlist.name} is queued."

        return action("/ui/playlists", act)

    def unfollow_page(playlist_id: str) -> Any:
        def act() -> str:
            playlist = playlists.get(path_id(playlist_id, "playlist_id"))
            outcomes = playlists.unfollow(playlist.id)
            withdrawn = outcomes.get("withdrawn", 0)
            return f"No longer following {playlist.name}; {withdrawn} item(s) no longer wanted."

        return action("/ui/playlists", act)

    app.route("/api/v1/playlists", "GET", list_playlists, role="read")
    app.route("/api/v1/playlists", "POST", follow, role="operator")
    app.route("/api/v1/playlists/mine", "GET", mine, role="read")
    app.route("/api/v1/playlists/<playlist_id>", "GET", show, role="read")
    app.route("/api/v1/playlists/<playlist_id>", "PATCH", update, role="operator")
    app.route("/api/v1/playlists/<playlist_id>", "DELETE", unfollow, role="operator")
    app.route("/api/v1/playlists/<playlist_id>/sync", "POST", sync, role="operator")
    app.route("/ui/playlists", "GET", playlists_page, role="read")
    app.route("/ui/playlists/mine", "GET", mine_page, role="read")
    app.route("/ui/playlists", "POST", follow_page, role="operator")
    app.route("/ui/playlists/<playlist_id>", "POST", change_page, role="operator")
    app.route("/ui/playlists/<playlist_id>/sync", "POST", sync_page, role="operator")
    app.route("/ui/playlists/<playlist_id>/unfollow", "POST", unfollow_page, role="operator")
