"""Backfill: owns `backfill_jobs` (the runs) and gives library files without Spotify ids their ids.

A run looks at every `library_tracks` row with no `spotify_id` (and, unless it retries them, not
tried before) in id order and asks Spotify which track the file is:

1. by ISRC, when the file's tags carry one: `isrc:<code>`; a result counts if its artists agree
   with the file's and its length is within `DURATION_TOLERANCE_S` (confidence 1);
2. by a fielded search, `track:"<title>" artist:"<primary artist>" album:"<album>"`, then without
   the album (a deluxe edition, a compilation); each result (at most 10: Development Mode's
   `limit`) is scored as the ranker scores a Soulseek file against a wanted track
   (`matching.identity`, with the file's tags standing in for the remote path and Spotify's
   metadata for the wanted track), so title, artists, length and album weigh as they do there.

A result is *eligible* when the identity score finds no problem (another artist credited, a
version the other lacks, a different title), the artists agree (some normalised credit of one,
word for word with spaces aside, lies within a credit of the other) and, when both lengths are
known, they agree within the tolerance. Its confidence is the identity score; an ineligible
result's is at most `RULED_OUT`, so no setting of `backfill.min_confidence` matches across
artists. The best eligible result at or above `backfill.min_confidence` (a live option, read once
a chunk) is recorded on the row: `spotify_id`, `spotify_album_id`, `spotify_artist_ids`,
`match_method` (`isrc` or `search`), `match_confidence` and `matched_at`. Below it the row gets
`matched_at` and the best confidence seen, with no ids, and the next run passes it by unless it
is asked to retry (`retry_unmatched`). This module writes no other column of `library_tracks`,
except `size` and `mtime` after a tag write-back, so the next rescan does not read the file
again.

Tag write-back (the run's `write_tags`): only the Spotify id fields are set
(`tags.write_spotify_ids`); every other tag, picture and frame the user's file carries stays as
it was. The change is made on a hidden copy in the same folder that then replaces the file, so a
crash leaves the old file or the new one, never a half-written one. The path is joined to the
library root and refused if it (or the real file behind a link) lies outside it.

Background work: `start` records a run and enqueues its first `backfill` job (key
`backfill:<run id>`). `Backfiller.run` (the handler) looks at up to `chunk` tracks or
`slice_s` seconds, committing each track's result with the run's progress and its
`checkpoint` (the last `library_tracks.id` looked at), then, in the job's completion, enqueues
the next chunk or finishes the run. A restart resumes from the checkpoint, so no track is
looked at twice in one run. While Spotify cools down (a long rate limit, the quota) the job is
handed back until the cooldown ends (`waiting_until` says when) and no attempt is counted; a
track that fails (an unreadable file, a refused query) counts in `errors` and the run goes on;
Spotify unreachable or refusing the app's credentials fails the job, which retries with
backoff, and on its last attempt the run is `failed`. One run at a time: a partial unique
index on the running state, and `start` raising Conflict.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import events, matching
from .config import Config
from .db import Database, Row, filters
from .errors import (
    Conflict,
    HarmonyError,
    NotConfigured,
    NotFound,
    UpstreamCoolingDown,
    UpstreamRejected,
    UpstreamUnavailable,
)
from .importer import library_file
from .jobs import GiveUp, Job, Later, Queue
from .metrics import Metrics
from .ranking import Preferences, Wanted
from .spotify import SERVICE, Spotify, Track
from .tags import NotAudio, write_spotify_ids

log = logging.getLogger(__name__)

JOB = "backfill"
STATES = ("running", "done", "failed")
OUTCOMES = ("matched_isrc", "matched_search", "unmatched", "error")
CHUNK = 50  # tracks a job looks at before it hands over to the next
SLICE_S = 20.0  # ... or seconds, whichever comes first: a chunk must not hold a worker for long
PRIORITY = -10  # behind the pipeline's own work: a backfill is never urgent
# The ranker's default length tolerance: outside it the identity score gives the length nothing.
DURATION_TOLERANCE_S = Preferences.duration_tolerance_s
# The most an ineligible result can score: below any sensible threshold, and said so in the docs.
RULED_OUT = 0.5
_ISRC = re.compile(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}")
# What a path may not carry: separators would make folders, controls and bidi overrides an unsafe path.
_UNSAFE = re.compile("[\\\\/\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FEATURING = re.compile(r"\s+(?:feat\.?|ft\.|featuring|with)\s.*$", re.IGNORECASE)
_QUALIFIER = re.compile(r"\s+(?:[(\[]|-\s).*$")
# Spotify's answers that say the app itself is refused (credentials, Premium, allowlist), not the query.
_SERVICE_STATUSES = frozenset({401, 403})

SQL_GET = "SELECT * FROM backfill_jobs WHERE id = ?"
SQL_RUNNING = "SELECT * FROM backfill_jobs WHERE state = 'running'"
SQL_INSERT = """
    INSERT INTO backfill_jobs (state, write_tags, retry_unmatched, started_at, updated_at, total)
    VALUES ('running', ?, ?, ?, ?, ?)
    RETURNING *
"""
# The tracks a run looks at: no Spotify id and, unless retrying, never tried. Walks
# `library_unmatched` in id order from the checkpoint.
SQL_TODO_WHERE = "spotify_id IS NULL AND id > ? AND (? OR matched_at IS NULL)"
SQL_NEXT = f"""
    SELECT id, path, title, artists, album, album_artist, track_number, disc_number, duration_ms,
        isrc, format
    FROM library_tracks WHERE {SQL_TODO_WHERE}
    ORDER BY id LIMIT ?
"""
SQL_COUNT = f"SELECT count(*) AS n FROM library_tracks WHERE {SQL_TODO_WHERE}"
SQL_MATCHED = """
    UPDATE library_tracks SET spotify_id = ?, spotify_album_id = ?, spotify_artist_ids = ?,
        match_method = ?, match_confidence = ?, matched_at = ?,
        size = coalesce(?, size), mtime = coalesce(?, mtime)
    WHERE id = ? AND spotify_id IS NULL
"""
SQL_UNMATCHED = """
    UPDATE library_tracks SET match_method = NULL, match_confidence = ?, matched_at = ?
    WHERE id = ? AND spotify_id IS NULL
"""
# One track's result joins the run's progress in the same transaction: checkpoint and counts
# never disagree with the rows. The checkpoint fences the track: a second worker on the same
# chunk (its predecessor's lease ran out mid-chunk) changes nothing.
SQL_PROGRESS = """
    UPDATE backfill_jobs SET checkpoint = ?, done = done + 1, matched = matched + ?,
        unmatched = unmatched + ?, errors = errors + ?, error = coalesce(?, error), updated_at = ?,
        waiting_until = NULL, total = max(total, done + 1)
    WHERE id = ? AND state = 'running' AND checkpoint < ?
"""
SQL_TOTAL = "UPDATE backfill_jobs SET total = done + ?, updated_at = ? WHERE id = ? AND state = 'running'"
SQL_WAITING = """
    UPDATE backfill_jobs SET waiting_until = ?, updated_at = ? WHERE id = ? AND state = 'running'
"""
SQL_ERROR = "UPDATE backfill_jobs SET error = ?, updated_at = ? WHERE id = ? AND state = 'running'"
SQL_FINISH = """
    UPDATE backfill_jobs SET state = ?, error = coalesce(?, error), finished_at = ?, updated_at = ?,
        waiting_until = NULL
    WHERE id = ? AND state = 'running'
    RETURNING *
"""


# --- the runs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One row of `backfill_jobs`: a backfill run and its progress. `total` is what was looked at
    plus what is left to look at, recounted each chunk (files come and go while it runs)."""

    id: int
    state: str
    write_tags: bool
    retry_unmatched: bool
    started_at: float
    updated_at: float
    finished_at: float | None
    checkpoint: int
    total: int
    done: int
    matched: int
    unmatched: int
    errors: int
    error: str | None
    waiting_until: float | None

    @classmethod
    def from_row(cls, row: Row) -> Run:
        values = dict(row)
        values["write_tags"] = bool(row["write_tags"])
        values["retry_unmatched"] = bool(row["retry_unmatched"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def get_run(db: Database, run_id: int) -> Run:
    """The run, or NotFound."""
    row = db.query_one(SQL_GET, (run_id,))
    if row is None:
        raise NotFound(f"no backfill run {run_id}", id=run_id)
    return Run.from_row(row)


def list_runs(
    db: Database, *, after: tuple[Any, ...] | None = None, limit: int = 50, state: str | None = None
) -> list[Run]:
    """Runs newest first; `after` is the (id,) of the last run of the previous page."""
    where, args = filters(state=state)
    if after is not None:
        where += " AND id < ?"
        args += (after[0],)
    rows = db.query(f"SELECT * FROM backfill_jobs WHERE 1{where} ORDER BY id DESC LIMIT ?", (*args, limit))
    return [Run.from_row(row) for row in rows]


# --- matching (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryFile:
    """What the index knows of one file, for matching: its tags, its length and its path."""

    id: int
    path: str
    title: str
    artists: tuple[str, ...]
    album: str = ""
    album_artist: str = ""
    track_number: int | None = None
    disc_number: int | None = None
    duration_ms: int = 0
    isrc: str | None = None
    format: str = ""

    @classmethod
    def from_row(cls, row: Row) -> LibraryFile:
        values = dict(row)
        try:
            artists = json.loads(row["artists"] or "[]")
        except ValueError:
            artists = []
        values["artists"] = tuple(a for a in artists if isinstance(a, str) and a)
        return cls(**values)

    @property
    def credits(self) -> tuple[str, ...]:
        """The names the file is credited to: its artists, and its album artist."""
        return tuple(dict.fromkeys(n for n in (*self.artists, self.album_artist) if n.strip()))


@dataclass(frozen=True)
class Judgement:
    """How well one Spotify track fits one file. `eligible` says it may be matched at all;
    `confidence` is in [0, 1] and at most `RULED_OUT` when it may not."""

    track: Track
    confidence: float
    eligible: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    """A file's result: `method` is `isrc` or `search` with its `track`, or None when nothing was
    good enough; `confidence` is the match's, or the best seen."""

    method: str | None
    track: Track | None
    confidence: float


def _component(text: str) -> str:
    """One path component from tag text: no separators or control characters; dots alone are nothing."""
    text = " ".join(_UNSAFE.sub(" ", text).split()).lstrip("@")
    return "" if not text.strip(". ") else text


def as_path(file: LibraryFile) -> str:
    """The file's tags as a path the ranker's identity score reads: an artist folder, an album
    folder and the name `NN Title - Artists.ext`. Tags rather than the file's own path: the path
    was chosen by whoever filed it, the tags say what it is. The title comes first because the
    score claims the first span that spells it: a title that is also a word of the artist's
    name ("Paper" by The Paper Lanterns) must be found as the title."""
    folder = _component(file.album_artist or (file.artists[0] if file.artists else ""))
    album = _component(file.album)
    credits = _component(", ".join(file.artists))
    title = _component(file.title)
    number = f"{file.track_number:02d} " if file.track_number else ""
    stem = f"{number}{title} - {credits}" if credits else f"{number}{title}"
    return "\\".join([*(f for f in (folder, album) if f), f"{stem}.{_component(file.format) or 'flac'}"])


def _names(credits: Iterable[str]) -> set[tuple[str, ...]]:
    return {words for name in credits if (words := tuple(matching.normalise_artist(name).split()))}


def artists_agree(ours: Iterable[str], theirs: Iterable[str]) -> bool:
    """Some normalised credit of one side lies, word for word (or with the spaces gone: "ACDC"
    is "AC/DC"), within a credit of the other: "A & B" agrees with "A"."""
    mine, yours = _names(ours), _names(theirs)
    return any(
        a == b or matching.find(a, b) is not None or matching.find(b, a) is not None
        for a in mine
        for b in yours
    )


def wanted(track: Track) -> Wanted:
    """A Spotify track as the ranker's identity score takes it."""
    names = tuple(a.name for a in track.artists if a.name)
    album = track.album
    return Wanted(
        artist=names[0] if names else "",
        title=track.name,
        artists=names,
        album=album.name if album else "",
        album_artist=album.artists[0].name if album and album.artists else "",
        track_number=track.track_number,
        disc_number=track.disc_number,
        duration_ms=track.duration_ms or None,
        isrc=track.isrc,
    )


def lengths_agree(file: LibraryFile, track: Track, tolerance_s: float = DURATION_TOLERANCE_S) -> bool:
    """Within the tolerance, or one of them unknown."""
    if file.duration_ms <= 0 or track.duration_ms <= 0:
        return True
    return abs(file.duration_ms - track.duration_ms) <= tolerance_s * 1000


def judge(file: LibraryFile, track: Track, tolerance_s: float = DURATION_TOLERANCE_S) -> Judgement:
    """Score `track` as the file: the identity score of the file's tags (as a path) against the
    track, ruled out by any of its problems, by artists that do not agree, or by lengths that do not."""
    target = wanted(track)
    length_s = file.duration_ms / 1000 if file.duration_ms > 0 else None
    found = matching.identity(as_path(file), target, length_s, tolerance_s)
    problems = list(found.problems)
    if not artists_agree(file.credits, target.artists or (target.artist,)):
        problems.append("no artist in common")
    if not lengths_agree(file, track, tolerance_s):
        problems.append("length differs")
    score = min(1.0, max(0.0, found.score))
    confidence = score if not problems else min(score, RULED_OUT)
    return Judgement(track, round(confidence, 4), not problems, (*found.reasons, *problems))


def best(
    file: LibraryFile, tracks: Sequence[Track], tolerance_s: float = DURATION_TOLERANCE_S
) -> Judgement | None:
    """The most confident eligible result, else the most confident one; ties go to Spotify's order."""
    judged = [judge(file, track, tolerance_s) for track in tracks if track.id and not track.is_local]
    return max(judged, key=lambda j: (j.eligible, j.confidence), default=None)


def by_isrc(
    file: LibraryFile, tracks: Sequence[Track], tolerance_s: float = DURATION_TOLERANCE_S
) -> Track | None:
    """The result of an ISRC search that is the file: the same ISRC (or none given), the artists
    agreeing and the length too; of several, the best identity score (the album's own release)."""
    hits = [
        judge(file, track, tolerance_s)
        for track in tracks
        if track.id
        and not track.is_local
        and track.isrc in (None, file.isrc)
        and artists_agree(file.credits, [a.name for a in track.artists])
        and lengths_agree(file, track, tolerance_s)
    ]
    found = max(hits, key=lambda j: j.confidence, default=None)
    return found.track if found else None


def _field(text: str) -> str:
    """A value for a search field filter: no quotes or unprintable characters, spaces collapsed."""
    return " ".join("".join(c if c.isprintable() and c != '"' else " " for c in text).split())


def _core(text: str) -> str:
    """A title or album without its bracketed or dashed qualifiers, unless nothing would be left:
    Spotify's search wants every word it is given, and editions are spelt many ways."""
    core = _QUALIFIER.sub("", text).strip()
    return core or text.strip()


def isrc(file: LibraryFile) -> str | None:
    """The file's ISRC in its canonical form (12 characters, no dashes), if it has a valid one."""
    code = re.sub(r"[^0-9A-Za-z]", "", file.isrc or "").upper()
    return code if _ISRC.fullmatch(code) else None


def queries(file: LibraryFile) -> list[str]:
    """The fielded searches for a file, narrowest first: with the album when known, then without."""
    title = _field(_core(file.title))
    if not title:
        return []
    primary = file.artists[0] if file.artists else file.album_artist
    artist = _field(_FEATURING.sub("", primary))
    base = f'track:"{title}"' + (f' artist:"{artist}"' if artist else "")
    album = _field(_core(file.album))
    return [f'{base} album:"{album}"', base] if album else [base]


# --- the work -----------------------------------------------------------------------------------


def _service_refusal(exc: UpstreamRejected) -> bool:
    """Spotify refusing the app itself (credentials, Premium, allowlist): every track would fail."""
    return exc.details.get("status") in _SERVICE_STATUSES or "oauth_error" in exc.details


class Backfiller:
    """Starts runs and runs their chunks (the `backfill` job). Built in the composition root."""

    def __init__(
        self,
        db: Database,
        spotify: Spotify,
        queue: Queue,
        metrics: Metrics,
        live: Callable[[], Config],
        library_dir: str,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        chunk: int = CHUNK,
        slice_s: float = SLICE_S,
    ) -> None:
        self.db = db
        self.spotify = spotify
        self.queue = queue
        self.metrics = metrics
        self.live = live
        self.library_dir = library_dir
        self.clock = clock
        self.monotonic = monotonic
        self.chunk = chunk
        self.slice_s = slice_s

    # --- starting ---------------------------------------------------------------------------

    def start(self, *, write_tags: bool | None = None, retry_unmatched: bool = False) -> Run:
        """Record a run and enqueue its first chunk. `write_tags` None takes `backfill.write_tags`.

        NotConfigured without a Spotify client id; Conflict while a run is running (naming it, and
        its job if that job is dead-lettered). A running run whose job has gone (purged) gets a
        new job here, so it resumes instead of blocking every later run."""
        if not self.spotify.configured:
            raise NotConfigured(
                "Spotify is not configured: backfill asks Spotify for each file's track; "
                "set spotify.client_id and spotify.client_secret"
            )
        if write_tags is None:
            write_tags = bool(self.live()["backfill.write_tags"])
        now = self.clock()
        with self.db.write() as conn:
            running = next(iter(conn.execute(SQL_RUNNING)), None)
            if running is not None:
                job = self._enqueue(running["id"])
            else:
                total = int(next(conn.execute(SQL_COUNT, (0, int(retry_unmatched))))["n"])
                row = next(conn.execute(SQL_INSERT, (int(write_tags), int(retry_unmatched), now, now, total)))
                created = Run.from_row(row)
                self._enqueue(created.id)
                events.record(
                    conn,
                    "backfill.started",
                    message=f"backfill run {created.id}: {total} tracks without Spotify ids",
                    data={"run_id": created.id, "total": total, "write_tags": write_tags},
                    now=now,
                )
        if running is not None:
            if job.state == "dead":
                raise Conflict(
                    f"backfill run {running['id']} is stopped: its job {job.id} is dead-lettered "
                    f"({job.last_error}); requeue the job to resume the run",
                    run_id=running["id"],
                    job_id=job.id,
                    state="running",
                )
            message = f"a backfill is already running (run {running['id']})"
            raise Conflict(message, run_id=running["id"], state="running")
        log.info("backfill_started", extra={"fields": {"run": created.id, "total": created.total}})
        return created

    def _enqueue(self, run_id: int) -> Job:
        return self.queue.enqueue(JOB, {"run_id": run_id}, key=f"backfill:{run_id}", priority=PRIORITY)

    # --- the job ----------------------------------------------------------------------------

    def run(self, job: Job) -> None:
        """Job: one chunk of a run (see the module docstring)."""
        run_id = job.payload.get("run_id")
        if not isinstance(run_id, int) or isinstance(run_id, bool):
            raise GiveUp("backfill job without a run id")
        row = self.db.query_one(SQL_GET, (run_id,))
        if row is None or row["state"] != "running":
            return
        current = Run.from_row(row)
        if not self.spotify.configured:
            self._finish(job, current.id, "failed", "Spotify is not configured")
            return
        cooling = self.spotify.upstream.cooldown(SERVICE)
        if cooling is not None:
            self._wait(current.id, cooling[0], cooling[1])
        threshold = float(self.live()["backfill.min_confidence"])
        started = self.monotonic()
        rows = self.db.query(SQL_NEXT, (current.checkpoint, int(current.retry_unmatched), self.chunk))
        for track_row in rows:
            if self.monotonic() - started >= self.slice_s:
                break
            try:
                self._one(current, LibraryFile.from_row(track_row), threshold)
            except UpstreamCoolingDown as exc:
                self._wait(current.id, float(exc.details.get("until") or self.clock() + 60), exc.message)
            except (UpstreamUnavailable, UpstreamRejected, NotConfigured) as exc:
                message = f"Spotify: {exc.message}"
                if isinstance(exc, NotConfigured) or job.attempts >= job.max_attempts:
                    self._finish(job, current.id, "failed", message)
                    return
                with self.db.write() as conn:
                    conn.execute(SQL_ERROR, (message[:500], self.clock(), current.id))
                raise
        with self.queue.completing(job) as conn:
            checkpoint = next(conn.execute(SQL_GET, (current.id,)))["checkpoint"]
            left = int(next(conn.execute(SQL_COUNT, (checkpoint, int(current.retry_unmatched))))["n"])
            if left:
                conn.execute(SQL_TOTAL, (left, self.clock(), current.id))
                self._enqueue(current.id)
            else:
                self._close(conn, current.id, "done", None)

    def _one(self, run: Run, file: LibraryFile, threshold: float) -> None:
        """Match one file, write its tags if asked, and commit its result with the run's progress.
        Spotify cooling down, unreachable or refusing the app propagates, with nothing recorded."""
        error: str | None = None
        found = Match(None, None, 0.0)
        written: tuple[int, float] | None = None
        try:
            found = self.match(file, threshold)
            if found.track is not None and run.write_tags:
                written = self._write_back(file, found.track)
        except UpstreamUnavailable:
            raise
        except UpstreamRejected as exc:
            if _service_refusal(exc):
                raise
            error = f"{file.path}: Spotify refused the search: {exc.message}"
        except (HarmonyError, OSError, NotAudio, ValueError) as exc:
            if isinstance(exc, NotConfigured):
                raise
            error = f"{file.path}: {exc}"
        now = self.clock()
        if error is not None:
            outcome = "error"
        elif found.track is not None:
            outcome = f"matched_{found.method}"
        else:
            outcome = "unmatched"
        counts = (outcome.startswith("matched"), outcome == "unmatched", outcome == "error")
        with self.db.write() as conn:
            conn.execute(
                SQL_PROGRESS, (file.id, *map(int, counts), error and error[:500], now, run.id, file.id)
            )
            if conn.changes() == 0:
                return  # a worker whose lease ran out got here first, or the run has ended
            if found.track is not None and error is None:
                track = found.track
                album_id = track.album.id if track.album and track.album.id else None
                size, mtime = written if written else (None, None)
                values = (json.dumps([a.id for a in track.artists if a.id]), found.method, found.confidence)
                conn.execute(SQL_MATCHED, (track.id, album_id, *values, now, size, mtime, file.id))
            elif outcome == "unmatched":
                conn.execute(SQL_UNMATCHED, (found.confidence, now, file.id))
        self.metrics.backfill_tracks.labels(outcome).inc()
        if error is not None:
            log.warning(
                "backfill_track_failed", extra={"fields": {"run": run.id, "track": file.id, "error": error}}
            )

    def match(self, file: LibraryFile, threshold: float) -> Match:
        """Ask Spotify which track `file` is: by ISRC, then by fielded searches (module docstring)."""
        code = isrc(file)
        if code:
            found = by_isrc(file, self.spotify.search(f"isrc:{code}", "track").items)
            if found is not None:
                return Match("isrc", found, 1.0)
        seen: Judgement | None = None
        for query in queries(file):
            judged = best(file, self.spotify.search(query, "track").items)
            if judged is not None and (
                seen is None or (judged.eligible, judged.confidence) > (seen.eligible, seen.confidence)
            ):
                seen = judged
            if seen is not None and seen.eligible and seen.confidence >= threshold:
                return Match("search", seen.track, seen.confidence)
        return Match(None, None, seen.confidence if seen else 0.0)

    # --- waiting and finishing ----------------------------------------------------------------

    def _wait(self, run_id: int, until: float, reason: str) -> None:
        """Record when the run resumes and hand the job back until then (no attempt counted)."""
        now = self.clock()
        with self.db.write() as conn:
            conn.execute(SQL_WAITING, (until, now, run_id))
        raise Later(max(1.0, until - now), reason)

    def _finish(self, job: Job, run_id: int, state: str, error: str | None) -> None:
        with self.queue.completing(job) as conn:
            self._close(conn, run_id, state, error)

    def _close(self, conn: Any, run_id: int, state: str, error: str | None) -> None:
        now = self.clock()
        rows = list(conn.execute(SQL_FINISH, (state, error and error[:500], now, now, run_id)))
        if not rows:
            return
        run = Run.from_row(rows[0])
        counts = {"done": run.done, "matched": run.matched, "unmatched": run.unmatched, "errors": run.errors}
        events.record(
            conn,
            "backfill.finished",
            code=state,
            message=f"backfill run {run_id} {state}: {run.matched} matched, {run.unmatched} unmatched, "
            f"{run.errors} errors" + (f" ({error})" if error else ""),
            data={"run_id": run_id, **counts},
            now=now,
        )
        log.info("backfill_finished", extra={"fields": {"run": run_id, "state": state, **counts}})

    # --- tag write-back -----------------------------------------------------------------------

    def _file(self, relative: str) -> str:
        """The file's real path inside the library root; ValueError if it (or a link) leads out."""
        path = os.path.realpath(library_file(self.library_dir, relative))
        root = os.path.realpath(self.library_dir)
        if os.path.commonpath([root, path]) != root or path == root:
            raise ValueError(f"{relative!r} leads outside the library root")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no file at {relative!r} in the library")
        return path

    def _write_back(self, file: LibraryFile, track: Track) -> tuple[int, float]:
        """Write the track's ids into the file's tags (the others as read); returns its new size and mtime."""
        path = self._file(file.path)
        track_id, album_id = track.id or "", track.album.id if track.album else ""
        artist_ids = tuple(a.id for a in track.artists if a.id)
        rewrite(path, lambda temp: write_spotify_ids(temp, track_id, album_id, artist_ids))
        st = os.stat(path)
        return st.st_size, st.st_mtime


def rewrite(path: str, edit: Callable[[str], None]) -> None:
    """Change the tags of the file at `path` with `edit` without ever leaving it half-written: edit
    a hidden copy in the same folder (its mode kept), fsync it, rename it over the file, fsync the
    folder."""
    directory, name = os.path.split(path)
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    temp = os.path.join(directory, f".harmony-backfill-{digest}.part")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)  # left by a crash
    try:
        # O_EXCL: never write through a file or link someone else put at the temporary name.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with open(fd, "wb") as out, open(path, "rb") as source:
            shutil.copyfileobj(source, out)
        shutil.copymode(path, temp)
        edit(temp)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fd = os.open(directory or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:
        pass  # some network filesystems cannot fsync a folder; the rename is done either way
    finally:
        os.close(fd)
