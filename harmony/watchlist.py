"""The watchlist: owns `artists`, `releases` and `artist_releases`; scans watched artists for
new releases and turns the wanted ones into wanted items.

Two pieces of background work, wired in the composition root:

- the `watchlist_dispatch` task enqueues a `artist.scan` job for every due artist (not
  paused, not cooling down), by priority then due time; each artist is due every
  `watchlist.interval`;
- `Watcher.scan` (job `artist.scan`) lists the artist's releases newest first, in the groups
  it wants, and stops at the first release it already knows. An unchanged artist costs one
  request: the first page, whose `total` and ids match what the last scan saw. The new releases
  are recorded in one transaction at the end, so a scan that fails halfway records nothing and
  the next scan finds them again; a release wanted by the artist's filters (its group, dated on
  or after the artist's `since`) gets a `release.expand` job in the same transaction;
- `Watcher.expand` (job `release.expand`) fetches the release's tracks, and each track (one
  request for its ISRC, never asked twice) becomes a wanted item through `wanted.want`.

Failures are recorded on the artist (code and text), never lose a release, and back off: a
rate limit waits for Spotify's `Retry-After`, a quota refusal for the quota cooldown, other
failures 1 h doubling to a day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from . import events, wanted
from .config import Config
from .db import Database, Row
from .errors import Conflict, HarmonyError, Invalid, NotFound, UpstreamCoolingDown, UpstreamUnavailable
from .jobs import GiveUp, Job, Later, Queue
from .metrics import Metrics
from .spotify import SERVICE, Album, AlbumRef, Spotify, parse_any_ref, parse_ref
from .spotify import Track as SpotifyTrack

log = logging.getLogger(__name__)

JOB = "artist.scan"
EXPAND_JOB = "release.expand"
EXPAND_RETRY_S = 60.0  # an expansion waits this long for Spotify to answer again
GROUPS = ("album", "single", "compilation", "appears_on")
DEFAULT_GROUPS = ("album", "single")
FAILURE_BACKOFF_S = 3600.0
FAILURE_BACKOFF_CAP_S = 86400.0
SORTS = ("name", "next_scan")

SQL_GET = "SELECT * FROM artists WHERE id = ?"
SQL_INSERT = """
    INSERT INTO artists (spotify_id, name, image_url, priority, release_groups, since, added_at, next_scan_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    RETURNING *
"""
# Due artists, most important first: one walk down `artists_due`.
SQL_DUE = """
    SELECT id, priority FROM artists
    WHERE paused = 0 AND next_scan_at <= ? AND (cooldown_until IS NULL OR cooldown_until <= ?)
    ORDER BY priority DESC, next_scan_at, id
    LIMIT ?
"""
SQL_KNOWN = """
    SELECT r.spotify_id FROM artist_releases ar JOIN releases r ON r.id = ar.release_id
    WHERE ar.artist_id = ?
"""
SQL_RELEASE_INSERT = """
    INSERT INTO releases (spotify_id, name, album_type, release_date, date_precision, total_tracks,
        image_url, artist_names, first_seen_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (spotify_id) DO UPDATE SET name = excluded.name
    RETURNING id, wanted, expanded_at
"""
SQL_SCANNED = """
    UPDATE artists SET last_scan_at = ?, last_success_at = ?, next_scan_at = ?, last_result_code = ?,
        last_result = ?, failures = 0, cooldown_until = NULL, known_total = ?
    WHERE id = ?
"""
SQL_SCAN_FAILED = """
    UPDATE artists SET last_scan_at = ?, next_scan_at = ?, last_result_code = ?, last_result = ?,
        failures = failures + ?, cooldown_until = ?
    WHERE id = ?
"""


@dataclass(frozen=True)
class Artist:
    """One row of `artists`."""

    id: int
    spotify_id: str
    name: str
    image_url: str
    paused: bool
    priority: int
    release_groups: tuple[str, ...]
    since: str
    added_at: float
    last_scan_at: float | None
    last_success_at: float | None
    next_scan_at: float
    last_result_code: str | None
    last_result: str | None
    failures: int
    cooldown_until: float | None
    known_total: int | None

    @classmethod
    def from_row(cls, row: Row) -> Artist:
        values = dict(row)
        values["paused"] = bool(row["paused"])
        values["release_groups"] = tuple(g for g in row["release_groups"].split(",") if g)
        return cls(**values)

    @property
    def state(self) -> str:
        """`paused`, `cooling_down`, `failing` or `ok`: what the list and the metrics show."""
        if self.paused:
            return "paused"
        if self.cooldown_until and self.cooldown_until > time.time():
            return "cooling_down"
        return "failing" if self.failures else "ok"

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["release_groups"] = list(self.release_groups)
        out["state"] = self.state
        return out


@dataclass(frozen=True)
class Release:
    """One row of `releases`."""

    id: int
    spotify_id: str
    name: str
    album_type: str
    release_date: str
    date_precision: str
    total_tracks: int
    total_discs: int | None
    image_url: str
    artist_names: tuple[str, ...]
    first_seen_at: float
    wanted: bool
    expanded_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> Release:
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["artist_names"] = tuple(json.loads(row["artist_names"]))
        values["wanted"] = bool(row["wanted"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["artist_names"] = list(self.artist_names)
        return out


# --- pure rules -----------------------------------------------------------------------------------


def parse_groups(value: object) -> tuple[str, ...]:
    """A list of release groups (`album`, `single` (Spotify files EPs here), `compilation`,
    `appears_on`), deduplicated in the canonical order; Invalid otherwise."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise Invalid(
            f"release_groups must be a non-empty list of {', '.join(GROUPS)}", field="release_groups"
        )
    unknown = sorted(set(value) - set(GROUPS))
    if unknown:
        raise Invalid(f"unknown release group(s): {', '.join(unknown)}", field="release_groups")
    return tuple(g for g in GROUPS if g in value)


def parse_since(value: object) -> str:
    """A `YYYY-MM-DD` date; Invalid otherwise."""
    if not isinstance(value, str):
        raise Invalid("since must be a date written YYYY-MM-DD", field="since")
    try:
        return dt.date.fromisoformat(value).isoformat() if len(value) == 10 else _bad_since()
    except ValueError:
        return _bad_since()


def _bad_since() -> str:
    raise Invalid("since must be a date written YYYY-MM-DD", field="since")


def is_wanted(release_date: str, group: str, groups: Sequence[str], since: str) -> bool:
    """A release is wanted when the artist wants its group and it is not dated before `since`.

    A release known only by year or month is wanted if any day of that period could be on or
    after `since`: the last day of its period is compared, so nothing new is missed."""
    if group not in groups or not release_date:
        return False
    parts = release_date.split("-")
    if len(parts) == 1:
        end = f"{parts[0]}-12-31"
    elif len(parts) == 2:
        end = f"{parts[0]}-{parts[1]}-31"
    else:
        end = release_date
    return end >= since


def backoff(failures: int) -> float:
    """Seconds before the next scan after `failures` consecutive failures: 1 h doubling to a day."""
    return min(FAILURE_BACKOFF_CAP_S, FAILURE_BACKOFF_S * 2 ** max(0, failures - 1))


# --- the watcher ------------------------------------------------------------------------------------


class Watcher:
    """Adds, changes and removes watched artists, and scans them (task and job handlers)."""

    def __init__(
        self,
        db: Database,
        spotify: Spotify,
        queue: Queue,
        metrics: Metrics,
        live: Callable[[], Config],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db, self.spotify, self.queue, self.metrics = db, spotify, queue, metrics
        self.live = live
        self.clock = clock

    # --- reading --------------------------------------------------------------------------------

    def get(self, artist_id: int) -> Artist:
        row = self.db.query_one(SQL_GET, (artist_id,))
        if row is None:
            raise NotFound(f"no watched artist {artist_id}", id=artist_id)
        return Artist.from_row(row)

    def list_artists(
        self,
        *,
        after: tuple[Any, ...] | None = None,
        limit: int = 50,
        paused: bool | None = None,
        failing: bool | None = None,
        sort: str = "name",
    ) -> list[Artist]:
        """One page of watched artists, by name (case-insensitive) or by next scan."""
        where = ""
        args: tuple[Any, ...] = ()
        if paused is not None:
            where += " AND paused = ?"
            args += (int(paused),)
        if failing is not None:
            where += " AND failures > 0" if failing else " AND failures = 0"
        if sort == "name":
            order = "name COLLATE NOCASE, id"
            if after is not None:
                where += " AND (name > ? COLLATE NOCASE OR (name = ? COLLATE NOCASE AND id > ?))"
                args += (after[0], after[0], after[1])
        else:
            order = "next_scan_at, id"
            if after is not None:
                where += " AND (next_scan_at > ? OR (next_scan_at = ? AND id > ?))"
                args += (after[0], after[0], after[1])
        rows = self.db.query(
            f"SELECT * FROM artists WHERE 1 {where} ORDER BY {order} LIMIT ?", (*args, limit)
        )
        return [Artist.from_row(row) for row in rows]

    def releases(
        self,
        *,
        after: tuple[Any, ...] | None = None,
        limit: int = 50,
        artist_id: int | None = None,
        group: str | None = None,
        since: str | None = None,
    ) -> list[Release]:
        """Known releases, newest first (release date, then id)."""
        where = ""
        args: tuple[Any, ...] = ()
        if artist_id is not None or group is not None:
            where += " AND id IN (SELECT release_id FROM artist_releases WHERE 1"
            if artist_id is not None:
                where += " AND artist_id = ?"
                args += (artist_id,)
            if group is not None:
                where += " AND release_group = ?"
                args += (group,)
            where += ")"
        if since is not None:
            where += " AND release_date >= ?"
            args += (since,)
        if after is not None:
            where += " AND (release_date < ? OR (release_date = ? AND id < ?))"
            args += (after[0], after[0], after[1])
        sql = f"SELECT * FROM releases WHERE 1 {where} ORDER BY release_date DESC, id DESC LIMIT ?"
        return [Release.from_row(row) for row in self.db.query(sql, (*args, limit))]

    def release(self, release_id: int) -> tuple[Release, list[wanted.Item]]:
        """A release and the wanted items of its tracks (by disc and track number)."""
        row = self.db.query_one("SELECT * FROM releases WHERE id = ?", (release_id,))
        if row is None:
            raise NotFound(f"no release {release_id}", id=release_id)
        items = wanted.list_items(self.db, release_id=release_id, limit=500, sort="age")
        items.sort(key=lambda i: (i.disc_number or 1, i.track_number or 0, i.id))
        return Release.from_row(row), items

    def counts(self) -> dict[str, int]:
        """Watched artists by state."""
        counts = dict.fromkeys(("ok", "failing", "cooling_down", "paused"), 0)
        now = self.clock()
        for row in self.db.query("SELECT paused, failures, cooldown_until FROM artists"):
            if row["paused"]:
                counts["paused"] += 1
            elif row["cooldown_until"] and row["cooldown_until"] > now:
                counts["cooling_down"] += 1
            else:
                counts["failing" if row["failures"] else "ok"] += 1
        return counts

    # --- changing ---------------------------------------------------------------------------------

    def add(
        self,
        ref: str,
        *,
        release_groups: Sequence[str] | None = None,
        since: str | None = None,
        priority: int = 0,
        now: float | None = None,
    ) -> Artist:
        """Watch an artist given by id, URI or URL; Conflict if already watched. The first scan
        is due at once; `since` defaults to today, so a long back catalogue is not wanted."""
        spotify_id = parse_ref(ref, "artist")
        if self.db.query_one("SELECT id FROM artists WHERE spotify_id = ?", (spotify_id,)):
            raise Conflict(f"artist {spotify_id} is already watched", spotify_id=spotify_id)
        artist = self.spotify.artist(spotify_id)
        return self._insert(artist.id, artist.name, artist.image_url, release_groups, since, priority, now)

    def _insert(
        self,
        spotify_id: str,
        name: str,
        image_url: str,
        release_groups: Sequence[str] | None,
        since: str | None,
        priority: int,
        now: float | None,
    ) -> Artist:
        now = self.clock() if now is None else now
        groups = ",".join(release_groups or DEFAULT_GROUPS)
        since = since or dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()
        with self.db.write() as conn:
            try:
                row = next(
                    conn.execute(SQL_INSERT, (spotify_id, name, image_url, priority, groups, since, now, now))
                )
            except apsw.ConstraintError:
                raise Conflict(f"artist {spotify_id} is already watched", spotify_id=spotify_id) from None
            events.record(conn, "artist.added", artist_id=row["id"], message=f"watching {name}", now=now)
            self.queue.enqueue(JOB, {"artist_id": row["id"]}, key=f"scan:{row['id']}", priority=priority)
        return Artist.from_row(row)

    def import_followed(self, *, now: float | None = None) -> dict[str, Any]:
        """Watch every artist the connected Spotify user follows; returns what was added."""
        added, known = [], 0
        for artist in self.spotify.followed_artists():
            if self.db.query_one("SELECT id FROM artists WHERE spotify_id = ?", (artist.id,)):
                known += 1
                continue
            added.append(self._insert(artist.id, artist.name, artist.image_url, None, None, 0, now).to_dict())
        return {"added": added, "already_watched": known}

    def update(self, artist_id: int, changes: dict[str, Any]) -> Artist:
        """Change `paused`, `priority`, `release_groups` or `since` (each checked first)."""
        sets: dict[str, Any] = {}
        if "paused" in changes:
            if not isinstance(changes["paused"], bool):
                raise Invalid("paused must be true or false", field="paused")
            sets["paused"] = int(changes["paused"])
        if "priority" in changes:
            priority = changes["priority"]
            if isinstance(priority, bool) or not isinstance(priority, int) or not -1000 <= priority <= 1000:
                raise Invalid("priority must be an integer from -1000 to 1000", field="priority")
            sets["priority"] = priority
        if "release_groups" in changes:
            sets["release_groups"] = ",".join(parse_groups(changes["release_groups"]))
        if "since" in changes:
            sets["since"] = parse_since(changes["since"])
        with self.db.write() as conn:
            current = self.get(artist_id)
            if sets:
                assignments = ", ".join(f"{column} = ?" for column in sets)
                conn.execute(f"UPDATE artists SET {assignments} WHERE id = ?", (*sets.values(), artist_id))
                if "paused" in sets and bool(sets["paused"]) != current.paused:
                    verb = "paused" if sets["paused"] else "resumed"
                    events.record(
                        conn, f"artist.{verb}", artist_id=artist_id, message=f"{verb} {current.name}"
                    )
                if {"release_groups", "since"} & set(sets):
                    # The filters changed: the next scan walks the whole list again.
                    conn.execute(
                        "UPDATE artists SET known_total = NULL, next_scan_at = ? WHERE id = ?",
                        (self.clock(), artist_id),
                    )
        return self.get(artist_id)

    def delete(self, artist_id: int) -> dict[str, int]:
        """Stop watching. Items wanted only through this artist's releases, and not yet being
        downloaded or done, are withdrawn (each with an event)."""
        outcomes: dict[str, int] = {}
        with self.db.write() as conn:
            artist = self.get(artist_id)
            rows = list(
                conn.execute(
                    "SELECT item_id, source_key FROM wanted_sources WHERE artist_id = ? AND kind = 'release'",
                    (artist_id,),
                )
            )
            why = f"no longer watching {artist.name}"
            for row in rows:
                outcome = wanted.withdraw(conn, row["item_id"], [row["source_key"]], why)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            conn.execute("DELETE FROM artists WHERE id = ?", (artist_id,))
            events.record(conn, "artist.removed", artist_id=artist_id, message=why, data=outcomes)
        return outcomes

    def request_scan(self, artist_id: int) -> Job:
        """Scan now (a job ahead of the schedule), paused or not."""
        artist = self.get(artist_id)
        return self.queue.enqueue(
            JOB, {"artist_id": artist.id, "manual": True}, key=f"scan:{artist.id}", priority=100
        )

    # --- background ---------------------------------------------------------------------------------

    def dispatch(self, now: float | None = None) -> int:
        """Task: enqueue a scan of every due artist (at most `watchlist.batch` a run). Nothing is
        enqueued while Spotify is cooling down."""
        now = self.clock() if now is None else now
        if self.spotify.upstream.cooldown(SERVICE) is not None:
            return 0
        rows = self.db.query(SQL_DUE, (now, now, self.live()["watchlist.batch"]))
        for row in rows:
            self.queue.enqueue(
                JOB, {"artist_id": row["id"]}, key=f"scan:{row['id']}", priority=row["priority"]
            )
        return len(rows)

    def scan(self, job: Job) -> None:
        """Job: one artist's scan (see the module docstring)."""
        artist_id = job.payload.get("artist_id")
        if not isinstance(artist_id, int):
            raise GiveUp("scan job without an artist id")
        row = self.db.query_one(SQL_GET, (artist_id,))
        if row is None:
            return  # unwatched since
        artist = Artist.from_row(row)
        if artist.paused and not job.payload.get("manual"):
            return
        now = self.clock()
        try:
            new, total, requests = self._new_releases(artist)
        except UpstreamCoolingDown as exc:
            until = float(exc.details.get("until") or now + FAILURE_BACKOFF_S)
            code = "quota" if exc.details.get("kind") == "quota" else "rate_limited"
            self._failed(artist, code, exc.message, until=until, now=now, count=False)
            return
        except NotFound:
            self._failed(artist, "not_found", "Spotify no longer has this artist", now=now)
            return
        except HarmonyError as exc:
            self._failed(artist, "failed", exc.message, now=now)
            return
        self._record(artist, new, total, requests, now)

    def _new_releases(self, artist: Artist) -> tuple[list[tuple[AlbumRef, str]], int, int]:
        """(new releases with their group, the listing's total, requests spent)."""
        known = {row["spotify_id"] for row in self.db.query(SQL_KNOWN, (artist.id,))}
        groups = artist.release_groups
        first, total = self.spotify.artist_albums_page(artist.spotify_id, groups, 0)
        requests = 1
        if artist.known_total == total and all(album.id in known for album in first):
            return [], total, requests
        new: list[tuple[AlbumRef, str]] = []
        seen: set[str] = set()
        for group in groups:
            offset = 0
            while True:
                page, group_total = self.spotify.artist_albums_page(artist.spotify_id, (group,), offset)
                requests += 1
                fresh = [album for album in page if album.id not in known]
                for album in fresh:
                    if album.id not in seen:
                        seen.add(album.id)
                        new.append((album, group))
                offset += len(page)
                # Newest first: the first known release means the rest of this group is known too.
                if len(fresh) < len(page) or not page or offset >= group_total:
                    break
        return new, total, requests

    def _record(
        self, artist: Artist, new: list[tuple[AlbumRef, str]], total: int, requests: int, now: float
    ) -> None:
        interval = self.live()["watchlist.interval"]
        wanted_count = 0
        with self.db.write() as conn:
            for album, group in new:
                want = is_wanted(album.release_date, group, artist.release_groups, artist.since)
                release_id = self._remember(conn, artist, album, group, want, now)
                if want:
                    wanted_count += 1
                    self.queue.enqueue(
                        EXPAND_JOB,
                        {"release_id": release_id, "artist_id": artist.id, "group": group},
                        key=f"expand:{release_id}",
                        priority=artist.priority,
                    )
            code = "new_releases" if new else "unchanged"
            message = (
                f"{len(new)} new release(s), {wanted_count} wanted" if new else "no new releases"
            ) + f" ({requests} request{'s' if requests != 1 else ''})"
            conn.execute(SQL_SCANNED, (now, now, now + interval, code, message, total, artist.id))
            events.record(
                conn,
                "artist.scan",
                artist_id=artist.id,
                code=code,
                message=message,
                data={"new": len(new), "wanted": wanted_count, "requests": requests},
                now=now,
            )
        self.metrics.watchlist_scans.labels(code).inc()
        for _, group in new:
            self.metrics.releases_found.labels(group).inc()

    def _remember(
        self, conn: apsw.Connection, artist: Artist, album: AlbumRef, group: str, want: bool, now: float
    ) -> int:
        row = next(
            conn.execute(
                SQL_RELEASE_INSERT,
                (
                    album.id,
                    album.name,
                    album.album_type,
                    album.release_date,
                    album.release_date_precision,
                    album.total_tracks,
                    album.image_url,
                    json.dumps([a.name for a in album.artists], ensure_ascii=False),
                    now,
                ),
            )
        )
        conn.execute(
            "INSERT OR IGNORE INTO artist_releases (artist_id, release_id, release_group) VALUES (?, ?, ?)",
            (artist.id, row["id"], group),
        )
        if want:
            conn.execute("UPDATE releases SET wanted = 1 WHERE id = ?", (row["id"],))
        events.record(
            conn,
            "release.found",
            artist_id=artist.id,
            release_id=row["id"],
            code="wanted" if want else "not_wanted",
            message=f"{album.name} ({group}, {album.release_date or 'undated'})",
            now=now,
        )
        return int(row["id"])

    def _failed(
        self,
        artist: Artist,
        code: str,
        message: str,
        *,
        until: float | None = None,
        now: float,
        count: bool = True,
    ) -> None:
        failures = artist.failures + (1 if count else 0)
        until = until if until is not None else now + backoff(failures)
        with self.db.write() as conn:
            conn.execute(
                SQL_SCAN_FAILED, (now, until, code, message[:500], 1 if count else 0, until, artist.id)
            )
            events.record(conn, "artist.scan", artist_id=artist.id, code=code, message=message, now=now)
        self.metrics.watchlist_scans.labels(code).inc()
        log.warning(
            "artist_scan_failed", extra={"fields": {"artist": artist.id, "code": code, "error": message}}
        )

    def expand(self, job: Job) -> None:
        """Job: a wanted release's tracks become wanted items, one transaction per track so the
        work done survives a failure halfway; a retry asks only for what is missing."""
        release_id, artist_id = job.payload.get("release_id"), job.payload.get("artist_id")
        if not isinstance(release_id, int):
            raise GiveUp("expand job without a release id")
        row = self.db.query_one("SELECT * FROM releases WHERE id = ?", (release_id,))
        if row is None or row["expanded_at"] is not None:
            return
        artist = self.db.query_one(SQL_GET, (artist_id,)) if isinstance(artist_id, int) else None
        source = wanted.Source("release", artist_id=artist["id"] if artist else None, release_id=release_id)
        only_by = artist["spotify_id"] if artist and job.payload.get("group") == "appears_on" else None
        try:
            album = self.spotify.album(row["spotify_id"])
            discs = max((t.disc_number for t in album.tracks), default=1)
            for track in album.tracks:
                if only_by and only_by not in {a.id for a in track.artists}:
                    continue  # on a compilation, only the watched artist's own tracks
                self._want_track(track, album, discs, source)
        except UpstreamCoolingDown as exc:
            raise Later(max(1.0, float(exc.details.get("until") or 0) - self.clock()), exc.message) from None
        except UpstreamUnavailable as exc:
            # Spotify down or answering 5xx is no fault of the job: were it to spend its attempts
            # and die, the release's tracks would never be wanted (no later scan asks again).
            raise Later(EXPAND_RETRY_S, exc.message) from None
        except NotFound:
            raise GiveUp(f"Spotify no longer has release {row['spotify_id']}") from None
        with self.db.write() as conn:
            conn.execute(
                "UPDATE releases SET expanded_at = ?, total_discs = ? WHERE id = ?",
                (self.clock(), discs, release_id),
            )
            events.record(
                conn,
                "release.expanded",
                release_id=release_id,
                artist_id=source.artist_id,
                message=row["name"],
            )

    def _want_track(self, track: SpotifyTrack, album: Album, discs: int, source: wanted.Source) -> None:
        # An album's track list carries no ISRC: ask for the track once, unless an item has it.
        known = track.id and self.db.query_one("SELECT 1 FROM wanted_items WHERE spotify_id = ?", (track.id,))
        full = self.spotify.track(track.id) if track.id and not known else track
        with self.db.write() as conn:
            wanted.want(conn, to_wanted(full, album.ref, discs), source)


def to_wanted(track: SpotifyTrack, album: AlbumRef | None = None, discs: int | None = None) -> wanted.Track:
    """A Spotify track (and its album, when known) as the wanted list records it."""
    ref = album or track.album
    artists = tuple(a.name for a in track.artists)
    return wanted.Track(
        title=track.name,
        artists=artists,
        spotify_id=track.id,
        isrc=track.isrc,
        album=ref.name if ref else "",
        album_artist=ref.artists[0].name if ref and ref.artists else (artists[0] if artists else ""),
        spotify_album_id=ref.id if ref else None,
        spotify_artist_ids=tuple(a.id for a in track.artists),
        track_number=track.track_number,
        track_total=ref.total_tracks if ref else None,
        disc_number=track.disc_number,
        disc_total=discs,
        duration_ms=track.duration_ms,
        release_date=ref.release_date if ref else "",
        explicit=track.explicit,
        cover_url=ref.image_url if ref else "",
    )


# --- manual wants and Spotify search -----------------------------------------------------------------


class Requests:
    """Manual wants (a track or an album by URL) and the Spotify search they start from."""

    def __init__(self, db: Database, spotify: Spotify) -> None:
        self.db, self.spotify = db, spotify

    def want(self, ref: str) -> list[tuple[wanted.Item, str]]:
        """Want a track, or every track of an album, given by id, URI or URL. An artist is
        refused with a pointer to the watchlist (Spotify no longer serves top tracks to
        Development Mode apps). Returns each item with what happened to it."""
        kind, spotify_id = parse_any_ref(ref)
        if kind not in (None, "track", "album", "artist"):
            raise Invalid(f"spotify must name a track or an album, not a {kind}", field="spotify")
        if kind == "artist":
            raise Invalid(
                "that is an artist: watch it with POST /api/v1/artists to want its new releases",
                field="spotify",
                kind="artist",
                spotify_id=spotify_id,
            )
        source = wanted.Source("manual")
        if kind in (None, "track"):
            track = self.spotify.track(spotify_id)
            with self.db.write() as conn:
                return [wanted.want(conn, to_wanted(track), source)]
        album = self.spotify.album(spotify_id)
        discs = max((t.disc_number for t in album.tracks), default=1)
        out = []
        for track in album.tracks:
            known = track.id and self.db.query_one(
                "SELECT 1 FROM wanted_items WHERE spotify_id = ?", (track.id,)
            )
            full = self.spotify.track(track.id) if track.id and not known else track
            with self.db.write() as conn:
                out.append(wanted.want(conn, to_wanted(full, album.ref, discs), source))
        return out

    def search(self, query: str, kind: str, offset: int = 0) -> dict[str, Any]:
        """One page (10 results from `offset`, as Development Mode allows) of a Spotify search,
        each result saying whether it is already wanted, owned or watched; with Spotify's `total`
        and whether `more` follow."""
        results = self.spotify.search(query, kind, offset=offset)
        conn = self.db.conn()
        items: list[dict[str, Any]] = []
        for result in results.items:
            view = dataclasses.asdict(result)
            if kind == "track":
                track = to_wanted(result)
                item = wanted.find(conn, track)
                view["wanted"] = {"id": item.id, "state": item.state} if item else None
                view["owned"] = wanted.owned(conn, track) is not None
            elif kind == "artist":
                row = self.db.query_one("SELECT id FROM artists WHERE spotify_id = ?", (result.id,))
                view["watched_id"] = row["id"] if row else None
            else:
                row = self.db.query_one(
                    "SELECT id, expanded_at FROM releases WHERE spotify_id = ?", (result.id,)
                )
                view["release_id"] = row["id"] if row else None
            items.append(view)
        return {"items": items, "total": results.total, "more": results.more}


# --- read-only views for the web UI --------------------------------------------------------------------


def artist_names(db: Database, artist_ids: Sequence[int]) -> dict[int, str]:
    """The name of each watched artist among `artist_ids` (at most 500), by id."""
    ids = sorted({int(i) for i in artist_ids})[:500]
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    return {
        row["id"]: row["name"] for row in db.query(f"SELECT id, name FROM artists WHERE id IN ({marks})", ids)
    }
