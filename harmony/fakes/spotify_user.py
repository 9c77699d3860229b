"""The fake Spotify's user routes: `/v1/me`, followed artists, saved tracks, the user's playlists
and a playlist's items, with Development Mode's rules and the `fields` filter.

- `GET /v1/playlists/{id}` and `/items`: Spotify's own playlists (owner `spotify`, ids starting
  `37i9`) answer 404 to Development Mode apps, though `/me/playlists` lists them; the items of a
  playlist the user neither owns nor collaborates on answer 403; the legacy `/tracks` answers 403.
- Entries come as Spotify sends them (`spotify_wire.entry`): episodes (shaped as tracks unless
  `additional_types=episode`), null items, legacy-shaped entries, null `added_at`.
- `fields` is applied to the playlist and its items: `a,b`, `a.b`, `a(b,c)`, `!x`; a malformed
  expression is a 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import bottle

from harmony.fakes.catalogue import USER_ID, Playlist
from harmony.fakes.spotify_wire import (
    artist,
    base,
    can_read_items,
    entry,
    fail,
    get,
    limit_param,
    offset_param,
    page,
    param,
    playlist,
    spotify_owned,
    track,
)

if TYPE_CHECKING:
    from harmony.fakes.spotify import SpotifyState

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Fields:
    """A parsed `fields` expression: the fields kept (each with what to keep inside it, None for
    all of it) and the fields dropped. With nothing kept explicitly, everything not dropped stays."""

    keep: dict[str, Fields | None] = field(default_factory=dict)
    drop: set[str] = field(default_factory=set)

    def apply(self, value: Any) -> Any:
        """`value` with only the selected fields; lists are filtered item by item."""
        if isinstance(value, list):
            return [self.apply(item) for item in value]
        if not isinstance(value, dict):
            return value
        out = {}
        for key, item in value.items():
            if key in self.drop or (self.keep and key not in self.keep):
                continue
            inner = self.keep.get(key)
            out[key] = inner.apply(item) if inner is not None else item
        return out


def parse_fields(text: str) -> Fields:
    """Parse Spotify's `fields` syntax; ValueError when malformed."""
    parser = _FieldParser(text)
    fields = parser.list()
    if parser.pos != len(text):
        raise ValueError(f"unexpected {text[parser.pos]!r} at {parser.pos}")
    return fields


class _FieldParser:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def list(self) -> Fields:
        fields = Fields()
        self.item(fields)
        while self.peek() == ",":
            self.pos += 1
            self.item(fields)
        return fields

    def item(self, into: Fields) -> None:
        negate = self.peek() == "!"
        if negate:
            self.pos += 1
        match = _NAME.match(self.text, self.pos)
        if match is None:
            raise ValueError(f"a field name expected at {self.pos}")
        name, self.pos = match.group(), match.end()
        inner: Fields | None = None
        if self.peek() == ".":
            self.pos += 1
            inner = Fields()
            self.item(inner)
        elif self.peek() == "(":
            self.pos += 1
            inner = self.list()
            if self.peek() != ")":
                raise ValueError(f"')' expected at {self.pos}")
            self.pos += 1
        if negate:
            if inner is not None:
                raise ValueError("only whole fields can be excluded")
            into.drop.add(name)
            return
        if name in into.keep and into.keep[name] is not None and inner is not None:
            current = into.keep[name]
            assert current is not None
            current.keep.update(inner.keep)
            current.drop |= inner.drop
        else:
            into.keep[name] = None if name in into.keep and into.keep[name] is None else inner

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""


def filtered(value: dict[str, Any]) -> dict[str, Any]:
    """`value` narrowed by this request's `fields` parameter, if any (400 when malformed)."""
    expression = param("fields")
    if not expression:
        return value
    try:
        fields = parse_fields(expression)
    except ValueError:
        fail(400, "Invalid fields parameter")
    result: dict[str, Any] = fields.apply(value)
    return result


def register(app: bottle.Bottle, state: SpotifyState) -> None:
    """Add the user's routes to the fake Spotify `app`."""
    cat = state.catalogue

    @app.get("/v1/me")
    def me() -> Any:
        out = {
            "id": USER_ID,
            "display_name": "Harmony Listener",
            "type": "user",
            "uri": f"spotify:user:{USER_ID}",
            "href": f"{base()}/v1/users/{USER_ID}",
            "external_urls": {"spotify": f"https://open.spotify.com/user/{USER_ID}"},
            "images": [],
            "account_id": USER_ID,
        }
        if not state.dev_mode:
            out.update(country=state.country, product="premium", followers={"href": None, "total": 3})
        return out

    @app.get("/v1/me/following")
    def following() -> Any:
        if param("type") != "artist":
            fail(400, "Only valid type is artist")
        limit = limit_param(20, 50)
        after = param("after")
        with state.lock:
            ids = list(cat.followed)
        start = ids.index(after) + 1 if after in ids else 0
        chunk = ids[start : start + limit]
        last = chunk[-1] if chunk and start + limit < len(ids) else None
        query = {"type": "artist", "limit": limit}
        href_query = {**query, "after": after} if after else query
        return {
            "artists": {
                "href": f"{base()}/v1/me/following?{urlencode(href_query)}",
                "items": [artist(state, cat.artists[i], full=True) for i in chunk],
                "limit": limit,
                "next": f"{base()}/v1/me/following?{urlencode({**query, 'after': last})}" if last else None,
                "cursors": {"after": last},
                "total": len(ids),
            }
        }

    @app.get("/v1/me/playlists")
    def my_playlists() -> Any:
        limit, offset = limit_param(20, 50), offset_param(maximum=100_000)
        playlists = list(cat.playlists.values())
        items = [playlist(state, p) for p in playlists[offset : offset + limit]]
        return page(items, len(playlists), limit, offset)

    @app.get("/v1/me/tracks")
    def saved_tracks() -> Any:
        limit, offset = limit_param(20, 50), offset_param()
        rows = cat.saved[offset : offset + limit]
        items = [{"added_at": added, "track": track(state, cat.tracks[t], full=True)} for t, added in rows]
        return page(items, len(cat.saved), limit, offset)

    @app.get("/v1/playlists/<playlist_id>")
    def get_playlist(playlist_id: str) -> Any:
        p = _readable(state, playlist_id)
        out = playlist(state, p, full=True)
        if can_read_items(p):
            with state.lock:
                entries = list(p.entries)
            episodes = "episode" in (param("additional_types") or "")
            first = page(
                [entry(state, e, "item", episodes=episodes) for e in entries[:100]], len(entries), 100, 0
            )
            first["href"] = first["href"].replace(f"/v1/playlists/{p.id}", f"/v1/playlists/{p.id}/items")
            out["items"] = out["tracks"] = first
        return filtered(out)

    @app.get("/v1/playlists/<playlist_id>/items")
    def playlist_items(playlist_id: str) -> Any:
        return filtered(_items_page(state, playlist_id, key="item", maximum=50))

    @app.get("/v1/playlists/<playlist_id>/tracks")
    def playlist_tracks(playlist_id: str) -> Any:
        if state.dev_mode:
            fail(403, "Forbidden")
        return filtered(_items_page(state, playlist_id, key="track", maximum=100))


def _readable(state: SpotifyState, playlist_id: str) -> Playlist:
    p: Playlist = get(state.catalogue.playlists, playlist_id)
    if state.dev_mode and spotify_owned(p):
        fail(404, "Resource not found")  # since 2024-11-27, for apps without extended access
    return p


def _items_page(state: SpotifyState, playlist_id: str, *, key: str, maximum: int) -> dict[str, Any]:
    p = _readable(state, playlist_id)
    if not can_read_items(p):
        fail(403, "Forbidden")
    limit, offset = limit_param(20, maximum), offset_param()
    with state.lock:
        rows = p.entries[offset : offset + limit]
        total = len(p.entries)
    episodes = "episode" in (param("additional_types") or "")
    return page([entry(state, e, key, episodes=episodes) for e in rows], total, limit, offset)
