"""Library scans: the index follows the disk (added, changed, moved, removed), rescans read nothing
unchanged, a scan resumes from its checkpoint after a restart, and hostile trees do not break it.

Scans run as they do in the service: `ctx.library.start()` enqueues the first chunk and the
worker pool runs the chunks (`run_one`), each enqueuing the next.
"""

from __future__ import annotations

import logging
import os
import shutil
import string
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import make_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harmony import library, wanted
from harmony.context import Context, opened
from harmony.fakes.audio import render
from harmony.tags import audio_info, read_tags


def song(
    root: Path,
    path: str,
    title: str,
    artist: str = "Aurora Vale",
    album: str = "Low Tide",
    *,
    seconds: float = 200.0,
    fmt: str = "flac",
    **tags: str,
) -> Path:
    """Write a tiny valid audio file with these tags at `root/path`."""
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(render(fmt, seconds, tags={"title": title, "artist": artist, "album": album, **tags}))
    return target


@contextmanager
def service(tmp_path: Path, chunk: int = 1000, **flags: Any) -> Iterator[Context]:
    """A context on `tmp_path/data` with its library at `tmp_path/library` (scans in `chunk`s)."""
    flags.setdefault("library_dir", str(tmp_path / "library"))
    with opened(make_config(tmp_path, **flags)) as ctx:
        ctx.library.chunk = chunk
        yield ctx


def drain(ctx: Context) -> int:
    """Run jobs until none is due; returns how many ran."""
    ran = 0
    while ctx.workers.run_one() is not None:
        ran += 1
    return ran


def scan(ctx: Context) -> dict[str, Any]:
    ctx.library.start()
    drain(ctx)
    return ctx.library.status()


def index(ctx: Context) -> dict[str, dict[str, Any]]:
    return {row["path"]: row for row in ctx.db.query("SELECT * FROM library_tracks")}


def album(root: Path, n: int = 6, artist: str = "Aurora Vale", name: str = "Low Tide") -> list[Path]:
    return [
        song(
            root,
            f"{artist}/2021 - {name}/{i:02d} Song {i}.flac",
            f"Song {i}",
            artist,
            name,
            tracknumber=str(i),
        )
        for i in range(1, n + 1)
    ]


def test_a_first_scan_indexes_every_file_with_its_tags(tmp_path: Path) -> None:
    root = tmp_path / "library"
    song(root, "Aurora Vale/2021 - Low Tide/01 Glass Harbour.flac", "Glass Harbour", tracknumber="1",
         albumartist="Aurora Vale", isrc="qzhn92600001", date="2021-03-04", seconds=215.0)  # fmt: skip
    song(root, "Kite Theory/Static/03 Wires.mp3", "Wires", "Kite Theory", "Static", fmt="mp3", seconds=181.0)
    song(root, "Loose/untitled.flac", "")
    with service(tmp_path) as ctx:
        status = scan(ctx)
        assert status["state"] == "done" and status["added"] == 3 and status["files"] == 3
        assert status["errors"] == 0 and status["indexed"] == 3 and status["rate"] > 0
        rows = index(ctx)
        first = rows["Aurora Vale/2021 - Low Tide/01 Glass Harbour.flac"]
        assert (first["title"], first["album"], first["album_artist"]) == (
            "Glass Harbour",
            "Low Tide",
            "Aurora Vale",
        )
        assert first["artists"] == '["Aurora Vale"]' and first["track_number"] == 1 and first["year"] == 2021
        assert (
            first["isrc"] == "QZHN92600001" and first["format"] == "flac" and first["duration_ms"] == 215_000
        )
        assert first["size"] == os.path.getsize(root / first["path"]) and first["identity"]
        mp3 = rows["Kite Theory/Static/03 Wires.mp3"]
        assert mp3["format"] == "mp3" and mp3["bitrate"] == 320 and mp3["album_artist"] == "Kite Theory"
        # An untagged title is the file's name; the album artist falls back to the first artist.
        assert rows["Loose/untitled.flac"]["title"] == "untitled"


def test_an_unchanged_rescan_reads_no_file(tmp_path: Path) -> None:
    root = tmp_path / "library"
    files = album(root, 8)
    with service(tmp_path, chunk=3) as ctx:
        scan(ctx)
        before = index(ctx)
        # Same size and mtime, but no longer audio: a scan that opened them would fail to read them.
        for path in files:
            stat = path.stat()
            path.write_bytes(b"\0" * stat.st_size)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        status = scan(ctx)
        assert (status["files"], status["unchanged"], status["errors"]) == (8, 8, 0)
        assert (status["added"], status["changed"], status["moved"], status["removed"]) == (0, 0, 0, 0)
        assert index(ctx) == before
        sample = ctx.metrics.registry.get_sample_value
        assert sample("harmony_library_scan_files_total", {"outcome": "unchanged"}) == 8
        assert sample("harmony_library_scan_files_total", {"outcome": "added"}) == 8


def test_a_changed_file_is_read_again_and_keeps_its_row(tmp_path: Path) -> None:
    root = tmp_path / "library"
    album(root, 3)
    with service(tmp_path) as ctx:
        scan(ctx)
        path = "Aurora Vale/2021 - Low Tide/02 Song 2.flac"
        old = index(ctx)[path]
        song(root, path, "Song Two (Remastered)", seconds=201.0)
        status = scan(ctx)
        assert (status["changed"], status["unchanged"], status["added"]) == (1, 2, 0)
        new = index(ctx)[path]
        assert (
            new["id"] == old["id"]
            and new["title"] == "Song Two (Remastered)"
            and new["duration_ms"] == 201_000
        )


def test_a_moved_file_keeps_its_row_with_the_new_path(tmp_path: Path) -> None:
    root = tmp_path / "library"
    album(root, 4)
    with service(tmp_path) as ctx:
        scan(ctx)
        old = index(ctx)["Aurora Vale/2021 - Low Tide/03 Song 3.flac"]
        with ctx.db.write() as conn:  # as if imported for an item: the move keeps that too
            conn.execute("UPDATE library_tracks SET item_id = 7 WHERE id = ?", (old["id"],))
        (root / "Archive").mkdir()
        (root / "Zed").mkdir()
        # Moved to a path before its old one and to one after it: both are found either way.
        os.rename(root / old["path"], root / "Archive/03 Song 3.flac")
        os.rename(root / "Aurora Vale/2021 - Low Tide/01 Song 1.flac", root / "Zed/01.flac")
        status = scan(ctx)
        assert (status["moved"], status["added"], status["removed"], status["unchanged"]) == (2, 0, 0, 2)
        rows = index(ctx)
        assert (
            rows["Archive/03 Song 3.flac"]["id"] == old["id"]
            and rows["Archive/03 Song 3.flac"]["item_id"] == 7
        )
        assert old["path"] not in rows and "Zed/01.flac" in rows and len(rows) == 4


def test_a_deleted_file_s_row_goes(tmp_path: Path) -> None:
    root = tmp_path / "library"
    files = album(root, 5)
    with service(tmp_path, chunk=2) as ctx:
        scan(ctx)
        files[1].unlink()
        files[4].unlink()
        status = scan(ctx)
        assert (status["removed"], status["unchanged"], status["files"]) == (2, 3, 3)
        assert sorted(index(ctx)) == sorted(str(p.relative_to(root)) for p in (files[0], files[2], files[3]))
        assert not ctx.db.query("SELECT 1 FROM library_tracks WHERE missing_scan IS NOT NULL")


def tree(root: Path) -> list[Path]:
    """Names whose order trips a naive walk: spaces, dashes and dots sort before `/`."""
    names = ["a/x.flac", "a b.flac", "a-c/y.flac", "a.flac", "a/b/z.flac", "ab.mp3", "Zz/é.flac",
             "日本/歌.flac", "a b/q.flac", "b/c/d/e.flac", "b/c.flac", "0.flac"]  # fmt: skip
    return [song(root, name, f"T{i}", f"Artist {i % 3}", seconds=100.0 + i) for i, name in enumerate(names)]


def comparable(ctx: Context) -> dict[str, tuple[Any, ...]]:
    keep = ("identity", "title", "artists", "album", "album_artist", "duration_ms", "size", "mtime", "format")
    return {path: tuple(row[k] for k in keep) for path, row in index(ctx).items()}


def test_a_scan_in_small_chunks_indexes_what_one_chunk_does(tmp_path: Path) -> None:
    root = tmp_path / "library"
    tree(root)
    with service(tmp_path / "one", library_dir=str(root)) as ctx:
        whole = scan(ctx)
        expected = comparable(ctx)
    with service(tmp_path / "many", chunk=1, library_dir=str(root)) as ctx:
        chunked = scan(ctx)
        assert comparable(ctx) == expected and chunked["files"] == whole["files"] == 12
        again = scan(ctx)
        assert (again["unchanged"], again["removed"], again["added"]) == (12, 0, 0)


def test_an_interrupted_scan_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    root = tmp_path / "library"
    tree(root)
    with service(tmp_path / "whole", library_dir=str(root)) as ctx:
        scan(ctx)
        expected = comparable(ctx)
    config = {"library_dir": str(root)}
    with service(tmp_path / "restarted", chunk=5, **config) as ctx:
        ctx.library.start()
        assert ctx.workers.run_one() is not None  # one chunk, then the process goes away
        first = ctx.library.status()
        assert first["state"] == "running" and first["files"] == 5 and first["checkpoint"]
        ids = {path: row["id"] for path, row in index(ctx).items()}
        assert len(ids) == 5
    with service(tmp_path / "restarted", chunk=5, **config) as ctx:  # a new process, same database
        drain(ctx)
        status = ctx.library.status()
        assert status["state"] == "done" and status["id"] == first["id"]
        assert status["files"] == 12 and status["added"] == 12  # nothing looked at twice
        assert comparable(ctx) == expected
        assert all(index(ctx)[path]["id"] == row_id for path, row_id in ids.items())


def test_a_scan_whose_job_is_lost_is_resumed_by_the_task(tmp_path: Path) -> None:
    album(tmp_path / "library", 4)
    with service(tmp_path, chunk=2) as ctx:
        started = ctx.library.start()
        with ctx.db.write() as conn:  # the chunk's job vanished (purged by hand, say)
            conn.execute("DELETE FROM jobs")
        assert ctx.library.tick() is None  # it runs already: the task only re-enqueues its job
        drain(ctx)
        status = ctx.library.status()
        assert status["id"] == started.id and status["state"] == "done" and status["added"] == 4


def test_a_scan_whose_job_died_fails_with_its_error(tmp_path: Path) -> None:
    album(tmp_path / "library", 2)
    with service(tmp_path) as ctx:
        ctx.library.start()
        job = ctx.queue.lease()
        assert job is not None
        ctx.queue.fail(job, "RuntimeError: boom", give_up=True)
        ctx.library.tick()
        status = ctx.library.status()
        assert status["state"] == "failed" and "boom" in status["error"]


def test_the_task_scans_at_first_start_and_then_every_interval(tmp_path: Path) -> None:
    album(tmp_path / "library", 2)
    with service(tmp_path, library_scan_interval="1h") as ctx:
        assert "library_scan" in {task["name"] for task in ctx.wheel.tasks()}
        now = time.time()
        first = ctx.library.tick(now)
        assert first is not None  # never scanned: at once
        drain(ctx)
        assert ctx.library.tick(now + 1800) is None  # within the interval
        assert ctx.library.tick(now + 3601) is not None
    with service(tmp_path / "off", library_scan_interval="0") as ctx:
        assert ctx.library.tick() is None and ctx.db.scalar("SELECT count(*) FROM library_scans") == 0


def test_hidden_temporary_and_foreign_files_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "library"
    song(root, "A/01 Kept.flac", "Kept")
    song(root, "A/.hidden.flac", "Hidden")
    song(root, "A/.harmony-0123456789abcdef0123.part", "Part")
    song(root, ".trash/01 Kept.flac", "Trashed")
    song(root, "quarantine/x.flac", "Quarantined")
    song(root, "A/cover.flac.txt", "Text")
    (root / "A/cover.jpg").write_bytes(b"\xff\xd8\xff")
    os.mkfifo(root / "A/pipe.flac")  # reading it would hang the scan
    with service(tmp_path, library_quarantine_dir=str(root / "quarantine")) as ctx:
        status = scan(ctx)
        assert sorted(index(ctx)) == ["A/01 Kept.flac"] and status["errors"] == 0


def test_a_symlink_out_of_the_root_is_not_followed(tmp_path: Path) -> None:
    root, outside = tmp_path / "library", tmp_path / "elsewhere"
    song(root, "In/01 In.flac", "In")
    song(outside, "Out/01 Out.flac", "Out")
    (root / "Linked").symlink_to(outside / "Out", target_is_directory=True)
    (root / "In/02 Link.flac").symlink_to(outside / "Out/01 Out.flac")
    (root / "In/03 Loop").symlink_to(root, target_is_directory=True)
    with service(tmp_path) as ctx:
        scan(ctx)
        assert sorted(index(ctx)) == ["In/01 In.flac"]


def test_hostile_names_do_not_break_a_scan(tmp_path: Path, caplog: Any) -> None:
    root = tmp_path / "library"
    long_name = "x" * 245 + ".flac"
    song(root, "Odd/line\nbreak.flac", "Line")
    song(root, f"Odd/{long_name}", "Long")
    song(root, "Odd/tab\tand \u202eevil.flac", "Evil")
    with open(os.path.join(os.fsencode(root), b"Odd", b"latin-\xe9.flac"), "wb") as handle:
        handle.write(render("flac", 100.0, tags={"title": "Latin"}))
    os.mkdir(os.path.join(os.fsencode(root), b"Bad-\xff"))
    (root / "Odd/broken.flac").write_bytes(b"fLaC" + b"\x00" * 100)  # not readable as audio
    (root / "Odd/empty.mp3").write_bytes(b"")
    with service(tmp_path, chunk=2) as ctx, caplog.at_level(logging.WARNING):
        status = scan(ctx)
        assert status["state"] == "done"
        assert sorted(index(ctx)) == sorted(
            ["Odd/line\nbreak.flac", f"Odd/{long_name}", "Odd/tab\tand \u202eevil.flac"]
        )
        # The name that is not UTF-8, the folder that is not, and the two files mutagen refuses.
        assert status["errors"] == 4 and status["files"] == 7
        logged = [r for r in caplog.records if r.getMessage() == "library_unreadable"]
        assert len(logged) == 4
        caplog.clear()
        again = scan(ctx)
        assert again["errors"] == 4 and again["unchanged"] == 3
        assert not [r for r in caplog.records if r.getMessage() == "library_unreadable"]  # logged once


def test_a_missing_root_fails_the_scan_with_a_clear_error(tmp_path: Path) -> None:
    with service(tmp_path, library_dir=str(tmp_path / "nowhere")) as ctx:
        status = scan(ctx)
        assert (
            status["state"] == "failed"
            and "nowhere" in status["error"]
            and "does not exist" in status["error"]
        )
        assert ctx.library.start().state == "running"  # a failed scan does not block the next


def test_an_empty_root_removes_nothing_from_a_full_index(tmp_path: Path) -> None:
    root = tmp_path / "library"
    album(root, 3)
    with service(tmp_path) as ctx:
        scan(ctx)
        shutil.rmtree(root / "Aurora Vale")  # the disk is not mounted: its mount point is empty
        status = scan(ctx)
        assert status["state"] == "failed" and "mounted" in status["error"] and len(index(ctx)) == 3
        assert not ctx.db.query("SELECT 1 FROM library_tracks WHERE missing_scan IS NOT NULL")


def test_an_import_during_a_scan_is_not_taken_for_gone(tmp_path: Path) -> None:
    root = tmp_path / "library"
    album(root, 4)
    with service(tmp_path, chunk=2) as ctx:
        ctx.library.start()
        ctx.workers.run_one()
        # The importer files a track in the part of the tree the scan has passed, and one ahead.
        for name in ("Aurora Vale/2021 - Low Tide/00 Early.flac", "Zed/Late.flac"):
            path = song(root, name, name)
            info, tags, stat = audio_info(str(path)), read_tags(str(path)), path.stat()
            entry = library.Entry.of(name, tags, info, stat.st_size, stat.st_mtime, item_id=3)
            with ctx.db.write() as conn:
                library.record(conn, entry, time.time())
        drain(ctx)
        assert ctx.library.status()["removed"] == 0 and len(index(ctx)) == 6


def test_a_song_found_by_a_scan_is_owned_when_it_becomes_wanted(tmp_path: Path) -> None:
    song(tmp_path / "library", "Aurora Vale/Low Tide/01 Glass Harbour.flac", "Glass Harbour", seconds=215.0)
    with service(tmp_path) as ctx:
        scan(ctx)
        track = wanted.Track("Glass Harbour", ("Aurora Vale",), spotify_id="t" * 22, duration_ms=216_000)
        with ctx.db.write() as conn:
            item, outcome = wanted.want(conn, track, wanted.Source("manual"))
        assert outcome == "owned" and item.state == "done" and item.reason_code == "already_owned"
        assert "01 Glass Harbour.flac" in (item.reason or "")


# --- the walk's order, as a property ---------------------------------------------------------

NAME = st.text(alphabet=" -.ab_~é日" + string.digits, min_size=1, max_size=4).filter(
    lambda n: not n.startswith(".")
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paths=st.sets(st.lists(NAME, min_size=1, max_size=3).map("/".join), min_size=1, max_size=12))
def test_the_walk_yields_paths_in_string_order_and_resumes_after_any_of_them(
    tmp_path: Path, paths: set[str]
) -> None:
    root = tmp_path / f"walk-{time.monotonic_ns()}"
    made: list[str] = []
    for path in sorted(paths):
        target = root / (path + ".flac")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        except (FileExistsError, NotADirectoryError):
            continue  # a file where another path needs a folder
        made.append(path + ".flac")
    walked = [item.path for item in library.walk(str(root)) if isinstance(item, library.Found)]
    assert walked == sorted(made)
    listings: dict[str, Any] = {}  # kept between the resumed walks, as a scan keeps them
    for checkpoint in made:
        expected = [p for p in sorted(made) if p > checkpoint]
        assert [item.path for item in library.walk(str(root), checkpoint)] == expected
        assert [item.path for item in library.walk(str(root), checkpoint, listings=listings)] == expected


def test_files_added_and_removed_during_a_scan_are_seen_in_later_chunks(tmp_path: Path) -> None:
    root = tmp_path / "library"
    files = album(root, 6)
    with service(tmp_path, chunk=2) as ctx:
        ctx.library.start()
        ctx.workers.run_one()  # songs 1 and 2; the folders' listings are kept for the next chunk
        song(root, "Aurora Vale/2021 - Low Tide/03a Bonus.flac", "Bonus")
        files[4].unlink()
        drain(ctx)
        status = ctx.library.status()
        assert status["state"] == "done" and status["added"] == 6 and status["files"] == 6
        assert "Aurora Vale/2021 - Low Tide/03a Bonus.flac" in index(ctx)
        assert str(files[4].relative_to(root)) not in index(ctx)


def test_a_changed_file_keeps_the_ids_a_backfill_matched_unless_it_is_another_recording(
    tmp_path: Path,
) -> None:
    root = tmp_path / "library"
    album(root, 2)
    path = "Aurora Vale/2021 - Low Tide/01 Song 1.flac"
    with service(tmp_path) as ctx:
        scan(ctx)
        with ctx.db.write() as conn:  # as a backfill records a match, without writing the file
            conn.execute(
                "UPDATE library_tracks SET spotify_id = ? WHERE path = ?", ("4uLU6hMCjMI75M1A2tKUQC", path)
            )
        song(root, path, "Song 1", seconds=199.0)  # the user re-encodes it: same recording
        scan(ctx)
        assert index(ctx)[path]["spotify_id"] == "4uLU6hMCjMI75M1A2tKUQC"
        song(root, path, "Another Song Entirely", seconds=199.0)
        scan(ctx)
        assert index(ctx)[path]["spotify_id"] is None, "another recording does not inherit the match"
