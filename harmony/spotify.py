"""The Spotify client: OAuth (client credentials and PKCE), the catalogue and the user's library.

Owns the `spotify_auth` and `spotify_pkce` tables. Catalogue reads use an app token (client
credentials); the user's own data (followed artists, playlists, saved tracks) uses the token
from the authorisation-code flow with PKCE, kept in the database and refreshed before it
expires. Every request passes one process-wide token bucket sized for Spotify's rolling 30 s
window, then the shared upstream policy.

Payloads become dataclasses here and nowhere else. Fields that Development Mode apps no longer
get (popularity, genres, markets, ...) are never required; `external_ids` is optional.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .db import Database
from .errors import BadInput, NotFound, UpstreamCoolingDown, UpstreamRejected
from .fields import as_dict, as_int, as_list, as_str
from .upstream import Upstream

SERVICE = "spotify"
SCOPES = (
    "user-follow-read playlist-read-private playlist-read-collaborative user-library-read user-read-private"
)
REFRESH_MARGIN = 60.0  # refresh a token this long before it expires
PKCE_TTL = 900.0  # an authorisation must be completed within 15 minutes
PAGE_CAPS = {"artist_albums": 10, "album_tracks": 50, "playlist_items": 50, "following": 50, "saved": 50}
BATCH_CAPS = {"albums": 20, "tracks": 50}


# --- rate limiting -----------------------------------------------------------------------


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `acquire` waits for one. Thread-safe."""

    def __init__(
        self,
        rate: float,
        burst: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate, self.burst = rate, burst
        self.clock, self.sleep = clock, sleep
        self.tokens = burst
        self.updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; return the seconds waited."""
        with self._lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1  # may go negative: later callers queue behind this one
            wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
        if wait:
            self.sleep(wait)
        return wait


# --- dataclasses -------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtistRef:
    id: str
    name: str


@dataclass(frozen=True)
class Artist:
    id: str
    name: str
    image_url: str = ""


@dataclass(frozen=True)
class AlbumRef:
    id: str
    name: str
    album_type: str
    release_date: str
    release_date_precision: str
    total_tracks: int
    artists: tuple[ArtistRef, ...]
    image_url: str = ""
    album_group: str = ""

    @property
    def year(self) -> int | None:
        head = self.release_date[:4]
        return int(head) if head.isdigit() else None


@dataclass(frozen=True)
class Track:
    id: str | None  # None for local files in playlists
    name: str
    artists: tuple[ArtistRef, ...]
    duration_ms: int
    track_number: int = 1
    disc_number: int = 1
    explicit: bool = False
    isrc: str | None = None
    album: AlbumRef | None = None
    is_local: bool = False


@dataclass(frozen=True)
class Album:
    ref: AlbumRef
    tracks: tuple[Track, ...]
    upc: str | None = None


@dataclass(frozen=True)
class Playlist:
    id: str
    name: str
    snapshot_id: str
    owner_id: str
    total: int
    collaborative: bool = False


@dataclass(frozen=True)
class PlaylistItem:
    added_at: str | None
    track: Track | None  # None when the entry is an episode or unusable


@dataclass(frozen=True)
class User:
    id: str
    display_name: str


def _image(raw: dict[str, Any]) -> str:
    images = [i for i in as_list(raw.get("images")) if isinstance(i, dict) and isinstance(i.get("url"), str)]
    return str(images[0]["url"]) if images else ""  # Spotify lists the widest first


def parse_artist_ref(raw: dict[str, Any]) -> ArtistRef:
    return ArtistRef(as_str(raw.get("id")), as_str(raw.get("name")))


def parse_artists(raw: object) -> tuple[ArtistRef, ...]:
    return tuple(parse_artist_ref(a) for a in as_list(raw) if isinstance(a, dict))


def parse_album_ref(raw: dict[str, Any]) -> AlbumRef:
    return AlbumRef(
        id=as_str(raw.get("id")),
        name=as_str(raw.get("name")),
        album_type=as_str(raw.get("album_type")),
        release_date=as_str(raw.get("release_date")),
        release_date_precision=as_str(raw.get("release_date_precision"), "day"),
        total_tracks=as_int(raw.get("total_tracks")),
        artists=parse_artists(raw.get("artists")),
        image_url=_image(raw),
        album_group=as_str(raw.get("album_group")),
    )


def parse_track(raw: dict[str, Any], album: AlbumRef | None = None) -> Track:
    isrc = as_dict(raw.get("external_ids")).get("isrc")
    embedded = raw.get("album")
    return Track(
        id=raw.get("id") if isinstance(raw.get("id"), str) else None,
        name=as_str(raw.get("name")),
        artists=parse_artists(raw.get("artists")),
        duration_ms=as_int(raw.get("duration_ms")),
        track_number=as_int(raw.get("track_number"), 1),
        disc_number=as_int(raw.get("disc_number"), 1),
        explicit=raw.get("explicit") is True,
        isrc=isrc.upper() if isinstance(isrc, str) and isrc else None,
        album=parse_album_ref(embedded) if isinstance(embedded, dict) else album,
        is_local=raw.get("is_local") is True,
    )


def parse_playlist(raw: dict[str, Any]) -> Playlist:
    items = as_dict(raw.get("items")) or as_dict(raw.get("tracks"))
    return Playlist(
        id=as_str(raw.get("id")),
        name=as_str(raw.get("name")),
        snapshot_id=as_str(raw.get("snapshot_id")),
        owner_id=as_str(as_dict(raw.get("owner")).get("id")),
        total=as_int(items.get("total")),
        collaborative=raw.get("collaborative") is True,
    )


def parse_playlist_item(raw: dict[str, Any]) -> PlaylistItem:
    entry = raw.get("item") if isinstance(raw.get("item"), dict) else raw.get("track")
    track = None
    if isinstance(entry, dict) and as_str(entry.get("type"), "track") == "track":
        track = parse_track(entry)
    return PlaylistItem(
        added_at=raw.get("added_at") if isinstance(raw.get("added_at"), str) else None, track=track
    )


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) as RFC 7636 describes."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


# --- the client --------------------------------------------------------------------------


class Spotify:
    def __init__(
        self,
        upstream: Upstream,
        db: Database,
        *,
        client_id: str,
        client_secret: str,
        api_url: str,
        accounts_url: str,
        redirect_uri: str = "",
        rate: float = 2.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.upstream = upstream
        self.db = db
        self.client_id = client_id
        self.client_secret = client_secret
        self.api = api_url.rstrip("/")
        self.accounts = accounts_url.rstrip("/")
        self.redirect_uri = redirect_uri
        self.bucket = TokenBucket(rate)
        self.clock = clock
        self._app_token: tuple[str, float] | None = None
        self._batch_refused = False  # set once Spotify answers 403 to a batch read
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self.client_id)

    def _require_configured(self) -> None:
        if not self.configured:
            raise BadInput("Spotify is not configured: set spotify.client_id and spotify.client_secret")

    # --- tokens ------------------------------------------------------------------------

    def _token_request(self, form: dict[str, str], *, basic: bool, quick: bool = False) -> dict[str, Any]:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if basic:
            pair = f"{self.client_id}:{self.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self.bucket.acquire()
        response = self.upstream.request(
            SERVICE,
            "POST",
            self.accounts + "/api/token",
            headers=headers,
            body=urlencode(form).encode(),
            quick=quick,
        )
        payload = as_dict(response.json())
        if not isinstance(payload.get("access_token"), str):
            raise UpstreamRejected("Spotify token response has no access_token", service=SERVICE)
        return payload

    def app_token(self, *, quick: bool = False) -> str:
        """A client-credentials token for catalogue reads, fetched once and reused until near expiry."""
        self._require_configured()
        with self._lock:
            if self._app_token and self._app_token[1] - REFRESH_MARGIN > self.clock():
                return self._app_token[0]
        payload = self._token_request({"grant_type": "client_credentials"}, basic=True, quick=quick)
        token = (payload["access_token"], self.clock() + as_int(payload.get("expires_in"), 3600))
        with self._lock:
            self._app_token = token
        return token[0]

    def authorize_url(self, redirect_uri: str | None = None) -> str:
        """Start the PKCE authorisation: the URL to send the user's browser to."""
        self._require_configured()
        redirect = redirect_uri or self.redirect_uri
        if not redirect:
            raise BadInput("spotify.redirect_uri is not set")
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        now = self.clock()
        with self.db.write() as conn:
            conn.execute("DELETE FROM spotify_pkce WHERE created_at < ?", (now - PKCE_TTL,))
            conn.execute(
                "INSERT INTO spotify_pkce (state, code_verifier, redirect_uri, created_at) "
                "VALUES (?, ?, ?, ?)",
                (state, verifier, redirect, now),
            )
        query = urlencode(
            {
                "client_id": self.client_id,
                "response_type": "code",
                "redirect_uri": redirect,
                "state": state,
                "scope": SCOPES,
                "code_challenge_method": "S256",
                "code_challenge": challenge,
            }
        )
        return f"{self.accounts}/authorize?{query}"

    def complete_authorization(self, state: str, code: str) -> User:
        """Finish the PKCE flow with the `state` and `code` from the redirect; store the tokens."""
        with self.db.write() as conn:
            pending = self.db.query_one(
                "SELECT code_verifier, redirect_uri, created_at FROM spotify_pkce WHERE state = ?", (state,)
            )
            conn.execute("DELETE FROM spotify_pkce WHERE state = ?", (state,))  # single use
        if pending is None or pending["created_at"] < self.clock() - PKCE_TTL:
            raise BadInput("unknown or expired authorisation state; start the Spotify connection again")
        payload = self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": pending["redirect_uri"],
                "client_id": self.client_id,
                "code_verifier": pending["code_verifier"],
            },
            basic=False,
        )
        if not isinstance(payload.get("refresh_token"), str):
            raise UpstreamRejected("Spotify token response has no refresh_token", service=SERVICE)
        self._store_user_token(payload, payload["refresh_token"])
        user = self.me()
        with self.db.write() as conn:
            conn.execute(
                "UPDATE spotify_auth SET user_id = ?, display_name = ? WHERE id = 1",
                (user.id, user.display_name),
            )
        return user

    def _store_user_token(self, payload: dict[str, Any], refresh_token: str) -> None:
        now = self.clock()
        with self.db.write() as conn:
            conn.execute(
                """
                INSERT INTO spotify_auth (id, access_token, refresh_token, scope, expires_at, updated_at)
                VALUES (1, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET access_token = excluded.access_token,
                    refresh_token = excluded.refresh_token, scope = excluded.scope,
                    expires_at = excluded.expires_at, updated_at = excluded.updated_at, revoked_reason = NULL
                """,
                (
                    payload["access_token"],
                    refresh_token,
                    as_str(payload.get("scope")),
                    now + as_int(payload.get("expires_in"), 3600),
                    now,
                ),
            )

    def authorization(self) -> dict[str, Any] | None:
        """The stored user authorisation without its tokens, or None."""
        return self.db.query_one(
            "SELECT user_id, display_name, scope, expires_at, updated_at, revoked_reason FROM spotify_auth"
        )

    def disconnect(self) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM spotify_auth")

    def user_token(self) -> str:
        """The user's access token, refreshed when it is about to expire.

        Raises BadInput when Spotify was never connected and UpstreamRejected when Spotify
        refused the refresh token (the user revoked access): connect again then.
        """
        self._require_configured()
        row = self.db.query_one(
            "SELECT access_token, refresh_token, expires_at, revoked_reason FROM spotify_auth"
        )
        if row is None:
            raise BadInput("Spotify is not connected: start the authorisation from the settings")
        if row["revoked_reason"]:
            raise UpstreamRejected(
                f"Spotify authorisation was revoked ({row['revoked_reason']}); connect again"
            )
        if row["expires_at"] - REFRESH_MARGIN > self.clock():
            return str(row["access_token"])
        try:
            payload = self._token_request(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": row["refresh_token"],
                    "client_id": self.client_id,
                },
                basic=bool(self.client_secret),
            )
        except UpstreamRejected as exc:
            if exc.details.get("status") in (400, 401):
                with self.db.write() as conn:
                    conn.execute(
                        "UPDATE spotify_auth SET revoked_reason = ? WHERE id = 1", (exc.message[:200],)
                    )
                raise UpstreamRejected(
                    "Spotify refused the refresh token; connect again", service=SERVICE
                ) from None
            raise
        # Spotify may or may not rotate the refresh token; keep the old one when it does not.
        self._store_user_token(payload, as_str(payload.get("refresh_token")) or row["refresh_token"])
        return str(payload["access_token"])

    def _expire_user_token(self) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE spotify_auth SET expires_at = 0 WHERE id = 1")

    # --- requests ----------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any] | None = None, *, user: bool = False) -> Any:
        """GET an API path as the app (or the user); a 401 refreshes the token and retries once."""
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        url = f"{self.api}{path}" + (f"?{query}" if query else "")
        for attempt in (1, 2):
            token = self.user_token() if user else self.app_token()
            self.bucket.acquire()
            try:
                response = self.upstream.request(
                    SERVICE, "GET", url, headers={"Authorization": f"Bearer {token}"}, ok=(404,)
                )
            except UpstreamRejected as exc:
                if exc.details.get("status") == 401 and attempt == 1:
                    if user:
                        self._expire_user_token()
                    else:
                        self._app_token = None
                    continue
                raise
            if response.status == 404:
                raise NotFound(f"Spotify has no {path}", path=path)
            return response.json()
        raise AssertionError("unreachable")

    def _pages(
        self, path: str, params: dict[str, Any], cap: int, *, user: bool = False, key: str | None = None
    ):
        """Yield every item of an offset-paged list, `cap` items a request."""
        offset = 0
        while True:
            payload = as_dict(self._get(path, {**params, "limit": cap, "offset": offset}, user=user))
            paging = as_dict(payload.get(key)) if key else payload
            items = as_list(paging.get("items"))
            yield from (item for item in items if isinstance(item, dict))
            offset += len(items)
            if not items or not paging.get("next") or offset >= as_int(paging.get("total"), offset):
                return

    # --- catalogue ---------------------------------------------------------------------

    def artist(self, artist_id: str) -> Artist:
        raw = as_dict(self._get(f"/artists/{artist_id}"))
        return Artist(as_str(raw.get("id")), as_str(raw.get("name")), _image(raw))

    def artist_albums(
        self, artist_id: str, include_groups: Sequence[str] = ("album", "single", "compilation")
    ) -> list[AlbumRef]:
        params = {"include_groups": ",".join(include_groups)}
        cap = PAGE_CAPS["artist_albums"]
        return [parse_album_ref(raw) for raw in self._pages(f"/artists/{artist_id}/albums", params, cap)]

    def album(self, album_id: str) -> Album:
        """An album with all its tracks (following the track paging past the embedded first page)."""
        raw = as_dict(self._get(f"/albums/{album_id}"))
        return self._album(raw)

    def _album(self, raw: dict[str, Any]) -> Album:
        ref = parse_album_ref(raw)
        embedded = as_dict(raw.get("tracks"))
        tracks = [parse_track(t, ref) for t in as_list(embedded.get("items")) if isinstance(t, dict)]
        if embedded.get("next") and len(tracks) < as_int(embedded.get("total")):
            tracks = [
                parse_track(t, ref)
                for t in self._pages(f"/albums/{ref.id}/tracks", {}, PAGE_CAPS["album_tracks"])
            ]
        upc = as_dict(raw.get("external_ids")).get("upc")
        return Album(ref, tuple(tracks), upc if isinstance(upc, str) else None)

    def albums(self, album_ids: Sequence[str]) -> list[Album]:
        """Full albums, 20 ids a request; one at a time where batch reads are refused (Dev Mode)."""
        return self._batched("/albums", "albums", album_ids, BATCH_CAPS["albums"], self._album, self.album)

    def tracks(self, track_ids: Sequence[str]) -> list[Track]:
        """Full tracks (with ISRCs), 50 ids a request, falling back like `albums`."""
        return self._batched("/tracks", "tracks", track_ids, BATCH_CAPS["tracks"], parse_track, self.track)

    def _batched(
        self, path: str, key: str, ids: Sequence[str], cap: int, parse: Any, single: Any
    ) -> list[Any]:
        """Batch reads, `cap` ids a request. Spotify refuses them (403) for Development Mode apps;
        after the first refusal this client reads one id at a time and does not ask again."""
        out: list[Any] = []
        for start in range(0, len(ids), cap):
            chunk = list(ids[start : start + cap])
            if not self._batch_refused:
                try:
                    payload = as_dict(self._get(path, {"ids": ",".join(chunk)}))
                    out.extend(parse(raw) for raw in as_list(payload.get(key)) if isinstance(raw, dict))
                    continue
                except UpstreamRejected as exc:
                    if exc.details.get("status") != 403:
                        raise
                    self._batch_refused = True
            out.extend(single(item) for item in chunk)
        return out

    def track(self, track_id: str) -> Track:
        return parse_track(as_dict(self._get(f"/tracks/{track_id}")))

    def search_tracks(self, query: str, limit: int = 10) -> list[Track]:
        payload = as_dict(self._get("/search", {"q": query, "type": "track", "limit": min(limit, 10)}))
        return [
            parse_track(raw)
            for raw in as_list(as_dict(payload.get("tracks")).get("items"))
            if isinstance(raw, dict)
        ]

    # --- the user's library ------------------------------------------------------------

    def me(self) -> User:
        raw = as_dict(self._get("/me", user=True))
        return User(as_str(raw.get("id")), as_str(raw.get("display_name")) or as_str(raw.get("id")))

    def followed_artists(self) -> Iterator[Artist]:
        """Every followed artist, following the `after` cursor."""
        after: str | None = None
        while True:
            params = {"type": "artist", "limit": PAGE_CAPS["following"], "after": after}
            paging = as_dict(as_dict(self._get("/me/following", params, user=True)).get("artists"))
            items = [i for i in as_list(paging.get("items")) if isinstance(i, dict)]
            yield from (Artist(as_str(i.get("id")), as_str(i.get("name")), _image(i)) for i in items)
            after = as_dict(paging.get("cursors")).get("after")
            if not items or not paging.get("next") or not isinstance(after, str):
                return

    def my_playlists(self) -> list[Playlist]:
        return [parse_playlist(raw) for raw in self._pages("/me/playlists", {}, 50, user=True)]

    def playlist(self, playlist_id: str) -> Playlist:
        fields = "id,name,snapshot_id,owner(id),collaborative,items(total),tracks(total)"
        return parse_playlist(as_dict(self._get(f"/playlists/{playlist_id}", {"fields": fields}, user=True)))

    def playlist_items(self, playlist_id: str) -> Iterator[PlaylistItem]:
        """Every entry of a playlist (50 a request, so 5k tracks are 100 requests)."""
        for raw in self._pages(f"/playlists/{playlist_id}/items", {}, PAGE_CAPS["playlist_items"], user=True):
            yield parse_playlist_item(raw)

    def saved_tracks(self) -> Iterator[Track]:
        for raw in self._pages("/me/tracks", {}, PAGE_CAPS["saved"], user=True):
            if isinstance(raw.get("track"), dict):
                yield parse_track(raw["track"])

    # --- health ------------------------------------------------------------------------

    def probe(self) -> str:
        """For /ready: ok when not configured, when a token is valid, or while cooling down."""
        if not self.configured:
            return "not configured (Spotify features are off)"
        cooling = self.upstream.cooldown(SERVICE)
        if cooling:
            return f"cooling down until {time.strftime('%H:%M:%S', time.localtime(cooling[0]))}: {cooling[1]}"
        try:
            self.app_token(quick=True)
        except UpstreamCoolingDown as exc:
            return exc.message
        auth = self.authorization()
        user = "no user connected"
        if auth:
            user = (
                f"revoked: {auth['revoked_reason']}" if auth["revoked_reason"] else f"user {auth['user_id']}"
            )
        return f"app token valid; {user}"
