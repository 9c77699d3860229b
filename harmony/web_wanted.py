"""Routes for the wanted list, the activity feed and the Spotify search manual wants start from.

GET    /api/v1/wanted                 ?state=&source=&artist=&playlist=&release=&q=&sort=priority|age|changed
POST   /api/v1/wanted                 {"spotify": track or album id|URI|URL}: a manual want
GET    /api/v1/wanted/{id}            with its sources and its event history
PATCH  /api/v1/wanted/{id}            {"priority": n}
DELETE /api/v1/wanted/{id}            forget it (skip it first if it is being downloaded)
POST   /api/v1/wanted/{id}/retry      failed, not found or paused -> wanted
POST   /api/v1/wanted/{id}/skip       -> skipped
POST   /api/v1/wanted/{id}/unskip     skipped -> wanted
GET    /api/v1/search/spotify         ?q=&type=track|album|artist&page=
GET    /api/v1/events                 ?item=&artist=&playlist=&release=&kind=

The wanted pages (the UI section at the end):

GET    /ui/wanted                     the same filters as the API, in the URL
POST   /ui/wanted                     want a track or an album (form: spotify)
GET    /ui/wanted/{id}                the item, its sources, candidates, downloads and history
POST   /ui/wanted/{id}                set its priority
POST   /ui/wanted/{id}/{action}       retry, skip, unskip, search (now) or wrong (file)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse

from . import events, playlists, wanted, watchlist, web_downloads
from .errors import BadInput, Invalid, TooManyRequests
from .web_base import (
    action as form_action,
)
from .web_base import (
    choice_param,
    countdown,
    encode_cursor,
    event_rows,
    form_int,
    form_text,
    int_param,
    json_body,
    page_params,
    paged,
    path_id,
    render,
    str_param,
    when,
)

if TYPE_CHECKING:
    from .context import Context

SEARCH_KINDS = ("track", "album", "artist")
# Spotify serves a search's results up to offset 1,000, ten at a time to a Development Mode app.
SEARCH_MAX_OFFSET = 990
ACTIONS = ("retry", "skip", "unskip", "search", "wrong")
# What each action's button says.
LABELS = {"retry": "Retry", "skip": "Skip", "unskip": "Unskip", "search": "Search now", "wrong": "Wrong file"}
# The states in which an operator's pick of a candidate can start its download (`Searcher.pick`).
PICKABLE = frozenset({"wanted", "searching", "found", "not_found", "queued", "downloading", "failed"})


def offered(state: str) -> list[str]:
    """The operator actions the pages offer an item in `state` (the domain checks them again)."""
    out = []
    if state in ("failed", "not_found", "paused"):
        out.append("retry")
    if state in ("wanted", "not_found", "found"):
        out.append("search")
    if state == "done":
        out.append("wrong")
    if "skipped" in wanted.TRANSITIONS[state]:
        out.append("skip")
    if state == "skipped":
        out.append("unskip")
    return out


def _states() -> list[str] | None:
    raw = str_param("state", 200)
    if raw is None:
        return None
    states = [s for s in raw.split(",") if s]
    unknown = sorted(set(states) - set(wanted.STATES))
    if unknown or not states:
        raise BadInput(
            f"query parameter state must be one or more of {', '.join(wanted.STATES)}", parameter="state"
        )
    return states


def register(app: bottle.Bottle, ctx: Context) -> None:
    db, requests = ctx.db, ctx.requests

    def filters() -> dict[str, Any]:
        return {
            "state": _states(),
            "source_kind": choice_param("source", wanted.SOURCE_KINDS),
            "artist_id": int_param("artist", None, 1),
            "playlist_id": int_param("playlist", None, 1),
            "release_id": int_param("release", None, 1),
            "q": str_param("q", 200),
        }

    def list_wanted() -> dict[str, Any]:
        sort = choice_param("sort", wanted.SORTS) or "priority"
        limit, after = page_params(wanted.CURSOR_SHAPES[sort])
        chosen = filters()
        rows = wanted.list_items(db, after=after, limit=limit + 1, sort=sort, **chosen)
        total = wanted.count_items(db, **chosen) if after is None else None
        return paged(rows, limit, lambda item: wanted.cursor_key(item, sort), total=total)

    def want() -> HTTPResponse:
        body = json_body(allowed={"spotify"})
        ref = body.get("spotify")
        if not isinstance(ref, str) or not ref.strip():
            raise Invalid("spotify must be a track or album id, URI or URL", field="spotify")
        results = requests.want(ref)
        items = [{**item.to_dict(), "outcome": outcome} for item, outcome in results]
        status = 201 if any(outcome in ("created", "owned") for _, outcome in results) else 200
        headers = {"Location": f"/api/v1/wanted/{results[0][0].id}"} if results else {}
        return HTTPResponse({"items": items}, status, **headers)

    def show(item_id: str) -> dict[str, Any]:
        item = wanted.get(db, path_id(item_id, "item_id"))
        history = events.list_events(db, item_id=item.id, limit=100)
        return {**item.to_dict(), "events": [event.to_dict() for event in history]}

    def update(item_id: str) -> dict[str, Any]:
        body = json_body(allowed={"priority"})
        priority = body.get("priority")
        if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
            raise Invalid("priority must be an integer from -1000 to 1000", field="priority")
        return wanted.set_priority(db, path_id(item_id, "item_id"), priority).to_dict()

    def delete(item_id: str) -> HTTPResponse:
        json_body(allowed=())
        wanted.delete(db, path_id(item_id, "item_id"))
        return HTTPResponse(status=204)

    def action(verb: str) -> Any:
        def act(item_id: str) -> dict[str, Any]:
            json_body(allowed=())
            return getattr(wanted, verb)(db, path_id(item_id, "item_id")).to_dict()  # type: ignore[no-any-return]

        return act

    def search() -> dict[str, Any]:
        query = str_param("q", 200)
        if not query:
            raise BadInput("query parameter q is required", parameter="q")
        kind = choice_param("type", SEARCH_KINDS) or "track"
        limit, after = page_params()
        offset = after[0] if after else 0
        if not 0 <= offset <= SEARCH_MAX_OFFSET:
            raise BadInput("query parameter cursor is not a cursor from this list", parameter="cursor")
        found = requests.search(query, kind, offset)
        items = found["items"][:limit]
        end = offset + len(items)
        more = (found["more"] or len(found["items"]) > limit) and end <= SEARCH_MAX_OFFSET
        return {
            "items": items,
            "next_cursor": encode_cursor((end,)) if more and items else None,
            "total": found["total"],
        }

    def list_events() -> dict[str, Any]:
        limit, after = page_params()
        kind = str_param("kind", 64)
        if kind is not None and not events.KIND.fullmatch(kind.rstrip(".")):
            raise BadInput(
                "query parameter kind must be a dotted event kind such as item.state", parameter="kind"
            )
        rows = events.list_events(
            db,
            after=after,  # type: ignore[arg-type]
            limit=limit + 1,
            kind=kind,
            item_id=int_param("item", None, 1),
            artist_id=int_param("artist", None, 1),
            release_id=int_param("release", None, 1),
            playlist_id=int_param("playlist", None, 1),
        )
        return paged(rows, limit, lambda event: (event.id,))

    # --- pages (the web UI) ------------------------------------------------------------------

    def wanted_page() -> str:
        sort = choice_param("sort", wanted.SORTS) or "priority"
        limit, after = page_params(wanted.CURSOR_SHAPES[sort])
        chosen = filters()
        rows = wanted.list_items(db, after=after, limit=limit + 1, sort=sort, **chosen)
        more = len(rows) > limit
        rows = rows[:limit]
        params = {
            "state": ",".join(chosen["state"]) if chosen["state"] else None,
            "source": chosen["source_kind"],
            "artist": chosen["artist_id"],
            "playlist": chosen["playlist_id"],
            "release": chosen["release_id"],
            "q": chosen["q"],
            "sort": sort if sort != "priority" else None,
            "limit": limit if limit != 50 else None,
        }
        return render(
            "wanted",
            fragments={"wanted-table": "_wanted_table"},
            title="Wanted",
            section="wanted",
            items=rows,
            total=wanted.count_items(db, **chosen),
            chosen=chosen,
            params=params,
            states=wanted.STATES,
            sources=wanted.SOURCE_KINDS,
            sort=sort,
            sorts=wanted.SORTS,
            offered=offered,
            labels=LABELS,
            next_cursor=encode_cursor(wanted.cursor_key(rows[-1], sort)) if more and rows else None,
            paged=after is not None,
        )

    def want_page() -> Any:
        def act() -> str:
            results = requests.want(form_text("spotify", 300, required=True) or "")
            new = sum(1 for _, outcome in results if outcome == "created")
            return f"{len(results)} track(s): {new} newly wanted, the others already known or owned."

        return form_action("/ui/wanted", act)

    def item_page(item_id: str) -> str:
        item = wanted.get(db, path_id(item_id, "item_id"))
        history = events.list_events(db, item_id=item.id, limit=200)
        artists = watchlist.artist_names(db, [s["artist_id"] for s in item.sources if s["artist_id"]])
        lists = playlists.names(db, [s["playlist_id"] for s in item.sources if s["playlist_id"]])
        candidates = ctx.searcher.candidates(item.id)
        config = ctx.config
        return render(
            "wanted_item",
            fragments={"wanted-live": "_wanted_item_live", "item-downloads": "_item_downloads"},
            title=item.title,
            section="wanted",
            item=item,
            history=event_rows(db, history),
            artist_names=artists,
            playlist_names=lists,
            offered=offered,
            labels=LABELS,
            accepted=[c for c in candidates if c.accepted],
            rejected=[c for c in candidates if not c.accepted],
            searches=ctx.searcher.searches(item.id, limit=5),
            pickable=item.state in PICKABLE,
            budget=ctx.searcher.budget.status(),
            transfers=ctx.transfers.list_downloads(item_id=item.id, limit=20),
            give_up=lambda download: web_downloads.give_up(download, config),
            leaf=web_downloads.leaf,
            now=ctx.transfers.clock(),
        )

    def item_priority(item_id: str) -> Any:
        def act() -> str:
            item = wanted.set_priority(
                db, path_id(item_id, "item_id"), form_int("priority", -1000, 1000) or 0
            )
            return f"{item.title} now has priority {item.priority}."

        return form_action(f"/ui/wanted/{item_id}", act)

    def item_action(item_id: str, verb: str) -> Any:
        def act() -> str:
            if verb not in ACTIONS:
                raise BadInput(f"action must be one of {', '.join(ACTIONS)}", action=verb[:20])
            number = path_id(item_id, "item_id")
            if verb == "search":
                item = search_now(number)
                return f"{item.title}: searching now (one search from the budget)."
            if verb == "wrong":
                item = ctx.importer.wrong(number)
                return f"{item.title}: the file is set aside, never to be taken again; wanted anew."
            item = getattr(wanted, verb)(db, number)
            return f"{item.title}: {item.state.replace('_', ' ')} ({item.reason})."

        return form_action(f"/ui/wanted/{item_id}", act)

    def search_now(item_id: int) -> wanted.Item:
        """`Searcher.search_now`, with a spent budget explained in the page's words."""
        try:
            return ctx.searcher.search_now(item_id)
        except TooManyRequests as exc:
            status = ctx.searcher.budget.status()
            wait = float(exc.details.get("retry_after") or 0)
            raise TooManyRequests(
                f"Not searched: the search budget ({status['limit']} searches per "
                f"{countdown(status['window_s'])}) is spent. The next search can start in "
                f"{countdown(wait)} (at {when(status['next_free_at'])[11:]} UTC); the item keeps its "
                "place in the backlog meanwhile.",
                **exc.details,
            ) from None

    app.route("/api/v1/wanted", "GET", list_wanted, role="read")
    app.route("/api/v1/wanted", "POST", want, role="operator")
    app.route("/api/v1/wanted/<item_id>", "GET", show, role="read")
    app.route("/api/v1/wanted/<item_id>", "PATCH", update, role="operator")
    app.route("/api/v1/wanted/<item_id>", "DELETE", delete, role="operator")
    app.route("/api/v1/wanted/<item_id>/retry", "POST", action("retry"), role="operator")
    app.route("/api/v1/wanted/<item_id>/skip", "POST", action("skip"), role="operator")
    app.route("/api/v1/wanted/<item_id>/unskip", "POST", action("unskip"), role="operator")
    app.route("/api/v1/search/spotify", "GET", search, role="read")
    app.route("/api/v1/events", "GET", list_events, role="read")
    app.route("/ui/wanted", "GET", wanted_page, role="read")
    app.route("/ui/wanted", "POST", want_page, role="operator")
    app.route("/ui/wanted/<item_id>", "GET", item_page, role="read")
    app.route("/ui/wanted/<item_id>", "POST", item_priority, role="operator")
    app.route("/ui/wanted/<item_id>/<verb>", "POST", item_action, role="operator")
