"""How the fake Spotify writes: error bodies, request helpers, paging objects and the JSON of
artists, albums, tracks, episodes, playlists and playlist entries.

Shared by the fake Spotify's route modules (`spotify.py`, `spotify_user.py`). Development Mode
shapes (`SpotifyState.dev_mode`) leave out what such apps no longer get: popularity, genres,
markets, labels, `album_group`, the deprecated `track` of a playlist entry.
"""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlencode

import bottle

from harmony.fakes.catalogue import MARKETS, Album, Artist, Playlist, PlaylistEntry, Track

if TYPE_CHECKING:
    from harmony.fakes.spotify import SpotifyState

ID = re.compile(r"^[0-9A-Za-z]{22}$")
_MARKET = re.compile(r"^[A-Z]{2}$")
# A 1x1 grey baseline JPEG, served for every cover image.
COVER_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEAYABgAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcp"
    "LDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAA"
    "AAD/2gAIAQEAAD8AKp//2Q=="
)


def error_body(status: int, message: str) -> tuple[bytes, str]:
    """Spotify's Web API error shape."""
    default = {401: "Invalid access token", 404: "Resource not found", 429: "API rate limit exceeded"}
    text = message or default.get(status, "Service unavailable" if status >= 500 else "Bad request")
    return json.dumps({"error": {"status": status, "message": text}}).encode(), "application/json"


def fail(status: int, message: str = "") -> NoReturn:
    body, ctype = error_body(status, message)
    raise bottle.HTTPResponse(body, status, headers={"Content-Type": ctype})


def not_found(err: bottle.HTTPError) -> str:
    bottle.response.content_type = "application/json"
    return json.dumps({"error": {"status": err.status_code, "message": "Service not found"}})


# -- request helpers ----------------------------------------------------------------------------------


def param(name: str, default: str | None = None) -> str | None:
    """A query parameter decoded as UTF-8 (bottle's plain `get` returns latin-1 text)."""
    return bottle.request.query.getunicode(name, default=default)


def base() -> str:
    parts = bottle.request.urlparts
    return f"{parts.scheme}://{parts.netloc}"


def limit_param(default: int, maximum: int) -> int:
    raw = param("limit")
    try:
        limit = default if raw in (None, "") else int(raw)
    except ValueError:
        fail(400, "Invalid limit")
    if not 1 <= limit <= maximum:
        fail(400, "Invalid limit")
    return limit


def offset_param(maximum: int = 10**9) -> int:
    raw = param("offset")
    try:
        offset = 0 if raw in (None, "") else int(raw)
    except ValueError:
        fail(400, "Invalid offset")
    if not 0 <= offset <= maximum:
        fail(400, "Invalid offset")
    return offset


def ids_param(cap: int) -> list[str]:
    ids = [i for i in (param("ids") or "").split(",") if i]
    if not ids:
        fail(400, "invalid id")
    if len(ids) > cap:
        fail(400, "Too many ids requested")
    for i in ids:
        if not ID.match(i):
            fail(400, "invalid id")
    return ids


def get(table: dict[str, Any], item_id: str) -> Any:
    if not ID.match(item_id):
        fail(400, "invalid id")
    item = table.get(item_id)
    if item is None:
        fail(404, "Resource not found")
    return item


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """A paging object whose href/next/previous repeat this request's URL with another offset."""
    query = dict(bottle.request.query.decode().allitems())
    url = f"{base()}{bottle.request.path}?"

    def at(off: int) -> str:
        return url + urlencode({**query, "offset": off, "limit": limit})

    return {
        "href": at(offset),
        "items": items,
        "limit": limit,
        "next": at(offset + limit) if offset + limit < total else None,
        "offset": offset,
        "previous": at(max(0, offset - limit)) if offset > 0 else None,
        "total": total,
    }


def market() -> str | None:
    """The `market` parameter as a country code: `from_token` is the user's country (user tokens
    only); None when absent. 400 "Invalid market code" otherwise."""
    raw = param("market")
    if raw in (None, ""):
        return None
    if raw == "from_token":
        token = bottle.request.environ["fake.token"]
        if token.user_id is None:
            fail(400, "Invalid market code")
        return str(token.country)
    if not _MARKET.match(raw):
        fail(400, "Invalid market code")
    return raw


# -- serialisation ------------------------------------------------------------------------------------


def links(kind: str, item_id: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{item_id}"},
        "href": f"{base()}/v1/{kind}s/{item_id}",
        "id": item_id,
        "type": kind,
        "uri": f"spotify:{kind}:{item_id}",
    }


def artist(state: SpotifyState, a: Artist, *, full: bool = False) -> dict[str, Any]:
    out = {**links("artist", a.id), "name": a.name}
    if full:
        out["images"] = images(a.id)
        if not state.dev_mode:
            out.update(genres=list(a.genres), popularity=50, followers={"href": None, "total": 1000})
    return out


def artist_full(state: SpotifyState, a: Artist) -> dict[str, Any]:
    return artist(state, a, full=True)


def images(item_id: str) -> list[dict[str, Any]]:
    return [{"url": f"{base()}/images/{item_id}/{s}.jpg", "height": s, "width": s} for s in (640, 300, 64)]


def album(state: SpotifyState, a: Album, *, full: bool = False, group: str | None = None) -> dict[str, Any]:
    cat = state.catalogue
    out: dict[str, Any] = {
        **links("album", a.id),
        "album_type": a.album_type,
        "total_tracks": len(a.track_ids),
        "name": a.name,
        "release_date": a.release_date,
        "release_date_precision": a.release_date_precision,
        "images": images(a.id),
        "artists": [artist(state, cat.artists[i]) for i in a.artist_ids],
    }
    if group is not None and not state.dev_mode:
        out["album_group"] = group
    if not state.dev_mode:
        out["available_markets"] = list(a.markets or MARKETS)
    if full:
        tracks = cat.album_tracks(a)
        page = {
            "href": f"{base()}/v1/albums/{a.id}/tracks?offset=0&limit=50",
            "items": [track(state, t) for t in tracks[:50]],
            "limit": 50,
            "next": f"{base()}/v1/albums/{a.id}/tracks?offset=50&limit=50" if len(tracks) > 50 else None,
            "offset": 0,
            "previous": None,
            "total": len(tracks),
        }
        year = a.release_date[:4]
        out.update(
            tracks=page,
            copyrights=[
                {"text": f"© {year} {a.label}", "type": "C"},
                {"text": f"℗ {year} {a.label}", "type": "P"},
            ],
            external_ids={"upc": a.upc},
        )
        if not state.dev_mode:
            out.update(label=a.label, genres=[], popularity=40)
    return out


def track(state: SpotifyState, t: Track, *, full: bool = False) -> dict[str, Any]:
    cat = state.catalogue
    out: dict[str, Any] = {
        **links("track", t.id),
        "name": t.name,
        "artists": [artist(state, cat.artists[i]) for i in t.artist_ids],
        "duration_ms": t.duration_ms,
        "track_number": t.track_number,
        "disc_number": t.disc_number,
        "explicit": t.explicit,
        "is_local": False,
        "is_playable": True,
    }
    if not state.dev_mode:
        out.update(preview_url=None, available_markets=["SE", "GB", "US"])
    if full:
        out["album"] = album(state, cat.albums[t.album_id])
        out["external_ids"] = {"isrc": t.isrc}
        if not state.dev_mode:
            out["popularity"] = 42
    return out


def track_full(state: SpotifyState, t: Track) -> dict[str, Any]:
    return track(state, t, full=True)


def episode(state: SpotifyState, e: PlaylistEntry, *, as_track: bool) -> dict[str, Any]:
    """A podcast episode: its own object with `additional_types=episode`, else squeezed into a
    track's shape with `episode: true` (and `type` still "episode", as Spotify sends it)."""
    episode_id = ("Ep" + e.local_name.replace(" ", "").replace(":", ""))[:22].ljust(22, "0")
    show = {"id": "ShowHarmonyTalk0000000", "name": "Harmony Talk", "type": "show", "publisher": "Harmony"}
    if not as_track:
        return {
            **links("episode", episode_id),
            "name": e.local_name,
            "description": "",
            "duration_ms": 1_800_000,
            "release_date": "2024-02-02",
            "release_date_precision": "day",
            "images": [],
            "show": show,
        }
    return {
        **links("episode", episode_id),
        "name": e.local_name,
        "episode": True,
        "track": False,
        "duration_ms": 1_800_000,
        "artists": [{"name": show["name"], "type": "artist", "id": show["id"]}],
        "album": {"name": show["name"], "type": "show", "id": show["id"], "images": []},
        "is_local": False,
        "explicit": False,
        "disc_number": 0,
        "track_number": 0,
    }


def entry(state: SpotifyState, e: PlaylistEntry, key: str, *, episodes: bool) -> dict[str, Any]:
    """One playlist entry under `key` (`item` from 2026, `track` on the legacy route)."""
    item: dict[str, Any] | None
    if e.kind in ("local",):
        name = e.local_name.rsplit(".", 1)[0]
        item = {
            "id": None,
            "name": name,
            "type": "track",
            "uri": f"spotify:local:{e.local_artist.replace(' ', '+')}:{e.local_album.replace(' ', '+')}:"
            f"{name.replace(' ', '+')}:180",
            "href": None,
            "external_urls": {},
            "is_local": True,
            "duration_ms": 180000,
            "artists": [{"id": None, "name": e.local_artist, "type": "artist", "uri": None, "href": None}],
            "album": {
                "id": None,
                "name": e.local_album,
                "type": "album",
                "uri": None,
                "artists": [],
                "images": [],
            },
            "external_ids": {},
            "disc_number": 0,
            "track_number": 0,
            "explicit": False,
        }
    elif e.kind == "episode":
        item = episode(state, e, as_track=not episodes)
    elif e.kind == "null" or e.track_id is None:
        item = None
    else:
        item = track(state, state.catalogue.tracks[e.track_id], full=True)
    user = {**links("user", e.added_by), "href": f"{base()}/v1/users/{e.added_by}"} if e.added_by else None
    out: dict[str, Any] = {"added_at": e.added_at, "added_by": user, "is_local": e.kind == "local"}
    if e.kind == "legacy":  # shaped as before the 2026 rename: `track`, and no `item`
        out["track"] = item
        return out
    out[key] = item
    if key == "item":
        out["track"] = None if state.dev_mode else item  # renamed to `item` in 2026; the old key is null
    return out


def playlist(state: SpotifyState, p: Playlist, *, full: bool = False) -> dict[str, Any]:
    owner = {**links("user", p.owner_id), "display_name": p.owner_name}
    total = len(p.entries)
    out: dict[str, Any] = {
        **links("playlist", p.id),
        "name": p.name,
        "description": p.description or None,
        "public": p.public,
        "collaborative": p.collaborative,
        "owner": owner,
        "snapshot_id": p.snapshot_id,
        "images": images(p.id) if total else [],
    }
    if full:
        out["followers"] = {"href": None, "total": 3}
    else:
        out["items"] = {"href": f"{base()}/v1/playlists/{p.id}/items", "total": total}
        out["tracks"] = {"href": f"{base()}/v1/playlists/{p.id}/tracks", "total": total}
    return out


def can_read_items(p: Playlist) -> bool:
    """Development Mode: only the user's own and collaborative playlists."""
    token = bottle.request.environ["fake.token"]
    return token.user_id is not None and (p.owner_id == token.user_id or p.collaborative)


def spotify_owned(p: Playlist) -> bool:
    return p.owner_id == "spotify"
