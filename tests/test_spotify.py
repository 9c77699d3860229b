"""Harmony's Spotify client against the fake Spotify, in every fault mode.

Each test opens its own context (its own upstream, token cache and cooldowns) pointed at the
session's fakes; faults are cleared afterwards, and anything else changed on the fakes is restored.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3
from client import Client
from conftest import extended_quota, make_config, reset_fakes

from harmony import auth
from harmony.context import Context, opened
from harmony.errors import (
    BadInput,
    ConfigError,
    Invalid,
    NotConfigured,
    NotFound,
    UpstreamCoolingDown,
    UpstreamRejected,
    UpstreamUnavailable,
)
from harmony.fakes import Fakes, start_fakes
from harmony.fakes.catalogue import BIG_PLAYLIST_SIZE, DUPLICATED_ARTIST, ODD_PLAYLIST, USER_ID, Album, Track
from harmony.metrics import Metrics
from harmony.spotify import (
    REFRESH_TOKEN_LIFETIME,
    AlbumRef,
    Spotify,
    TokenBucket,
    User,
    collapse_duplicates,
    parse_ref,
)
from harmony.upstream import Upstream
from harmony.web import make_app

HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=5))
ALL_GROUPS = ("album", "single", "appears_on", "compilation")

OpenHarmony = Callable[..., Context]


@pytest.fixture
def harmony(tmp_path: Any, fakes: Fakes) -> Iterator[OpenHarmony]:
    """Open contexts on the fakes with option overrides (`upstream_read_timeout="0.3s"`, ...).

    The rate is raised so that paging through thousands of items takes seconds, not minutes.
    The fake Spotify's settings are put back afterwards."""
    stack = ExitStack()
    count = iter(range(1000))
    settings = fakes.spotify_state.settings()

    def open_one(**flags: Any) -> Context:
        flags.setdefault("spotify_rate", "50")
        return stack.enter_context(opened(make_config(tmp_path / f"harmony{next(count)}", fakes, **flags)))

    try:
        with stack:
            yield open_one
    finally:
        fakes.spotify_state.change(settings)
        reset_fakes(fakes)


@pytest.fixture
def ctx(harmony: OpenHarmony) -> Context:
    return harmony()


def control(fakes: Fakes, path: str, body: dict[str, Any] | None = None) -> Any:
    response = HTTP.request("POST", fakes.spotify.url + path, body=json.dumps(body or {}).encode())
    assert response.status == 200, response.data
    return json.loads(response.data)


def add_fault(fakes: Fakes, **rule: Any) -> int:
    """Add a fault rule on the fake Spotify through its control API; return its id."""
    return int(control(fakes, "/_fake/faults", rule)["id"])


def fault_uses_left(fakes: Fakes, rule_id: int) -> int | None:
    """How many requests the rule will still affect (0 once it has expired)."""
    for rule in fakes.spotify_state.faults.rules():
        if rule.id == rule_id:
            return rule.times
    return 0


def requests_sent(ctx: Context, outcome: str = "ok") -> float:
    value = ctx.metrics.registry.get_sample_value(
        "harmony_upstream_requests_total", {"service": "spotify", "outcome": outcome}
    )
    return value or 0.0


def connect_user(ctx: Context) -> User:
    """The PKCE flow as a browser would run it: follow /authorize, stop at the redirect, hand back."""
    url = ctx.spotify.authorize_url()
    assert "code_challenge_method=S256" in url and "code_challenge=" in url
    response = HTTP.request("GET", url, redirect=False)
    assert response.status == 302, response.data
    location = response.headers["Location"]
    assert location.startswith(ctx.config["spotify.redirect_uri"] + "?")
    query = parse_qs(urlsplit(location).query)
    return ctx.spotify.complete_authorization(query["state"][0], query["code"][0])


def stored_auth(ctx: Context) -> dict[str, Any]:
    row = ctx.db.query_one("SELECT * FROM spotify_auth")
    assert row is not None
    return dict(row)


def artist_id(fakes: Fakes, name: str) -> str:
    return fakes.catalogue.artist_by_name(name).id


# --- client credentials and the catalogue -----------------------------------------------------------


def test_app_token_is_fetched_once_and_reused(ctx: Context, fakes: Fakes) -> None:
    issued = len(fakes.spotify_state.tokens)
    token = ctx.spotify.app_token()
    assert ctx.spotify.app_token() == token
    ctx.spotify.artist(artist_id(fakes, "Aurora Vale"))
    ctx.spotify.search_tracks("Aurora Vale")
    assert len(fakes.spotify_state.tokens) == issued + 1
    assert fakes.spotify_state.tokens[token].user_id is None


def test_artist_is_parsed_and_unknown_ids_are_not_found(ctx: Context, fakes: Fakes) -> None:
    wanted = fakes.catalogue.artist_by_name("Mørkeskog")
    artist = ctx.spotify.artist(wanted.id)
    assert (artist.id, artist.name) == (wanted.id, "Mørkeskog")
    assert artist.image_url.endswith("/640.jpg")
    with pytest.raises(NotFound):
        ctx.spotify.artist("0" * 22)


def test_artist_albums_pages_ten_at_a_time_through_every_group(ctx: Context, fakes: Fakes) -> None:
    artist = artist_id(fakes, "The Velvet Hours")
    expected = [
        (album.id, group)
        for album, group in fakes.catalogue.artist_albums(artist)
        if fakes.spotify_state.visible(album)
    ]
    assert len(expected) > 10  # more than one page under the Development Mode cap
    ctx.spotify.app_token()
    before = requests_sent(ctx)
    albums = ctx.spotify.artist_albums(artist, include_groups=ALL_GROUPS)
    assert requests_sent(ctx) - before == 2  # 10 + the rest; a larger limit would be a 400
    assert [a.id for a in albums] == [album_id for album_id, _ in expected]
    assert {a.album_type for a in albums} == {"album", "single", "compilation"}


def test_artist_albums_include_groups_filter_the_releases(ctx: Context, fakes: Fakes) -> None:
    artist = artist_id(fakes, "The Velvet Hours")
    appears_on = ctx.spotify.artist_albums(artist, include_groups=("appears_on",))
    assert appears_on and all(a.album_type == "compilation" for a in appears_on)
    assert all(a.artists[0].name == "Various Artists" for a in appears_on)
    singles = ctx.spotify.artist_albums(artist, include_groups=("single",))
    assert singles and all(a.album_type == "single" for a in singles)
    own = ctx.spotify.artist_albums(artist)  # albums, singles and EPs, compilations
    assert {a.id for a in singles} <= {a.id for a in own}
    assert not {a.id for a in appears_on} & {a.id for a in own}
    assert any(a.name.endswith(" EP") for a in ctx.spotify.artist_albums(artist_id(fakes, "Mørkeskog")))
    # Development Mode leaves album_group out; nothing may require it.
    assert all(a.album_group == "" for a in appears_on)


def test_album_keeps_disc_and_track_numbers_of_a_multi_disc_album(ctx: Context, fakes: Fakes) -> None:
    source = next(a for a in fakes.catalogue.albums.values() if a.name == "Mirror of Stations")
    album = ctx.spotify.album(source.id)
    truth = fakes.catalogue.album_tracks(source)
    assert [(t.id, t.disc_number, t.track_number) for t in album.tracks] == [
        (t.id, t.disc_number, t.track_number) for t in truth
    ]
    assert {t.disc_number for t in album.tracks} == {1, 2}
    assert album.upc == source.upc and album.ref.total_tracks == len(truth)
    assert album.ref.year == source.released_on.year
    # Album listings carry simplified tracks: no ISRC, but the album they belong to.
    assert all(t.isrc is None and t.album == album.ref for t in album.tracks)


@contextmanager
def long_album(fakes: Fakes, tracks: int = 64) -> Iterator[Album]:
    """A temporary album longer than the 50 tracks embedded in a full album object."""
    cat = fakes.catalogue
    artist = artist_id(fakes, "Kite Theory")
    album = Album(
        "LongAlbum000000000000A", "Marathon", "album", (artist,), "2020-02-02", "day", "1" * 12, "X"
    )
    added = []
    for n in range(1, tracks + 1):
        disc, number = (1, n) if n <= 40 else (2, n - 40)
        track = Track(
            f"LongTrack{n:013d}",
            f"Part {n}",
            (artist,),
            album.id,
            100_000 + n,
            number,
            disc,
            f"QZ0002000{n:03d}",
        )
        added.append(track)
        album.track_ids.append(track.id)
    with fakes.spotify_state.lock:
        cat.albums[album.id] = album
        cat.tracks.update((t.id, t) for t in added)
    try:
        yield album
    finally:
        with fakes.spotify_state.lock:
            del cat.albums[album.id]
            for t in added:
                del cat.tracks[t.id]


def test_album_follows_track_paging_past_the_embedded_page(ctx: Context, fakes: Fakes) -> None:
    with long_album(fakes, 64) as source:
        album = ctx.spotify.album(source.id)
    assert [t.id for t in album.tracks] == source.track_ids
    assert album.tracks[-1].disc_number == 2 and album.tracks[-1].track_number == 24


def test_albums_and_tracks_are_read_in_batches(ctx: Context, fakes: Fakes) -> None:
    album_ids = [a.id for a in fakes.catalogue.albums.values() if not a.future][:25]
    track_ids = list(fakes.catalogue.tracks)[:60]
    ctx.spotify.app_token()
    before = requests_sent(ctx)
    with extended_quota(fakes):
        albums = ctx.spotify.albums(album_ids)
        tracks = ctx.spotify.tracks(track_ids)
    assert requests_sent(ctx) - before == 4  # 20 + 5 albums, 50 + 10 tracks
    assert [a.ref.id for a in albums] == album_ids
    assert [len(a.tracks) for a in albums] == [len(fakes.catalogue.albums[i].track_ids) for i in album_ids]
    assert [t.id for t in tracks] == track_ids
    # Full tracks carry their ISRC and their album.
    assert [t.isrc for t in tracks] == [fakes.catalogue.tracks[i].isrc for i in track_ids]
    assert all(t.album is not None and t.album.id == fakes.catalogue.tracks[t.id].album_id for t in tracks)


def test_development_mode_refuses_batches_once_then_reads_one_by_one(ctx: Context, fakes: Fakes) -> None:
    album_ids = [a.id for a in fakes.catalogue.albums.values() if not a.future][:3]
    track_ids = list(fakes.catalogue.tracks)[:4]
    ctx.spotify.app_token()
    before, refused_before = requests_sent(ctx), requests_sent(ctx, "http_4xx")
    albums = ctx.spotify.albums(album_ids)
    tracks = ctx.spotify.tracks(track_ids)
    # One refused batch (403), then single lookups; the track batch is not even tried.
    assert requests_sent(ctx, "http_4xx") - refused_before == 1
    assert requests_sent(ctx) - before == len(album_ids) + len(track_ids)
    assert [a.ref.id for a in albums] == album_ids
    assert [t.isrc for t in tracks] == [fakes.catalogue.tracks[i].isrc for i in track_ids]


def test_other_batch_refusals_are_not_swallowed(ctx: Context, fakes: Fakes) -> None:
    ctx.spotify.app_token()
    add_fault(fakes, kind="status", path="/v1/tracks", method="GET", status=400, times=1)
    with pytest.raises(UpstreamRejected) as info:
        ctx.spotify.tracks(list(fakes.catalogue.tracks)[:2])
    assert info.value.details["status"] == 400


def test_single_track_has_its_isrc(ctx: Context, fakes: Fakes) -> None:
    source = next(iter(fakes.catalogue.tracks.values()))
    track = ctx.spotify.track(source.id)
    assert track.isrc == source.isrc and track.duration_ms == source.duration_ms
    assert track.album is not None and track.album.id == source.album_id


def test_search_finds_tracks_by_isrc_and_by_words(ctx: Context, fakes: Fakes) -> None:
    source = next(iter(fakes.catalogue.tracks.values()))
    by_isrc = ctx.spotify.search_tracks(f"isrc:{source.isrc}")
    assert source.id in {t.id for t in by_isrc} and all(t.isrc == source.isrc for t in by_isrc)
    by_words = ctx.spotify.search_tracks("Aurora Vale", limit=50)  # capped at the Development Mode 10
    assert len(by_words) == 10
    assert any(a.name == "Aurora Vale" for t in by_words for a in t.artists)


# --- the user's authorisation (PKCE) and library ------------------------------------------------------


def test_pkce_flow_stores_the_user_tokens(ctx: Context, fakes: Fakes) -> None:
    user = connect_user(ctx)
    assert user == User(USER_ID, "Harmony Listener")
    row = stored_auth(ctx)
    assert row["user_id"] == USER_ID and row["display_name"] == "Harmony Listener"
    assert row["revoked_reason"] is None and row["expires_at"] > time.time() + 3000
    assert set(row["scope"].split()) >= {"user-follow-read", "playlist-read-private", "user-library-read"}
    token = fakes.spotify_state.tokens[row["access_token"]]
    assert token.user_id == USER_ID and row["refresh_token"] in fakes.spotify_state.refresh_tokens
    assert ctx.db.query_one("SELECT COUNT(*) AS n FROM spotify_pkce")["n"] == 0  # state used up
    assert ctx.spotify.authorization()["user_id"] == USER_ID


def test_authorisation_state_is_single_use_and_must_be_known(ctx: Context) -> None:
    url = ctx.spotify.authorize_url()
    location = HTTP.request("GET", url, redirect=False).headers["Location"]
    query = parse_qs(urlsplit(location).query)
    state, code = query["state"][0], query["code"][0]
    ctx.spotify.complete_authorization(state, code)
    with pytest.raises(BadInput, match="start the Spotify connection again"):
        ctx.spotify.complete_authorization(state, code)
    with pytest.raises(BadInput):
        ctx.spotify.complete_authorization("never-issued", code)


def test_user_calls_without_a_connection_are_not_configured(ctx: Context) -> None:
    with pytest.raises(NotConfigured, match="not connected") as info:
        ctx.spotify.me()
    assert info.value.status == 409 and info.value.code == "not_configured"


@contextmanager
def extra_follows(fakes: Fakes, count: int) -> Iterator[list[str]]:
    main = set(fakes.catalogue.main_artist_ids)
    extra = [a for a in fakes.catalogue.artists if a not in main and a not in fakes.catalogue.followed][
        :count
    ]
    control(fakes, "/_fake/spotify/following", {"add": extra})
    try:
        yield extra
    finally:
        control(fakes, "/_fake/spotify/following", {"remove": extra})


def test_followed_artists_follow_the_after_cursor(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    with extra_follows(fakes, 60):
        expected = list(fakes.catalogue.followed)
        assert len(expected) > 50
        before = requests_sent(ctx)
        followed = [a.id for a in ctx.spotify.followed_artists()]
        assert requests_sent(ctx) - before == 2
    assert followed == expected


def test_my_playlists_and_a_playlist_with_its_snapshot(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    playlists = {p.name: p for p in ctx.spotify.my_playlists()}
    assert set(playlists) == {p.name for p in fakes.catalogue.playlists.values()}
    assert playlists["Everything Ever"].total == BIG_PLAYLIST_SIZE
    assert (
        playlists["Road Trip (shared)"].collaborative and playlists["Road Trip (shared)"].owner_id != USER_ID
    )
    empty = fakes.catalogue.playlists[playlists["Nothing Yet"].id]
    snapshot = ctx.spotify.playlist(empty.id)
    assert (snapshot.total, snapshot.snapshot_id, snapshot.owner_id) == (0, empty.snapshot_id, USER_ID)
    version = empty.version
    try:
        control(fakes, f"/_fake/spotify/playlists/{empty.id}", {"add": [next(iter(fakes.catalogue.tracks))]})
        edited = ctx.spotify.playlist(empty.id)
        assert edited.total == 1 and edited.snapshot_id != snapshot.snapshot_id
    finally:
        with fakes.spotify_state.lock:
            empty.entries, empty.version = [], version


def test_playlist_items_page_past_five_thousand_entries(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    playlist = next(p for p in fakes.catalogue.playlists.values() if p.name == "Everything Ever")
    before = requests_sent(ctx)
    items = list(ctx.spotify.playlist_items(playlist.id))
    assert len(items) == BIG_PLAYLIST_SIZE > 5000
    assert requests_sent(ctx) - before == BIG_PLAYLIST_SIZE // 50
    assert [i.track.id for i in items if i.track] == [e.track_id for e in playlist.entries]
    assert all(i.added_at and i.track and i.track.isrc for i in items)


def test_playlist_items_keep_local_files(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    morning = next(p for p in fakes.catalogue.playlists.values() if p.name == "Morning Rotation")
    items = list(ctx.spotify.playlist_items(morning.id))
    local = [i for i in items if i.track and i.track.is_local]
    assert len(items) == len(morning.entries) and len(local) == 1 and local[0].track is not None
    assert local[0].track.id is None and local[0].skip_reason == "local"
    assert local[0].track.artists[0].name == "Me"


def test_odd_playlist_entries_are_skipped_with_a_reason(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    odd = next(p for p in fakes.catalogue.playlists.values() if p.name == ODD_PLAYLIST)
    items = list(ctx.spotify.playlist_items(odd.id))
    assert [i.skip_reason for i in items] == ["", "episode", "unavailable", "", "", "local", ""]
    tracks = [i.track.id for i in items if not i.skip_reason and i.track]
    assert tracks == [e.track_id for e in odd.entries if e.kind in ("track", "legacy")]
    assert items[4].added_at is None and items[0].added_at  # very old entries have no date


def test_a_spotify_owned_playlist_is_unreadable_not_deleted(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    editorial = next(p for p in ctx.spotify.my_playlists() if p.owner_id == "spotify")  # listed
    for call in (
        lambda: ctx.spotify.playlist(editorial.id),
        lambda: list(ctx.spotify.playlist_items(editorial.id)),
    ):
        with pytest.raises(UpstreamRejected) as info:  # never NotFound, which would mean deleted
            call()
        assert info.value.details == {"service": "spotify", "status": 404, "reason": "spotify_owned"}
        assert "Spotify's own" in info.value.message and "not readable by this app" in info.value.message
    with pytest.raises(NotFound, match="deleted"):
        ctx.spotify.playlist("0" * 22)


def test_another_users_playlist_says_what_development_mode_allows(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    shared = next(p for p in fakes.catalogue.playlists.values() if p.name == "Road Trip (shared)")
    shared.collaborative = False  # now only followed: someone else's playlist
    try:
        assert ctx.spotify.playlist(shared.id).owner_id == "roadfriend"  # the metadata is readable
        with pytest.raises(UpstreamRejected) as info:
            list(ctx.spotify.playlist_items(shared.id))
    finally:
        shared.collaborative = True
    assert info.value.details["status"] == 403 and info.value.details["reason"] == "not_owned"
    assert (
        "Development Mode apps can read only the user's own and collaborative playlists" in info.value.message
    )


def test_an_account_not_on_the_allowlist_is_told_the_fix(ctx: Context, fakes: Fakes) -> None:
    control(fakes, "/_fake/spotify/settings", {"allowlist": []})  # the fixture puts it back
    with pytest.raises(UpstreamRejected) as info:
        connect_user(ctx)  # the token exchange works; /me then answers a plain-text 403
    assert info.value.details["reason"] == "user_not_registered"
    assert "User Management in the Spotify Developer Dashboard" in info.value.message


def test_saved_tracks_page_and_carry_isrcs(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    saved = list(ctx.spotify.saved_tracks())
    assert [t.id for t in saved] == [t for t, _ in fakes.catalogue.saved]
    assert len(saved) > 50 and all(t.isrc == fakes.catalogue.tracks[t.id].isrc for t in saved)


def test_expired_app_and_user_tokens_are_refreshed_transparently(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    app_token = ctx.spotify.app_token()
    old = stored_auth(ctx)
    control(fakes, "/_fake/spotify/expire-tokens")
    assert ctx.spotify.artist(artist_id(fakes, "Aurora Vale")).name == "Aurora Vale"
    assert ctx.spotify.app_token() != app_token
    assert ctx.spotify.me().id == USER_ID
    new = stored_auth(ctx)
    assert new["access_token"] != old["access_token"] and new["revoked_reason"] is None
    assert fakes.spotify_state.tokens[new["access_token"]].expires_at > fakes.clock.now()
    assert len(list(ctx.spotify.saved_tracks())) == len(fakes.catalogue.saved)


def test_two_threads_refreshing_a_single_use_token_leave_the_authorisation_valid(
    ctx: Context, fakes: Fakes
) -> None:
    control(fakes, "/_fake/spotify/settings", {"refresh_rotation": "single_use"})
    connect_user(ctx)
    control(fakes, "/_fake/spotify/expire-tokens")  # every thread's next call gets a 401
    refreshes = len([r for r in fakes.spotify_state.token_requests if r["grant_type"] == "refresh_token"])
    gate, errors = threading.Barrier(4), []

    def call() -> None:
        gate.wait()
        try:
            ctx.spotify.me()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    row = stored_auth(ctx)
    assert row["revoked_reason"] is None and row["refresh_token"] in fakes.spotify_state.refresh_tokens
    sent = [r for r in fakes.spotify_state.token_requests if r["grant_type"] == "refresh_token"][refreshes:]
    assert len(sent) == 1  # one refresh; the other threads used its result
    # A PKCE-issued token is refreshed as a public client: the client id, and no secret.
    assert sent[0]["client_id"] == fakes.spotify_client_id and not sent[0]["secret"] and not sent[0]["basic"]


def test_a_failing_token_endpoint_never_costs_the_authorisation(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    control(fakes, "/_fake/spotify/expire-tokens")
    add_fault(fakes, kind="status", path="/api/token", status=503, times=1)
    with pytest.raises(UpstreamUnavailable):
        ctx.spotify.me()
    add_fault(fakes, kind="edge", path="/api/token", status=502, times=1)
    with pytest.raises(UpstreamUnavailable, match="502 Bad Gateway"):
        ctx.spotify.me()
    add_fault(fakes, kind="status", path="/api/token", status=400, message="Something else", times=1)
    with pytest.raises(UpstreamRejected):
        ctx.spotify.me()  # a refusal, but not invalid_grant
    assert stored_auth(ctx)["revoked_reason"] is None
    assert ctx.spotify.me().id == USER_ID


def test_revoked_refresh_token_asks_to_connect_again(ctx: Context, fakes: Fakes) -> None:
    connect_user(ctx)
    control(fakes, "/_fake/spotify/revoke")
    control(fakes, "/_fake/spotify/expire-tokens")
    with pytest.raises(UpstreamRejected, match="connect again"):
        ctx.spotify.me()
    reason = stored_auth(ctx)["revoked_reason"]
    assert reason and "Invalid refresh token" in reason
    before = requests_sent(ctx, "http_4xx")
    with pytest.raises(UpstreamRejected, match=r"no longer accepts.*connect again"):
        list(ctx.spotify.followed_artists())
    assert requests_sent(ctx, "http_4xx") == before  # refused locally, Spotify was not asked
    assert "refused the authorisation" in ctx.spotify.probe()
    connect_user(ctx)  # connecting again clears the mark
    assert stored_auth(ctx)["revoked_reason"] is None and ctx.spotify.me().id == USER_ID


# --- upstream faults ----------------------------------------------------------------------------------


def test_transient_5xx_on_a_get_is_retried_until_it_succeeds(ctx: Context, fakes: Fakes) -> None:
    ctx.spotify.app_token()
    rule = add_fault(fakes, kind="status", path="/v1/artists", status=503, times=2)
    assert ctx.spotify.artist(artist_id(fakes, "Aurora Vale")).name == "Aurora Vale"
    assert fault_uses_left(fakes, rule) == 0
    assert requests_sent(ctx, "http_5xx") == 0  # retried answers count once, as the final outcome


def test_persistent_5xx_becomes_upstream_unavailable(harmony: OpenHarmony, fakes: Fakes) -> None:
    ctx = harmony(upstream_retries="1")
    ctx.spotify.app_token()
    rule = add_fault(fakes, kind="status", path="/v1/artists", status=502, times=5)
    with pytest.raises(UpstreamUnavailable) as info:
        ctx.spotify.artist(artist_id(fakes, "Aurora Vale"))
    assert info.value.details["status"] == 502 and fault_uses_left(fakes, rule) == 3
    # A 500 is not one of the transient statuses: no retry.
    rule = add_fault(fakes, kind="status", path="/v1/albums", status=500, times=5)
    with pytest.raises(UpstreamUnavailable, match="answered 500"):
        ctx.spotify.album(next(iter(fakes.catalogue.albums)))
    assert fault_uses_left(fakes, rule) == 4


def test_token_endpoint_errors_are_typed(harmony: OpenHarmony, fakes: Fakes) -> None:
    ctx = harmony()
    rule = add_fault(fakes, kind="status", path="/api/token", status=503, times=2)
    with pytest.raises(UpstreamUnavailable):
        ctx.spotify.app_token()
    assert fault_uses_left(fakes, rule) == 1  # a POST: not repeated
    fakes.spotify_state.faults.clear()
    assert ctx.spotify.app_token()
    wrong = harmony(spotify_client_secret="wrong-secret")
    with pytest.raises(UpstreamRejected, match="Invalid client") as info:
        wrong.spotify.artist(artist_id(fakes, "Aurora Vale"))
    assert info.value.details["status"] == 400


def test_short_retry_after_is_waited_in_place(ctx: Context, fakes: Fakes) -> None:
    ctx.spotify.app_token()
    rule = add_fault(fakes, kind="rate_limit", path="/v1/artists", seconds=1, times=1)
    started = time.monotonic()
    assert ctx.spotify.artist(artist_id(fakes, "Aurora Vale")).name == "Aurora Vale"
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3.0
    assert fault_uses_left(fakes, rule) == 0 and ctx.upstream.cooldowns() == {}


def test_long_retry_after_starts_a_cooldown_that_fails_fast_and_is_reported(
    harmony: OpenHarmony, fakes: Fakes
) -> None:
    ctx = harmony(upstream_max_retry_after="1s")
    ctx.spotify.app_token()
    rule = add_fault(fakes, kind="rate_limit", path="/v1/artists", seconds=300, times=3)
    aurora = artist_id(fakes, "Aurora Vale")
    started = time.monotonic()
    with pytest.raises(UpstreamCoolingDown) as info:
        ctx.spotify.artist(aurora)
    assert time.monotonic() - started < 1.0  # no thread parked on the Retry-After
    until = info.value.details["until"]
    assert until == pytest.approx(time.time() + 300, abs=5)
    assert fault_uses_left(fakes, rule) == 2

    # Every later call, on any path, fails at once without reaching Spotify.
    for call in (lambda: ctx.spotify.artist(aurora), lambda: ctx.spotify.search_tracks("x")):
        with pytest.raises(UpstreamCoolingDown, match="cooling down until"):
            call()
    assert fault_uses_left(fakes, rule) == 2 and requests_sent(ctx, "cooldown") == 2

    # /env, the status page, /metrics and /ready all show it.
    client = Client(make_app(ctx), auth.create_key(ctx.db, "test admin", "admin")[0])
    env = client.get("/env").json["upstream_cooldowns"]
    assert env["spotify"]["until"] == until and "Retry-After 300s" in env["spotify"]["reason"]
    assert client.get("/api/v1/system/status").json["upstream_cooldowns"]["spotify"]["until"] == until
    gauges = dict(
        line.rsplit(" ", 1)
        for line in client.get("/metrics").text.splitlines()
        if line.startswith("harmony_upstream_cooldown_until_seconds{")
    )
    assert float(gauges['harmony_upstream_cooldown_until_seconds{service="spotify"}']) == pytest.approx(until)
    assert float(gauges['harmony_upstream_cooldown_until_seconds{service="slskd"}']) == 0
    ctx.health.probe()
    ready = client.get("/ready")
    assert ready.status == 200, ready.text
    check = ready.json["checks"]["spotify"]
    assert check["ok"] is True and check["detail"].startswith("cooling down until")


def test_an_organic_rate_limit_of_hours_is_a_cooldown_not_a_sleep(harmony: OpenHarmony, fakes: Fakes) -> None:
    ctx = harmony(upstream_max_cooldown="10m")
    token = ctx.spotify.app_token()
    control(fakes, "/_fake/spotify/settings", {"rate_limit": 2})  # the fixture turns it off again
    aurora = artist_id(fakes, "Aurora Vale")
    for _ in range(9):  # sustained calls from elsewhere on the same app push Retry-After to hours
        HTTP.request(
            "GET", f"{fakes.spotify_api_url}/artists/{aurora}", headers={"Authorization": f"Bearer {token}"}
        )
    started = time.monotonic()
    with pytest.raises(UpstreamCoolingDown) as info:
        ctx.spotify.artist(aurora)
    assert time.monotonic() - started < 1.0  # no thread parked for hours
    assert info.value.details["until"] == pytest.approx(time.time() + 600, abs=5)  # upstream.max_cooldown
    assert "capped at 600s" in ctx.upstream.cooldowns()["spotify"]["reason"]


def test_cooldown_ends_when_the_retry_after_has_passed(ctx: Context, fakes: Fakes) -> None:
    now = [time.time()]
    metrics = Metrics()
    upstream = Upstream(metrics, connect_timeout=2, read_timeout=5, max_retry_after=1, clock=lambda: now[0])
    spotify = Spotify(
        upstream,
        ctx.db,
        client_id=fakes.spotify_client_id,
        client_secret=fakes.spotify_client_secret,
        api_url=fakes.spotify_api_url,
        accounts_url=fakes.spotify_accounts_url,
        rate=50,
    )
    try:
        aurora = artist_id(fakes, "Aurora Vale")
        add_fault(fakes, kind="rate_limit", path="/v1/artists", seconds=60, times=1)
        with pytest.raises(UpstreamCoolingDown):
            spotify.artist(aurora)
        now[0] += 59
        with pytest.raises(UpstreamCoolingDown):
            spotify.artist(aurora)
        now[0] += 2
        assert spotify.artist(aurora).name == "Aurora Vale"
        assert upstream.cooldowns() == {}
        gauge = {"service": "spotify"}
        assert metrics.registry.get_sample_value("harmony_upstream_cooldown_until_seconds", gauge) == 0
    finally:
        upstream.close()


def test_read_timeout_raises_unavailable_within_bounded_time(harmony: OpenHarmony, fakes: Fakes) -> None:
    ctx = harmony(upstream_read_timeout="0.3s", upstream_retries="1")
    ctx.spotify.app_token()
    rule = add_fault(fakes, kind="delay", path="/v1/artists", seconds=3, times=2)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="timed out"):
        ctx.spotify.artist(artist_id(fakes, "Aurora Vale"))
    assert time.monotonic() - started < 1.5  # two 0.3 s attempts and one short backoff
    assert fault_uses_left(fakes, rule) == 0  # the GET was tried twice


def test_dropped_connection_on_a_get_is_retried(ctx: Context, fakes: Fakes) -> None:
    ctx.spotify.app_token()
    rule = add_fault(fakes, kind="drop", path="/v1/artists", times=1)
    assert ctx.spotify.artist(artist_id(fakes, "Aurora Vale")).name == "Aurora Vale"
    assert fault_uses_left(fakes, rule) == 0


def test_connection_dropped_every_time_becomes_unavailable(harmony: OpenHarmony, fakes: Fakes) -> None:
    ctx = harmony(upstream_retries="1")
    add_fault(fakes, kind="drop", path="/api/token", times=1)
    with pytest.raises(UpstreamUnavailable, match="connection dropped"):
        ctx.spotify.app_token()  # the token POST is not repeated
    add_fault(fakes, kind="drop", path="/v1/artists")
    with pytest.raises(UpstreamUnavailable, match="connection dropped"):
        ctx.spotify.artist(artist_id(fakes, "Aurora Vale"))


def test_spotify_down_is_unavailable_quickly(ctx: Context, fakes: Fakes) -> None:
    fakes.spotify.stop()  # the fixture starts it again
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="connection refused"):
        ctx.spotify.app_token()
    assert time.monotonic() - started < 3.0


# --- the token bucket ---------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_starts_with_a_burst_then_keeps_the_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(rate=2.0, burst=3, clock=t.clock, sleep=t.sleep)
    waits = [bucket.acquire() for _ in range(9)]
    assert waits[:3] == [0, 0, 0]
    assert waits[3:] == pytest.approx([0.5] * 6)
    assert t.now - 1000.0 == pytest.approx(3.0)  # 6 requests past the burst at 2 a second


def test_token_bucket_saves_up_at_most_the_burst() -> None:
    t = FakeTime()
    bucket = TokenBucket(rate=1.0, burst=2, clock=t.clock, sleep=t.sleep)
    t.now += 3600  # idle for an hour
    assert [bucket.acquire() for _ in range(3)] == pytest.approx([0, 0, 1.0])
    t.now += 0.25
    assert bucket.acquire() == pytest.approx(0.75)


def test_token_bucket_queues_concurrent_acquirers() -> None:
    t = FakeTime()
    slept: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:  # does not move the clock: all callers arrive at once
        with lock:
            slept.append(seconds)

    bucket = TokenBucket(rate=4.0, burst=2, clock=t.clock, sleep=record)
    gate = threading.Barrier(6)
    waits: list[float] = []

    def worker() -> None:
        gate.wait()
        wait = bucket.acquire()
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(waits) == pytest.approx([0, 0, 0.25, 0.5, 0.75, 1.0])
    assert sorted(slept) == pytest.approx([0.25, 0.5, 0.75, 1.0])


# --- markets, configuration, references ---------------------------------------------------------------


def test_duplicate_market_albums_come_back_once(harmony: OpenHarmony, fakes: Fakes) -> None:
    ctx = harmony()
    artist = artist_id(fakes, DUPLICATED_ARTIST)
    albums = ctx.spotify.artist_albums(artist, include_groups=("album",))
    expected = {
        a.name
        for a, group in fakes.catalogue.artist_albums(artist)
        if group == "album" and fakes.spotify_state.visible(a)
    }
    assert sorted(a.name for a in albums) == sorted(expected)  # each release once, in spotify.market
    assert all(fakes.catalogue.albums[a.id].duplicate_of is None for a in albums)  # the US copies
    connect_user(ctx)
    as_user = ctx.spotify.artist_albums(artist, include_groups=("album",), user=True)  # market=from_token
    assert [a.id for a in as_user] == [a.id for a in albums]
    japan = harmony(spotify_market="jp").spotify.artist_albums(artist, include_groups=("album",))
    assert sorted(a.name for a in japan) == sorted(expected) and {a.id for a in japan} != {
        a.id for a in albums
    }


def test_duplicates_are_collapsed_even_when_the_market_does_not_narrow() -> None:
    def ref(album_id: str, name: str, tracks: int = 10) -> AlbumRef:
        return AlbumRef(album_id, name, "album", "2020-01-01", "day", tracks, ())

    listed = [ref("a1", "Same"), ref("a2", "same"), ref("a3", "Same", 11), ref("a4", "Other")]
    assert [a.id for a in collapse_duplicates(listed)] == ["a1", "a3", "a4"]


def test_spotify_not_configured_is_its_own_error(harmony: OpenHarmony, fakes: Fakes) -> None:
    ctx = harmony(spotify_client_id="")
    with pytest.raises(NotConfigured, match="not configured") as info:
        ctx.spotify.artist(artist_id(fakes, "Aurora Vale"))
    assert (info.value.status, info.value.code) == (409, "not_configured")
    client = Client(make_app(ctx), auth.create_key(ctx.db, "test admin", "admin")[0])
    refused = client.post("/api/v1/spotify/authorize", json={})
    assert refused.status == 409 and refused.json["error"]["code"] == "not_configured"
    assert ctx.spotify.probe().startswith("not configured")
    with pytest.raises(ConfigError, match=r"spotify\.market"):
        Spotify(
            ctx.upstream, ctx.db, client_id="x", client_secret="", api_url="", accounts_url="", market="USA"
        )


def test_references_and_single_album_pages(ctx: Context, fakes: Fakes) -> None:
    velvet = artist_id(fakes, "The Velvet Hours")
    for ref in (velvet, f"spotify:artist:{velvet}", f"https://open.spotify.com/artist/{velvet}?si=x1"):
        assert parse_ref(ref, "artist") == velvet
    for bad in (f"spotify:album:{velvet}", "velvet", f"https://open.spotify.com/playlist/{velvet}"):
        with pytest.raises(Invalid, match="Spotify artist"):
            parse_ref(bad, "artist")
    first, total = ctx.spotify.artist_albums_page(velvet, ALL_GROUPS, 0)
    rest, same_total = ctx.spotify.artist_albums_page(velvet, ALL_GROUPS, len(first))
    assert len(first) == 10 and total == same_total == 10 + len(rest)
    assert [a.id for a in first + rest] == [a.id for a in ctx.spotify.artist_albums(velvet, ALL_GROUPS)]


# --- readiness ----------------------------------------------------------------------------------------


def test_the_probe_asks_the_api_and_counts_a_cooldown_as_ready(ctx: Context, fakes: Fakes) -> None:
    ctx.spotify.app_token()  # cached: the probe must not stop at it
    assert ctx.spotify.probe() == "API answering; no user connected"
    add_fault(fakes, kind="status", path="/v1/search", status=500, times=1)
    with pytest.raises(UpstreamUnavailable, match="answered 500"):
        ctx.spotify.probe()
    add_fault(fakes, kind="rate_limit", path="/v1/search", seconds=7200, times=1)
    assert "cooling down until" in ctx.spotify.probe()
    assert ctx.spotify.probe().startswith("cooling down until")  # without asking Spotify again


@pytest.fixture
def own_fakes(tmp_path: Any) -> Iterator[Fakes]:
    """Fakes of its own, for a test that moves the clock by months."""
    running = start_fakes(str(tmp_path / "own-downloads"))
    try:
        yield running
    finally:
        running.stop()


def test_the_refresh_token_expiry_is_shown_warned_and_then_asks_to_connect_again(
    tmp_path: Any, own_fakes: Fakes
) -> None:
    with opened(make_config(tmp_path / "months", own_fakes, spotify_rate="50")) as ctx:
        ctx.spotify.clock = own_fakes.clock.now  # Harmony's time is the fakes' time here
        connect_user(ctx)
        client = Client(make_app(ctx), auth.create_key(ctx.db, "test admin", "admin")[0])
        shown = client.get("/api/v1/spotify").json["authorization"]
        assert shown["refresh_expires_at"] == pytest.approx(shown["authorized_at"] + REFRESH_TOKEN_LIFETIME)

        def spotify_check() -> dict[str, Any]:
            ctx.health.probe()
            check: dict[str, Any] = client.get("/ready").json["checks"]["spotify"]
            return check

        fresh = spotify_check()
        assert fresh["ok"] is True and "expires" not in fresh["detail"]
        own_fakes.clock.advance(REFRESH_TOKEN_LIFETIME - 10 * 86400)
        warned = spotify_check()
        assert (
            warned["ok"] is True and "expires on" in warned["detail"] and "(in 10 days)" in warned["detail"]
        )
        assert ctx.spotify.me().id == USER_ID  # still refreshes meanwhile
        own_fakes.clock.advance(11 * 86400)
        with pytest.raises(UpstreamRejected, match=r"Refresh token expired.*connect again"):
            ctx.spotify.me()
        expired = spotify_check()
        assert expired["ok"] is True and "connect again" in expired["detail"]
