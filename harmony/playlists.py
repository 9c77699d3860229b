"""Followed playlists: owns `playlists` and `playlist_tracks`, and syncs them into the wanted list.

In Development Mode Spotify serves the items only of playlists the connected user owns or
collaborates on, so following any other is refused up front with what to do instead (copy
it into a playlist of one's own), unless `spotify.extended_quota` says the app has more. A
followed playlist that later becomes unreadable is marked so, with the reason; it is never
taken for deleted or empty, and its items stay wanted.

Background work, wired in the composition root: the `playlist_dispatch` task enqueues a
`playlist.sync` job for every playlist due (each every `playlists.interval`); `Playlists.sync`
asks for the playlist's metadata (one request: an unchanged `snapshot_id` ends the sync
there), then walks its items 50 a page, committing each page: a track new to the playlist
becomes wanted (when the playlist's "want its tracks" is on), local files, episodes and
unavailable entries are skipped and counted. Only once every page is in are the tracks no
longer listed dropped: their items stop being wanted unless already downloading or done. A
playlist not synced successfully within `playlists.stale_after` is shown stale, with the
reason of its last failure.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apsw

from . import events, wanted
from .config import Config
from .db import Database, Row
from .errors import Conflict, HarmonyError, Invalid, NotFound, UpstreamCoolingDown, UpstreamRejected
from .jobs import GiveUp, Job, Queue
from .metrics import Metrics
from .spotify import SERVICE, Spotify, parse_ref
from .spotify import Playlist as SpotifyPlaylist
from .watchlist import backoff, to_wanted

log = logging.getLogger(__name__)

JOB = "playlist.sync"
SKIP_REASONS = ("local", "episode", "unavailable")

SQL_GET = "SELECT * FROM playlists WHERE id = ?"
SQL_INSERT = """
    INSERT INTO playlists
        (spotify_id, name, owner_id, collaborative, total, want_tracks, followed_at, next_sync_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    RETURNING *
"""
SQL_DUE = """
    SELECT id FROM playlists WHERE next_sync_at <= ? ORDER BY next_sync_at, id LIMIT ?
"""
SQL_TRACK = "SELECT item_id FROM playlist_tracks WHERE playlist_id = ? AND spotify_track_id = ?"
SQL_UPSERT_TRACK = """
    INSERT INTO playlist_tracks (playlist_id, spotify_track_id, item_id, position, added_at, generation)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (playlist_id, spotify_track_id) DO UPDATE SET position = excluded.position,
        added_at = excluded.added_at, generation = excluded.generation
"""
SQL_REMOVED = "SELECT spotify_track_id, item_id FROM playlist_tracks WHERE playlist_id = ? AND generation < ?"
SQL_SYNCED = """
    UPDATE playlists SET name = ?, owner_id = ?, collaborative = ?, snapshot_id = ?, total = ?,
        last_sync_at = ?, last_success_at = ?, next_sync_at = ?, last_result_code = ?, last_result = ?,
        failures = 0, readable = 1, generation = ?, skipped = ?
    WHERE id = ?
"""
SQL_UNCHANGED = """
    UPDATE playlists SET last_sync_at = ?, last_success_at = ?, next_sync_at = ?,
        last_result_code = 'unchanged', last_result = 'snapshot unchanged', failures = 0, readable = 1
    WHERE id = ?
"""
SQL_SYNC_FAILED = """
    UPDATE playlists SET last_sync_at = ?, next_sync_at = ?, last_result_code = ?, last_result = ?,
        failures = failures + 1, readable = ?
    WHERE id = ?
"""


@dataclass(frozen=True)
class Playlist:
    """One row of `playlists`, with whether it is stale at `now`."""

    id: int
    spotify_id: str
    name: str
    owner_id: str
    owner_name: str
    collaborative: bool
    snapshot_id: str | None
    total: int
    want_tracks: bool
    followed_at: float
    last_sync_at: float | None
    last_success_at: float | None
    next_sync_at: float
    last_result_code: str | None
    last_result: str | None
    failures: int
    readable: bool
    generation: int
    skipped: dict[str, int]
    stale: bool

    @classmethod
    def from_row(cls, row: Row, stale_after: float, now: float) -> Playlist:
        values = dict(row)
        for flag in ("collaborative", "want_tracks", "readable"):
            values[flag] = bool(row[flag])
        values["skipped"] = json.loads(row["skipped"])
        synced = row["last_success_at"] or row["followed_at"]
        values["stale"] = now - synced > stale_after
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Playlists:
    """Follows, unfollows and syncs playlists (task and job handler)."""

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

    def _stale_after(self) -> float:
        return float(self.live()["playlists.stale_after"])

    # --- reading --------------------------------------------------------------------------------

    def get(self, playlist_id: int) -> Playlist:
        row = self.db.query_one(SQL_GET, (playlist_id,))
        if row is None:
            raise NotFound(f"no followed playlist {playlist_id}", id=playlist_id)
        return Playlist.from_row(row, self._stale_after(), self.clock())

    def list_playlists(self, *, after: tuple[Any, ...] | None = None, limit: int = 50) -> list[Playlist]:
        """Followed playlists by name, then id."""
        where = ""
        args: tuple[Any, ...] = ()
        if after is not None:
            where = " AND (name > ? COLLATE NOCASE OR (name = ? COLLATE NOCASE AND id > ?))"
            args = (after[0], after[0], after[1])
        rows = self.db.query(
            f"SELECT * FROM playlists WHERE 1 {where} ORDER BY name COLLATE NOCASE, id LIMIT ?",
            (*args, limit),
        )
        stale_after, now = self._stale_after(), self.clock()
        return [Playlist.from_row(row, stale_after, now) for row in rows]

    def item_counts(self, playlist_id: int) -> dict[str, int]:
        """The playlist's wanted items by state."""
        counts = dict.fromkeys(wanted.STATES, 0)
        rows = self.db.query(
            "SELECT i.state, count(*) AS n FROM playlist_tracks t JOIN wanted_items i ON i.id = t.item_id "
            "WHERE t.playlist_id = ? GROUP BY i.state",
            (playlist_id,),
        )
        for row in rows:
            counts[row["state"]] = row["n"]
        return counts

    def stale_count(self) -> int:
        cutoff = self.clock() - self._stale_after()
        return int(
            self.db.scalar(
                "SELECT count(*) FROM playlists WHERE coalesce(last_success_at, followed_at) < ?", (cutoff,)
            )
        )

    def mine(self) -> list[dict[str, Any]]:
        """The connected user's own and collaborative playlists on Spotify, and whether each is
        followed here."""
        followed = {
            row["spotify_id"]: row["id"] for row in self.db.query("SELECT id, spotify_id FROM playlists")
        }
        user = (self.spotify.authorization() or {}).get("user_id")
        out = []
        for playlist in self.spotify.my_playlists():
            readable = playlist.owner_id == user or playlist.collaborative
            out.append(
                {
                    "spotify_id": playlist.id,
                    "name": playlist.name,
                    "owner_id": playlist.owner_id,
                    "collaborative": playlist.collaborative,
                    "total": playlist.total,
                    "readable": readable or self.live()["spotify.extended_quota"],
                    "followed_id": followed.get(playlist.id),
                }
            )
        return out

    # --- changing -----------------------------------------------------------------------------------

    def follow(self, ref: str, *, want_tracks: bool = True, now: float | None = None) -> Playlist:
        """Follow a playlist given by id, URI or URL; its first sync is due at once.

        Conflict if already followed; Invalid (naming the reason and the fix) for a playlist a
        Development Mode app may not read: Spotify's own, or one the user neither owns nor
        collaborates on."""
        spotify_id = parse_ref(ref, "playlist")
        if self.db.query_one("SELECT id FROM playlists WHERE spotify_id = ?", (spotify_id,)):
            raise Conflict(f"playlist {spotify_id} is already followed", spotify_id=spotify_id)
        try:
            meta = self.spotify.playlist(spotify_id)
        except UpstreamRejected as exc:
            if exc.details.get("reason") in ("spotify_owned", "not_owned"):
                raise Invalid(
                    _unreadable(exc.message), field="spotify", reason=exc.details["reason"]
                ) from None
            raise
        self._check_readable(meta)
        now = self.clock() if now is None else now
        with self.db.write() as conn:
            try:
                row = next(
                    conn.execute(
                        SQL_INSERT,
                        (
                            meta.id,
                            meta.name,
                            meta.owner_id,
                            int(meta.collaborative),
                            meta.total,
                            int(want_tracks),
                            now,
                            now,
                        ),
                    )
                )
            except apsw.ConstraintError:
                raise Conflict(f"playlist {spotify_id} is already followed", spotify_id=spotify_id) from None
            events.record(
                conn, "playlist.followed", playlist_id=row["id"], message=f"following {meta.name}", now=now
            )
        self.queue.enqueue(JOB, {"playlist_id": row["id"]}, key=f"sync:{row['id']}", priority=50)
        return Playlist.from_row(row, self._stale_after(), now)

    def _check_readable(self, meta: SpotifyPlaylist) -> None:
        if self.live()["spotify.extended_quota"] or meta.collaborative:
            return
        user = (self.spotify.authorization() or {}).get("user_id")
        if user and meta.owner_id != user:
            raise Invalid(
                _unreadable(
                    f"playlist {meta.name!r} belongs to {meta.owner_id}: Development Mode apps can read only "
                    "your own and collaborative playlists"
                ),
                field="spotify",
                reason="not_owned",
            )

    def update(self, playlist_id: int, changes: dict[str, Any]) -> Playlist:
        """Switch "want its tracks". Off withdraws the items this playlist alone wants (unless
        under way); on makes the next sync want every track listed."""
        if set(changes) != {"want_tracks"} or not isinstance(changes["want_tracks"], bool):
            raise Invalid('the body must be {"want_tracks": true|false}', field="want_tracks")
        on = changes["want_tracks"]
        with self.db.write() as conn:
            playlist = self.get(playlist_id)
            if on == playlist.want_tracks:
                return playlist
            conn.execute("UPDATE playlists SET want_tracks = ? WHERE id = ?", (int(on), playlist_id))
            if on:  # the next sync walks every page again and wants everything listed
                conn.execute("DELETE FROM playlist_tracks WHERE playlist_id = ?", (playlist_id,))
                conn.execute(
                    "UPDATE playlists SET snapshot_id = NULL, next_sync_at = ? WHERE id = ?",
                    (self.clock(), playlist_id),
                )
            else:
                self._withdraw_all(conn, playlist, f"not wanting the tracks of {playlist.name} any more")
            events.record(
                conn, "playlist.changed", playlist_id=playlist_id, code="want_tracks", message=str(on).lower()
            )
        return self.get(playlist_id)

    def unfollow(self, playlist_id: int) -> dict[str, int]:
        """Stop following; items this playlist alone wants stop being wanted unless under way."""
        with self.db.write() as conn:
            playlist = self.get(playlist_id)
            outcomes = self._withdraw_all(conn, playlist, f"no longer following {playlist.name}")
            conn.execute("DELETE FROM playlists WHERE id = ?", (playlist_id,))
            events.record(
                conn, "playlist.unfollowed", playlist_id=playlist_id, message=playlist.name, data=outcomes
            )
        return outcomes

    def _withdraw_all(self, conn: apsw.Connection, playlist: Playlist, why: str) -> dict[str, int]:
        outcomes: dict[str, int] = {}
        rows = list(conn.execute("SELECT item_id FROM wanted_sources WHERE playlist_id = ?", (playlist.id,)))
        for row in rows:
            outcome = wanted.withdraw(conn, row["item_id"], [f"playlist:{playlist.id}"], why)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return outcomes

    def request_sync(self, playlist_id: int) -> Job:
        playlist = self.get(playlist_id)
        return self.queue.enqueue(JOB, {"playlist_id": playlist.id}, key=f"sync:{playlist.id}", priority=100)

    # --- background -----------------------------------------------------------------------------

    def dispatch(self, now: float | None = None) -> int:
        """Task: enqueue a sync of every due playlist, unless Spotify is cooling down or no
        account is connected."""
        now = self.clock() if now is None else now
        auth = self.spotify.authorization()
        if not auth or auth.get("revoked_reason") or self.spotify.upstream.cooldown(SERVICE) is not None:
            return 0
        rows = self.db.query(SQL_DUE, (now, self.live()["watchlist.batch"]))
        for row in rows:
            self.queue.enqueue(JOB, {"playlist_id": row["id"]}, key=f"sync:{row['id']}")
        return len(rows)

    def sync(self, job: Job) -> None:
        """Job: one playlist's sync (see the module docstring)."""
        playlist_id = job.payload.get("playlist_id")
        if not isinstance(playlist_id, int):
            raise GiveUp("sync job without a playlist id")
        row = self.db.query_one(SQL_GET, (playlist_id,))
        if row is None:
            return  # unfollowed since
        playlist = Playlist.from_row(row, self._stale_after(), self.clock())
        now = self.clock()
        try:
            meta = self.spotify.playlist(playlist.spotify_id)
            if meta.snapshot_id and meta.snapshot_id == playlist.snapshot_id:
                with self.db.write() as conn:
                    conn.execute(SQL_UNCHANGED, (now, now, now + self._interval(), playlist_id))
                    events.record(
                        conn,
                        "playlist.sync",
                        playlist_id=playlist_id,
                        code="unchanged",
                        message="snapshot unchanged",
                        now=now,
                    )
                self.metrics.playlist_syncs.labels("unchanged").inc()
                return
            result = self._walk(playlist, meta, now)
        except UpstreamRejected as exc:
            if exc.details.get("reason") in ("spotify_owned", "not_owned"):
                self._failed(playlist, "unreadable", _unreadable(exc.message), now, readable=False)
                return
            self._failed(playlist, "failed", exc.message, now)
            return
        except UpstreamCoolingDown as exc:
            code = "quota" if exc.details.get("kind") == "quota" else "rate_limited"
            self._failed(playlist, code, exc.message, now, until=exc.details.get("until"))
            return
        except NotFound as exc:
            self._failed(playlist, "gone", f"{exc.message}; its items stay wanted until you unfollow it", now)
            return
        except HarmonyError as exc:
            self._failed(playlist, "failed", exc.message, now)
            return
        self.metrics.playlist_syncs.labels("synced").inc()
        log.info("playlist_synced", extra={"fields": {"playlist": playlist_id, **result}})

    def _interval(self) -> float:
        return float(self.live()["playlists.interval"])

    def _walk(self, playlist: Playlist, meta: SpotifyPlaylist, now: float) -> dict[str, int]:
        generation = playlist.generation + 1
        source = wanted.Source("playlist", playlist_id=playlist.id)
        skipped = dict.fromkeys(SKIP_REASONS, 0)
        counts = {"new": 0, "listed": 0, "removed": 0}
        page: list[Any] = []
        position = 0

        def flush() -> None:
            with self.db.write() as conn:
                for pos, entry in page:
                    self._upsert(conn, playlist, entry, pos, generation, source, counts)
            page.clear()

        for entry in self.spotify.playlist_items(playlist.spotify_id):
            position += 1
            reason = entry.skip_reason
            if reason:
                skipped[reason] += 1
                continue
            page.append((position, entry))
            if len(page) >= 50:
                flush()
        flush()
        with self.db.write() as conn:
            for row in list(conn.execute(SQL_REMOVED, (playlist.id, generation))):
                counts["removed"] += 1
                if row["item_id"] is not None:
                    wanted.withdraw(conn, row["item_id"], [source.key], f"removed from playlist {meta.name}")
            conn.execute(
                "DELETE FROM playlist_tracks WHERE playlist_id = ? AND generation < ?",
                (playlist.id, generation),
            )
            message = (
                f"{counts['listed']} tracks, {counts['new']} new, {counts['removed']} removed"
                + "".join(f", {n} {reason} skipped" for reason, n in skipped.items() if n)
            )
            conn.execute(
                SQL_SYNCED,
                (
                    meta.name,
                    meta.owner_id,
                    int(meta.collaborative),
                    meta.snapshot_id or None,
                    meta.total,
                    now,
                    now,
                    now + self._interval(),
                    "synced",
                    message,
                    generation,
                    json.dumps(skipped),
                    playlist.id,
                ),
            )
            events.record(
                conn,
                "playlist.sync",
                playlist_id=playlist.id,
                code="synced",
                message=message,
                data={**counts, **skipped},
                now=now,
            )
        return {**counts, **skipped}

    def _upsert(
        self,
        conn: apsw.Connection,
        playlist: Playlist,
        entry: Any,
        position: int,
        generation: int,
        source: wanted.Source,
        counts: dict[str, int],
    ) -> None:
        track = entry.track
        counts["listed"] += 1
        existing = next(iter(conn.execute(SQL_TRACK, (playlist.id, track.id))), None)
        item_id = existing["item_id"] if existing else None
        # Only a track new to the playlist becomes wanted: one whose item the user deleted stays
        # unwanted until it leaves the playlist and comes back.
        if existing is None and playlist.want_tracks:
            item, outcome = wanted.want(conn, to_wanted(track), source)
            item_id = item.id
            if outcome in ("created", "owned"):
                counts["new"] += 1
        conn.execute(SQL_UPSERT_TRACK, (playlist.id, track.id, item_id, position, entry.added_at, generation))

    def _failed(
        self,
        playlist: Playlist,
        code: str,
        message: str,
        now: float,
        *,
        readable: bool = True,
        until: float | None = None,
    ) -> None:
        retry_at = until if until else now + min(self._interval(), backoff(playlist.failures + 1))
        with self.db.write() as conn:
            conn.execute(SQL_SYNC_FAILED, (now, retry_at, code, message[:500], int(readable), playlist.id))
            events.record(conn, "playlist.sync", playlist_id=playlist.id, code=code, message=message, now=now)
        self.metrics.playlist_syncs.labels(code).inc()
        log.warning(
            "playlist_sync_failed",
            extra={"fields": {"playlist": playlist.id, "code": code, "error": message}},
        )


def _unreadable(reason: str) -> str:
    return f"{reason}. Copy its tracks into a playlist of your own on Spotify and follow that one instead"


# --- read-only views for the web UI ----------------------------------------------------------------


def names(db: Database, playlist_ids: list[int]) -> dict[int, str]:
    """The name of each followed playlist among `playlist_ids` (at most 500), by id."""
    ids = sorted({int(i) for i in playlist_ids})[:500]
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    return {
        row["id"]: row["name"]
        for row in db.query(f"SELECT id, name FROM playlists WHERE id IN ({marks})", ids)
    }
