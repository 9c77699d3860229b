"""Watched artists and followed playlists against the fake Spotify, its clock moved instead of sleeping.

Each test runs its own fakes, so moving their clock (a release appearing, a playlist going
stale) never leaks into another test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import urllib3
from client import Client
from conftest import make_config
from fakes_fixtures import control

from harmony import wanted
from harmony.context import Context, opened
from harmony.fakes import Fakes, start_fakes
from harmony.fakes.catalogue import BIG_PLAYLIST_SIZE
from harmony.web import make_app

HTTP = urllib3.PoolManager(retries=False)


@pytest.fixture
def world(tmp_path: Any) -> Iterator[tuple[Context, Fakes]]:
    fakes = start_fakes(str(tmp_path / "slskd"))
    try:
        cfg = make_config(tmp_path, fakes, spotify_rate="50")
        with opened(cfg) as ctx:
            yield ctx, fakes
    finally:
        fakes.stop()


def connect(ctx: Context) -> None:
    """The PKCE flow as a browser runs it against the fake (which approves at once)."""
    location = HTTP.request("GET", ctx.spotify.authorize_url(), redirect=False).headers["Location"]
    query = parse_qs(urlsplit(location).query)
    ctx.spotify.complete_authorization(query["state"][0], query["code"][0])


def spotify_requests(ctx: Context) -> float:
    value = ctx.metrics.registry.get_sample_value(
        "harmony_upstream_requests_total", {"service": "spotify", "outcome": "ok"}
    )
    return value or 0.0


def run_jobs(ctx: Context) -> int:
    ran = 0
    while ctx.workers.run_one(now=ctx.queue.clock() + 10**7) is not None:
        ran += 1
    return ran


def artist_id(fakes: Fakes, name: str) -> str:
    return fakes.catalogue.artist_by_name(name).id


def items(ctx: Context, **filters: Any) -> list[wanted.Item]:
    return wanted.list_items(ctx.db, limit=500, sort="age", **filters)


def test_a_new_release_becomes_wanted_within_one_scan(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    spotify = f"https://open.spotify.com/artist/{artist_id(fakes, 'Sigrún Hólm')}?si=abc"
    artist = ctx.watcher.add(spotify)
    run_jobs(ctx)  # the first scan learns the back catalogue; nothing before `since` is wanted
    assert items(ctx) == [] and ctx.watcher.get(artist.id).last_result_code == "new_releases"
    fakes.clock.advance(86400 + 60)  # tomorrow: the single "Velvet Morning" comes out
    ctx.watcher.request_scan(artist.id)
    run_jobs(ctx)
    found = items(ctx, artist_id=artist.id)
    assert [(i.title != "", i.album, i.state) for i in found] == [(True, "Velvet Morning", "wanted")]
    assert found[0].isrc and found[0].spotify_album_id and found[0].duration_ms > 0
    release = ctx.watcher.releases(artist_id=artist.id, limit=1)[0]
    assert release.name == "Velvet Morning" and release.wanted and release.expanded_at is not None


def test_an_unchanged_artist_costs_one_request(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    artist = ctx.watcher.add(artist_id(fakes, "Mørkeskog"), since="1990-01-01")
    run_jobs(ctx)
    wanted_before = len(items(ctx))
    assert wanted_before > 10  # every album and single since 1990
    before = spotify_requests(ctx)
    ctx.watcher.request_scan(artist.id)
    run_jobs(ctx)
    assert spotify_requests(ctx) - before == 1
    assert ctx.watcher.get(artist.id).last_result_code == "unchanged" and len(items(ctx)) == wanted_before


def test_a_paused_artist_is_not_scanned(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    artist = ctx.watcher.add(artist_id(fakes, "Mørkeskog"))
    ctx.watcher.update(artist.id, {"paused": True})
    assert ctx.watcher.dispatch(now=ctx.watcher.clock() + 10 * 86400) == 0
    before = spotify_requests(ctx)
    run_jobs(ctx)  # the scan queued when it was added finds it paused and does nothing
    assert spotify_requests(ctx) == before
    assert ctx.watcher.get(artist.id).last_scan_at is None
    ctx.watcher.update(artist.id, {"paused": False})
    assert ctx.watcher.dispatch(now=ctx.watcher.clock() + 1) == 1


def test_a_scan_failing_halfway_loses_no_release(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    spotify_id = artist_id(fakes, "Aurora Vale")
    artist = ctx.watcher.add(spotify_id, release_groups=["album", "single"], since="1990-01-01")
    # The first page answers, then the walk breaks off.
    control(
        fakes.spotify.url,
        "/_fake/faults",
        {"kind": "status", "status": 500, "path": f"/v1/artists/{spotify_id}/albums", "after": 1, "times": 5},
    )
    run_jobs(ctx)
    failed = ctx.watcher.get(artist.id)
    assert failed.last_result_code == "failed" and failed.failures == 1 and failed.cooldown_until
    assert ctx.watcher.releases(artist_id=artist.id) == [] and items(ctx) == []
    fakes.spotify_state.faults.clear()
    ctx.watcher.request_scan(artist.id)
    run_jobs(ctx)
    names = {r.name for r in ctx.watcher.releases(artist_id=artist.id, limit=100)}
    assert {"Quiet Station", "Neon Comet", "Quiet Tide", "Paper Comet EP"} <= names
    assert ctx.watcher.get(artist.id).failures == 0 and len(items(ctx)) > 20


def test_a_long_retry_after_pauses_scanning_and_it_resumes(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    artist = ctx.watcher.add(artist_id(fakes, "Mørkeskog"))
    ctx.spotify.app_token()  # the token is cached, so the 429 hits the catalogue call
    control(
        fakes.spotify.url,
        "/_fake/faults",
        {"kind": "rate_limit", "path": "/v1/artists", "seconds": 7200, "times": 1},
    )
    run_jobs(ctx)
    cooling = ctx.watcher.get(artist.id)
    assert cooling.last_result_code == "rate_limited" and cooling.state == "cooling_down"
    assert cooling.failures == 0  # a rate limit is not the artist's failure
    ctx.health.probe()
    _, checks = ctx.health.report()
    assert "cooling down" in checks["spotify"]["detail"]
    assert ctx.watcher.dispatch(now=ctx.watcher.clock() + 60) == 0  # Spotify is cooling down
    until = cooling.cooldown_until
    assert until is not None
    ctx.upstream.clock = lambda: until + 1  # the cooldown is over
    assert ctx.watcher.dispatch(now=until + 1) == 1
    ctx.watcher.clock = lambda: until + 1
    run_jobs(ctx)
    assert ctx.watcher.get(artist.id).last_result_code == "new_releases"


def test_deleting_an_artist_withdraws_only_what_it_alone_wanted(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    artist = ctx.watcher.add(artist_id(fakes, "Mørkeskog"), since="2014-01-01")
    run_jobs(ctx)
    own = items(ctx, artist_id=artist.id)
    assert len(own) >= 2
    with ctx.db.write() as conn:
        wanted.want(conn, own[0].track, wanted.Source("manual"))
        for state in ("searching", "found", "queued"):
            wanted.transition(conn, own[1].id, state, "test", "on its way")
    outcomes = ctx.watcher.delete(artist.id)
    assert outcomes["kept"] == 1 and outcomes["in_flight"] == 1
    states = {i.id: (i.state, i.reason_code) for i in items(ctx)}
    assert states[own[0].id][0] == "wanted" and states[own[1].id][0] == "queued"
    assert all(states[i.id] == ("skipped", "withdrawn") for i in own[2:])


def test_import_followed_watches_the_users_artists(world: tuple[Context, Fakes]) -> None:
    ctx, _ = world
    connect(ctx)
    result = ctx.watcher.import_followed()
    assert len(result["added"]) == 14 and result["already_watched"] == 0
    assert ctx.watcher.import_followed() == {"added": [], "already_watched": 14}


# --- playlists ----------------------------------------------------------------------------------


def listed_tracks(ctx: Context, playlist: int) -> int:
    return int(ctx.db.scalar("SELECT count(*) FROM playlist_tracks WHERE playlist_id = ?", (playlist,)))


def playlist_id(fakes: Fakes, name: str) -> str:
    return next(p.id for p in fakes.catalogue.playlists.values() if p.name == name)


def test_an_unchanged_playlist_costs_one_request(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    connect(ctx)
    playlist = ctx.playlists.follow(f"spotify:playlist:{playlist_id(fakes, 'Morning Rotation')}")
    run_jobs(ctx)
    synced = ctx.playlists.get(playlist.id)
    assert synced.last_result_code == "synced" and synced.skipped["local"] == 1
    assert listed_tracks(ctx, playlist.id) == 34
    # Two entries can be one recording (an album track and its compilation copy share an ISRC).
    assert 30 <= len(items(ctx, playlist_id=playlist.id)) <= 34
    before = spotify_requests(ctx)
    ctx.playlists.request_sync(playlist.id)
    run_jobs(ctx)
    assert spotify_requests(ctx) - before == 1
    assert ctx.playlists.get(playlist.id).last_result_code == "unchanged"


def test_a_track_removed_from_a_playlist_is_withdrawn_unless_downloading(
    world: tuple[Context, Fakes],
) -> None:
    ctx, fakes = world
    connect(ctx)
    spotify_id = playlist_id(fakes, "Morning Rotation")
    playlist = ctx.playlists.follow(spotify_id)
    run_jobs(ctx)
    listed = items(ctx, playlist_id=playlist.id)
    gone, busy = listed[0], listed[1]
    with ctx.db.write() as conn:
        for state in ("searching", "found", "queued", "downloading"):
            wanted.transition(conn, busy.id, state, "test", "on its way")
    control(
        fakes.spotify.url,
        f"/_fake/spotify/playlists/{spotify_id}",
        {"remove": [gone.spotify_id, busy.spotify_id]},
    )
    ctx.playlists.request_sync(playlist.id)
    run_jobs(ctx)
    assert (
        wanted.get(ctx.db, gone.id).state == "skipped"
        and wanted.get(ctx.db, gone.id).reason_code == "withdrawn"
    )
    assert wanted.get(ctx.db, busy.id).state == "downloading"
    assert listed_tracks(ctx, playlist.id) == 32
    # Put back, it is wanted again.
    control(fakes.spotify.url, f"/_fake/spotify/playlists/{spotify_id}", {"add": [gone.spotify_id]})
    ctx.playlists.request_sync(playlist.id)
    run_jobs(ctx)
    assert wanted.get(ctx.db, gone.id).state == "wanted"


def test_a_stale_playlist_is_marked_and_unmarked(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    connect(ctx)
    playlist = ctx.playlists.follow(playlist_id(fakes, "Morning Rotation"))
    run_jobs(ctx)
    assert not ctx.playlists.get(playlist.id).stale
    three_days = ctx.playlists.clock() + 3 * 86400
    ctx.playlists.clock = lambda: three_days
    control(fakes.spotify.url, "/_fake/faults", {"kind": "status", "status": 503, "path": "/v1/playlists"})
    ctx.playlists.request_sync(playlist.id)
    run_jobs(ctx)
    stale = ctx.playlists.get(playlist.id)
    assert stale.stale and stale.last_result_code == "failed" and "503" in (stale.last_result or "")
    assert ctx.playlists.stale_count() == 1
    fakes.spotify_state.faults.clear()
    ctx.playlists.request_sync(playlist.id)
    run_jobs(ctx)
    assert not ctx.playlists.get(playlist.id).stale and ctx.playlists.stale_count() == 0


def test_playlists_a_dev_mode_app_cannot_read_are_refused_up_front(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    connect(ctx)
    client = Client(make_app(ctx), _admin(ctx))
    for name, reason in (("Editorial Picks", "spotify_owned"), ("Everything Ever", None)):
        resp = client.post("/api/v1/playlists", {"spotify": playlist_id(fakes, name)})
        if reason is None:
            assert resp.status == 201
            continue
        assert resp.status == 422 and resp.json["error"]["details"]["reason"] == reason
        assert "copy its tracks into a playlist of your own" in resp.json["error"]["message"].lower()
    assert ctx.db.scalar("SELECT count(*) FROM playlists") == 1


def test_a_5200_track_playlist_syncs_completely(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    connect(ctx)
    playlist = ctx.playlists.follow(playlist_id(fakes, "Everything Ever"))
    run_jobs(ctx)
    synced = ctx.playlists.get(playlist.id)
    assert synced.last_result_code == "synced", synced.last_result
    assert listed_tracks(ctx, playlist.id) == BIG_PLAYLIST_SIZE
    unwanted = ctx.db.scalar("SELECT count(*) FROM playlist_tracks WHERE item_id IS NULL")
    assert unwanted == 0 and wanted.count_items(ctx.db, playlist_id=playlist.id) > BIG_PLAYLIST_SIZE - 10


def _admin(ctx: Context) -> str:
    from harmony import auth

    return auth.create_key(ctx.db, "admin", "admin")[0]


def test_since_defaults_to_the_day_the_artist_was_added(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    artist = ctx.watcher.add(artist_id(fakes, "Mørkeskog"), now=0.0)
    assert artist.since == dt.date(1970, 1, 1).isoformat()


def test_the_same_song_from_two_releases_and_a_playlist_is_one_item(world: tuple[Context, Fakes]) -> None:
    ctx, fakes = world
    connect(ctx)
    cat = fakes.catalogue
    aurora = cat.artist_by_name("Aurora Vale")
    hits = next(a for a in cat.albums.values() if a.name == "Greatest Hits" and a.artist_ids == (aurora.id,))
    copy = cat.tracks[hits.track_ids[0]]  # on the compilation, the same ISRC under a new id
    original = next(t for t in cat.tracks.values() if t.isrc == copy.isrc and t.album_id != hits.id)
    spotify_id = playlist_id(fakes, "Nothing Yet")
    control(fakes.spotify.url, f"/_fake/spotify/playlists/{spotify_id}", {"add": [original.id]})
    ctx.watcher.add(aurora.id, release_groups=["album", "compilation"], since="1990-01-01")
    playlist = ctx.playlists.follow(spotify_id)
    run_jobs(ctx)
    found = [i for i in items(ctx) if i.isrc == copy.isrc]
    assert len(found) == 1
    kinds = sorted((s["kind"], s["release_id"] is not None) for s in found[0].sources)
    assert kinds == [("playlist", False), ("release", True), ("release", True)]
    assert {s["playlist_id"] for s in found[0].sources} >= {playlist.id}


def test_an_expansion_waits_out_a_spotify_outage_and_loses_no_track(tmp_path: Any) -> None:
    """Spotify answering 5xx for longer than a job's attempts last: the release's expansion waits
    and runs once Spotify is back, instead of dying with the release's tracks never wanted."""
    fakes = start_fakes(str(tmp_path / "slskd"))
    try:
        cfg = make_config(tmp_path, fakes, spotify_rate="50", upstream_retries="0", jobs_max_attempts="2")
        with opened(cfg) as ctx:
            waits_out_an_outage(ctx, fakes)
    finally:
        fakes.stop()


def waits_out_an_outage(ctx: Context, fakes: Fakes) -> None:
    artist = ctx.watcher.add(artist_id(fakes, "Aurora Vale"), since="1990-01-01")
    control(fakes.spotify.url, "/_fake/faults", {"kind": "status", "status": 503, "path": "/v1/albums"})
    for _ in range(40):  # the scan, then each expansion tried again and again: past max_attempts
        ctx.workers.run_one(now=ctx.queue.clock() + 10**7)
    assert items(ctx) == [] and not ctx.queue.list_jobs(state="dead")
    assert ctx.queue.list_jobs(type="release.expand")  # waiting, not dead
    fakes.spotify_state.faults.clear()
    run_jobs(ctx)
    assert len(items(ctx)) > 20 and not ctx.queue.list_jobs(state="dead")
    assert all(r.expanded_at for r in ctx.watcher.releases(artist_id=artist.id, limit=100) if r.wanted)
