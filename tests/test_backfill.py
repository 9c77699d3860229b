"""Backfill against the fake Spotify: library files without Spotify ids get them, through the API
and the durable queue, with rate limits, failures and restarts in the middle of a run.

Files are tiny real audio (`fakes.audio`), tagged with `harmony.tags` and indexed with
`library.record`, as a scan would; the matches come from the fake catalogue, whose titles repeat
across artists (the trap a fielded search must not fall into).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import mutagen
import pytest
from client import Client, Response
from conftest import make_config, reset_fakes
from fakes_fixtures import control

from harmony import auth, backfill, library
from harmony.context import Context, opened
from harmony.fakes import Fakes, audio
from harmony.fakes.catalogue import Track
from harmony.fakes.spotify_wire import COVER_JPEG
from harmony.tags import Tags, audio_info, cover_art, read_tags, write_tags
from harmony.web import make_app


@pytest.fixture
def world(tmp_path: Any, fakes: Fakes) -> Iterator[tuple[Context, Fakes]]:
    cfg = make_config(tmp_path, fakes, spotify_rate="50", upstream_retries="0")
    try:
        with opened(cfg) as ctx:
            yield ctx, fakes
    finally:
        reset_fakes(fakes)


@pytest.fixture
def api(world: tuple[Context, Fakes]) -> Client:
    ctx, _ = world
    return Client(make_app(ctx), auth.create_key(ctx.db, "operator", "operator")[0])


def track(fakes: Fakes, artist: str, title: str, album: str | None = None) -> Track:
    cat = fakes.catalogue
    return next(
        t
        for t in cat.tracks.values()
        if t.name == title
        and cat.artists[t.artist_ids[0]].name == artist
        and (album is None or cat.albums[t.album_id].name == album)
    )


def add_file(
    ctx: Context,
    relpath: str,
    *,
    title: str,
    artists: tuple[str, ...],
    album: str = "",
    seconds: float = 200.0,
    isrc: str = "",
    fmt: str = "flac",
    **more: Any,
) -> int:
    """Write a tagged file into the library and index it as a scan would; returns its row id."""
    path = os.path.join(ctx.config.library_dir, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(audio.render(fmt, seconds))
    write_tags(path, Tags(title=title, artists=artists, album=album, isrc=isrc, **more))
    st = os.stat(path)
    entry = library.Entry.of(relpath, read_tags(path, cover=False), audio_info(path), st.st_size, st.st_mtime)
    with ctx.db.write() as conn:
        return library.record(conn, entry, time.time())


def add_catalogue_file(ctx: Context, fakes: Fakes, t: Track, *, with_isrc: bool = False, **more: Any) -> int:
    cat = fakes.catalogue
    artist, album = cat.artists[t.artist_ids[0]].name, cat.albums[t.album_id].name
    return add_file(
        ctx,
        f"{artist}/{album}/{t.track_number:02d} {t.name}.flac",
        title=t.name,
        artists=(artist,),
        album=album,
        seconds=t.duration_ms / 1000,
        isrc=t.isrc if with_isrc else "",
        track_number=t.track_number,
        **more,
    )


def row(ctx: Context, track_id: int) -> dict[str, Any]:
    found = ctx.db.query_one("SELECT * FROM library_tracks WHERE id = ?", (track_id,))
    assert found is not None
    return found


def run_jobs(ctx: Context, ahead: float = 10**7) -> int:
    """Run every job due within `ahead` seconds (retry backoffs included) until none is left."""
    ran = 0
    while ctx.workers.run_one(now=ctx.queue.clock() + ahead) is not None:
        ran += 1
    return ran


def outcomes(ctx: Context) -> dict[str, float]:
    registry = ctx.metrics.registry
    return {
        outcome: registry.get_sample_value("harmony_backfill_tracks_total", {"outcome": outcome}) or 0.0
        for outcome in backfill.OUTCOMES
    }


def start(api: Client, body: Any = None) -> Response:
    response = api.post("/api/v1/backfill", body)
    assert response.status == 202, response.text
    return response


# --- matching ------------------------------------------------------------------------------------


def test_a_file_with_an_isrc_is_matched_by_it(world: tuple[Context, Fakes], api: Client) -> None:
    ctx, fakes = world
    wanted = track(fakes, "Ночной Город", "Heart of Seasons")
    track_id = add_catalogue_file(ctx, fakes, wanted, with_isrc=True)
    run = start(api).json
    assert run["state"] == "running" and run["total"] == 1 and run["write_tags"] is False
    run_jobs(ctx)
    found = row(ctx, track_id)
    assert found["spotify_id"] == wanted.id and found["spotify_album_id"] == wanted.album_id
    assert found["spotify_artist_ids"] == f'["{wanted.artist_ids[0]}"]'
    assert (found["match_method"], found["match_confidence"]) == ("isrc", 1.0) and found["matched_at"]
    done = api.get(f"/api/v1/backfill/jobs/{run['id']}").json
    assert (done["state"], done["done"], done["matched"], done["total"]) == ("done", 1, 1, 1)
    assert done["finished_at"] and done["error"] is None
    assert outcomes(ctx)["matched_isrc"] == 1


def test_a_fielded_search_matches_a_file_without_an_isrc(world: tuple[Context, Fakes], api: Client) -> None:
    ctx, fakes = world
    # The title is on Aurora Vale's album and, with the same ISRC, on her Greatest Hits: the album
    # in the query picks the album's own release.
    wanted = track(fakes, "Aurora Vale", "Gentle Garden", "Lonely Echo")
    track_id = add_catalogue_file(ctx, fakes, wanted)
    start(api)
    run_jobs(ctx)
    found = row(ctx, track_id)
    assert found["spotify_id"] == wanted.id and found["match_method"] == "search"
    assert found["match_confidence"] >= 0.9
    assert outcomes(ctx)["matched_search"] == 1


def test_a_different_album_name_still_matches_without_the_album(
    world: tuple[Context, Fakes], api: Client
) -> None:
    ctx, fakes = world
    wanted = track(fakes, "Éléonore Vasquez", "Summer of Gardens")
    track_id = add_file(
        ctx,
        "EV/Lights/01.flac",
        title=wanted.name,
        artists=("Éléonore Vasquez",),
        album="Best of the Nineties",  # a compilation Spotify does not have
        seconds=wanted.duration_ms / 1000,
    )
    start(api)
    run_jobs(ctx)
    found = row(ctx, track_id)
    assert found["spotify_id"] == wanted.id and 0.9 <= found["match_confidence"] < 1


def test_another_artists_song_of_the_same_name_stays_unmatched_with_its_confidence(
    world: tuple[Context, Fakes], api: Client
) -> None:
    ctx, fakes = world
    theirs = track(fakes, "Aurora Vale", "Gentle Garden", "Lonely Echo")
    # "Aurora" is another act: Spotify's search finds Aurora Vale's song, the score must not.
    seconds = theirs.duration_ms / 1000
    other = add_file(
        ctx, "Aurora/Gentle Garden.flac", title="Gentle Garden", artists=("Aurora",), seconds=seconds
    )
    # The right artist and title, but an edit half a minute longer: another recording.
    edit = add_file(
        ctx,
        "AV/Gentle Garden (x).flac",
        title="Gentle Garden",
        artists=("Aurora Vale",),
        seconds=seconds + 30,
    )
    run = start(api).json
    run_jobs(ctx)
    for track_id in (other, edit):
        found = row(ctx, track_id)
        assert found["spotify_id"] is None and found["spotify_album_id"] is None
        assert found["match_method"] is None and found["matched_at"] is not None
        assert 0 < found["match_confidence"] <= backfill.RULED_OUT
    done = api.get(f"/api/v1/backfill/jobs/{run['id']}").json
    assert (done["state"], done["unmatched"], done["matched"], done["errors"]) == ("done", 2, 0, 0)
    assert outcomes(ctx)["unmatched"] == 2


def test_an_unmatched_track_is_retried_only_when_asked(world: tuple[Context, Fakes], api: Client) -> None:
    ctx, _ = world
    add_file(ctx, "x/Nothing.flac", title="A Song Nobody Recorded", artists=("Nobody At All",))
    start(api)
    run_jobs(ctx)
    assert api.post("/api/v1/backfill").json["total"] == 0
    run_jobs(ctx)
    again = start(api, {"retry_unmatched": True}).json
    assert again["total"] == 1 and again["retry_unmatched"] is True
    run_jobs(ctx)
    assert api.get(f"/api/v1/backfill/jobs/{again['id']}").json["unmatched"] == 1


def test_the_live_threshold_decides_and_a_retry_applies_it(world: tuple[Context, Fakes], api: Client) -> None:
    ctx, fakes = world
    wanted = track(fakes, "Éléonore Vasquez", "Summer of Gardens")
    # No album and four seconds longer: the identity score is 0.88, under the default 0.9.
    track_id = add_file(
        ctx,
        "EV/x.flac",
        title=wanted.name,
        artists=("Éléonore Vasquez",),
        seconds=wanted.duration_ms / 1000 + 4,
    )
    admin = Client(api.app, auth.create_key(ctx.db, "admin", "admin")[0])
    start(api)
    run_jobs(ctx)
    tried = row(ctx, track_id)
    assert tried["spotify_id"] is None and 0.85 < tried["match_confidence"] < 0.9
    assert (
        admin.request("PATCH", "/api/v1/settings", json_body={"backfill.min_confidence": 0.85}).status == 200
    )
    start(api, {"retry_unmatched": True})
    run_jobs(ctx)
    matched = row(ctx, track_id)
    assert matched["spotify_id"] == wanted.id and matched["match_confidence"] == tried["match_confidence"]


# --- tag write-back --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_write_back_puts_the_ids_in_the_tags_and_keeps_the_rest(
    world: tuple[Context, Fakes], api: Client, fmt: str
) -> None:
    ctx, fakes = world
    wanted = track(fakes, "Éléonore Vasquez", "Forest of Mirrors")
    cat = fakes.catalogue
    relpath = f"Éléonore Vasquez/Neon River/Forest of Mirrors.{fmt}"
    cover = cover_art(COVER_JPEG)
    track_id = add_file(
        ctx,
        relpath,
        title=wanted.name,
        artists=("Éléonore Vasquez",),
        album=cat.albums[wanted.album_id].name,
        album_artist="Éléonore Vasquez",
        seconds=wanted.duration_ms / 1000,
        track_number=wanted.track_number,
        track_total=12,
        date="2011-04-02",
        cover=cover,
        fmt=fmt,
    )
    path = os.path.join(ctx.config.library_dir, relpath)
    theirs = mutagen.File(path, easy=True)  # a field Harmony does not model, as the user's tagger wrote it
    theirs["genre"] = ["Chamber Jazz"]
    theirs.save()
    before = read_tags(path)
    start(api, {"write_tags": True})
    run_jobs(ctx)
    after = read_tags(path)
    assert mutagen.File(path, easy=True)["genre"] == ["Chamber Jazz"], "the user's other tags stay"
    assert after.spotify_track_id == wanted.id and after.spotify_album_id == wanted.album_id
    assert after.spotify_artist_ids == (wanted.artist_ids[0],)
    unchanged = {"spotify_track_id": "", "spotify_album_id": "", "spotify_artist_ids": ()}
    assert Tags(**{**after.__dict__, **unchanged}) == before and after.cover == cover
    st = os.stat(path)
    found = row(ctx, track_id)
    assert (found["size"], found["mtime"]) == (st.st_size, st.st_mtime)
    assert audio_info(path).format == fmt
    assert not [name for name in os.listdir(os.path.dirname(path)) if name.startswith(".harmony")]


def test_write_back_follows_the_option_and_an_unwritable_file_is_an_error(
    world: tuple[Context, Fakes], api: Client
) -> None:
    ctx, fakes = world
    admin = Client(api.app, auth.create_key(ctx.db, "admin", "admin")[0])
    assert admin.request("PATCH", "/api/v1/settings", json_body={"backfill.write_tags": True}).status == 200
    good = add_catalogue_file(ctx, fakes, track(fakes, "Éléonore Vasquez", "Forest of Mirrors"))
    gone = add_catalogue_file(ctx, fakes, track(fakes, "Ночной Город", "Heart of Seasons"))
    os.unlink(os.path.join(ctx.config.library_dir, row(ctx, gone)["path"]))
    run = start(api).json
    assert run["write_tags"] is True
    run_jobs(ctx)
    done = api.get(f"/api/v1/backfill/jobs/{run['id']}").json
    assert (done["state"], done["matched"], done["errors"], done["done"]) == ("done", 1, 1, 2)
    assert "Heart of Seasons" in done["error"]
    assert row(ctx, good)["spotify_id"] and row(ctx, gone)["spotify_id"] is None
    # An error is not a verdict: the next run tries the file again.
    assert row(ctx, gone)["matched_at"] is None
    assert outcomes(ctx)["error"] == 1


def test_a_path_or_link_leading_outside_the_library_is_refused(
    world: tuple[Context, Fakes], api: Client, tmp_path: Any
) -> None:
    ctx, fakes = world
    wanted = track(fakes, "Éléonore Vasquez", "Forest of Mirrors")
    escaping = add_catalogue_file(ctx, fakes, wanted)
    linked = add_catalogue_file(ctx, fakes, track(fakes, "Ночной Город", "Heart of Seasons"))
    outside = tmp_path / "outside.flac"
    with open(os.path.join(ctx.config.library_dir, row(ctx, escaping)["path"]), "rb") as handle:
        outside.write_bytes(handle.read())
    link = os.path.join(ctx.config.library_dir, row(ctx, linked)["path"])
    os.unlink(link)
    os.symlink(outside, link)
    with ctx.db.write() as conn:
        conn.execute("UPDATE library_tracks SET path = ? WHERE id = ?", ("../outside.flac", escaping))
    before = outside.read_bytes()
    run = start(api, {"write_tags": True}).json
    run_jobs(ctx)
    assert outside.read_bytes() == before and os.path.islink(link)
    assert row(ctx, escaping)["spotify_id"] is None and row(ctx, linked)["spotify_id"] is None
    done = api.get(f"/api/v1/backfill/jobs/{run['id']}").json
    assert (done["errors"], done["matched"]) == (2, 0) and "outside the library root" in done["error"]


# --- the run: rate limits, failures, restarts ----------------------------------------------------


def catalogue_files(ctx: Context, fakes: Fakes, count: int) -> list[tuple[int, Track]]:
    cat = fakes.catalogue
    main = set(cat.main_artist_ids)
    names: dict[str, int] = {}
    for t in cat.tracks.values():
        names[t.name] = names.get(t.name, 0) + 1
    picks = [
        t
        for t in cat.tracks.values()
        if t.artist_ids == (t.artist_ids[0],)
        and t.artist_ids[0] in main
        and cat.albums[t.album_id].album_type == "album"
        and not cat.albums[t.album_id].future
        and names[t.name] == 1
        and " - " not in t.name
    ][:count]
    assert len(picks) == count
    return [(add_catalogue_file(ctx, fakes, t), t) for t in picks]


def test_a_rate_limit_mid_run_pauses_it_and_it_completes_after(
    world: tuple[Context, Fakes], api: Client
) -> None:
    ctx, fakes = world
    files = catalogue_files(ctx, fakes, 4)
    ctx.spotify.app_token()  # the token is cached, so the 429 hits a search
    control(
        fakes.spotify.url,
        "/_fake/faults",
        {"kind": "rate_limit", "path": "/v1/search", "seconds": 7200, "times": 1, "after": 2},
    )
    run = start(api).json
    run_jobs(ctx, ahead=60)  # the handed-back job is due only when the cooldown ends
    waiting = api.get(f"/api/v1/backfill/jobs/{run['id']}").json
    assert waiting["state"] == "running" and waiting["waiting_until"] and waiting["errors"] == 0
    assert 0 < waiting["done"] < 4
    jobs = ctx.queue.list_jobs(type=backfill.JOB, state="ready")
    assert len(jobs) == 1 and jobs[0].attempts == 0  # handed back, not failed
    until = waiting["waiting_until"]
    ctx.upstream.clock = lambda: until + 1  # the cooldown is over
    run_jobs(ctx)
    done = api.get(f"/api/v1/backfill/jobs/{run['id']}").json
    assert (done["state"], done["matched"], done["errors"], done["waiting_until"]) == ("done", 4, 0, None)
    assert all(row(ctx, track_id)["spotify_id"] == t.id for track_id, t in files)
    assert sum(outcomes(ctx).values()) == 4  # no track looked at twice


def test_spotify_failing_mid_run_retries_the_job_and_resumes_from_the_checkpoint(
    world: tuple[Context, Fakes], api: Client
) -> None:
    ctx, fakes = world
    files = catalogue_files(ctx, fakes, 4)
    ctx.spotify.app_token()
    control(
        fakes.spotify.url,
        "/_fake/faults",
        {"kind": "status", "status": 503, "path": "/v1/search", "times": 1, "after": 2},
    )
    run = start(api).json
    assert ctx.workers.run_one(now=ctx.queue.clock() + 1) is not None
    failed = api.get(f"/api/v1/backfill/jobs/{run['id']}").json
    assert failed["state"] == "running" and "Spotify" in failed["error"] and 0 < failed["done"] < 4
    checkpoint = failed["checkpoint"]
    assert checkpoint == files[failed["done"] - 1][0]
    job = ctx.queue.list_jobs(type=backfill.JOB)[0]
    assert job.state == "ready" and job.attempts == 1 and job.last_error
    run_jobs(ctx)
    done = api.get(f"/api/v1/backfill/jobs/{run['id']}").json
    assert (done["state"], done["done"], done["matched"]) == ("done", 4, 4)
    assert sum(outcomes(ctx).values()) == 4


def test_spotify_refusing_the_app_fails_the_run_after_the_jobs_attempts(
    world: tuple[Context, Fakes], api: Client
) -> None:
    ctx, fakes = world
    catalogue_files(ctx, fakes, 2)
    ctx.spotify.app_token()
    control(
        fakes.spotify.url,
        "/_fake/faults",
        {
            "kind": "status",
            "status": 403,
            "path": "/v1/search",
            "message": "Active premium subscription required",
        },
    )
    run = start(api).json
    assert run_jobs(ctx) == ctx.config["jobs.max_attempts"]
    failed = api.get(f"/api/v1/backfill/jobs/{run['id']}").json
    assert (failed["state"], failed["done"], failed["errors"]) == ("failed", 0, 0)
    assert "premium" in failed["error"].lower() and failed["finished_at"]
    assert ctx.queue.list_jobs(type=backfill.JOB, state="dead") == []  # the run failed, not its job
    fakes.spotify_state.faults.clear()
    assert start(api).json["total"] == 2  # nothing was recorded: the next run starts afresh


def test_a_restart_mid_run_resumes_without_redoing_matched_tracks(tmp_path: Any, fakes: Fakes) -> None:
    cfg = make_config(tmp_path, fakes, spotify_rate="50")
    try:
        with opened(cfg) as ctx:
            files = catalogue_files(ctx, fakes, 5)
            ctx.backfill.chunk = 2
            run = ctx.backfill.start()
            assert ctx.workers.run_one(now=ctx.queue.clock() + 1) is not None
            first = {track_id: row(ctx, track_id)["matched_at"] for track_id, _ in files[:2]}
            assert all(first.values())
            # The next chunk is leased when the process dies: its lease runs out, nothing finished it.
            assert ctx.queue.lease() is not None
        with opened(cfg) as ctx:
            ctx.queue.recover(now=ctx.queue.clock() + ctx.queue.lease_s + 1)
            run_jobs(ctx)
            done = backfill.get_run(ctx.db, run.id)
            assert (done.state, done.done, done.matched, done.total) == ("done", 5, 5, 5)
            assert done.checkpoint == files[-1][0]
            assert outcomes(ctx)["matched_search"] == 3  # only the three not looked at before
            assert {track_id: row(ctx, track_id)["matched_at"] for track_id, _ in files[:2]} == first
            assert all(row(ctx, track_id)["spotify_id"] == t.id for track_id, t in files)
    finally:
        reset_fakes(fakes)


def test_runs_are_listed_newest_first_and_page(world: tuple[Context, Fakes], api: Client) -> None:
    ctx, _ = world
    ids = []
    for _ in range(3):
        ids.append(start(api).json["id"])
        run_jobs(ctx)
    first = api.get("/api/v1/backfill/jobs?limit=2").json
    assert [r["id"] for r in first["items"]] == ids[::-1][:2] and first["next_cursor"]
    rest = api.get(f"/api/v1/backfill/jobs?limit=2&cursor={first['next_cursor']}").json
    assert [r["id"] for r in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert api.get("/api/v1/backfill/jobs?state=running").json["items"] == []
    assert len(api.get("/api/v1/backfill/jobs?state=done").json["items"]) == 3


# --- the API's refusals ------------------------------------------------------------------------------


def test_a_second_run_while_one_runs_is_409(world: tuple[Context, Fakes], api: Client) -> None:
    ctx, fakes = world
    catalogue_files(ctx, fakes, 1)
    run = start(api).json
    second = api.post("/api/v1/backfill", {"write_tags": True})
    assert second.status == 409 and second.json["error"]["code"] == "conflict"
    assert second.json["error"]["details"]["run_id"] == run["id"]
    run_jobs(ctx)
    assert start(api).json["id"] > run["id"]


def test_a_run_whose_job_is_dead_says_so_and_one_whose_job_is_gone_resumes(
    world: tuple[Context, Fakes], api: Client
) -> None:
    ctx, fakes = world
    catalogue_files(ctx, fakes, 1)
    run = start(api).json
    job = ctx.queue.lease()
    assert job is not None
    ctx.queue.fail(job, "killed", give_up=True)
    dead = api.post("/api/v1/backfill")
    assert dead.status == 409 and "dead-lettered" in dead.json["error"]["message"]
    ctx.queue.purge([job.id])
    assert api.post("/api/v1/backfill").status == 409  # the run got a new job
    run_jobs(ctx)
    assert api.get(f"/api/v1/backfill/jobs/{run['id']}").json["state"] == "done"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"write_tags": true, "force": true}', 422),  # a JSON object with a wrong field
        (b'{"write_tags": "yes"}', 422),
        (b'{"retry_unmatched": 1}', 422),
        (b'{"write_tags": null}', 422),
        (b"[true]", 400),  # not a JSON object
        (b"write_tags=true", 400),
        (b'{"write_tags": true', 400),
    ],
)
def test_bad_bodies_are_refused_and_start_nothing(
    world: tuple[Context, Fakes], api: Client, body: bytes, status: int
) -> None:
    ctx, _ = world
    response = api.request(
        "POST", "/api/v1/backfill", body=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == status
    assert response.json["error"]["code"] == {400: "bad_input", 422: "invalid"}[status]
    assert backfill.list_runs(ctx.db) == [] and ctx.queue.list_jobs(type=backfill.JOB) == []


def test_roles_ids_and_missing_runs(world: tuple[Context, Fakes], api: Client) -> None:
    ctx, _ = world
    reader = auth.create_key(ctx.db, "reader", "read")[0]
    assert api.post("/api/v1/backfill", key=reader).status == 403
    assert api.get("/api/v1/backfill/jobs", key=reader).status == 200
    assert api.get("/api/v1/backfill/jobs/0").status == 400
    assert api.get("/api/v1/backfill/jobs/abc").status == 400
    missing = api.get("/api/v1/backfill/jobs/99")
    assert missing.status == 404 and missing.json["error"]["code"] == "not_found"
    assert api.get("/api/v1/backfill/jobs?state=paused").status == 400


def test_without_spotify_a_start_says_it_is_not_configured(tmp_path: Any) -> None:
    with opened(make_config(tmp_path)) as ctx:
        api = Client(make_app(ctx), auth.create_key(ctx.db, "operator", "operator")[0])
        response = api.post("/api/v1/backfill")
        assert response.status == 409 and response.json["error"]["code"] == "not_configured"
        assert "spotify.client_id" in response.json["error"]["message"]
        assert backfill.list_runs(ctx.db) == []
