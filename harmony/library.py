"""The music library: owns `library_tracks` (the index) and `library_scans`, and checks the
directories on disk.

The index holds one row per audio file under the library root, by its relative POSIX path: what
the file is (identity key, Spotify ids, ISRC, tags) and what it holds (format, bitrate, length,
size, mtime). The import records what it files (`record`); the wanted list asks it whether a song
is already owned; `same_recording` finds every copy of one recording, for the import's collision
rule; `list_tracks`, `list_albums` and `list_artists` page through it for the API.

Scans (`Library`) bring the index in line with the disk:

- A scan walks the root in one total order: the string order of relative paths (a directory's
  entries sorted with a `/` after each directory name make a depth-first walk yield exactly
  that order, which is also SQLite's order of the `path` column). Files already indexed with the
  same size and mtime are not opened; new and changed files are read with mutagen
  (`tags.read_tags`, `tags.audio_info`).
- It runs as `library.scan` jobs of at most `chunk` files (1,000) or `slice_s` seconds. Each
  chunk commits its rows, the scan's counters and its checkpoint (the last path looked at) in
  one transaction with the next chunk's job, so a crash or restart resumes after the checkpoint.
- Deletions: index rows inside a chunk's path range that the walk did not find get
  `missing_scan` set; when the walk ends, those whose file is still gone are removed. A scan
  that found no audio file at all removes nothing (an unmounted disk is not an empty library).
- Moves: a new file that is the same recording (identity or Spotify id, size and length) as a
  row whose file is gone takes over that row (its id, its import history, its backfill match).
- Skipped: hidden names (Harmony's `.harmony-*` temporary files among them), other extensions,
  anything but regular files, symbolic links (never followed, so nothing outside the root is
  read), the quarantine and slskd download directories when they lie inside the library, and
  names that are not valid UTF-8 (counted as errors: the index and the API hold text).
- A file mutagen cannot read counts in `errors` and is logged once per process; a file that
  vanishes mid-scan is simply not there; a root that is missing fails the scan on its row.

The orphan sweep lists files in slskd's download directory older than `ORPHAN_GRACE_S` that no
transfer claims (`transfers.local_path`). It only reports; it never deletes.

The readiness checks say, by exact path and with the user and group Harmony runs as, which of
writing the library, reading slskd's download directory and moving between them cannot be done.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import errno
import json
import logging
import os
import posixpath
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import apsw

from .config import Config
from .db import Database, Row, filters
from .errors import Conflict, NotConfigured, NotFound
from .jobs import GiveUp, Job, Queue
from .matching import fold
from .tags import AudioInfo, NotAudio, Tags, audio_info, read_tags
from .wanted import DURATION_TOLERANCE_MS, identity

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger(__name__)

SQL_RECORD = """
    INSERT INTO library_tracks (path, identity, spotify_id, spotify_album_id, spotify_artist_ids,
        isrc, title, artists, album, album_artist, track_number, disc_number, year, format,
        bitrate, bit_depth, sample_rate, duration_ms, size, mtime, item_id, scanned_at, search)
    VALUES (:path, :identity, :spotify_id, :spotify_album_id, :spotify_artist_ids, :isrc, :title,
        :artists, :album, :album_artist, :track_number, :disc_number, :year, :format, :bitrate,
        :bit_depth, :sample_rate, :duration_ms, :size, :mtime, :item_id, :scanned_at, :search)
    ON CONFLICT (path) DO UPDATE SET identity = excluded.identity,
        -- A file re-read without ids in its tags keeps the ids the backfill matched, unless it
        -- now is another recording.
        spotify_id = CASE WHEN excluded.spotify_id IS NULL AND excluded.identity = library_tracks.identity
            THEN library_tracks.spotify_id ELSE excluded.spotify_id END,
        spotify_album_id = CASE
            WHEN excluded.spotify_id IS NULL AND excluded.identity = library_tracks.identity
            THEN library_tracks.spotify_album_id ELSE excluded.spotify_album_id END,
        spotify_artist_ids = CASE
            WHEN excluded.spotify_id IS NULL AND excluded.identity = library_tracks.identity
            THEN library_tracks.spotify_artist_ids ELSE excluded.spotify_artist_ids END,
        isrc = excluded.isrc, title = excluded.title, artists = excluded.artists,
        album = excluded.album, album_artist = excluded.album_artist,
        track_number = excluded.track_number, disc_number = excluded.disc_number,
        year = excluded.year, format = excluded.format, bitrate = excluded.bitrate,
        bit_depth = excluded.bit_depth, sample_rate = excluded.sample_rate,
        duration_ms = excluded.duration_ms, size = excluded.size, mtime = excluded.mtime,
        item_id = coalesce(excluded.item_id, library_tracks.item_id), scanned_at = excluded.scanned_at,
        search = excluded.search, missing_scan = NULL
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
    return int(next(conn.execute(SQL_RECORD, _values(entry, now)))["id"])


def _values(entry: Entry, now: float) -> dict[str, Any]:
    values: dict[str, Any] = dict(entry.__dict__)
    values["artists"] = json.dumps(list(entry.artists), ensure_ascii=False)
    values["spotify_artist_ids"] = json.dumps(list(entry.spotify_artist_ids))
    values["scanned_at"] = now
    values["search"] = search_text(entry.album_artist, entry.album, entry.artists, entry.title)
    return values


def search_text(album_artist: str, album: str, artists: Sequence[str], title: str) -> str:
    """The `search` column: the fields folded (`matching.fold`), album artist first, separated by
    US (0x1f), so a pattern can ask for a match in the leading fields only (`_pattern`)."""
    parts = (album_artist, album, " ".join(artists), title)
    return SEP.join(fold(part).replace(SEP, " ") for part in parts)


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


# --- browsing the index ------------------------------------------------------------------------

SEP = "\x1f"
# A search first collects the ids of matching rows from the trigram index `library_fts`; when
# there are fewer than this many, it sorts just those. More, and matches are dense enough that
# walking the path order and testing each row finds a page sooner.
SEARCH_PROBE = 2000
# Which leading fields of `search` a pattern may match in: a match followed by this many more
# separators lies in the first (4 - n) fields.
_FIELDS_AFTER = {"tracks": 0, "albums": 2, "artists": 3}
_GLOB_SPECIAL = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})
SQL_TRACKS = "SELECT * FROM library_tracks WHERE 1 {where} ORDER BY path LIMIT ?"
SQL_TRACKS_SEARCH = """
    SELECT * FROM library_tracks INDEXED BY sqlite_autoindex_library_tracks_1
    WHERE search GLOB ? {where} ORDER BY path LIMIT ?
"""
SQL_TRACKS_AMONG = """
    SELECT * FROM library_tracks WHERE id IN (SELECT value FROM json_each(?)) {where}
    ORDER BY path LIMIT ?
"""
SQL_PROBE = "SELECT rowid AS id FROM library_fts WHERE search GLOB ? LIMIT ?"
SQL_ALBUMS = """
    SELECT album_artist, album, count(*) AS tracks, min(year) AS year, sum(duration_ms) AS duration_ms,
        sum(size) AS size, group_concat(DISTINCT format) AS formats
    FROM library_tracks INDEXED BY library_album WHERE 1 {where}
    GROUP BY album_artist, album ORDER BY album_artist, album LIMIT ?
"""
SQL_ARTISTS = """
    SELECT album_artist AS name, count(*) AS tracks, count(DISTINCT album) AS albums
    FROM library_tracks INDEXED BY library_album WHERE 1 {where}
    GROUP BY album_artist ORDER BY album_artist LIMIT ?
"""
SQL_MATCHING_ALBUM_ARTISTS = (
    " AND album_artist IN (SELECT album_artist FROM library_tracks WHERE id IN"
    " (SELECT rowid FROM library_fts WHERE search GLOB ?))"
)
SQL_MATCHING_ALBUMS = (
    " AND (album_artist, album) IN (SELECT album_artist, album FROM library_tracks WHERE id IN"
    " (SELECT rowid FROM library_fts WHERE search GLOB ?))"
)


@dataclass(frozen=True)
class Track:
    """One row of the index, as the API shows it."""

    id: int
    path: str
    title: str
    artists: tuple[str, ...]
    album: str
    album_artist: str
    track_number: int | None
    disc_number: int | None
    year: int | None
    format: str
    bitrate: int | None
    bit_depth: int | None
    sample_rate: int | None
    duration_ms: int
    size: int
    mtime: float
    isrc: str | None
    spotify_id: str | None
    spotify_album_id: str | None
    spotify_artist_ids: tuple[str, ...]
    item_id: int | None
    match_method: str | None
    match_confidence: float | None
    scanned_at: float

    @classmethod
    def from_row(cls, row: Row) -> Track:
        return cls(
            **{name: row[name] for name in cls.__dataclass_fields__ if name not in _LISTS},
            artists=tuple(json.loads(row["artists"] or "[]")),
            spotify_artist_ids=tuple(json.loads(row["spotify_artist_ids"] or "[]")),
        )

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["artists"] = list(self.artists)
        out["spotify_artist_ids"] = list(self.spotify_artist_ids)
        return out


_LISTS = frozenset({"artists", "spotify_artist_ids"})


def _pattern(q: str, kind: str) -> str:
    """A GLOB pattern for the folded `q` in the fields of `search` that `kind` searches (both
    sides are folded, so GLOB's case-sensitive match is what is wanted)."""
    text = fold(q.strip()).replace(SEP, " ").translate(_GLOB_SPECIAL)
    return f"*{text}*" + f"{SEP}*" * _FIELDS_AFTER[kind]


def list_tracks(
    db: Database,
    *,
    after: tuple[Any, ...] | None = None,
    limit: int = 50,
    q: str | None = None,
    artist: str | None = None,
    album: str | None = None,
) -> list[Track]:
    """One page of indexed files in path order; `after` is the last page's `(path,)`.

    `q` matches text in the title, artists, album or album artist, ignoring case and accents;
    `artist` is an album artist and `album` an album, both exactly as `list_albums` gives them.
    """
    where, args = filters(album_artist=artist, album=album)
    if after is not None:
        where += " AND path > ?"
        args += (after[0],)
    q = (q or "").strip()
    if not q:
        return [Track.from_row(r) for r in db.query(SQL_TRACKS.format(where=where), (*args, limit))]
    pattern = _pattern(q, "tracks")
    ids = [row["id"] for row in db.query(SQL_PROBE, (pattern, SEARCH_PROBE))]
    if len(ids) < SEARCH_PROBE:
        sql, first = SQL_TRACKS_AMONG, json.dumps(ids)
    else:
        sql, first = SQL_TRACKS_SEARCH, pattern
    return [Track.from_row(r) for r in db.query(sql.format(where=where), (first, *args, limit))]


def list_albums(
    db: Database,
    *,
    after: tuple[Any, ...] | None = None,
    limit: int = 50,
    q: str | None = None,
    artist: str | None = None,
) -> list[dict[str, Any]]:
    """One page of albums (album artist and album), in that order, each with its number of
    tracks, first year, total length and size and formats; `after` is `(album_artist, album)`.
    `q` matches text in the album or the album artist."""
    where, args = filters(album_artist=artist)
    if after is not None:
        where += " AND (album_artist, album) > (?, ?)"
        args += (after[0], after[1])
    if q and q.strip():
        where += SQL_MATCHING_ALBUMS
        args += (_pattern(q, "albums"),)
    rows = db.query(SQL_ALBUMS.format(where=where), (*args, limit))
    return [{**row, "formats": sorted((row["formats"] or "").split(","))} for row in rows]


def list_artists(
    db: Database, *, after: tuple[Any, ...] | None = None, limit: int = 50, q: str | None = None
) -> list[dict[str, Any]]:
    """One page of album artists by name, each with its number of tracks and albums; `after`
    is `(name,)`. `q` matches text in the name."""
    where, args = "", ()  # type: tuple[str, tuple[Any, ...]]
    if after is not None:
        where += " AND album_artist > ?"
        args += (after[0],)
    if q and q.strip():
        where += SQL_MATCHING_ALBUM_ARTISTS
        args += (_pattern(q, "artists"),)
    return db.query(SQL_ARTISTS.format(where=where), (*args, limit))


def count_tracks(db: Database) -> int:
    return int(db.scalar("SELECT count(*) FROM library_tracks"))


# --- scans ----------------------------------------------------------------------------------------

JOB = "library.scan"
JOB_PRIORITY = -10  # behind imports, searches and downloads: a scan is never urgent
AUDIO_EXTENSIONS = frozenset({".flac", ".mp3", ".m4a", ".ogg", ".oga", ".opus"})
CHUNK_FILES = 1000
CHUNK_SECONDS = 20.0
MAX_DEPTH = 64  # deeper folders are reported, not walked
ORPHAN_GRACE_S = 3600.0
OUTCOMES = ("added", "changed", "unchanged", "moved", "removed", "error")
_MAX_LOGGED = 100_000

SQL_SCAN_GET = "SELECT * FROM library_scans WHERE id = ?"
SQL_SCAN_LAST = "SELECT * FROM library_scans ORDER BY id DESC LIMIT 1"
SQL_SCAN_RUNNING = "SELECT * FROM library_scans WHERE state = 'running'"
SQL_SCAN_INSERT = """
    INSERT INTO library_scans (state, started_at, updated_at) VALUES ('running', ?, ?) RETURNING *
"""
SQL_SCAN_PROGRESS = """
    UPDATE library_scans SET checkpoint = ?, files = files + ?, added = added + ?, changed = changed + ?,
        unchanged = unchanged + ?, moved = moved + ?, errors = errors + ?, updated_at = ?
    WHERE id = ?
"""
SQL_SCAN_DONE = """
    UPDATE library_scans SET state = 'done', removed = removed + ?, finished_at = ?, updated_at = ?
    WHERE id = ? AND state = 'running'
"""
SQL_SCAN_FAIL = """
    UPDATE library_scans SET state = 'failed', error = ?, finished_at = ?, updated_at = ?
    WHERE id = ? AND state = 'running'
"""
# The index rows in one chunk's path range (the checkpoint before it, exclusive, to its last path).
SQL_RANGE = (
    "SELECT id, path, size, mtime, scanned_at, missing_scan FROM library_tracks WHERE path > ? AND path <= ?"
)
SQL_RANGE_TAIL = "SELECT id, path, size, mtime, scanned_at, missing_scan FROM library_tracks WHERE path > ?"
SQL_BY_PATH = "SELECT id FROM library_tracks WHERE path = ?"
SQL_MARK_MISSING = "UPDATE library_tracks SET missing_scan = ? WHERE id = ?"
SQL_MISSING = "SELECT id, path FROM library_tracks WHERE missing_scan = ?"
SQL_UNMARK = "UPDATE library_tracks SET missing_scan = NULL WHERE missing_scan = ?"
SQL_UNMARK_ONE = "UPDATE library_tracks SET missing_scan = NULL WHERE id = ? AND missing_scan = ?"
SQL_REMOVE_MISSING = "DELETE FROM library_tracks WHERE id = ? AND missing_scan = ?"
# A new file is a move of a row whose file is gone when it is the same recording: the same
# identity or Spotify id, and the same size and length (rows already found gone first).
SQL_MOVE_CANDIDATES = """
    SELECT id, path FROM library_tracks
    WHERE (identity = :identity OR (:spotify_id IS NOT NULL AND spotify_id = :spotify_id))
      AND size = :size AND duration_ms = :duration_ms AND path != :path
    ORDER BY missing_scan IS NULL, id
    LIMIT 20
"""
SQL_MOVE = """
    UPDATE library_tracks SET path = :path, identity = :identity, spotify_id = :spotify_id,
        spotify_album_id = :spotify_album_id, spotify_artist_ids = :spotify_artist_ids, isrc = :isrc,
        title = :title, artists = :artists, album = :album, album_artist = :album_artist,
        track_number = :track_number, disc_number = :disc_number, year = :year, format = :format,
        bitrate = :bitrate, bit_depth = :bit_depth, sample_rate = :sample_rate,
        duration_ms = :duration_ms, size = :size, mtime = :mtime, scanned_at = :scanned_at,
        search = :search, missing_scan = NULL
    WHERE id = :id AND path = :old_path
"""
# What slskd's download directory holds that a transfer claims (the import fills local_path).
SQL_CLAIMED = "SELECT local_path FROM transfers WHERE local_path IS NOT NULL"


@dataclass(frozen=True)
class Scan:
    """One row of `library_scans`: a scan's state, its checkpoint and its counters."""

    id: int
    state: str
    started_at: float
    updated_at: float
    finished_at: float | None
    checkpoint: str | None
    files: int
    added: int
    changed: int
    unchanged: int
    moved: int
    removed: int
    errors: int
    error: str | None

    @classmethod
    def from_row(cls, row: Row) -> Scan:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def to_dict(self, now: float) -> dict[str, Any]:
        """The row, with `elapsed_s` (until now while running) and `rate` in files per second."""
        end = self.finished_at or (now if self.state == "running" else self.updated_at)
        elapsed = max(0.0, end - self.started_at)
        rate = round(self.files / elapsed, 1) if elapsed > 0 else 0.0
        return {**self.__dict__, "elapsed_s": round(elapsed, 3), "rate": rate}


@dataclass(frozen=True)
class Orphan:
    """A file in slskd's download directory that no transfer claims; `path` is relative to it."""

    path: str
    size: int
    mtime: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Found:
    """A file the walk found: its relative path and its `lstat`."""

    path: str
    stat: os.stat_result


@dataclass(frozen=True)
class Problem:
    """Something the walk could not look at. `path` ends with `/` for a folder; `keep` says the
    index rows at or under it must not be taken for gone (it may be there, unreadable now)."""

    path: str
    reason: str
    keep: bool


Listing = list[tuple[str, bool]]  # a folder's entries: (sort key, is a folder), sorted


def walk(
    root: str,
    after: str | None = None,
    *,
    skip: frozenset[str] = frozenset(),
    audio_only: bool = True,
    listings: dict[str, tuple[int, Listing]] | None = None,
    folder: str = "",
    depth: int = 0,
) -> Iterator[Found | Problem]:
    """Files under `root/folder` (`folder` ends with `/`) with a relative path after `after`, in
    string order of the path, and what could not be looked at (`Problem`), in its place.
    `skip` holds relative folders (ending with `/`) not to enter; `audio_only` keeps only
    `AUDIO_EXTENSIONS`. Hidden names, symbolic links and anything but regular files and folders
    are passed over. `listings` keeps folder listings between calls (by folder, with the folder's
    mtime), so walks resumed one after another do not list the same big folders again.

    Sorting a folder's entries with `/` appended to folder names makes this depth-first walk
    yield paths in exactly their string order (a folder's paths all start with `name/`, and no
    name holds `/`), so a checkpoint is one path and a whole folder before it is skipped unread.
    """
    try:
        keyed = _listing(os.path.join(root, folder) if folder else root, audio_only, folder, listings)
    except FileNotFoundError:
        return  # it went away while we walked
    except OSError as exc:
        yield Problem(folder, f"cannot list the folder: {exc.strerror or exc}", keep=True)
        return
    start = 0
    if after is not None and after.startswith(folder):
        # Entries sorting before the checkpoint's own entry here lie wholly before it.
        head, slash, _ = after[len(folder) :].partition("/")
        start = bisect.bisect_left(keyed, head + slash, key=lambda item: item[0])
    for key, is_dir in keyed[start:]:
        path = folder + key
        if is_dir and (path in skip or (after is not None and path < after and not after.startswith(path))):
            continue  # skipped, or wholly at or before the checkpoint
        if not is_dir and after is not None and path <= after:
            continue
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            # Undecodable bytes arrive as lone surrogates, which no text column or JSON can hold.
            shown = os.fsencode(path).decode("utf-8", "backslashreplace")
            yield Problem(shown, "the name is not valid UTF-8; rename it to index it", keep=False)
            continue
        if is_dir:
            if depth >= MAX_DEPTH:
                yield Problem(path, f"nested more than {MAX_DEPTH} folders deep", keep=True)
                continue
            yield from walk(
                root, after, skip=skip, audio_only=audio_only, listings=listings, folder=path, depth=depth + 1
            )
            continue
        try:
            yield Found(path, os.lstat(os.path.join(root, path)))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            yield Problem(path, f"cannot stat the file: {exc.strerror or exc}", keep=True)


def _listing(
    path: str, audio_only: bool, folder: str, cache: dict[str, tuple[int, Listing]] | None
) -> Listing:
    """The folder's entries worth walking, sorted by their walk key; from `cache` while the
    folder's mtime (which any entry added, removed or renamed moves) is unchanged."""
    if cache is not None:
        mtime = os.stat(path).st_mtime_ns
        hit = cache.get(folder)
        if hit is not None and hit[0] == mtime:
            return hit[1]
    keyed: Listing = []
    with os.scandir(path) as listing:
        for entry in listing:
            name = entry.name
            if name.startswith("."):
                continue  # hidden, Harmony's .harmony-* temporary files among them
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = not is_dir and entry.is_file(follow_symlinks=False)
            except OSError:
                continue
            if not (is_dir or is_file):
                continue  # symbolic links, devices, pipes, sockets
            if is_file and audio_only and os.path.splitext(name)[1].lower() not in AUDIO_EXTENSIONS:
                continue
            keyed.append((name + "/" if is_dir else name, is_dir))
    keyed.sort()
    if cache is not None:
        cache[folder] = (mtime, keyed)
    return keyed


def _under(path: str, kept: str) -> bool:
    """`path` is `kept`, or lies in the folder `kept` (ending with `/`; "" is the root)."""
    return path == kept or ((kept == "" or kept.endswith("/")) and path.startswith(kept))


def _inside(root: str, path: str) -> str | None:
    """`path` relative to `root` with a trailing `/` when it lies strictly inside, else None."""
    root, path = os.path.realpath(root), os.path.realpath(path)
    if path == root or os.path.commonpath([root, path]) != root:
        return None
    return os.path.relpath(path, root).replace(os.sep, "/") + "/"


def _read(root: str, found: Found) -> Entry:
    """The entry for a file the walk found. Untagged files are named by their file name, and a
    file with no album artist is filed under its first artist, as players show them."""
    full = os.path.join(root, found.path)
    tags = read_tags(full, cover=False)
    info = audio_info(full)
    if not tags.title:
        tags = dataclasses.replace(tags, title=os.path.splitext(posixpath.basename(found.path))[0])
    if not tags.album_artist and tags.artists:
        tags = dataclasses.replace(tags, album_artist=tags.artists[0])
    return Entry.of(found.path, tags, info, found.stat.st_size, found.stat.st_mtime)


def _gone(root: str, path: str) -> bool:
    try:
        os.lstat(os.path.join(root, path))
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False  # there, but not readable now: not gone
    return False


@dataclass
class _Chunk:
    """What one chunk of a scan found, before it is written."""

    walked: set[str] = field(default_factory=set)  # every path found, read or not
    keep: list[str] = field(default_factory=list)  # paths (or folders, ending in /) not to take for gone
    # Files read: the entry, whether its path was indexed, and the gone rows it may have moved from.
    read: list[tuple[Entry, bool, list[tuple[int, str]]]] = field(default_factory=list)
    unchanged: int = 0
    errors: int = 0  # the walk's problems and the files that could not be read
    problems: int = 0  # the walk's: names that are not UTF-8, folders it could not list
    last: str | None = None  # the last path found: the next checkpoint
    added: int = 0  # set when written
    changed: int = 0
    moved: int = 0


class Library:
    """Library scans and the orphan report, built in the composition root.

    `run` is the `library.scan` job handler, `tick` the `library_scan` task (start a scan every
    `library.scan_interval`, and resume one whose job went missing), `sweep` the
    `library_orphans` task. `chunk` and `slice_s` bound one job's work.
    """

    def __init__(
        self,
        db: Database,
        queue: Queue,
        metrics: Metrics,
        live: Callable[[], Config],
        *,
        clock: Callable[[], float] = time.time,
        chunk: int = CHUNK_FILES,
        slice_s: float = CHUNK_SECONDS,
    ) -> None:
        self.db, self.queue, self.metrics, self.live, self.clock = db, queue, metrics, live, clock
        self.chunk = chunk
        self.slice_s = slice_s
        self._logged: set[tuple[str, str]] = set()
        # The listings of the folders on the way to the running scan's checkpoint (see `walk`).
        self._listings: dict[str, tuple[int, Listing]] = {}
        self._listings_scan: int | None = None

    # --- the scan's row ---------------------------------------------------------------------

    def current(self) -> Scan | None:
        """The running scan, else the last one, else None."""
        row = self.db.query_one(SQL_SCAN_RUNNING) or self.db.query_one(SQL_SCAN_LAST)
        return Scan.from_row(row) if row else None

    def running(self) -> Scan | None:
        row = self.db.query_one(SQL_SCAN_RUNNING)
        return Scan.from_row(row) if row else None

    def status(self) -> dict[str, Any]:
        """The running or last scan as the API shows it, with `indexed`: the tracks in the index.
        Raises NotFound before the first scan."""
        scan = self.current()
        if scan is None:
            raise NotFound("no library scan has run yet; POST /api/v1/library/scan starts one")
        return {**scan.to_dict(self.clock()), "indexed": count_tracks(self.db)}

    def start(self, now: float | None = None) -> Scan:
        """Record a new scan and enqueue its first chunk. Raises Conflict while one runs."""
        now = self.clock() if now is None else now
        try:
            with self.db.write() as conn:
                scan = Scan.from_row(next(conn.execute(SQL_SCAN_INSERT, (now, now))))
                self._enqueue(scan.id)
        except apsw.ConstraintError:
            running = self.running()
            raise Conflict(
                "a library scan is already running", state="running", scan_id=running.id if running else None
            ) from None
        log.info("library_scan_started", extra={"fields": {"scan": scan.id}})
        return scan

    def _enqueue(self, scan_id: int) -> Job:
        return self.queue.enqueue(JOB, {"scan_id": scan_id}, key=f"{JOB}:{scan_id}", priority=JOB_PRIORITY)

    def _fail(self, scan_id: int, error: str) -> None:
        now = self.clock()
        with self.db.write() as conn:
            conn.execute(SQL_SCAN_FAIL, (error, now, now, scan_id))
            conn.execute(SQL_UNMARK, (scan_id,))
        log.warning("library_scan_failed", extra={"fields": {"scan": scan_id, "error": error}})

    # --- the task -----------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> Scan | None:
        """Task: keep a running scan's job alive (a scan whose job was dead-lettered fails with
        its error), else start a scan when `library.scan_interval` has passed since the last
        one began (at once when there never was one); 0 turns that off. Returns a scan started."""
        now = self.clock() if now is None else now
        scan = self.current()
        if scan is not None and scan.state == "running":
            job = self._enqueue(scan.id)
            if job.state == "dead":
                self._fail(scan.id, f"the scan's job failed: {job.last_error}")
            return None
        interval = float(self.live()["library.scan_interval"])
        if interval <= 0 or (scan is not None and now - scan.started_at < interval):
            return None
        try:
            return self.start(now)
        except Conflict:
            return None

    # --- the job ------------------------------------------------------------------------------

    def run(self, job: Job) -> None:
        """Job: look at the next chunk of files after the scan's checkpoint and commit it with the
        next chunk's job; after the last chunk, remove what is gone and end the scan."""
        scan_id = job.payload.get("scan_id")
        if not isinstance(scan_id, int):
            raise GiveUp("library scan job without a scan id")
        row = self.db.query_one(SQL_SCAN_GET, (scan_id,))
        if row is None or row["state"] != "running":
            return
        scan = Scan.from_row(row)
        config = self.live()
        root = os.path.realpath(config.library_dir)
        if not os.path.isdir(root):
            self._fail(scan.id, f"the library root {root} does not exist or is not a folder (library.dir)")
            return
        skip = frozenset(
            rel for rel in (_inside(root, config.quarantine_dir), _inside(root, config.downloads_dir)) if rel
        )
        started = self.clock()
        chunk, done = self._look(root, scan, skip)
        if done:
            with self.db.write() as conn:
                committed = self._commit(conn, scan, chunk, started, done=True)
        else:
            # The chunk, this job's completion and the next chunk's job commit together.
            with self.queue.completing(job) as conn:
                committed = self._commit(conn, scan, chunk, started, done=False)
                if committed:
                    self._enqueue(scan.id)
        if committed:
            self._count(chunk)
        if done:
            self._finish(scan.id, root)

    def _look(self, root: str, scan: Scan, skip: frozenset[str]) -> tuple[_Chunk, bool]:
        """Walk the next chunk and read what is new or changed; nothing is written here. Returns
        the chunk and whether the walk reached the end."""
        chunk = _Chunk()
        deadline = time.monotonic() + self.slice_s
        found: list[Found] = []
        done = True
        if self._listings_scan != scan.id:
            self._listings, self._listings_scan = {}, scan.id
        for item in walk(root, scan.checkpoint, skip=skip, listings=self._listings):
            if isinstance(item, Problem):
                chunk.errors += 1
                chunk.problems += 1
                if item.keep:
                    chunk.keep.append(item.path)
                self._log_once(item.path, item.reason)
                continue
            found.append(item)
            chunk.last = item.path
            if len(found) >= self.chunk or time.monotonic() > deadline:
                done = False
                break
        last = chunk.last or ""
        self._listings = {f: v for f, v in self._listings.items() if not done and last.startswith(f)}
        if not found:
            return chunk, done
        low, high = scan.checkpoint or "", found[-1].path
        indexed = {row["path"]: row for row in self.db.query(SQL_RANGE, (low, high))}
        for item in found:
            chunk.walked.add(item.path)
            row = indexed.get(item.path)
            if row is not None and row["size"] == item.stat.st_size and row["mtime"] == item.stat.st_mtime:
                chunk.unchanged += 1
                continue
            try:
                entry = _read(root, item)
            except FileNotFoundError:
                chunk.walked.discard(item.path)  # gone since the walk saw it
                continue
            except Exception as exc:  # one bad file must never end a scan
                reason = exc.reason if isinstance(exc, NotAudio) else f"{type(exc).__name__}: {exc}"
                chunk.errors += 1
                chunk.keep.append(item.path)
                self._log_once(item.path, reason, item.stat)
                continue
            moves = [] if row is not None else self._gone_copies(root, entry)
            chunk.read.append((entry, row is not None, moves))
        return chunk, done

    def _gone_copies(self, root: str, entry: Entry) -> list[tuple[int, str]]:
        """Indexed copies of this recording whose file is gone: the rows it may have moved from."""
        args = {
            "identity": entry.identity,
            "spotify_id": entry.spotify_id,
            "size": entry.size,
            "duration_ms": entry.duration_ms,
            "path": entry.path,
        }
        rows = list(self.db.conn().execute(SQL_MOVE_CANDIDATES, args))
        return [(row["id"], row["path"]) for row in rows if _gone(root, row["path"])]

    def _commit(
        self, conn: apsw.Connection, scan: Scan, chunk: _Chunk, started: float, *, done: bool
    ) -> bool:
        """Write one chunk in the caller's transaction. False (nothing written) if the scan has
        ended or this chunk was written already (a second delivery of the same job)."""
        rows = list(conn.execute(SQL_SCAN_GET, (scan.id,)))
        if not rows or rows[0]["state"] != "running" or rows[0]["checkpoint"] != scan.checkpoint:
            return False
        now = self.clock()
        added = changed = moved = 0
        claimed: set[int] = set()
        for entry, indexed, moves in chunk.read:
            if not indexed and not any(True for _ in conn.execute(SQL_BY_PATH, (entry.path,))):
                for row_id, old_path in moves:
                    if row_id in claimed:
                        continue
                    conn.execute(SQL_MOVE, {**_values(entry, now), "id": row_id, "old_path": old_path})
                    if conn.changes():
                        claimed.add(row_id)
                        moved += 1
                        log.info("library_moved", extra={"fields": {"from": old_path, "to": entry.path}})
                        break
                else:
                    record(conn, entry, now)
                    added += 1
                continue
            record(conn, entry, now)
            changed += 1
        # Rows in this chunk's range the walk did not find are gone, unless written since the
        # chunk began (an import) or under something the walk could not read.
        low = scan.checkpoint or ""
        high = None if done else chunk.last
        in_range = (
            conn.execute(SQL_RANGE_TAIL, (low,)) if high is None else conn.execute(SQL_RANGE, (low, high))
        )
        for row in list(in_range):
            path = row["path"]
            if path in chunk.walked or row["scanned_at"] >= started or row["missing_scan"] == scan.id:
                continue
            if any(_under(path, kept) for kept in chunk.keep):
                continue
            conn.execute(SQL_MARK_MISSING, (scan.id, row["id"]))
        checkpoint = chunk.last if chunk.last is not None else scan.checkpoint
        looked = len(chunk.walked) + chunk.problems
        progress = (checkpoint, looked, added, changed, chunk.unchanged, moved, chunk.errors, now, scan.id)
        conn.execute(SQL_SCAN_PROGRESS, progress)
        chunk.added, chunk.changed, chunk.moved = added, changed, moved
        return True

    def _count(self, chunk: _Chunk) -> None:
        counter = self.metrics.library_scan_files
        for outcome, n in (
            ("added", chunk.added),
            ("changed", chunk.changed),
            ("unchanged", chunk.unchanged),
            ("moved", chunk.moved),
            ("error", chunk.errors),
        ):
            if n:
                counter.labels(outcome).inc(n)

    def _finish(self, scan_id: int, root: str) -> None:
        """The walk is over: remove the rows whose file is still gone and end the scan, unless the
        scan found no audio file at all while the index had some (a disk not mounted)."""
        row = self.db.query_one(SQL_SCAN_GET, (scan_id,))
        if row is None or row["state"] != "running":
            return
        missing = self.db.query(SQL_MISSING, (scan_id,))
        if not os.path.isdir(root):
            self._fail(scan_id, f"the library root {root} went away during the scan; nothing was removed")
            return
        if missing and row["files"] == 0:
            self._fail(
                scan_id,
                f"found no audio files under {root} while the index holds {count_tracks(self.db)}: "
                "is the disk mounted? nothing was removed",
            )
            return
        gone = [m for m in missing if _gone(root, m["path"])]
        back = [m for m in missing if m not in gone]
        now = self.clock()
        removed = 0
        with self.db.write() as conn:
            for m in gone:
                conn.execute(SQL_REMOVE_MISSING, (m["id"], scan_id))
                removed += conn.changes()
            for m in back:
                conn.execute(SQL_UNMARK_ONE, (m["id"], scan_id))
            conn.execute(SQL_SCAN_DONE, (removed, now, now, scan_id))
            ended = conn.changes() == 1
        if not ended:
            return
        if removed:
            self.metrics.library_scan_files.labels("removed").inc(removed)
        scan = Scan.from_row(self.db.query_one(SQL_SCAN_GET, (scan_id,)) or row)
        log.info("library_scan_done", extra={"fields": scan.to_dict(now)})

    def _log_once(self, path: str, reason: str, stat: os.stat_result | None = None) -> None:
        """Warn about a file or folder once per process (per size and mtime for a file), so a
        broken file in a library rescanned daily does not fill the log."""
        key = (path, f"{stat.st_size}:{stat.st_mtime}" if stat else reason)
        if key in self._logged:
            return
        if len(self._logged) < _MAX_LOGGED:
            self._logged.add(key)
        log.warning("library_unreadable", extra={"fields": {"path": path, "reason": reason}})

    # --- metrics ------------------------------------------------------------------------------

    def progress(self) -> dict[str, float]:
        """For the scrape: whether a scan runs, the files it has looked at, and its rate."""
        scan = self.running()
        if scan is None:
            return {"running": 0.0, "files": 0.0, "rate": 0.0}
        view = scan.to_dict(self.clock())
        return {"running": 1.0, "files": float(scan.files), "rate": float(view["rate"])}

    # --- orphans ------------------------------------------------------------------------------

    def orphans(self, *, after: tuple[Any, ...] | None = None, limit: int = 50) -> list[Orphan]:
        """Files in slskd's download directory older than `ORPHAN_GRACE_S` that no transfer claims,
        by path; `after` is the last page's `(path,)`. Raises NotConfigured when
        `library.orphans` is off. Reads the folder on every call; changes nothing."""
        found = self._orphans()
        if after is not None:
            found = [o for o in found if o.path > after[0]]
        return found[:limit]

    def _orphans(self) -> list[Orphan]:
        config = self.live()
        if config["library.orphans"] == "off":
            raise NotConfigured("orphan reports are off (library.orphans = off)")
        root = os.path.realpath(config.downloads_dir)
        if not os.path.isdir(root):
            return []
        claimed = set()
        for row in self.db.query(SQL_CLAIMED):
            local = str(row["local_path"])
            absolute = os.path.realpath(local if os.path.isabs(local) else os.path.join(root, local))
            claimed.add(absolute)
        skip = frozenset(
            rel for rel in (_inside(root, config.quarantine_dir), _inside(root, config.library_dir)) if rel
        )
        cutoff = self.clock() - ORPHAN_GRACE_S
        out = []
        for item in walk(root, skip=skip, audio_only=False):
            if isinstance(item, Problem):
                continue  # a name that is not UTF-8 or an unreadable folder: not ours to judge
            if item.stat.st_mtime > cutoff or os.path.join(root, item.path) in claimed:
                continue
            out.append(Orphan(item.path, item.stat.st_size, item.stat.st_mtime))
        return out

    def sweep(self) -> int:
        """Task: count the orphans (`harmony_library_orphans`) and log a few; 0 when off."""
        try:
            found = self._orphans()
        except NotConfigured:
            found = []
        self.metrics.library_orphans.set(len(found))
        if found:
            sample = [o.path for o in found[:5]]
            log.info("library_orphans", extra={"fields": {"count": len(found), "first": sample}})
        return len(found)


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
