"""The Spotify client: OAuth (client credentials and PKCE), the catalogue and the user's library.

Owns the `spotify_auth` and `spotify_pkce` tables. Catalogue reads use an app token (client
credentials); the user's own data (followed artists, playlists, saved tracks) uses the token
from the authorisation-code flow with PKCE, kept in the database and refreshed before it
expires. Every request passes one process-wide token bucket sized for Spotify's rolling 30 s
window, then the shared upstream policy.

Payloads become dataclasses here and nowhere else. Fields that Development Mode apps no longer
get (popularity, genres, markets, ...) are never required; `external_ids` is optional. Every
field is read through `fields.py`, so a malformed payload is `UpstreamRejected`.

What the real service does that this client is built around (see `spec/fakes-audit.md`):

- refresh tokens expire 6 months after the user authorised Harmony, and refreshing does not
  extend that; only `invalid_grant` means the authorisation is gone, so a failing token
  endpoint never costs the user their connection, and one refresh runs at a time (a
  single-use refresh token must not be spent twice);
- the user's authorisation came from PKCE, so its refresh sends the client id and no secret;
- artist albums without a market list a release once per set of markets;
- Spotify-owned playlists answer 404 to Development Mode apps, other users' playlists 403,
  and users not on the app's allowlist get a plain-text 403.

The column `spotify_auth.authorized_at` is when the user last authorised Harmony (a refresh
leaves it alone): the refresh token's 6 months run from it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from .db import Database
from .errors import (
    BadInput,
    ConfigError,
    Invalid,
    NotConfigured,
    NotFound,
    UpstreamCoolingDown,
    UpstreamRejected,
    UpstreamUnavailable,
)
from .fields import as_bool, as_dict, as_int, as_list, as_opt_str, as_str, dicts, expect
from .upstream import Upstream, clock_time

log = logging.getLogger(__name__)

SERVICE = "spotify"
# Cover images come from Spotify's image CDN, not the API: a failure there must not cool the API down.
SERVICE_IMAGES = "spotify_images"
COVER_HOSTS = (".scdn.co", ".spotifycdn.com")
COVER_CACHE = 8
SCOPES = (
    "user-follow-read playlist-read-private playlist-read-collaborative user-library-read user-read-private"
)
REFRESH_MARGIN = 60.0  # refresh a token this long before it expires
PKCE_TTL = 900.0  # an authorisation must be completed within 15 minutes
PAGE_CAPS = {"artist_albums": 10, "album_tracks": 50, "playlist_items": 50, "following": 50, "saved": 50}
BATCH_CAPS = {"albums": 20, "tracks": 50}
# Spotify's refresh tokens expire "6 months" after the original authorisation (since 2026);
# counted short, so Harmony never promises a day the token does not have.
REFRESH_TOKEN_LIFETIME = 182 * 86400.0
REFRESH_WARNING = 14 * 86400.0  # /ready warns this long before the refresh token expires
# Ids of Spotify's editorial and algorithmic playlists, which Development Mode apps cannot read.
SPOTIFY_OWNED_PREFIX = "37i9"
NOT_REGISTERED = (
    "Spotify refused this account: a Development Mode app serves only the users on its allowlist. "
    "Add the account under User Management in the Spotify Developer Dashboard, then connect again"
)


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
    skip_reason: str = ""  # why it cannot be wanted: "local", "episode", "unavailable"; "" if it can


@dataclass(frozen=True)
class SearchPage:
    """One page of a catalogue search: tracks, albums (`AlbumRef`) or artists."""

    items: tuple[Any, ...]
    total: int
    more: bool


@dataclass(frozen=True)
class User:
    id: str
    display_name: str


def _image(raw: dict[str, Any]) -> str:
    images = [i for i in as_list(raw.get("images")) if isinstance(i, dict) and isinstance(i.get("url"), str)]
    return str(images[0]["url"]) if images else ""  # Spotify lists the widest first


def _object(payload: object, what: str) -> dict[str, Any]:
    result: dict[str, Any] = expect(payload, dict, what, SERVICE)
    return result


def parse_artist_ref(payload: object) -> ArtistRef:
    raw = _object(payload, "artist")
    return ArtistRef(as_str(raw.get("id")), as_str(raw.get("name")))


def parse_artist(payload: object) -> Artist:
    raw = _object(payload, "artist")
    return Artist(as_str(raw.get("id")), as_str(raw.get("name")), _image(raw))


def parse_artists(raw: object) -> tuple[ArtistRef, ...]:
    return tuple(parse_artist_ref(a) for a in dicts(raw))


def parse_user(payload: object) -> User:
    raw = _object(payload, "user")
    return User(as_str(raw.get("id")), as_str(raw.get("display_name")) or as_str(raw.get("id")))


def parse_album_ref(payload: object) -> AlbumRef:
    raw = _object(payload, "album")
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


def parse_track(payload: object, album: AlbumRef | None = None) -> Track:
    raw = _object(payload, "track")
    isrc = as_dict(raw.get("external_ids")).get("isrc")
    embedded = raw.get("album")
    return Track(
        id=as_opt_str(raw.get("id")),
        name=as_str(raw.get("name")),
        artists=parse_artists(raw.get("artists")),
        duration_ms=as_int(raw.get("duration_ms")),
        track_number=as_int(raw.get("track_number"), 1),
        disc_number=as_int(raw.get("disc_number"), 1),
        explicit=as_bool(raw.get("explicit")),
        isrc=isrc.upper() if isinstance(isrc, str) and isrc else None,
        album=parse_album_ref(embedded) if isinstance(embedded, dict) else album,
        is_local=as_bool(raw.get("is_local")),
    )


def parse_playlist(payload: object) -> Playlist:
    raw = _object(payload, "playlist")
    items = as_dict(raw.get("items")) or as_dict(raw.get("tracks"))
    return Playlist(
        id=as_str(raw.get("id")),
        name=as_str(raw.get("name")),
        snapshot_id=as_str(raw.get("snapshot_id")),
        owner_id=as_str(as_dict(raw.get("owner")).get("id")),
        total=as_int(items.get("total")),
        collaborative=as_bool(raw.get("collaborative")),
    )


def parse_playlist_item(payload: object) -> PlaylistItem:
    """One playlist entry: `item` (2026), else the older `track`. Episodes, in either shape
    (`type: "episode"`, or a track-like object flagged `episode: true`), and null entries have
    no track; `skip_reason` says why an entry cannot be wanted (local files have a track)."""
    raw = _object(payload, "playlist item")
    entry = raw.get("item") if isinstance(raw.get("item"), dict) else raw.get("track")
    added_at = as_opt_str(raw.get("added_at"))
    if not isinstance(entry, dict):
        return PlaylistItem(added_at, None, "unavailable")
    if as_str(entry.get("type"), "track") != "track" or as_bool(entry.get("episode")):
        return PlaylistItem(added_at, None, "episode")
    track = parse_track(entry)
    reason = "local" if track.is_local else "" if track.id else "unavailable"
    return PlaylistItem(added_at, track, reason)


_REF = re.compile(
    r"(?:spotify:(?P<uri_kind>[a-z]+):|https?://open\.spotify\.com/(?:intl-[a-z]{2}(?:-[a-z]{2})?/)?"
    r"(?P<url_kind>[a-z]+)/)?(?P<id>[0-9A-Za-z]{22})(?:[?#].*)?"
)


def parse_ref(ref: str, kind: str) -> str:
    """The Spotify id in `ref`: a bare id, a URI (`spotify:artist:ID`) or an open.spotify.com URL
    (with any `?si=` tail), of `kind` ("artist", "album", "playlist", "track"). Invalid otherwise,
    naming the field `spotify` (the name every route and form gives it)."""
    match = _REF.fullmatch(ref.strip()) if isinstance(ref, str) else None
    found = match and (match.group("uri_kind") or match.group("url_kind") or kind)
    if not match or found != kind:
        message = f"expected a Spotify {kind} id, URI (spotify:{kind}:...) or link"
        raise Invalid(message, field="spotify", ref=str(ref)[:100])
    return match.group("id")


def parse_any_ref(ref: str) -> tuple[str | None, str]:
    """(kind, id) from a Spotify id, URI or link; the kind is None for a bare id. Invalid
    otherwise, as `parse_ref`."""
    match = _REF.fullmatch(ref.strip()) if isinstance(ref, str) else None
    if not match:
        message = "expected a Spotify id, URI (spotify:track:...) or link"
        raise Invalid(message, field="spotify", ref=str(ref)[:100])
    return match.group("uri_kind") or match.group("url_kind"), match.group("id")


def collapse_duplicates(albums: Sequence[AlbumRef]) -> list[AlbumRef]:
    """The first of each release listed more than once: Spotify lists a release once per set of
    markets (under different ids) when no market narrows it. Same name, type, date and number
    of tracks means the same release."""
    seen: set[tuple[str, str, str, int]] = set()
    out = []
    for album in albums:
        key = (album.name.casefold(), album.album_type, album.release_date, album.total_tracks)
        if key not in seen:
            seen.add(key)
            out.append(album)
    return out


def spotify_owned(playlist_id: str) -> bool:
    """An editorial or algorithmic playlist (Spotify's own ids start with `37i9`)."""
    return playlist_id.startswith(SPOTIFY_OWNED_PREFIX)


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
        market: str = "US",
        clock: Callable[[], float] = time.time,
    ) -> None:
        market = market.strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", market):
            raise ConfigError(
                f"option spotify.market: {market!r} is not a two-letter country code (ISO 3166-1)"
            )
        self.upstream = upstream
        self.db = db
        self.client_id = client_id
        self.client_secret = client_secret
        self.api = api_url.rstrip("/")
        self.accounts = accounts_url.rstrip("/")
        self.redirect_uri = redirect_uri
        self.market = market
        self.bucket = TokenBucket(rate)
        self.clock = clock
        self._app_token: tuple[str, float] | None = None
        self._batch_refused = False  # set once Spotify answers 403 to a batch read
        self._lock = threading.Lock()
        # One refresh of the user's token at a time; the others wait and use its result.
        self._refresh_lock = threading.Lock()
        self._covers: dict[str, bytes] = {}  # url -> image, oldest first

    @property
    def configured(self) -> bool:
        return bool(self.client_id)

    def _require_configured(self) -> None:
        if not self.configured:
            raise NotConfigured("Spotify is not configured: set spotify.client_id and spotify.client_secret")

    # --- cover art ------------------------------------------------------------------------

    def cover_image(self, url: str) -> bytes | None:
        """The image at a cover URL from Spotify's metadata, or None when it cannot be had. Only
        Spotify's image hosts (and the API's own host, which is where a test double serves
        images) are asked: a URL from a payload never sends Harmony elsewhere. The last few
        images are kept, so an album's tracks fetch its cover once."""
        parts = urlsplit(url)
        api_host = urlsplit(self.api).hostname
        spotify_cdn = parts.scheme == "https" and (parts.hostname or "").endswith(COVER_HOSTS)
        if not (spotify_cdn or (parts.hostname and parts.hostname == api_host)):
            return None
        with self._lock:
            if url in self._covers:
                return self._covers[url]
        try:
            data = self.upstream.request(SERVICE_IMAGES, "GET", url, headers={"Accept": "image/*"}).data
        except (UpstreamUnavailable, UpstreamRejected) as exc:
            log.info("cover_unavailable", extra={"fields": {"url": url[:200], "error": str(exc)}})
            return None
        with self._lock:
            self._covers[url] = data
            while len(self._covers) > COVER_CACHE:
                self._covers.pop(next(iter(self._covers)))
        return data

    # --- tokens ------------------------------------------------------------------------

    def _token_request(self, form: dict[str, str], *, basic: bool, quick: bool = False) -> dict[str, Any]:
        """POST to the accounts service. A refusal is UpstreamRejected carrying the OAuth
        `error` code in `details["oauth_error"]` (`invalid_grant`, `invalid_client`, ...)."""
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
            ok=(400, 401),
            quick=quick,
        )
        payload = as_dict(response.json())
        if response.status >= 400:
            error = as_str(payload.get("error"), "refused")
            description = as_str(payload.get("error_description")) or error
            raise UpstreamRejected(
                f"Spotify answered {response.status}: {description[:200]}",
                service=SERVICE,
                status=response.status,
                oauth_error=error[:50],
            )
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
            raise NotConfigured("spotify.redirect_uri is not set")
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
        self._store_authorization(payload, payload["refresh_token"])
        user = self.me()
        with self.db.write() as conn:
            conn.execute(
                "UPDATE spotify_auth SET user_id = ?, display_name = ? WHERE id = 1",
                (user.id, user.display_name),
            )
        return user

    def _store_authorization(self, payload: dict[str, Any], refresh_token: str) -> None:
        """Keep the tokens of a new authorisation; `authorized_at` records when it was given."""
        now = self.clock()
        with self.db.write() as conn:
            conn.execute(
                """
                INSERT INTO spotify_auth
                    (id, access_token, refresh_token, scope, expires_at, updated_at, authorized_at)
                VALUES (1, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET access_token = excluded.access_token,
                    refresh_token = excluded.refresh_token, scope = excluded.scope,
                    expires_at = excluded.expires_at, updated_at = excluded.updated_at,
                    authorized_at = excluded.authorized_at, revoked_reason = NULL
                """,
                (
                    payload["access_token"],
                    refresh_token,
                    as_str(payload.get("scope")),
                    now + as_int(payload.get("expires_in"), 3600),
                    now,
                    now,
                ),
            )

    def authorization(self) -> dict[str, Any] | None:
        """The stored user authorisation without its tokens, or None: who, which scopes, when
        the access token expires, when the user authorised Harmony and when that authorisation
        (the refresh token) expires, and why Spotify refused it, if it did."""
        row = self.db.query_one(
            "SELECT user_id, display_name, scope, expires_at, authorized_at, revoked_reason FROM spotify_auth"
        )
        if row is None:
            return None
        return {**row, "refresh_expires_at": row["authorized_at"] + REFRESH_TOKEN_LIFETIME}

    def disconnect(self) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM spotify_auth")

    def _user_row(self) -> dict[str, Any]:
        self._require_configured()
        row = self.db.query_one(
            "SELECT access_token, refresh_token, expires_at, revoked_reason FROM spotify_auth"
        )
        if row is None:
            raise NotConfigured("Spotify is not connected: start the authorisation from the settings")
        if row["revoked_reason"]:
            raise UpstreamRejected(
                f"Spotify no longer accepts Harmony's authorisation ({row['revoked_reason']}); connect again",
                service=SERVICE,
            )
        return row

    def user_token(self) -> str:
        """The user's access token, refreshed when it is about to expire.

        One refresh runs at a time; threads that need a token meanwhile wait for it and use its
        result, so a single-use refresh token is never spent twice. Raises NotConfigured when
        Spotify was never connected, UpstreamRejected when Spotify refused the refresh token
        with `invalid_grant` (revoked, or past its 6 months: connect again), and
        UpstreamUnavailable when the token endpoint fails; only `invalid_grant` marks the
        authorisation refused.
        """
        row = self._user_row()
        if row["expires_at"] - REFRESH_MARGIN > self.clock():
            return str(row["access_token"])
        with self._refresh_lock:
            row = self._user_row()  # another thread may have refreshed while this one waited
            if row["expires_at"] - REFRESH_MARGIN > self.clock():
                return str(row["access_token"])
            return self._refresh(row)

    def _refresh(self, row: dict[str, Any]) -> str:
        # The refresh token came from PKCE, so the refresh is the public-client one: the client
        # id in the form and no secret, whether or not one is configured.
        form = {
            "grant_type": "refresh_token",
            "refresh_token": row["refresh_token"],
            "client_id": self.client_id,
        }
        try:
            payload = self._token_request(form, basic=False)
        except UpstreamRejected as exc:
            if exc.details.get("oauth_error") != "invalid_grant":
                raise
            with self.db.write() as conn:
                conn.execute("UPDATE spotify_auth SET revoked_reason = ? WHERE id = 1", (exc.message[:200],))
            raise UpstreamRejected(
                f"Spotify refused the refresh token ({exc.message}); connect again",
                service=SERVICE,
                status=exc.details.get("status"),
            ) from None
        # Spotify may or may not rotate the refresh token; keep the old one when it does not.
        # The authorisation time stays: refreshing does not extend the refresh token's life.
        with self.db.write() as conn:
            conn.execute(
                "UPDATE spotify_auth SET access_token = ?, refresh_token = ?, "
                "scope = COALESCE(NULLIF(?, ''), scope), expires_at = ?, updated_at = ? WHERE id = 1",
                (
                    payload["access_token"],
                    as_str(payload.get("refresh_token")) or row["refresh_token"],
                    as_str(payload.get("scope")),
                    self.clock() + as_int(payload.get("expires_in"), 3600),
                    self.clock(),
                ),
            )
        return str(payload["access_token"])

    def _expire_user_token(self, token: str) -> None:
        """Mark `token` expired (Spotify said 401), unless a newer token has replaced it."""
        with self.db.write() as conn:
            conn.execute("UPDATE spotify_auth SET expires_at = 0 WHERE id = 1 AND access_token = ?", (token,))

    # --- requests ----------------------------------------------------------------------

    def _get(
        self, path: str, params: dict[str, Any] | None = None, *, user: bool = False, quick: bool = False
    ) -> Any:
        """GET an API path as the app (or the user); a 401 refreshes the token and retries once.

        404 is NotFound; the plain-text 403 for a user not on the app's allowlist becomes a
        message naming the fix; other refusals are UpstreamRejected with Spotify's status."""
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        url = f"{self.api}{path}" + (f"?{query}" if query else "")
        for attempt in (1, 2):
            token = self.user_token() if user else self.app_token(quick=quick)
            self.bucket.acquire()
            try:
                response = self.upstream.request(
                    SERVICE, "GET", url, headers={"Authorization": f"Bearer {token}"}, ok=(404,), quick=quick
                )
            except UpstreamRejected as exc:
                status = exc.details.get("status")
                if status == 401 and attempt == 1:
                    if user:
                        self._expire_user_token(token)
                    else:
                        self._app_token = None
                    continue
                if status == 403 and "not registered in the developer dashboard" in exc.message.lower():
                    raise UpstreamRejected(
                        NOT_REGISTERED, service=SERVICE, status=403, reason="user_not_registered"
                    ) from None
                raise
            if response.status == 404:
                raise NotFound(f"Spotify has no {path}", path=path)
            return response.json()
        raise AssertionError("unreachable")

    def _pages(
        self, path: str, params: dict[str, Any], cap: int, *, user: bool = False, key: str | None = None
    ) -> Iterator[dict[str, Any]]:
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
        return parse_artist(self._get(f"/artists/{artist_id}"))

    def artist_albums(
        self,
        artist_id: str,
        include_groups: Sequence[str] = ("album", "single", "compilation"),
        *,
        user: bool = False,
    ) -> list[AlbumRef]:
        """An artist's releases, each once. With `user`, as the user sees them (their token and
        `market=from_token`); else with the app token in `spotify.market`. Duplicates that slip
        through anyway are collapsed (`collapse_duplicates`)."""
        params = {"include_groups": ",".join(include_groups), "market": "from_token" if user else self.market}
        cap = PAGE_CAPS["artist_albums"]
        pages = self._pages(f"/artists/{artist_id}/albums", params, cap, user=user)
        return collapse_duplicates([parse_album_ref(raw) for raw in pages])

    def artist_albums_page(
        self, artist_id: str, include_groups: Sequence[str], offset: int
    ) -> tuple[list[AlbumRef], int]:
        """One page (at most 10, Development Mode's cap) of an artist's releases from `offset`, in
        `spotify.market`, with the listing's total. Unlike `artist_albums`, nothing is collapsed:
        the caller advances `offset` by the page's length."""
        params = {
            "include_groups": ",".join(include_groups),
            "market": self.market,
            "limit": PAGE_CAPS["artist_albums"],
            "offset": offset,
        }
        payload = as_dict(self._get(f"/artists/{artist_id}/albums", params))
        albums = [parse_album_ref(raw) for raw in dicts(payload.get("items"))]
        return albums, as_int(payload.get("total"), offset + len(albums))

    def album(self, album_id: str) -> Album:
        """An album with all its tracks (following the track paging past the embedded first page)."""
        return self._album(self._get(f"/albums/{album_id}"))

    def _album(self, payload: object) -> Album:
        raw = _object(payload, "album")
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
        return parse_track(self._get(f"/tracks/{track_id}"))

    def search(self, query: str, kind: str, *, offset: int = 0) -> SearchPage:
        """One page (10, the Development Mode limit) of tracks, albums or artists for `query`."""
        parse: Callable[[object], Any] = {
            "track": lambda raw: parse_track(raw),
            "album": parse_album_ref,
            "artist": parse_artist,
        }[kind]
        params = {"q": query, "type": kind, "limit": 10, "offset": offset, "market": self.market}
        paging = as_dict(as_dict(self._get("/search", params)).get(kind + "s"))
        items = tuple(parse(raw) for raw in dicts(paging.get("items")))
        total = as_int(paging.get("total"), len(items))
        return SearchPage(items, total, bool(paging.get("next")) and offset + len(items) < total)

    def search_tracks(self, query: str, limit: int = 10) -> list[Track]:
        payload = as_dict(self._get("/search", {"q": query, "type": "track", "limit": min(limit, 10)}))
        return [parse_track(raw) for raw in dicts(as_dict(payload.get("tracks")).get("items"))]

    # --- the user's library ------------------------------------------------------------

    def me(self) -> User:
        return parse_user(self._get("/me", user=True))

    def followed_artists(self) -> Iterator[Artist]:
        """Every followed artist, following the `after` cursor."""
        after: str | None = None
        while True:
            params = {"type": "artist", "limit": PAGE_CAPS["following"], "after": after}
            paging = as_dict(as_dict(self._get("/me/following", params, user=True)).get("artists"))
            items = dicts(paging.get("items"))
            yield from (parse_artist(i) for i in items)
            after = as_dict(paging.get("cursors")).get("after")
            if not items or not paging.get("next") or not isinstance(after, str):
                return

    def my_playlists(self) -> list[Playlist]:
        return [parse_playlist(raw) for raw in self._pages("/me/playlists", {}, 50, user=True)]

    def playlist(self, playlist_id: str) -> Playlist:
        """A playlist's metadata and snapshot. NotFound means it is gone; a Spotify-owned one
        this app may not read is UpstreamRejected (`details["reason"]`), never NotFound."""
        fields = "id,name,snapshot_id,owner(id),collaborative,items(total),tracks(total)"
        with self._playlist_errors(playlist_id):
            return parse_playlist(self._get(f"/playlists/{playlist_id}", {"fields": fields}, user=True))

    def playlist_items(self, playlist_id: str) -> Iterator[PlaylistItem]:
        """Every entry of a playlist (50 a request, so 5k tracks are 100 requests). Errors as
        `playlist`; another user's playlist is UpstreamRejected with a 403 saying why."""
        path = f"/playlists/{playlist_id}/items"
        with self._playlist_errors(playlist_id):
            for raw in self._pages(path, {}, PAGE_CAPS["playlist_items"], user=True):
                yield parse_playlist_item(raw)

    @contextlib.contextmanager
    def _playlist_errors(self, playlist_id: str) -> Iterator[None]:
        try:
            yield
        except NotFound:
            if spotify_owned(playlist_id):
                raise UpstreamRejected(
                    f"playlist {playlist_id} is Spotify's own (editorial or algorithmic): it still "
                    "exists, but Spotify makes it not readable by this app (Development Mode)",
                    service=SERVICE,
                    status=404,
                    reason="spotify_owned",
                ) from None
            raise NotFound(
                f"Spotify has no playlist {playlist_id}: it was deleted", playlist=playlist_id
            ) from None
        except UpstreamRejected as exc:
            if exc.details.get("status") != 403 or exc.details.get("reason"):
                raise
            raise UpstreamRejected(
                f"Spotify refused playlist {playlist_id}: Development Mode apps can read only the "
                "user's own and collaborative playlists",
                service=SERVICE,
                status=403,
                reason="not_owned",
            ) from None

    def saved_tracks(self) -> Iterator[Track]:
        for raw in self._pages("/me/tracks", {}, PAGE_CAPS["saved"], user=True):
            if isinstance(raw.get("track"), dict):
                yield parse_track(raw["track"])

    # --- health ------------------------------------------------------------------------

    def probe(self) -> str:
        """For /ready: one cheap real API request (so a failing API shows within one probe
        interval), except while cooling down, which counts as ready, as a rate limit does.

        The user's authorisation never fails the check: the detail says when it was refused,
        when it expires within `REFRESH_WARNING`, and once it has expired."""
        if not self.configured:
            return "not configured (Spotify features are off)"
        cooling = self.upstream.cooldown(SERVICE)
        if cooling:
            until = clock_time(cooling[0], self.clock())
            return f"cooling down until {until}: {cooling[1]}; {self._user_status()}"
        try:
            self._get("/search", {"q": "harmony", "type": "artist", "limit": 1}, quick=True)
        except UpstreamCoolingDown as exc:
            return f"{exc.message}; {self._user_status()}"
        except UpstreamUnavailable as exc:
            if exc.details.get("status") != 429:
                raise
            return f"rate limited; {self._user_status()}"
        return f"API answering; {self._user_status()}"

    def _user_status(self) -> str:
        auth = self.authorization()
        if auth is None:
            return "no user connected"
        if auth["revoked_reason"]:
            reason = auth["revoked_reason"]
            return f"user {auth['user_id']}: Spotify refused the authorisation ({reason}); connect again"
        expires = auth["refresh_expires_at"]
        day = time.strftime("%Y-%m-%d", time.gmtime(expires))
        left = expires - self.clock()
        if left <= 0:
            return f"user {auth['user_id']}: the authorisation expired on {day}; connect again"
        if left <= REFRESH_WARNING:
            days = max(1, round(left / 86400))
            return (
                f"user {auth['user_id']}: the authorisation expires on {day} (in {days} days); "
                "connect again before then"
            )
        return f"user {auth['user_id']}"
