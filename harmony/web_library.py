"""Routes for the library index: browsing it, scanning it, and the orphan report.

GET    /api/v1/library/artists        ?q=                 album artists, by name
GET    /api/v1/library/albums         ?q=&artist=         albums, by album artist then album
GET    /api/v1/library/tracks         ?q=&artist=&album=  files, by path
POST   /api/v1/library/scan           start a scan (202; 409 while one runs)
GET    /api/v1/library/scan           the running or last scan: state, counters, checkpoint, rate
GET    /api/v1/library/orphans        files in slskd's download directory no transfer claims
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse

from . import library
from .web_base import json_body, page_params, paged, str_param

if TYPE_CHECKING:
    from .context import Context

# Names come from tags, so they may be long; a filter is matched exactly.
MAX_NAME = 500


def register(app: bottle.Bottle, ctx: Context) -> None:
    db, shelf = ctx.db, ctx.library

    def artists() -> dict[str, Any]:
        limit, after = page_params((str,))
        rows = library.list_artists(db, after=after, limit=limit + 1, q=str_param("q", 200))
        return paged(rows, limit, lambda row: (row["name"],))

    def albums() -> dict[str, Any]:
        limit, after = page_params((str, str))
        rows = library.list_albums(
            db, after=after, limit=limit + 1, q=str_param("q", 200), artist=str_param("artist", MAX_NAME)
        )
        return paged(rows, limit, lambda row: (row["album_artist"], row["album"]))

    def tracks() -> dict[str, Any]:
        limit, after = page_params((str,))
        rows = library.list_tracks(
            db,
            after=after,
            limit=limit + 1,
            q=str_param("q", 200),
            artist=str_param("artist", MAX_NAME),
            album=str_param("album", MAX_NAME),
        )
        return paged(rows, limit, lambda track: (track.path,))

    def scan() -> HTTPResponse:
        json_body(allowed=())
        shelf.start()
        return HTTPResponse(shelf.status(), 202, Location="/api/v1/library/scan")

    def scan_status() -> dict[str, Any]:
        return shelf.status()

    def orphans() -> dict[str, Any]:
        limit, after = page_params((str,))
        return paged(shelf.orphans(after=after, limit=limit + 1), limit, lambda orphan: (orphan.path,))

    app.route("/api/v1/library/artists", "GET", artists, role="read")
    app.route("/api/v1/library/albums", "GET", albums, role="read")
    app.route("/api/v1/library/tracks", "GET", tracks, role="read")
    app.route("/api/v1/library/scan", "POST", scan, role="operator")
    app.route("/api/v1/library/scan", "GET", scan_status, role="read")
    app.route("/api/v1/library/orphans", "GET", orphans, role="read")
