"""A fake Spotify: the accounts service and the Web API subset Harmony uses, over the catalogue.

Contract (`spec/api-contracts.md` Part B): Bearer tokens on every `/v1` call, with Spotify's error
body `{"error": {"status", "message"}}`; OAuth-style errors on `/api/token`; simplified objects in
listings and full objects on single lookups (ISRCs only on full tracks); paging objects whose
`next` is an absolute URL back to this server; Development-Mode limits (search and artist albums
max 10, playlist items max 50, legacy `/playlists/{id}/tracks` and the batch reads `/albums?ids=`
and `/tracks?ids=` answer 403, deprecated fields left out) unless `dev_mode` is off. Releases
dated after the fake clock's today are invisible.

Accounts: `POST /api/token` (client_credentials, authorization_code with optional PKCE S256,
refresh_token; client auth by Basic header or form fields) and `GET /authorize` (approves at once,
or redirects with `error=access_denied` when `deny_authorize` is set).

Control API (no auth): `/_fake/faults`, `/_fake/clock` (see `faults.py`), and under
`/_fake/spotify/`: `POST expire-tokens`, `POST revoke` (refresh tokens), `POST settings`
(`{"deny_authorize"?, "dev_mode"?, "token_lifetime"?}`), `POST playlists/<id>`
(`{"add": [track ids], "remove": [track ids]}`, bumps `snapshot_id`), `POST following`
(`{"add": [artist ids], "remove": [artist ids]}`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlencode

import bottle

from harmony.fakes import faults as faultlib
from harmony.fakes.catalogue import USER_ID, Album, Artist, Catalogue, Playlist, PlaylistEntry, Track
from harmony.fakes.clock import FakeClock

SCOPES_FOR = {
    "/v1/me": "user-read-private",
    "/v1/me/playlists": "playlist-read-private",
    "/v1/me/following": "user-follow-read",
    "/v1/me/tracks": "user-library-read",
}
_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_GROUPS = ("album", "single", "appears_on", "compilation")
_SEARCH_TYPES = ("album", "artist", "playlist", "track", "show", "episode", "audiobook")
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


@dataclass
class Token:
    expires_at: float
    scopes: frozenset[str]
    user: bool


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
    tokens: dict[str, Token] = field(default_factory=dict)
    refresh_tokens: dict[str, frozenset[str]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: faultlib.FaultTable = field(init=False)

    def __post_init__(self) -> None:
        self.faults = faultlib.FaultTable(error_body)

    def issue(self, scopes: frozenset[str], *, user: bool) -> dict[str, Any]:
        """A new access token response body (without a refresh token)."""
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = Token(self.clock.now() + self.token_lifetime, scopes, user)
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
        }
        if user:
            body["scope"] = " ".join(sorted(scopes))
        return body

    def visible(self, album: Album) -> bool:
        return not album.future or album.released_on <= self.clock.today()


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
            _fail(401, "No token provided")
        with state.lock:
            token = state.tokens.get(header[7:].strip())
        if token is None:
            _fail(401, "Invalid access token")
        if token.expires_at <= state.clock.now():
            _fail(401, "The access token expired")
        needed = SCOPES_FOR.get(path) or ("playlist-read-private" if path.startswith("/v1/me/") else None)
        if needed or path.startswith("/v1/me"):
            if not token.user:
                _fail(401, "This request requires user authentication.")
            if needed and needed not in token.scopes:
                _fail(403, "Insufficient client scope")
        environ["fake.token"] = token

    for status in (404, 405):
        app.error(status)(_not_found)

    # -- accounts -------------------------------------------------------------------------------------

    @app.post("/api/token")
    def token() -> Any:
        form = bottle.request.forms.decode()
        client_id, secret = _client_auth(form.get("client_id"), form.get("client_secret"))
        if client_id != state.client_id or (secret is not None and secret != state.client_secret):
            _oauth_fail("invalid_client", "Invalid client")
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if secret is None:
                _oauth_fail("invalid_client", "Invalid client secret")
            return state.issue(frozenset(), user=False)
        if grant == "authorization_code":
            with state.lock:
                code = state.codes.pop(form.get("code") or "", None)
            if code is None or code["expires_at"] < state.clock.now():
                _oauth_fail("invalid_grant", "Invalid authorization code")
            if form.get("redirect_uri") != code["redirect_uri"]:
                _oauth_fail("invalid_grant", "Invalid redirect URI")
            if code["challenge"]:
                verifier = form.get("code_verifier") or ""
                digest = hashlib.sha256(verifier.encode()).digest()
                if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code["challenge"]:
                    _oauth_fail("invalid_grant", "code_verifier was incorrect")
            elif secret is None:
                _oauth_fail("invalid_client", "Invalid client secret")
            body = state.issue(code["scopes"], user=True)
            body["refresh_token"] = _new_refresh(state, code["scopes"])
            return body
        if grant == "refresh_token":
            with state.lock:
                scopes = state.refresh_tokens.get(form.get("refresh_token") or "")
            if scopes is None:
                _oauth_fail("invalid_grant", "Invalid refresh token")
            body = state.issue(scopes, user=True)
            if secret is None:  # public (PKCE) clients get a rotated refresh token
                with state.lock:
                    state.refresh_tokens.pop(form.get("refresh_token") or "", None)
                body["refresh_token"] = _new_refresh(state, scopes)
            return body
        _oauth_fail("unsupported_grant_type", "grant_type parameter is missing")

    @app.get("/authorize")
    def authorize() -> Any:
        q = bottle.request.query.decode()
        redirect_uri = q.get("redirect_uri") or ""
        if q.get("client_id") != state.client_id:
            return bottle.HTTPResponse("INVALID_CLIENT: Invalid client", 400)
        if not redirect_uri.startswith(("http://127.0.0.1", "http://[::1]", "https://")):
            return bottle.HTTPResponse("INVALID_CLIENT: Insecure redirect URI", 400)
        if q.get("response_type") != "code":
            return bottle.HTTPResponse("unsupported_response_type", 400)
        params = {"state": q.get("state")} if q.get("state") else {}
        if state.deny_authorize:
            params = {"error": "access_denied", **params}
        else:
            if q.get("code_challenge") and q.get("code_challenge_method") != "S256":
                return bottle.HTTPResponse("code_challenge_method must be S256", 400)
            code = secrets.token_urlsafe(32)
            with state.lock:
                state.codes[code] = {
                    "redirect_uri": redirect_uri,
                    "scopes": frozenset((q.get("scope") or "").replace(",", " ").split()),
                    "challenge": q.get("code_challenge") or "",
                    "expires_at": state.clock.now() + 600,
                }
            params = {"code": code, **params}
        sep = "&" if "?" in redirect_uri else "?"
        bottle.redirect(f"{redirect_uri}{sep}{urlencode(params)}", 302)

    # -- catalogue ------------------------------------------------------------------------------------

    @app.get("/v1/artists/<artist_id>")
    def artist(artist_id: str) -> Any:
        return _artist(state, _get(cat.artists, artist_id), full=True)

    @app.get("/v1/artists/<artist_id>/albums")
    def artist_albums(artist_id: str) -> Any:
        _get(cat.artists, artist_id)
        groups_param = _param("include_groups") or ",".join(_GROUPS)
        groups = {g.strip() for g in groups_param.split(",") if g.strip()}
        if not groups or groups - set(_GROUPS):
            _fail(400, "Invalid include_groups")
        limit, offset = _limit(5, 10) if state.dev_mode else _limit(20, 50), _offset()
        pairs = [(a, g) for a, g in cat.artist_albums(artist_id) if g in groups and state.visible(a)]
        items = [_album(state, a, group=g) for a, g in pairs[offset : offset + limit]]
        return _page(items, len(pairs), limit, offset)

    @app.get("/v1/albums")
    def albums() -> Any:
        if state.dev_mode:  # batch lookups were removed for Development Mode apps in 2026
            _fail(403, "Forbidden")
        ids = _ids(20)
        return {
            "albums": [_album(state, a, full=True) if a else None for a in _batch(state, cat.albums, ids)]
        }

    @app.get("/v1/albums/<album_id>")
    def album(album_id: str) -> Any:
        return _album(state, _visible_album(state, album_id), full=True)

    @app.get("/v1/albums/<album_id>/tracks")
    def album_tracks(album_id: str) -> Any:
        album = _visible_album(state, album_id)
        limit, offset = _limit(20, 50), _offset()
        tracks = cat.album_tracks(album)
        return _page([_track(state, t) for t in tracks[offset : offset + limit]], len(tracks), limit, offset)

    @app.get("/v1/tracks")
    def tracks() -> Any:
        if state.dev_mode:
            _fail(403, "Forbidden")
        ids = _ids(50)
        found = [cat.tracks.get(i) for i in ids]
        visible = [t if t and state.visible(cat.albums[t.album_id]) else None for t in found]
        return {"tracks": [_track(state, t, full=True) if t else None for t in visible]}

    @app.get("/v1/tracks/<track_id>")
    def track(track_id: str) -> Any:
        t = _get(cat.tracks, track_id)
        _visible_album(state, t.album_id)
        return _track(state, t, full=True)

    @app.get("/v1/search")
    def search() -> Any:
        q = _param("q") or ""
        types = [t for t in (_param("type") or "").split(",") if t]
        if not q.strip():
            _fail(400, "No search query")
        if not types:
            _fail(400, "Missing parameter type")
        if set(types) - set(_SEARCH_TYPES):
            _fail(400, "Bad search type field")
        limit, offset = _limit(5, 10) if state.dev_mode else _limit(20, 50), _offset(maximum=1000)
        out = {}
        for kind in types:
            found = _search(state, q, kind)
            renderers: dict[str, Callable[[SpotifyState, Any], dict[str, Any]]] = {
                "track": _track_full,
                "album": _album,
                "artist": _artist_full,
            }
            render = renderers.get(kind)
            items = [render(state, x) for x in found[offset : offset + limit]] if render else []
            out[kind + "s"] = _page(items, len(found), limit, offset)
        return out

    @app.get("/v1/browse/new-releases")
    def new_releases() -> Any:
        today = state.clock.today()
        recent = [
            a
            for a in cat.albums.values()
            if state.visible(a) and a.album_type != "compilation" and (today - a.released_on).days <= 14
        ]
        recent.sort(key=lambda a: (a.released_on, a.id), reverse=True)
        limit, offset = _limit(20, 50), _offset()
        items = [_album(state, a) for a in recent[offset : offset + limit]]
        return {"albums": _page(items, len(recent), limit, offset)}

    @app.get("/images/<album_id>/<size>")
    def image(album_id: str, size: str) -> Any:
        return bottle.HTTPResponse(COVER_JPEG, 200, headers={"Content-Type": "image/jpeg"})

    # -- the user -------------------------------------------------------------------------------------

    @app.get("/v1/me")
    def me() -> Any:
        base = _base()
        out = {
            "id": USER_ID,
            "display_name": "Harmony Listener",
            "type": "user",
            "uri": f"spotify:user:{USER_ID}",
            "href": f"{base}/v1/users/{USER_ID}",
            "external_urls": {"spotify": f"https://open.spotify.com/user/{USER_ID}"},
            "images": [],
            "account_id": USER_ID,
        }
        if not state.dev_mode:
            out.update(country="SE", product="premium", followers={"href": None, "total": 3})
        return out

    @app.get("/v1/me/following")
    def following() -> Any:
        if _param("type") != "artist":
            _fail(400, "Only valid type is artist")
        limit = _limit(20, 50)
        after = _param("after")
        with state.lock:
            ids = list(cat.followed)
        start = ids.index(after) + 1 if after in ids else 0
        chunk = ids[start : start + limit]
        base = _base()
        last = chunk[-1] if chunk and start + limit < len(ids) else None
        query = {"type": "artist", "limit": limit}
        href_query = {**query, "after": after} if after else query
        return {
            "artists": {
                "href": f"{base}/v1/me/following?{urlencode(href_query)}",
                "items": [_artist(state, cat.artists[i], full=True) for i in chunk],
                "limit": limit,
                "next": f"{base}/v1/me/following?{urlencode({**query, 'after': last})}" if last else None,
                "cursors": {"after": last},
                "total": len(ids),
            }
        }

    @app.get("/v1/me/playlists")
    def my_playlists() -> Any:
        limit, offset = _limit(20, 50), _offset(maximum=100_000)
        playlists = list(cat.playlists.values())
        items = [_playlist(state, p) for p in playlists[offset : offset + limit]]
        return _page(items, len(playlists), limit, offset)

    @app.get("/v1/me/tracks")
    def saved_tracks() -> Any:
        limit, offset = _limit(20, 50), _offset()
        rows = cat.saved[offset : offset + limit]
        items = [{"added_at": added, "track": _track(state, cat.tracks[t], full=True)} for t, added in rows]
        return _page(items, len(cat.saved), limit, offset)

    @app.get("/v1/playlists/<playlist_id>")
    def playlist(playlist_id: str) -> Any:
        p = _get(cat.playlists, playlist_id)
        out = _playlist(state, p, full=True)
        if _can_read_items(p):
            with state.lock:
                entries = list(p.entries)
            page = _page([_entry(state, e, "item") for e in entries[:100]], len(entries), 100, 0)
            page["href"] = page["href"].replace(f"/v1/playlists/{p.id}", f"/v1/playlists/{p.id}/items")
            out["items"] = out["tracks"] = page
        return out

    @app.get("/v1/playlists/<playlist_id>/items")
    def playlist_items(playlist_id: str) -> Any:
        return _playlist_page(state, playlist_id, key="item", maximum=50)

    @app.get("/v1/playlists/<playlist_id>/tracks")
    def playlist_tracks(playlist_id: str) -> Any:
        if state.dev_mode:
            _fail(403, "Forbidden")
        return _playlist_page(state, playlist_id, key="track", maximum=100)

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

    @app.post("/_fake/spotify/settings")
    def settings() -> dict[str, Any]:
        data = faultlib.json_body()
        with state.lock:
            for key, kind in (("deny_authorize", bool), ("dev_mode", bool), ("token_lifetime", int)):
                if key in data:
                    setattr(state, key, kind(data[key]))
            keys = ("deny_authorize", "dev_mode", "token_lifetime")
            return {k: getattr(state, k) for k in keys}

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


# -- request helpers ----------------------------------------------------------------------------------


def _fail(status: int, message: str = "") -> NoReturn:
    body, ctype = error_body(status, message)
    raise bottle.HTTPResponse(body, status, headers={"Content-Type": ctype})


def _oauth_fail(error: str, description: str) -> NoReturn:
    body = json.dumps({"error": error, "error_description": description})
    raise bottle.HTTPResponse(body, 400, headers={"Content-Type": "application/json"})


def _not_found(err: bottle.HTTPError) -> str:
    bottle.response.content_type = "application/json"
    return json.dumps({"error": {"status": err.status_code, "message": "Service not found"}})


def _client_auth(form_id: str | None, form_secret: str | None) -> tuple[str | None, str | None]:
    """(client_id, client_secret or None) from the Basic header, else from the form."""
    header = bottle.request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            _oauth_fail("invalid_client", "Invalid client")
        return client_id, secret
    return form_id, form_secret


def _new_refresh(state: SpotifyState, scopes: frozenset[str]) -> str:
    token = secrets.token_urlsafe(32)
    with state.lock:
        state.refresh_tokens[token] = scopes
    return token


def _param(name: str, default: str | None = None) -> str | None:
    """A query parameter decoded as UTF-8 (bottle's plain `get` returns latin-1 text)."""
    return bottle.request.query.getunicode(name, default=default)


def _base() -> str:
    parts = bottle.request.urlparts
    return f"{parts.scheme}://{parts.netloc}"


def _limit(default: int, maximum: int) -> int:
    raw = _param("limit")
    try:
        limit = default if raw in (None, "") else int(raw)
    except ValueError:
        _fail(400, "Invalid limit")
    if not 1 <= limit <= maximum:
        _fail(400, "Invalid limit")
    return limit


def _offset(maximum: int = 10**9) -> int:
    raw = _param("offset")
    try:
        offset = 0 if raw in (None, "") else int(raw)
    except ValueError:
        _fail(400, "Invalid offset")
    if not 0 <= offset <= maximum:
        _fail(400, "Invalid offset")
    return offset


def _ids(cap: int) -> list[str]:
    ids = [i for i in (_param("ids") or "").split(",") if i]
    if not ids:
        _fail(400, "invalid id")
    if len(ids) > cap:
        _fail(400, "Too many ids requested")
    for i in ids:
        if not _ID.match(i):
            _fail(400, "invalid id")
    return ids


def _get(table: dict[str, Any], item_id: str) -> Any:
    if not _ID.match(item_id):
        _fail(400, "invalid id")
    item = table.get(item_id)
    if item is None:
        _fail(404, "Resource not found")
    return item


def _batch(state: SpotifyState, table: dict[str, Album], ids: list[str]) -> list[Album | None]:
    return [a if a is not None and state.visible(a) else None for a in (table.get(i) for i in ids)]


def _visible_album(state: SpotifyState, album_id: str) -> Album:
    album: Album = _get(state.catalogue.albums, album_id)
    if not state.visible(album):
        _fail(404, "Resource not found")
    return album


def _page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """A paging object whose href/next/previous repeat this request's URL with another offset."""
    query = dict(bottle.request.query.decode().allitems())
    url = f"{_base()}{bottle.request.path}?"

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


def _can_read_items(p: Playlist) -> bool:
    token: Token = bottle.request.environ["fake.token"]
    return token.user and (p.owner_id == USER_ID or p.collaborative)


def _playlist_page(state: SpotifyState, playlist_id: str, *, key: str, maximum: int) -> dict[str, Any]:
    p: Playlist = _get(state.catalogue.playlists, playlist_id)
    if not _can_read_items(p):
        _fail(403, "Forbidden")
    limit, offset = _limit(20, maximum), _offset()
    with state.lock:
        rows = p.entries[offset : offset + limit]
        total = len(p.entries)
    return _page([_entry(state, e, key) for e in rows], total, limit, offset)


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
    """Items of `kind` matching `q` (free words match name, artists and album; filters their field)."""
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


def _links(kind: str, item_id: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{item_id}"},
        "href": f"{_base()}/v1/{kind}s/{item_id}",
        "id": item_id,
        "type": kind,
        "uri": f"spotify:{kind}:{item_id}",
    }


def _artist(state: SpotifyState, a: Artist, *, full: bool = False) -> dict[str, Any]:
    out = {**_links("artist", a.id), "name": a.name}
    if full:
        out["images"] = _images(a.id)
        if not state.dev_mode:
            out.update(genres=list(a.genres), popularity=50, followers={"href": None, "total": 1000})
    return out


def _artist_full(state: SpotifyState, a: Artist) -> dict[str, Any]:
    return _artist(state, a, full=True)


def _images(item_id: str) -> list[dict[str, Any]]:
    return [{"url": f"{_base()}/images/{item_id}/{s}.jpg", "height": s, "width": s} for s in (640, 300, 64)]


def _album(state: SpotifyState, a: Album, *, full: bool = False, group: str | None = None) -> dict[str, Any]:
    cat = state.catalogue
    out: dict[str, Any] = {
        **_links("album", a.id),
        "album_type": a.album_type,
        "total_tracks": len(a.track_ids),
        "name": a.name,
        "release_date": a.release_date,
        "release_date_precision": a.release_date_precision,
        "images": _images(a.id),
        "artists": [_artist(state, cat.artists[i]) for i in a.artist_ids],
    }
    if group is not None and not state.dev_mode:
        out["album_group"] = group
    if not state.dev_mode:
        out["available_markets"] = ["SE", "GB", "US"]
    if full:
        tracks = cat.album_tracks(a)
        page = {
            "href": f"{_base()}/v1/albums/{a.id}/tracks?offset=0&limit=50",
            "items": [_track(state, t) for t in tracks[:50]],
            "limit": 50,
            "next": f"{_base()}/v1/albums/{a.id}/tracks?offset=50&limit=50" if len(tracks) > 50 else None,
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


def _track(state: SpotifyState, t: Track, *, full: bool = False) -> dict[str, Any]:
    cat = state.catalogue
    out: dict[str, Any] = {
        **_links("track", t.id),
        "name": t.name,
        "artists": [_artist(state, cat.artists[i]) for i in t.artist_ids],
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
        out["album"] = _album(state, cat.albums[t.album_id])
        out["external_ids"] = {"isrc": t.isrc}
        if not state.dev_mode:
            out["popularity"] = 42
    return out


def _track_full(state: SpotifyState, t: Track) -> dict[str, Any]:
    return _track(state, t, full=True)


def _entry(state: SpotifyState, e: PlaylistEntry, key: str) -> dict[str, Any]:
    if e.track_id is None:
        name = e.local_name.rsplit(".", 1)[0]
        item: dict[str, Any] = {
            "id": None,
            "name": name,
            "type": "track",
            "uri": f"spotify:local:::{name.replace(' ', '+')}:180",
            "href": None,
            "external_urls": {},
            "is_local": True,
            "duration_ms": 180000,
            "artists": [{"id": None, "name": "", "type": "artist", "uri": None, "href": None}],
            "album": {"id": None, "name": "", "type": "album", "uri": None, "artists": [], "images": []},
            "external_ids": {},
            "disc_number": 0,
            "track_number": 0,
            "explicit": False,
        }
    else:
        item = _track(state, state.catalogue.tracks[e.track_id], full=True)
    user = {**_links("user", e.added_by), "href": f"{_base()}/v1/users/{e.added_by}"}
    out = {"added_at": e.added_at, "added_by": user, "is_local": e.track_id is None, key: item}
    if key == "item":
        out["track"] = None if state.dev_mode else item  # renamed to `item` in 2026; the old key is null
    return out


def _playlist(state: SpotifyState, p: Playlist, *, full: bool = False) -> dict[str, Any]:
    base = _base()
    owner = {**_links("user", p.owner_id), "display_name": p.owner_name}
    total = len(p.entries)
    out: dict[str, Any] = {
        **_links("playlist", p.id),
        "name": p.name,
        "description": p.description or None,
        "public": p.public,
        "collaborative": p.collaborative,
        "owner": owner,
        "snapshot_id": p.snapshot_id,
        "images": _images(p.id) if total else [],
    }
    if full:
        out["followers"] = {"href": None, "total": 3}
    else:
        out["items"] = {"href": f"{base}/v1/playlists/{p.id}/items", "total": total}
        out["tracks"] = {"href": f"{base}/v1/playlists/{p.id}/tracks", "total": total}
    return out
