"""The music library: owns `library_tracks` (the index), and checks the directories on disk.

The index holds one row per audio file under the library root, by its relative path: what the
file is (identity key, Spotify ids, ISRC, tags) and what it holds (format, bitrate, length, size,
mtime). The import records what it files (`record`); the wanted list asks it whether a song is
already owned; `same_recording` finds every copy of one recording, for the import's collision
rule.

The readiness checks say, by exact path and with the user and group Harmony runs as, which of
writing the library, reading slskd's download directory and moving between them cannot be done.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import apsw

from .db import Row
from .tags import AudioInfo, Tags
from .wanted import DURATION_TOLERANCE_MS, identity

SQL_RECORD = """
    INSERT INTO library_tracks (path, identity, spotify_id, spotify_album_id, spotify_artist_ids,
        isrc, title, artists, album, album_artist, track_number, disc_number, year, format,
        bitrate, bit_depth, sample_rate, duration_ms, size, mtime, item_id, scanned_at)
    VALUES (:path, :identity, :spotify_id, :spotify_album_id, :spotify_artist_ids, :isrc, :title,
        :artists, :album, :album_artist, :track_number, :disc_number, :year, :format, :bitrate,
        :bit_depth, :sample_rate, :duration_ms, :size, :mtime, :item_id, :scanned_at)
    ON CONFLICT (path) DO UPDATE SET identity = excluded.identity, spotify_id = excluded.spotify_id,
        spotify_album_id = excluded.spotify_album_id, spotify_artist_ids = excluded.spotify_artist_ids,
        isrc = excluded.isrc, title = excluded.title, artists = excluded.artists,
        album = excluded.album, album_artist = excluded.album_artist,
        track_number = excluded.track_number, disc_number = excluded.disc_number,
        year = excluded.year, format = excluded.format, bitrate = excluded.bitrate,
        bit_depth = excluded.bit_depth, sample_rate = excluded.sample_rate,
        duration_ms = excluded.duration_ms, size = excluded.size, mtime = excluded.mtime,
        item_id = coalesce(excluded.item_id, library_tracks.item_id), scanned_at = excluded.scanned_at
    RETURNING id
"""
# Every copy of one recording: the same Spotify id or ISRC, or the same normalised primary
# artist and title with a length within the tolerance (the wanted list's rules).
SQL_SAME = """
    SELECT * FROM library_tracks
    WHERE (? IS NOT NULL AND spotify_id = ?) OR (? IS NOT NULL AND isrc = ?)
       OR (identity = ? AND (duration_ms = 0 OR ? = 0 OR abs(duration_ms - ?) <= ?))
    ORDER BY id
"""


@dataclass(frozen=True)
class Entry:
    """One file as the index records it; `path` is relative to the library root, POSIX style."""

    path: str
    identity: str
    title: str
    artists: tuple[str, ...]
    album: str
    album_artist: str
    format: str
    duration_ms: int
    size: int
    mtime: float
    spotify_id: str | None = None
    spotify_album_id: str | None = None
    spotify_artist_ids: tuple[str, ...] = ()
    isrc: str | None = None
    track_number: int | None = None
    disc_number: int | None = None
    year: int | None = None
    bitrate: int | None = None
    bit_depth: int | None = None
    sample_rate: int | None = None
    item_id: int | None = None

    @classmethod
    def of(
        cls, path: str, tags: Tags, info: AudioInfo, size: int, mtime: float, item_id: int | None = None
    ) -> Entry:
        """The entry for a file with these tags and this stream."""
        artists = tags.artists or ((tags.album_artist,) if tags.album_artist else ())
        return cls(
            path=path,
            identity=identity(artists, tags.title),
            title=tags.title,
            artists=artists,
            album=tags.album,
            album_artist=tags.album_artist,
            format=info.format,
            duration_ms=round(info.duration * 1000),
            size=size,
            mtime=mtime,
            spotify_id=tags.spotify_track_id or None,
            spotify_album_id=tags.spotify_album_id or None,
            spotify_artist_ids=tags.spotify_artist_ids,
            isrc=tags.isrc.upper() or None,
            track_number=tags.track_number,
            disc_number=tags.disc_number,
            year=int(tags.date[:4]) if tags.date[:4].isdigit() else None,
            bitrate=info.bitrate_kbps or None,
            bit_depth=info.bit_depth,
            sample_rate=info.sample_rate or None,
            item_id=item_id,
        )


def record(conn: apsw.Connection, entry: Entry, now: float) -> int:
    """Add or refresh the file's row (by path) in the caller's transaction; returns its id."""
    values: dict[str, Any] = dict(entry.__dict__)
    values["artists"] = json.dumps(list(entry.artists), ensure_ascii=False)
    values["spotify_artist_ids"] = json.dumps(list(entry.spotify_artist_ids))
    values["scanned_at"] = now
    return int(next(conn.execute(SQL_RECORD, values))["id"])


def same_recording(
    conn: apsw.Connection, *, spotify_id: str | None, isrc: str | None, identity: str, duration_ms: int
) -> list[Row]:
    """Every indexed copy of this recording, oldest first."""
    d = duration_ms
    args = (spotify_id, spotify_id, isrc, isrc, identity, d, d, DURATION_TOLERANCE_MS)
    return list(conn.execute(SQL_SAME, args))


def forget(conn: apsw.Connection, path: str) -> None:
    """Drop the file's row, if any (the file was moved away or deleted)."""
    conn.execute("DELETE FROM library_tracks WHERE path = ?", (path,))


def _who() -> str:
    return f"uid {os.getuid()}, gid {os.getgid()}"


def writable(path: str, what: str = "library") -> str:
    """For /ready: `path` exists (created if missing) and Harmony's user can write into it."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise PermissionError(
            f"{what} {path} cannot be created ({exc.strerror}; Harmony runs as {_who()})"
        ) from None
    if not os.path.isdir(path):
        raise NotADirectoryError(f"{what} {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {path} is not writable by Harmony's user ({_who()})")
    return path


def readable(path: str) -> str:
    """For /ready: slskd's download directory is visible here (shared or bind-mounted) and
    readable, so completed downloads can be found."""
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"slskd download directory {path} does not exist here (set slskd.downloads_dir)"
        )
    if not os.access(path, os.R_OK | os.X_OK):
        raise PermissionError(f"slskd download directory {path} is not readable by Harmony's user ({_who()})")
    return path


def move_possible(downloads: str, library: str) -> str:
    """For /ready: a file can be moved from `downloads` into `library`.

    Probes with a real file: created in the download directory, renamed into the library.
    Across filesystems the rename fails with EXDEV; imports then copy, fsync and rename, which
    works but costs the copy, so that is reported, not failed.
    """
    os.makedirs(library, exist_ok=True)
    try:
        handle, source = tempfile.mkstemp(dir=downloads, prefix=".harmony-probe-")
    except OSError as exc:
        raise PermissionError(
            f"cannot create a file in {downloads} ({exc.strerror}; Harmony runs as {_who()})"
        ) from None
    os.close(handle)
    target = os.path.join(library, os.path.basename(source))
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise PermissionError(f"cannot move {source} into {library}: {exc.strerror}") from None
        return "different filesystems: imports copy, then rename"
    finally:
        for leftover in (source, target):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    return "same filesystem: imports are atomic renames"
