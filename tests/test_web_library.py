"""The library API: artists, albums and tracks paged and searched, scans started and watched, and
the orphan report, which lists and never deletes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from client import Client
from conftest import make_config

from harmony import auth, library
from harmony.context import Context, opened
from harmony.fakes.audio import render
from harmony.tags import AudioInfo, Tags
from harmony.web import make_app

ARTISTS = ("Aurora Vale", "Björk", "Kite Theory")
ALBUMS = ("First Light", "Second Wind")
TITLES = ("Glass Harbour", "Wires", "Cold Open", "Dust", "Élan")


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    config = make_config(
        tmp_path, library_dir=str(tmp_path / "library"), slskd_downloads_dir=str(tmp_path / "downloads")
    )
    with opened(config) as context:
        yield context


@pytest.fixture
def keys(ctx: Context) -> dict[str, str]:
    return {role: auth.create_key(ctx.db, f"test {role}", role)[0] for role in auth.ROLES}


@pytest.fixture
def client(ctx: Context, keys: dict[str, str]) -> Client:
    return Client(make_app(ctx), keys["admin"])


def seed(ctx: Context) -> list[str]:
    """30 tracks: three album artists with two albums of five tracks; returns their paths."""
    info = AudioInfo("flac", "flac", 200.0, 900, 44100, 2, 16)
    paths = []
    with ctx.db.write() as conn:
        for artist in ARTISTS:
            for album in ALBUMS:
                for n, title in enumerate(TITLES, 1):
                    path = f"{artist}/{album}/{n:02d} {title}.flac"
                    tags = Tags(
                        title=title, artists=(artist,), album=album, album_artist=artist, track_number=n
                    )
                    library.record(conn, library.Entry.of(path, tags, info, 1000 + n, 1.0), time.time())
                    paths.append(path)
    return sorted(paths)


def every_page(client: Client, url: str, key: Any = lambda item: item["path"]) -> list[Any]:
    """Follow `next_cursor` to the end; returns each item's key in order."""
    out, cursor = [], None
    for _ in range(100):
        sep = "&" if "?" in url else "?"
        page = client.get(url + (f"{sep}cursor={cursor}" if cursor else "")).json
        out += [key(item) for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


def test_tracks_page_through_the_whole_index_in_path_order(ctx: Context, client: Client) -> None:
    paths = seed(ctx)
    assert every_page(client, "/api/v1/library/tracks?limit=7") == paths
    first = client.get("/api/v1/library/tracks?limit=1").json["items"][0]
    assert first["artists"] == ["Aurora Vale"] and first["album_artist"] == "Aurora Vale"
    assert first["format"] == "flac" and first["duration_ms"] == 200_000 and first["spotify_artist_ids"] == []


@pytest.mark.parametrize("probe", [library.SEARCH_PROBE, 3])
def test_tracks_are_found_by_text_ignoring_case_and_accents(
    ctx: Context, client: Client, monkeypatch: Any, probe: int
) -> None:
    # A small probe sends a common word down the other plan: walking the path order.
    monkeypatch.setattr(library, "SEARCH_PROBE", probe)
    paths = seed(ctx)
    found = every_page(client, "/api/v1/library/tracks?q=BJORK&limit=4")
    assert found == [p for p in paths if p.startswith("Björk/")]
    assert every_page(client, "/api/v1/library/tracks?q=elan") == [p for p in paths if "Élan" in p]
    assert len(every_page(client, "/api/v1/library/tracks?q=%20wind%20&limit=2")) == 15  # the album's words
    assert every_page(client, "/api/v1/library/tracks?q=50%25") == []  # a LIKE wildcard is text
    both = every_page(client, "/api/v1/library/tracks?q=dust&artist=Kite%20Theory&album=Second%20Wind")
    assert both == ["Kite Theory/Second Wind/04 Dust.flac"]


def test_search_wildcards_are_text(ctx: Context, client: Client) -> None:
    info = AudioInfo("mp3", "mp3", 200.0, 320, 44100, 2, None)
    with ctx.db.write() as conn:
        for n, title in enumerate(("Why?", "Whey", "[Untitled]", "5*5 = 25", "100% Pure", "a_b")):
            entry = library.Entry.of(
                f"Odd/{n} {title}.mp3", Tags(title=title, artists=("Odd",)), info, 1, 1.0
            )
            library.record(conn, entry, time.time())

    def titles(q: str) -> list[str]:
        return [t["title"] for t in client.get("/api/v1/library/tracks?" + urlencode({"q": q})).json["items"]]

    assert titles("why?") == ["Why?"] and titles("wh?") == []
    assert (
        titles("[untitled]") == ["[Untitled]"]
        and titles("5*5") == ["5*5 = 25"]
        and titles("*") == ["5*5 = 25"]
    )
    assert titles("100%") == ["100% Pure"] and titles("a_b") == ["a_b"] and titles("a%b") == []


def test_tracks_filter_by_album_artist_and_album(ctx: Context, client: Client) -> None:
    paths = seed(ctx)
    by_artist = every_page(client, "/api/v1/library/tracks?artist=Aurora%20Vale&limit=3")
    assert by_artist == [p for p in paths if p.startswith("Aurora Vale/")]
    by_album = every_page(client, "/api/v1/library/tracks?artist=Bj%C3%B6rk&album=First%20Light")
    assert len(by_album) == 5 and all(p.startswith("Björk/First Light/") for p in by_album)
    assert every_page(client, "/api/v1/library/tracks?album=Nothing") == []


def test_albums_and_artists_page_and_search(ctx: Context, client: Client) -> None:
    seed(ctx)
    albums = every_page(client, "/api/v1/library/albums?limit=4", lambda a: (a["album_artist"], a["album"]))
    assert albums == [(artist, album) for artist in sorted(ARTISTS) for album in ALBUMS]
    one = client.get("/api/v1/library/albums?artist=Bj%C3%B6rk&limit=1").json["items"][0]
    assert one == {
        "album_artist": "Björk",
        "album": "First Light",
        "tracks": 5,
        "year": None,
        "duration_ms": 1_000_000,
        "size": 5015,
        "formats": ["flac"],
    }
    # An album search looks at albums and album artists, not at titles.
    assert every_page(client, "/api/v1/library/albums?q=wind", lambda a: a["album"]) == ["Second Wind"] * 3
    assert every_page(client, "/api/v1/library/albums?q=harbour", lambda a: a["album"]) == []
    artists = every_page(client, "/api/v1/library/artists?limit=2", lambda a: a["name"])
    assert artists == sorted(ARTISTS)
    assert client.get("/api/v1/library/artists").json["items"][0] == {
        "name": "Aurora Vale",
        "tracks": 10,
        "albums": 2,
    }
    assert every_page(client, "/api/v1/library/artists?q=bjo", lambda a: a["name"]) == ["Björk"]
    assert every_page(client, "/api/v1/library/artists?q=light", lambda a: a["name"]) == []


def test_a_scan_is_started_watched_and_refused_while_it_runs(
    ctx: Context, client: Client, keys: dict[str, str], tmp_path: Path
) -> None:
    assert client.get("/api/v1/library/scan").status == 404
    folder = tmp_path / "library" / "A"
    folder.mkdir(parents=True)
    (folder / "01 x.flac").write_bytes(render("flac", 100.0, tags={"title": "X", "artist": "A"}))
    assert client.post("/api/v1/library/scan", key=keys["read"]).status == 403
    started = client.post("/api/v1/library/scan", key=keys["operator"])
    assert started.status == 202 and started.json["state"] == "running" and started.json["files"] == 0
    assert started.headers["location"] == "/api/v1/library/scan"
    again = client.post("/api/v1/library/scan")
    assert again.status == 409 and again.json["error"]["details"]["scan_id"] == started.json["id"]
    assert client.post("/api/v1/library/scan", json={"full": True}).status == 422
    while ctx.workers.run_one() is not None:
        pass
    status = client.get("/api/v1/library/scan", key=keys["read"]).json
    assert status["id"] == started.json["id"] and status["state"] == "done"
    assert (status["files"], status["added"], status["indexed"], status["checkpoint"]) == (
        1,
        1,
        1,
        "A/01 x.flac",
    )
    assert status["rate"] >= 0 and status["elapsed_s"] >= 0
    metrics = client.get("/metrics").text
    assert "harmony_library_tracks 1.0" in metrics and "harmony_library_scan_running 0.0" in metrics
    assert 'harmony_library_scan_files_total{outcome="added"} 1.0' in metrics


def test_bad_cursors_and_parameters_are_refused(client: Client) -> None:
    for url in (
        "/api/v1/library/tracks?cursor=zz",
        "/api/v1/library/albums?cursor=WyJhIl0",  # one string where the albums' cursor has two
        "/api/v1/library/tracks?limit=0",
        "/api/v1/library/artists?q=" + "x" * 201,
        "/api/v1/library/orphans?cursor=WzFd",  # [1]: not a path
    ):
        response = client.get(url)
        assert response.status == 400 and response.json["error"]["code"] == "bad_input", url


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_orphans_are_listed_and_nothing_is_deleted(ctx: Context, client: Client, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    (downloads / "peer dir").mkdir(parents=True)
    files = {
        "peer dir/01 old.flac": 7200,  # an orphan
        "peer dir/02 claimed.flac": 7200,  # a transfer has it
        "peer dir/03 new.flac": 60,  # inside the grace period: maybe still being imported
        "loose.mp3": 90_000,  # an orphan
        "peer dir/.slskd-tmp": 7200,  # hidden
        "notes.txt": 7200,  # any file counts, not only audio
    }
    for name, seconds in files.items():
        (downloads / name).write_bytes(b"x" * 10)
        age(downloads / name, seconds)
    with ctx.db.write() as conn:
        conn.execute(
            "INSERT INTO transfers (username, filename, size, state, requested_at, local_path) "
            "VALUES ('peer', 'x\\02 claimed.flac', 10, 'succeeded', 0, ?)",
            (str(downloads / "peer dir/02 claimed.flac"),),
        )
    page = client.get("/api/v1/library/orphans").json
    assert [o["path"] for o in page["items"]] == ["loose.mp3", "notes.txt", "peer dir/01 old.flac"]
    assert page["items"][0]["size"] == 10 and page["next_cursor"] is None
    assert every_page(client, "/api/v1/library/orphans?limit=1") == [
        "loose.mp3",
        "notes.txt",
        "peer dir/01 old.flac",
    ]
    assert ctx.library.sweep() == 3
    assert ctx.metrics.registry.get_sample_value("harmony_library_orphans") == 3
    assert all((downloads / name).exists() for name in files)  # report only


def test_orphan_reports_can_be_turned_off(tmp_path: Path) -> None:
    with opened(make_config(tmp_path, library_orphans="off")) as ctx:
        client = Client(make_app(ctx), auth.create_key(ctx.db, "k", "read")[0])
        response = client.get("/api/v1/library/orphans")
        assert response.status == 409 and response.json["error"]["code"] == "not_configured"
        assert ctx.library.sweep() == 0
