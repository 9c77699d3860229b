"""A fake Spotify: the Web API subset Harmony uses, over the seeded catalogue, as a Development
Mode app sees it in 2026.

Contract (`spec/api-contracts.md` Part B, `spec/fakes-audit.md`): Bearer tokens on every `/v1`
call, with Spotify's error body `{"error": {"status", "message"}}`; simplified objects in
listings and full objects on single lookups (ISRCs only on full tracks); paging objects whose
`next` is an absolute URL back to this server; releases dated after the fake clock's today are
invisible. Development Mode (`dev_mode`, on by default): search and artist albums at most 10 a
page, playlist items 50, deprecated fields left out, and the removed endpoints refused with 403
(batch reads `/albums`, `/tracks` and `/artists?ids=`, `browse/new-releases`, related artists,
top tracks, audio features, recommendations). Artist albums list a release once per set of
markets unless `market` (or `from_token`) narrows them. Playlist search may hold nulls.

An organic rate limit is off until `rate_limit` is set: more than that many `/v1` calls in a
rolling 30 s window (fake clock) get 429, and calls made while limited grow the `Retry-After`,
fourfold each time, up to 4 hours.

Modules: `spotify_accounts` (tokens, authorisation, refresh-token lifetime and rotation, the
user allowlist), `spotify_user` (the user's library and playlists, the `fields` filter),
`spotify_wire` (errors, paging, JSON shapes).

Control API (no auth): `/_fake/faults`, `/_fake/clock` (see `faults.py`), and under
`/_fake/spotify/`: `POST expire-tokens`, `POST revoke` (refresh tokens), `GET` and `POST settings`
(`{"deny_authorize"?, "dev_mode"?, "token_lifetime"?, "refresh_rotation"? ("none" or
"single_use"), "refresh_lifetime"?, "allowlist"? (user ids), "redirect_uris"? (null: any),
"rate_limit"? (null: off)}`), `POST playlists/<id>` (`{"add": [track ids], "remove": [track
ids]}`, bumps `snapshot_id`), `POST following` (`{"add": [artist ids], "remove": [artist ids]}`).
"""

from __future__ import annotations

import collections
import math
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bottle

from harmony.fakes import faults as faultlib
from harmony.fakes import spotify_accounts, spotify_user
from harmony.fakes.catalogue import USER_ID, Album, Artist, Catalogue, Playlist, PlaylistEntry, Track
from harmony.fakes.clock import FakeClock
from harmony.fakes.spotify_accounts import NOT_REGISTERED, REFRESH_LIFETIME, ROTATIONS, Grant
from harmony.fakes.spotify_wire import (
    COVER_JPEG,
    album,
    artist,
    artist_full,
    error_body,
    fail,
    get,
    ids_param,
    limit_param,
    market,
    not_found,
    offset_param,
    page,
    param,
    playlist,
    track,
    track_full,
)

SCOPES_FOR = {
    "/v1/me": "user-read-private",
    "/v1/me/playlists": "playlist-read-private",
    "/v1/me/following": "user-follow-read",
    "/v1/me/tracks": "user-library-read",
}
_GROUPS = ("album", "single", "appears_on", "compilation")
_SEARCH_TYPES = ("album", "artist", "playlist", "track", "show", "episode", "audiobook")
RATE_WINDOW = 30.0
RATE_BASE, RATE_GROWTH, RATE_CAP = 1.0, 4.0, 4 * 3600.0
# Control-API settings: name -> converter.
SETTINGS: dict[str, Callable[[Any], Any]] = {
    "deny_authorize": bool,
    "dev_mode": bool,
    "token_lifetime": int,
    "refresh_rotation": str,
    "refresh_lifetime": float,
    "allowlist": lambda v: [str(x) for x in v],
    "redirect_uris": lambda v: None if v is None else [str(x) for x in v],
    "rate_limit": lambda v: None if v is None else int(v),
}


@dataclass
class Token:
    expires_at: float
    scopes: frozenset[str]
    user_id: str | None  # None for an app (client-credentials) token
    country: str = "SE"


@dataclass
class SpotifyState:
    """Everything the fake Spotify knows. Mutations hold `lock`."""

    catalogue: Catalogue
    clock: FakeClock
    client_id: str = "harmonyfakeclientid0001"
    client_secret: str = "harmonyfakeclientsecret01"
    token_lifetime: int = 3600
    dev_mode: bool = True
    deny_authorize: bool = False
    refresh_rotation: str = "none"  # or "single_use" (see spotify_accounts)
    refresh_lifetime: float = REFRESH_LIFETIME
    allowlist: list[str] = field(default_factory=lambda: [USER_ID])  # Development Mode users
    redirect_uris: list[str] | None = None  # registered redirect URIs; None: any allowed form
    rate_limit: int | None = None  # calls per rolling 30 s window; None: no organic limit
    country: str = "SE"  # the user's country, for market=from_token
    tokens: dict[str, Token] = field(default_factory=dict)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)  # how each was authenticated
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: faultlib.FaultTable = field(init=False)

    def __post_init__(self) -> None:
        self.faults = faultlib.FaultTable(error_body)
        self._calls: collections.deque[float] = collections.deque()
        self._limited_until = 0.0
        self._strikes = 0

    def issue(self, scopes: frozenset[str], *, user: str | None) -> dict[str, Any]:
        """A new access token response body (without a refresh token), for `user` or the app."""
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = Token(self.clock.now() + self.token_lifetime, scopes, user, self.country)
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
        }
        if user is not None:
            body["scope"] = " ".join(sorted(scopes))
        return body

    def visible(self, album: Album) -> bool:
        return not album.future or album.released_on <= self.clock.today()

    def rate_limited(self, now: float) -> float | None:
        """Count one `/v1` call; the seconds to wait when it is over the limit, else None."""
        if self.rate_limit is None:
            return None
        with self.lock:
            if now < self._limited_until:
                # Calling while limited is what makes Spotify's waits grow (to hours).
                self._strikes += 1
                self._limited_until = max(self._limited_until, now + self._penalty())
                return self._limited_until - now
            while self._calls and self._calls[0] <= now - RATE_WINDOW:
                self._calls.popleft()
            if not self._calls and now - self._limited_until > RATE_WINDOW:
                self._strikes = 0  # a quiet window forgives
            self._calls.append(now)
            if len(self._calls) <= self.rate_limit:
                return None
            self._strikes += 1
            self._limited_until = now + self._penalty()
            return self._limited_until - now

    def _penalty(self) -> float:
        return float(min(RATE_CAP, RATE_BASE * RATE_GROWTH ** (self._strikes - 1)))

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SETTINGS}

    def change(self, data: dict[str, Any]) -> dict[str, Any]:
        """Apply control-API settings; ValueError on an unknown key or a bad value."""
        unknown = set(data) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        if data.get("refresh_rotation", "none") not in ROTATIONS:
            raise ValueError(f"refresh_rotation must be one of {', '.join(ROTATIONS)}")
        with self.lock:
            for name, value in data.items():
                setattr(self, name, SETTINGS[name](value))
            if "rate_limit" in data:
                self._calls.clear()
                self._limited_until, self._strikes = 0.0, 0
        return self.settings()


def make_app(state: SpotifyState) -> bottle.Bottle:
    """The fake Spotify WSGI app (accounts service and `/v1`) for `state`."""
    app = bottle.Bottle()
    cat = state.catalogue

    @app.hook("before_request")
    def authenticate() -> None:
        environ = bottle.request.environ
        path = environ["PATH_INFO"]
        if len(path) > 1 and path.endswith("/"):
            environ["PATH_INFO"] = path = path.rstrip("/")  # spotipy sends "me/" and "tracks/?ids="
        if not path.startswith("/v1/"):
            return
        header = bottle.request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            fail(401, "No token provided")
        now = state.clock.now()
        with state.lock:
            token = state.tokens.get(header[7:].strip())
        if token is None:
            fail(401, "Invalid access token")
        if token.expires_at <= now:
            fail(401, "The access token expired")
        wait = state.rate_limited(now)
        if wait is not None:
            body, ctype = error_body(429, "")
            headers = {"Content-Type": ctype, "Retry-After": str(math.ceil(wait))}
            raise bottle.HTTPResponse(body, 429, headers=headers)
        if token.user_id is not None and state.dev_mode and token.user_id not in state.allowlist:
            raise bottle.HTTPResponse(NOT_REGISTERED, 403, headers={"Content-Type": "text/plain"})
        needed = SCOPES_FOR.get(path) or ("playlist-read-private" if path.startswith("/v1/me/") else None)
        if needed or path.startswith("/v1/me"):
            if token.user_id is None:
                fail(401, "This request requires user authentication.")
            if needed and needed not in token.scopes:
                fail(403, "Insufficient client scope")
        environ["fake.token"] = token

    for status in (404, 405):
        app.error(status)(not_found)

    spotify_accounts.register(app, state)

    # -- catalogue ------------------------------------------------------------------------------------

    @app.get("/v1/artists")
    def artists() -> Any:
        if state.dev_mode:  # batch lookups were removed for Development Mode apps
            fail(403, "Forbidden")
        return {
            "artists": [
                artist(state, a, full=True) if a else None
                for a in (cat.artists.get(i) for i in ids_param(50))
            ]
        }

    @app.get("/v1/artists/<artist_id>")
    def get_artist(artist_id: str) -> Any:
        return artist(state, get(cat.artists, artist_id), full=True)

    @app.get("/v1/artists/<artist_id>/albums")
    def artist_albums(artist_id: str) -> Any:
        get(cat.artists, artist_id)
        groups_param = param("include_groups") or ",".join(_GROUPS)
        groups = {g.strip() for g in groups_param.split(",") if g.strip()}
        if not groups or groups - set(_GROUPS):
            fail(400, "Invalid include_groups")
        where = market()
        limit, offset = limit_param(5, 10) if state.dev_mode else limit_param(20, 50), offset_param()
        pairs = [
            (a, g)
            for a, g in cat.artist_albums(artist_id)
            if g in groups and state.visible(a) and a.available_in(where)
        ]
        items = [album(state, a, group=g) for a, g in pairs[offset : offset + limit]]
        return page(items, len(pairs), limit, offset)

    for removed in ("related-artists", "top-tracks"):

        @app.get(f"/v1/artists/<artist_id>/{removed}")
        def removed_for_artist(artist_id: str) -> Any:
            fail(403, "Forbidden") if state.dev_mode else fail(404, "Service not found")

    @app.get("/v1/audio-features")
    @app.get("/v1/audio-features/<track_id>")
    @app.get("/v1/recommendations")
    def removed_endpoint(track_id: str = "") -> Any:
        fail(403, "Forbidden") if state.dev_mode else fail(404, "Service not found")

    @app.get("/v1/albums")
    def albums() -> Any:
        if state.dev_mode:  # batch lookups were removed for Development Mode apps in 2026
            fail(403, "Forbidden")
        ids = ids_param(20)
        found = [a if a is not None and state.visible(a) else None for a in (cat.albums.get(i) for i in ids)]
        return {"albums": [album(state, a, full=True) if a else None for a in found]}

    @app.get("/v1/albums/<album_id>")
    def get_album(album_id: str) -> Any:
        return album(state, _visible_album(state, album_id), full=True)

    @app.get("/v1/albums/<album_id>/tracks")
    def album_tracks(album_id: str) -> Any:
        found = _visible_album(state, album_id)
        limit, offset = limit_param(20, 50), offset_param()
        tracks = cat.album_tracks(found)
        return page([track(state, t) for t in tracks[offset : offset + limit]], len(tracks), limit, offset)

    @app.get("/v1/tracks")
    def tracks() -> Any:
        if state.dev_mode:
            fail(403, "Forbidden")
        found = [cat.tracks.get(i) for i in ids_param(50)]
        visible = [t if t and state.visible(cat.albums[t.album_id]) else None for t in found]
        return {"tracks": [track(state, t, full=True) if t else None for t in visible]}

    @app.get("/v1/tracks/<track_id>")
    def get_track(track_id: str) -> Any:
        t = get(cat.tracks, track_id)
        _visible_album(state, t.album_id)
        return track(state, t, full=True)

    @app.get("/v1/search")
    def search() -> Any:
        q = param("q") or ""
        types = [t for t in (param("type") or "").split(",") if t]
        if not q.strip():
            fail(400, "No search query")
        if not types:
            fail(400, "Missing parameter type")
        if set(types) - set(_SEARCH_TYPES):
            fail(400, "Bad search type field")
        limit, offset = (
            limit_param(5, 10) if state.dev_mode else limit_param(20, 50),
            offset_param(maximum=1000),
        )
        out = {}
        for kind in types:
            found = _search(state, q, kind)
            renderers: dict[str, Callable[[SpotifyState, Any], dict[str, Any]]] = {
                "track": track_full,
                "album": album,
                "artist": artist_full,
                "playlist": playlist,
            }
            render = renderers.get(kind)
            chunk = found[offset : offset + limit] if render else []
            items = [render(state, x) if x is not None and render else None for x in chunk]
            out[kind + "s"] = page(items, len(found) if render else 0, limit, offset)
        return out

    @app.get("/v1/browse/new-releases")
    def new_releases() -> Any:
        if state.dev_mode:  # removed for Development Mode apps
            fail(403, "Forbidden")
        today = state.clock.today()
        recent = [
            a
            for a in cat.albums.values()
            if state.visible(a) and a.album_type != "compilation" and (today - a.released_on).days <= 14
        ]
        recent.sort(key=lambda a: (a.released_on, a.id), reverse=True)
        limit, offset = limit_param(20, 50), offset_param()
        items = [album(state, a) for a in recent[offset : offset + limit]]
        return {"albums": page(items, len(recent), limit, offset)}

    @app.get("/images/<album_id>/<size>")
    def image(album_id: str, size: str) -> Any:
        return bottle.HTTPResponse(COVER_JPEG, 200, headers={"Content-Type": "image/jpeg"})

    spotify_user.register(app, state)

    # -- control --------------------------------------------------------------------------------------

    faultlib.register(app, state.faults, state.clock)

    @app.post("/_fake/spotify/expire-tokens")
    def expire_tokens() -> dict[str, Any]:
        with state.lock:
            for t in state.tokens.values():
                t.expires_at = min(t.expires_at, state.clock.now())
            return {"expired": len(state.tokens)}

    @app.post("/_fake/spotify/revoke")
    def revoke() -> dict[str, Any]:
        with state.lock:
            count = len(state.refresh_tokens)
            state.refresh_tokens.clear()
        return {"revoked": count}

    @app.get("/_fake/spotify/settings")
    def get_settings() -> dict[str, Any]:
        return state.settings()

    @app.post("/_fake/spotify/settings")
    def change_settings() -> dict[str, Any]:
        try:
            return state.change(faultlib.json_body())
        except (TypeError, ValueError) as exc:
            faultlib.control_error(400, str(exc))

    @app.post("/_fake/spotify/playlists/<playlist_id>")
    def edit_playlist(playlist_id: str) -> dict[str, Any]:
        data = faultlib.json_body()
        p = cat.playlists.get(playlist_id)
        if p is None:
            faultlib.control_error(404, "no such playlist")
        add, remove = list(data.get("add", [])), set(data.get("remove", []))
        if any(t not in cat.tracks for t in add):
            faultlib.control_error(400, "unknown track id")
        stamp = state.clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        with state.lock:
            p.entries = [e for e in p.entries if e.track_id not in remove]
            p.entries += [PlaylistEntry(t, stamp, USER_ID) for t in add]
            p.version += 1
            return {"snapshot_id": p.snapshot_id, "total": len(p.entries)}

    @app.post("/_fake/spotify/following")
    def edit_following() -> dict[str, Any]:
        data = faultlib.json_body()
        add, remove = list(data.get("add", [])), set(data.get("remove", []))
        if any(a not in cat.artists for a in add):
            faultlib.control_error(400, "unknown artist id")
        with state.lock:
            cat.followed = [a for a in cat.followed if a not in remove]
            cat.followed += [a for a in add if a not in cat.followed]
            return {"total": len(cat.followed)}

    return app


def _visible_album(state: SpotifyState, album_id: str) -> Album:
    found: Album = get(state.catalogue.albums, album_id)
    if not state.visible(found):
        fail(404, "Resource not found")
    return found


# -- search ---------------------------------------------------------------------------------------------

_FILTER = re.compile(r'(\w+):("([^"]*)"|(\S+))')


def _fold(text: str) -> list[str]:
    """Lower-case words without diacritics: Spotify's search ignores case and accents."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.findall(r"\w+", text)


def _has(words: list[str], wanted: str) -> bool:
    return all(any(w.startswith(x) for w in words) for x in _fold(wanted))


def _search(state: SpotifyState, q: str, kind: str) -> list[Any]:
    """Items of `kind` matching `q` (free words match name, artists and album; filters their field).

    Playlists match on their name; a playlist no longer available comes back as null, as on
    Spotify, right after the first one found."""
    cat = state.catalogue
    filters = {m.group(1).lower(): m.group(3) or m.group(4) or "" for m in _FILTER.finditer(q)}
    free = _FILTER.sub(" ", q)
    if {"isrc", "track"} & filters.keys() and kind != "track":
        return []
    if {"upc", "tag"} & filters.keys() and kind != "album":
        return []
    if "album" in filters and kind not in ("album", "track"):
        return []

    def year_ok(album: Album) -> bool:
        if "year" not in filters:
            return True
        low, _, high = filters["year"].partition("-")
        try:
            return int(low) <= album.released_on.year <= int(high or low)
        except ValueError:
            return False

    def names(ids: tuple[str, ...]) -> list[str]:
        return [w for i in ids for w in _fold(cat.artists[i].name)]

    out: list[Any] = []
    if kind == "playlist":
        found: list[Playlist | None] = [p for p in cat.playlists.values() if _has(_fold(p.name), free)]
        return [*found[:1], None, *found[1:]] if found else []
    if kind == "artist":
        wanted = filters.get("artist", "")
        out = [a for a in cat.artists.values() if _has(_fold(a.name), free) and _has(_fold(a.name), wanted)]
    elif kind == "album":
        today = state.clock.today()
        for a in cat.albums.values():
            artist_words = names(a.artist_ids)
            if not state.visible(a) or not year_ok(a) or not _has(_fold(a.name) + artist_words, free):
                continue
            if not _has(artist_words, filters.get("artist", "")) or not _has(
                _fold(a.name), filters.get("album", "")
            ):
                continue
            if ("upc" in filters and filters["upc"] != a.upc) or (
                filters.get("tag") == "new" and (today - a.released_on).days > 14
            ):
                continue
            out.append(a)
    elif kind == "track":
        for t in cat.tracks.values():
            a = cat.albums[t.album_id]
            if not state.visible(a) or not year_ok(a):
                continue
            if "isrc" in filters and filters["isrc"].upper() != t.isrc:
                continue
            title, artist_words = _fold(t.name), names(t.artist_ids)
            if not _has(title + artist_words + _fold(a.name), free) or not _has(
                title, filters.get("track", "")
            ):
                continue
            if not _has(artist_words, filters.get("artist", "")) or not _has(
                _fold(a.name), filters.get("album", "")
            ):
                continue
            out.append(t)

    # Stand-in for popularity: main artists' own releases first, then catalogue order.
    def rank(x: Any) -> tuple[int, int]:
        if isinstance(x, Artist):
            return (0 if x.main else 1, 0)
        album = cat.albums[x.album_id] if isinstance(x, Track) else x
        return (0 if cat.artists[album.artist_ids[0]].main else 1, 0 if album.album_type == "album" else 1)

    return sorted(out, key=rank)


# -- serialisation ------------------------------------------------------------------------------------
