"""Routes for watched artists and their releases: look with a read key, change with an operator key.

    GET    /api/v1/artists                   ?paused=&failing=&sort=name|next_scan
    POST   /api/v1/artists                   {"spotify", "release_groups", "since", "priority"}
    POST   /api/v1/artists/import-followed   watch every artist the Spotify user follows
    GET    /api/v1/artists/{id}              with recent releases and the last scan
    PATCH  /api/v1/artists/{id}              {"paused", "priority", "release_groups", "since"}
    DELETE /api/v1/artists/{id}              withdraws the items only this artist wanted
    POST   /api/v1/artists/{id}/scan         scan now (202)
    GET    /api/v1/releases                  ?artist=&group=&since=
    GET    /api/v1/releases/{id}             with its tracks and their wanted state

`spotify` is an artist's id, `spotify:artist:` URI or open.spotify.com link.

The watchlist pages (the UI section at the end):

    GET  /ui/watchlist                 ?q= (Spotify artist search) &paused=&failing=&sort=&cursor=
    POST /ui/watchlist                 watch an artist (form: spotify, priority)
    GET  /ui/artists/{id}              the artist, its releases and each track's state
    POST /ui/artists/{id}              pause/resume, priority, release groups and since
    POST /ui/artists/{id}/scan         scan now
    POST /ui/artists/{id}/unwatch      stop watching
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse, request

from . import events
from .errors import BadInput, HarmonyError, Invalid
from .watchlist import GROUPS, SORTS, parse_groups, parse_since
from .web_base import (
    action,
    bool_param,
    choice_param,
    encode_cursor,
    form_int,
    form_list,
    form_text,
    int_param,
    json_body,
    page_params,
    paged,
    path_id,
    render,
    str_param,
)

if TYPE_CHECKING:
    from .context import Context

ARTIST_FIELDS = {"spotify", "release_groups", "since", "priority"}


def register(app: bottle.Bottle, ctx: Context) -> None:
    watcher = ctx.watcher

    def list_artists() -> dict[str, Any]:
        sort = choice_param("sort", SORTS) or "name"
        limit, after = page_params((str, int) if sort == "name" else (float, int))
        rows = watcher.list_artists(
            after=after,
            limit=limit + 1,
            paused=bool_param("paused"),
            failing=bool_param("failing"),
            sort=sort,
        )
        key = (lambda a: (a.name, a.id)) if sort == "name" else (lambda a: (a.next_scan_at, a.id))
        return paged(rows, limit, key)

    def add() -> HTTPResponse:
        body = json_body(allowed=ARTIST_FIELDS)
        ref = body.get("spotify")
        if not isinstance(ref, str) or not ref.strip():
            raise Invalid("spotify must be an artist id, URI or URL", field="spotify")
        groups = parse_groups(body["release_groups"]) if "release_groups" in body else None
        since = parse_since(body["since"]) if "since" in body else None
        priority = body.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
            raise Invalid("priority must be an integer from -1000 to 1000", field="priority")
        artist = watcher.add(ref, release_groups=groups, since=since, priority=priority)
        return HTTPResponse(artist.to_dict(), 201, Location=f"/api/v1/artists/{artist.id}")

    def import_followed() -> dict[str, Any]:
        json_body(allowed=())
        return watcher.import_followed()

    def show(artist_id: str) -> dict[str, Any]:
        artist = watcher.get(path_id(artist_id, "artist_id"))
        recent = watcher.releases(artist_id=artist.id, limit=10)
        scans = events.list_events(ctx.db, artist_id=artist.id, kind="artist.scan", limit=1)
        return {
            **artist.to_dict(),
            "recent_releases": [release.to_dict() for release in recent],
            "last_scan": scans[0].to_dict() if scans else None,
        }

    def update(artist_id: str) -> dict[str, Any]:
        fields = ("paused", "priority", "release_groups", "since")
        body = json_body(allowed=fields)
        if not body:
            raise Invalid(f"give at least one of {', '.join(fields)}", fields=list(fields))
        return watcher.update(path_id(artist_id, "artist_id"), body).to_dict()

    def remove(artist_id: str) -> HTTPResponse:
        json_body(allowed=())
        watcher.delete(path_id(artist_id, "artist_id"))
        return HTTPResponse(status=204)

    def scan(artist_id: str) -> HTTPResponse:
        json_body(allowed=())
        job = watcher.request_scan(path_id(artist_id, "artist_id"))
        return HTTPResponse({"job": job.to_dict()}, 202, Location=f"/api/v1/jobs/{job.id}")

    def list_releases() -> dict[str, Any]:
        limit, after = page_params((str, int))
        since = str_param("since", 10)
        try:
            since = parse_since(since) if since else None
        except Invalid:
            message = "query parameter since must be a date written YYYY-MM-DD"
            raise BadInput(message, parameter="since") from None
        rows = watcher.releases(
            after=after,
            limit=limit + 1,
            artist_id=int_param("artist", None, 1),
            group=choice_param("group", GROUPS),
            since=since,
        )
        return paged(rows, limit, lambda r: (r.release_date, r.id))

    def show_release(release_id: str) -> dict[str, Any]:
        release, items = watcher.release(path_id(release_id, "release_id"))
        return {**release.to_dict(), "tracks": [item.to_dict() for item in items]}

    # --- pages (the web UI) ------------------------------------------------------------------

    def watchlist_page() -> str:
        sort = choice_param("sort", SORTS) or "name"
        limit, after = page_params((str, int) if sort == "name" else (float, int))
        paused, failing = bool_param("paused"), bool_param("failing")
        rows = watcher.list_artists(after=after, limit=limit + 1, paused=paused, failing=failing, sort=sort)
        more = len(rows) > limit
        rows = rows[:limit]
        key = (lambda a: (a.name, a.id)) if sort == "name" else (lambda a: (a.next_scan_at, a.id))
        query = str_param("q", 200)
        results, search_error = None, None
        if query:
            try:
                results = ctx.requests.search(query, "artist", 0)["items"]
            except HarmonyError as exc:
                search_error = exc.message
        params = {
            "sort": sort if sort != "name" else None,
            "paused": None if paused is None else str(paused).lower(),
            "failing": None if failing is None else str(failing).lower(),
            "q": query,
        }
        return render(
            "watchlist",
            fragments={f"artist-{a.id}": "_watchlist_row" for a in rows},
            title="Watchlist",
            section="watchlist",
            artists=rows,
            # an htmx request for one row (HX-Target `artist-<id>`) gets that row alone
            artist=next((a for a in rows if f"artist-{a.id}" == request.environ.get("HTTP_HX_TARGET")), None),
            counts=watcher.counts(),
            params=params,
            sort=sort,
            sorts=SORTS,
            query=query,
            results=results,
            search_error=search_error,
            next_cursor=encode_cursor(key(rows[-1])) if more and rows else None,
            paged=after is not None,
        )

    def watch() -> Any:
        def act() -> str:
            ref = form_text("spotify", 300, required=True)
            priority = form_int("priority", -1000, 1000, required=False) or 0
            since = form_text("since", 10)
            artist = watcher.add(ref or "", priority=priority, since=parse_since(since) if since else None)
            return f"Watching {artist.name}; its first scan is queued."

        return action("/ui/watchlist", act)

    def artist_page(artist_id: str) -> str:
        artist = watcher.get(path_id(artist_id, "artist_id"))
        limit, after = page_params((str, int))
        limit = min(limit, 50)
        releases = watcher.releases(artist_id=artist.id, after=after, limit=limit + 1)
        more = len(releases) > limit
        releases = releases[:limit]
        tracks = {release.id: watcher.release(release.id)[1] for release in releases}
        scans = events.list_events(ctx.db, artist_id=artist.id, kind="artist.scan", limit=1)
        return render(
            "watchlist_artist",
            title=artist.name,
            section="watchlist",
            artist=artist,
            releases=releases,
            tracks=tracks,
            groups=GROUPS,
            last_scan=scans[0] if scans else None,
            params={},
            next_cursor=encode_cursor((releases[-1].release_date, releases[-1].id))
            if more and releases
            else None,
            paged=after is not None,
        )

    def change_artist(artist_id: str) -> Any:
        def act() -> str:
            number = path_id(artist_id, "artist_id")
            changes: dict[str, Any] = {}
            paused = form_text("paused", 5)
            if paused is not None:
                if paused not in ("true", "false"):
                    raise BadInput("paused must be true or false", field="paused")
                changes["paused"] = paused == "true"
            priority = form_int("priority", -1000, 1000, required=False)
            if priority is not None:
                changes["priority"] = priority
            if form_text("filters", 1):
                changes["release_groups"] = form_list("release_groups", 10, 20)
                since = form_text("since", 10)
                if since:
                    changes["since"] = since
            if not changes:
                raise BadInput("nothing to change")
            artist = watcher.update(number, changes)
            if "paused" in changes:
                return f"{'Paused' if artist.paused else 'Resumed'} {artist.name}."
            if "priority" in changes and len(changes) == 1:
                return f"{artist.name} now has priority {artist.priority}."
            return f"Saved {artist.name}."

        return action(f"/ui/artists/{artist_id}", act)

    def scan_artist(artist_id: str) -> Any:
        def act() -> str:
            artist = watcher.get(path_id(artist_id, "artist_id"))
            watcher.request_scan(artist.id)
            return f"A scan of {artist.name} is queued."

        return action(f"/ui/artists/{artist_id}", act)

    def unwatch(artist_id: str) -> Any:
        def act() -> str:
            artist = watcher.get(path_id(artist_id, "artist_id"))
            outcomes = watcher.delete(artist.id)
            withdrawn = outcomes.get("withdrawn", 0)
            return f"No longer watching {artist.name}; {withdrawn} item(s) no longer wanted."

        return action("/ui/watchlist", act, back=False)

    app.route("/api/v1/artists", "GET", list_artists, role="read")
    app.route("/api/v1/artists", "POST", add, role="operator")
    app.route("/api/v1/artists/import-followed", "POST", import_followed, role="operator")
    app.route("/api/v1/artists/<artist_id>", "GET", show, role="read")
    app.route("/api/v1/artists/<artist_id>", "PATCH", update, role="operator")
    app.route("/api/v1/artists/<artist_id>", "DELETE", remove, role="operator")
    app.route("/api/v1/artists/<artist_id>/scan", "POST", scan, role="operator")
    app.route("/api/v1/releases", "GET", list_releases, role="read")
    app.route("/api/v1/releases/<release_id>", "GET", show_release, role="read")
    app.route("/ui/watchlist", "GET", watchlist_page, role="read")
    app.route("/ui/watchlist", "POST", watch, role="operator")
    app.route("/ui/artists/<artist_id>", "GET", artist_page, role="read")
    app.route("/ui/artists/<artist_id>", "POST", change_artist, role="operator")
    app.route("/ui/artists/<artist_id>/scan", "POST", scan_artist, role="operator")
    app.route("/ui/artists/<artist_id>/unwatch", "POST", unwatch, role="operator")
