"""Routes for followed playlists: look with a read key, change with an operator key.

GET    /api/v1/playlists              followed playlists, by name
POST   /api/v1/playlists              {"spotify": id|URI|URL, "want_tracks": true}
GET    /api/v1/playlists/mine         the Spotify user's own playlists, and which are followed
GET    /api/v1/playlists/{id}         with its items counted by state
PATCH  /api/v1/playlists/{id}         {"want_tracks": true|false}
DELETE /api/v1/playlists/{id}         withdraws the items only this playlist wanted
POST   /api/v1/playlists/{id}/sync    sync now (202)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse

from .errors import BadInput
from .web_base import json_body, page_params, paged, path_id

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
            raise BadInput("spotify must be a playlist id, URI or URL", field="spotify")
        if not isinstance(want, bool):
            raise BadInput("want_tracks must be true or false", field="want_tracks")
        playlist = playlists.follow(ref, want_tracks=want)
        return HTTPResponse(playlist.to_dict(), 201, Location=f"/api/v1/playlists/{playlist.id}")

    def mine() -> dict[str, Any]:
        return {"items": playlists.mine(), "next_cursor": None}

    def show(playlist_id: str) -> dict[str, Any]:
        playlist = playlists.get(path_id(playlist_id, "playlist_id"))
        return {**playlist.to_dict(), "items_by_state": playlists.item_counts(playlist.id)}

    def update(playlist_id: str) -> dict[str, Any]:
        body = json_body(allowed={"want_tracks"})
        return playlists.update(path_id(playlist_id, "playlist_id"), body).to_dict()

    def unfollow(playlist_id: str) -> HTTPResponse:
        playlists.unfollow(path_id(playlist_id, "playlist_id"))
        return HTTPResponse(status=204)

    def sync(playlist_id: str) -> HTTPResponse:
        job = playlists.request_sync(path_id(playlist_id, "playlist_id"))
        return HTTPResponse({"job": job.to_dict()}, 202)

    app.route("/api/v1/playlists", "GET", list_playlists, role="read")
    app.route("/api/v1/playlists", "POST", follow, role="operator")
    app.route("/api/v1/playlists/mine", "GET", mine, role="read")
    app.route("/api/v1/playlists/<playlist_id>", "GET", show, role="read")
    app.route("/api/v1/playlists/<playlist_id>", "PATCH", update, role="operator")
    app.route("/api/v1/playlists/<playlist_id>", "DELETE", unfollow, role="operator")
    app.route("/api/v1/playlists/<playlist_id>/sync", "POST", sync, role="operator")
