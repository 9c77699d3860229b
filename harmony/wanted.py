"""The wanted list: owns `wanted_items` and `wanted_sources`, the identity key, and the one
function through which every item changes state.

An item is one recording, whatever wants it: a release of a watched artist, a followed
playlist, a manual request (its sources; an item can have several). Two tracks are the same
recording when they share a Spotify track id, or an ISRC, or the normalised primary artist
and title with durations within `DURATION_TOLERANCE_MS`; `want` checks that against the items
and against the library index, so the same song from a single, its album and a playlist is
one item, and a song already in the library is recorded as owned, not wanted.

Every state change goes through `transition(conn, ...)`: it checks the move is allowed,
writes the state, since when, the reason (a short code and a text), attempts and the next
action, and appends one `item.state` event, inside the caller's transaction. Later stages
(search, transfers, import) only call it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import apsw

from . import events
from .db import Database, Row, filters
from .errors import BadInput, Conflict, NotFound
from .matching import normalise_artist, normalise_title

DURATION_TOLERANCE_MS = 3000

STATES = (
    "wanted",
    "searching",
    "found",
    "not_found",
    "queued",
    "downloading",
    "downloaded",
    "importing",
    "done",
    "failed",
    "skipped",
    "paused",
)
# A transfer or an import is under way: such items are not withdrawn or deleted under it.
IN_FLIGHT = frozenset({"queued", "downloading", "downloaded", "importing"})
# Where an item may go from each state. Acquisition moves it forward; a fall-through to the
# next candidate goes back to `found`; retry, unskip and "wrong file" go back to `wanted`.
TRANSITIONS: dict[str, frozenset[str]] = {
    # From a resting state the operator may pick a candidate (`found`) or import a quarantined
    # file after all (`importing`).
    "wanted": frozenset({"searching", "found", "skipped", "paused", "failed", "done", "importing"}),
    "searching": frozenset({"searching", "found", "not_found", "wanted", "skipped", "paused", "failed"}),
    "found": frozenset(
        {"found", "queued", "searching", "not_found", "wanted", "skipped", "paused", "failed", "importing"}
    ),
    "not_found": frozenset({"searching", "found", "wanted", "skipped", "paused", "failed", "importing"}),
    "queued": frozenset(
        {
            "queued",
            "downloading",
            "downloaded",
            "found",
            "searching",
            "not_found",
            "wanted",
            "skipped",
            "failed",
        }
    ),
    "downloading": frozenset(
        {"downloading", "downloaded", "found", "searching", "not_found", "wanted", "skipped", "failed"}
    ),
    "downloaded": frozenset({"importing", "found", "searching", "wanted", "failed", "done"}),
    "importing": frozenset({"importing", "done", "found", "searching", "wanted", "failed"}),
    "done": frozenset({"wanted"}),
    "failed": frozenset({"wanted", "found", "skipped", "importing"}),
    "skipped": frozenset({"wanted"}),
    "paused": frozenset({"wanted", "skipped", "importing"}),
}
SOURCE_KINDS = ("release", "playlist", "manual")
SOURCE_RANK = {"manual": 3, "playlist": 2, "release": 1}
SORTS = ("priority", "age", "changed")

SQL_GET = "SELECT * FROM wanted_items WHERE id = ?"
SQL_BY_SPOTIFY = "SELECT * FROM wanted_items WHERE spotify_id = ?"
SQL_BY_ISRC = "SELECT * FROM wanted_items WHERE isrc = ? ORDER BY id LIMIT 1"
# Same normalised artist and title, and a duration within the tolerance (or unknown on one side).
SQL_BY_IDENTITY = """
    SELECT * FROM wanted_items WHERE identity = ?
    AND (duration_ms = 0 OR ? = 0 OR abs(duration_ms - ?) <= ?)
    ORDER BY id LIMIT 1
"""
SQL_OWNED = """
    SELECT id, path FROM library_tracks
    WHERE (? IS NOT NULL AND spotify_id = ?) OR (? IS NOT NULL AND isrc = ?)
       OR (identity = ? AND (duration_ms = 0 OR ? = 0 OR abs(duration_ms - ?) <= ?))
    LIMIT 1
"""
# An id is never given twice, even after the newest item was deleted: it names the item's
# history in the activity feed (and in the library index and the quarantine), which outlive it.
SQL_INSERT = """
    INSERT INTO wanted_items (id, spotify_id, isrc, identity, title, artists, album, album_artist,
        spotify_album_id, spotify_artist_ids, track_number, track_total, disc_number, disc_total,
        duration_ms, release_date, explicit, cover_url, state, state_since, reason_code, reason,
        next_action, source_rank, created_at, updated_at)
    VALUES (max(coalesce((SELECT max(id) FROM wanted_items), 0),
                coalesce((SELECT max(item_id) FROM events WHERE item_id IS NOT NULL), 0)) + 1,
        ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    RETURNING *
"""
SQL_ADD_SOURCE = """
    INSERT OR IGNORE INTO wanted_sources
        (item_id, source_key, kind, artist_id, release_id, playlist_id, added_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
"""
SQL_SOURCES = "SELECT * FROM wanted_sources WHERE item_id = ? ORDER BY added_at, source_key"
# The sources of a page of items in one statement (ids as a JSON array).
SQL_PAGE_SOURCES = """
    SELECT * FROM wanted_sources WHERE item_id IN (SELECT value FROM json_each(?))
    ORDER BY item_id, added_at, source_key
"""
# The best source decides where an item sits in the backlog: manual, then playlist, then watchlist.
SQL_RANK = """
    UPDATE wanted_items SET source_rank = coalesce((
        SELECT max(CASE kind WHEN 'manual' THEN 3 WHEN 'playlist' THEN 2 ELSE 1 END)
        FROM wanted_sources WHERE item_id = ?), source_rank)
    WHERE id = ?
"""
SQL_TRANSITION = """
    UPDATE wanted_items SET state = ?, state_since = ?, reason_code = ?, reason = ?,
        attempts = coalesce(?, attempts), next_action = ?, next_action_at = ?, updated_at = ?
    WHERE id = ?
    RETURNING *
"""


def identity(artists: Sequence[str], title: str) -> str:
    """The normalised primary artist and title: the last resort of the identity key."""
    primary = normalise_artist(artists[0]) if artists else ""
    return f"{primary}\x1f{normalise_title(title)}"


@dataclass(frozen=True)
class Track:
    """A recording as a source wants it: the Spotify metadata every later stage uses."""

    title: str
    artists: tuple[str, ...]
    spotify_id: str | None = None
    isrc: str | None = None
    album: str = ""
    album_artist: str = ""
    spotify_album_id: str | None = None
    spotify_artist_ids: tuple[str, ...] = ()
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    disc_total: int | None = None
    duration_ms: int = 0
    release_date: str = ""
    explicit: bool = False
    cover_url: str = ""

    @property
    def identity(self) -> str:
        return identity(self.artists, self.title)


@dataclass(frozen=True)
class Source:
    """Why an item is wanted: a release (of a watched artist), a playlist, or a manual request."""

    kind: str
    artist_id: int | None = None
    release_id: int | None = None
    playlist_id: int | None = None

    @property
    def key(self) -> str:
        if self.kind == "release":
            return f"release:{self.release_id}"
        if self.kind == "playlist":
            return f"playlist:{self.playlist_id}"
        return "manual"


@dataclass(frozen=True)
class Item:
    """One row of `wanted_items`."""

    id: int
    spotify_id: str | None
    isrc: str | None
    identity: str
    title: str
    artists: tuple[str, ...]
    album: str
    album_artist: str
    spotify_album_id: str | None
    spotify_artist_ids: tuple[str, ...]
    track_number: int | None
    track_total: int | None
    disc_number: int | None
    disc_total: int | None
    duration_ms: int
    release_date: str
    explicit: bool
    cover_url: str
    state: str
    state_since: float
    reason_code: str | None
    reason: str | None
    attempts: int
    next_action: str | None
    next_action_at: float | None
    priority: int
    source_rank: int
    created_at: float
    updated_at: float
    sources: tuple[dict[str, Any], ...] = field(default=())

    @classmethod
    def from_row(cls, row: Row, sources: Iterable[Row] = ()) -> Item:
        values = dict(row)
        values["artists"] = tuple(json.loads(row["artists"]))
        values["spotify_artist_ids"] = tuple(json.loads(row["spotify_artist_ids"]))
        values["explicit"] = bool(row["explicit"])
        values["sources"] = tuple(_source_view(s) for s in sources)
        return cls(**values)

    @property
    def track(self) -> Track:
        return Track(
            title=self.title,
            artists=self.artists,
            spotify_id=self.spotify_id,
            isrc=self.isrc,
            album=self.album,
            album_artist=self.album_artist,
            spotify_album_id=self.spotify_album_id,
            spotify_artist_ids=self.spotify_artist_ids,
            track_number=self.track_number,
            track_total=self.track_total,
            disc_number=self.disc_number,
            disc_total=self.disc_total,
            duration_ms=self.duration_ms,
            release_date=self.release_date,
            explicit=self.explicit,
            cover_url=self.cover_url,
        )

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "identity"}
        out["artists"] = list(self.artists)
        out["spotify_artist_ids"] = list(self.spotify_artist_ids)
        out["sources"] = list(self.sources)
        return out


def _source_view(row: Row) -> dict[str, Any]:
    return {
        "kind": row["kind"],
        "artist_id": row["artist_id"],
        "release_id": row["release_id"],
        "playlist_id": row["playlist_id"],
        "added_at": row["added_at"],
    }


# --- reading --------------------------------------------------------------------------------------


def _item(conn: apsw.Connection, row: Row | None) -> Item | None:
    if row is None:
        return None
    return Item.from_row(row, conn.execute(SQL_SOURCES, (row["id"],)))


def _one(conn: apsw.Connection, sql: str, args: Sequence[Any]) -> Row | None:
    for row in conn.execute(sql, args):
        return row  # type: ignore[no-any-return]
    return None


def get(db: Database, item_id: int) -> Item:
    """The item with its sources, or NotFound."""
    item = _item(db.conn(), db.query_one(SQL_GET, (item_id,)))
    if item is None:
        raise NotFound(f"no wanted item {item_id}", id=item_id)
    return item


def find(conn: apsw.Connection, track: Track) -> Item | None:
    """The item that is the same recording as `track`, if any: by Spotify id, else ISRC, else
    normalised artist and title with durations within the tolerance."""
    row = None
    if track.spotify_id:
        row = _one(conn, SQL_BY_SPOTIFY, (track.spotify_id,))
    if row is None and track.isrc:
        row = _one(conn, SQL_BY_ISRC, (track.isrc,))
    if row is None:
        d = track.duration_ms
        row = _one(conn, SQL_BY_IDENTITY, (track.identity, d, d, DURATION_TOLERANCE_MS))
    return _item(conn, row)


def owned(conn: apsw.Connection, track: Track) -> Row | None:
    """The library file that already is `track`, by the same identity rules, if any."""
    d = track.duration_ms
    sid, isrc = track.spotify_id, track.isrc
    return _one(conn, SQL_OWNED, (sid, sid, isrc, isrc, track.identity, d, d, DURATION_TOLERANCE_MS))


def list_items(
    db: Database,
    *,
    after: tuple[Any, ...] | None = None,
    limit: int = 50,
    state: Sequence[str] | None = None,
    source_kind: str | None = None,
    artist_id: int | None = None,
    playlist_id: int | None = None,
    release_id: int | None = None,
    q: str | None = None,
    sort: str = "priority",
) -> list[Item]:
    """One page of items. `sort`: `priority` (the backlog order: priority, then the best source,
    then age), `age` (oldest first) or `changed` (latest state change first); `after` is the
    `cursor_key` of the last item of the previous page."""
    where, args = _where(state, source_kind, artist_id, playlist_id, release_id, q)
    order, seek = _ORDERS[sort]
    if after is not None:
        where += f" AND {seek}"
        args += _seek_args(sort, after)
    sql = f"SELECT * FROM wanted_items WHERE 1 {where} ORDER BY {order} LIMIT ?"
    rows = db.query(sql, (*args, limit))
    sources: dict[int, list[Row]] = {row["id"]: [] for row in rows}
    if sources:
        for source in db.query(SQL_PAGE_SOURCES, (json.dumps(list(sources)),)):
            sources[source["item_id"]].append(source)
    return [Item.from_row(row, sources[row["id"]]) for row in rows]


def count_items(
    db: Database,
    *,
    state: Sequence[str] | None = None,
    source_kind: str | None = None,
    artist_id: int | None = None,
    playlist_id: int | None = None,
    release_id: int | None = None,
    q: str | None = None,
) -> int:
    where, args = _where(state, source_kind, artist_id, playlist_id, release_id, q)
    return int(db.scalar(f"SELECT count(*) FROM wanted_items WHERE 1 {where}", args))


def cursor_key(item: Item, sort: str) -> tuple[Any, ...]:
    if sort == "priority":
        return (item.priority, item.source_rank, item.id)
    if sort == "changed":
        return (item.state_since, item.id)
    return (item.id,)


CURSOR_SHAPES: dict[str, tuple[type, ...]] = {
    "priority": (int, int, int),
    "age": (int,),
    "changed": (float, int),
}
_ORDERS = {
    "priority": (
        "priority DESC, source_rank DESC, id",
        "(priority < ? OR (priority = ? AND (source_rank < ? OR (source_rank = ? AND id > ?))))",
    ),
    "age": ("id", "id > ?"),
    "changed": ("state_since DESC, id DESC", "(state_since < ? OR (state_since = ? AND id < ?))"),
}


def _seek_args(sort: str, key: tuple[Any, ...]) -> tuple[Any, ...]:
    if sort == "priority":
        priority, rank, item_id = key
        return (priority, priority, rank, rank, item_id)
    if sort == "changed":
        since, item_id = key
        return (since, since, item_id)
    return (key[0],)


def _where(
    state: Sequence[str] | None,
    source_kind: str | None,
    artist_id: int | None,
    playlist_id: int | None,
    release_id: int | None,
    q: str | None,
) -> tuple[str, tuple[Any, ...]]:
    where, args = filters(state=tuple(state) if state else None)
    for column, value in (
        ("kind", source_kind),
        ("artist_id", artist_id),
        ("playlist_id", playlist_id),
        ("release_id", release_id),
    ):
        if value is not None:
            where += f" AND id IN (SELECT item_id FROM wanted_sources WHERE {column} = ?)"
            args += (value,)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where += " AND (title LIKE ? ESCAPE '\\' OR artists LIKE ? ESCAPE '\\' OR album LIKE ? ESCAPE '\\')"
        args += (pattern, pattern, pattern)
    return where, args


def counts_by_state(db: Database) -> dict[str, int]:
    """Every state, with its number of items (0 included)."""
    counts = dict.fromkeys(STATES, 0)
    for row in db.query("SELECT state, count(*) AS n FROM wanted_items GROUP BY state"):
        counts[row["state"]] = row["n"]
    return counts


def counts_by_source(db: Database) -> dict[str, dict[str, int]]:
    """Items by source kind, then state (an item with two kinds of source counts under both)."""
    out: dict[str, dict[str, int]] = {kind: dict.fromkeys(STATES, 0) for kind in SOURCE_KINDS}
    rows = db.query(
        "SELECT s.kind, i.state, count(DISTINCT i.id) AS n FROM wanted_sources s "
        "JOIN wanted_items i ON i.id = s.item_id GROUP BY s.kind, i.state"
    )
    for row in rows:
        out[row["kind"]][row["state"]] = row["n"]
    return out


# States an item passes through on its way to the library, each bounded by a timeout
# (search.timeout, the transfers.* timeouts, the import job); an item long in one is stuck.
PASSING_STATES = ("searching", "found", "queued", "downloading", "downloaded", "importing")


def oldest_by_state(db: Database, now: float, states: Sequence[str] = PASSING_STATES) -> dict[str, float]:
    """Seconds since the longest-waiting item entered each of `states` (0 when none is in it);
    one lookup per state on the `wanted_state_since` index, cheap enough for every scrape."""
    out: dict[str, float] = {}
    for state in states:
        row = db.query_one("SELECT min(state_since) AS since FROM wanted_items WHERE state = ?", (state,))
        since = row["since"] if row is not None else None
        out[state] = max(0.0, now - since) if since is not None else 0.0
    return out


# --- the one state-change function ---------------------------------------------------------------


def transition(
    conn: apsw.Connection,
    item_id: int,
    to: str,
    code: str,
    message: str,
    *,
    expect: Iterable[str] | None = None,
    attempts: int | None = None,
    next_action: str | None = None,
    next_action_at: float | None = None,
    data: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> Item:
    """Move an item to `to`, inside the caller's transaction, with one `item.state` event.

    Raises NotFound for an unknown item, and Conflict naming the state when the item is not in
    one of `expect` (if given) or cannot go to `to` from where it is. `attempts` replaces the
    count when given; the next action is replaced either way (None clears it).
    """
    now = time.time() if now is None else now
    row = _one(conn, SQL_GET, (item_id,))
    if row is None:
        raise NotFound(f"no wanted item {item_id}", id=item_id)
    state = row["state"]
    allowed = frozenset(expect) if expect is not None else None
    if allowed is not None and state not in allowed:
        raise Conflict(
            f"item {item_id} is {state}; this needs it to be {' or '.join(sorted(allowed))}",
            state=state,
            id=item_id,
        )
    if to not in TRANSITIONS[state]:
        raise Conflict(f"item {item_id} is {state} and cannot become {to}", state=state, to=to, id=item_id)
    updated = next(
        conn.execute(
            SQL_TRANSITION, (to, now, code, message, attempts, next_action, next_action_at, now, item_id)
        )
    )
    events.record(
        conn,
        "item.state",
        item_id=item_id,
        from_state=state,
        to_state=to,
        code=code,
        message=message,
        data=dict(data) if data else None,
        now=now,
    )
    item = _item(conn, updated)
    assert item is not None
    return item


# --- wanting and withdrawing ----------------------------------------------------------------------


def want(
    conn: apsw.Connection, track: Track, source: Source, *, now: float | None = None
) -> tuple[Item, str]:
    """Record that `source` wants `track`, inside the caller's transaction.

    Returns the item and what happened: `created` (a new wanted item), `owned` (a new item,
    recorded as done because the library has it), `added` (an existing item gained this source;
    an item withdrawn earlier is wanted again) or `known` (it had this source already).
    """
    now = time.time() if now is None else now
    if not track.title or not track.artists:
        raise BadInput("a wanted track needs a title and an artist")
    item = find(conn, track)
    if item is None:
        library = owned(conn, track)
        state, code, reason, outcome = "wanted", "new", f"wanted by {_describe(source)}", "created"
        if library is not None:
            state, code = "done", "already_owned"
            reason, outcome = f"already in the library: {library['path']}", "owned"
        row = next(conn.execute(SQL_INSERT, (*_columns(track), state, now, code, reason, None, 1, now, now)))
        item_id = row["id"]
        _add_source(conn, item_id, source, now)
        events.record(
            conn,
            "item.created",
            item_id=item_id,
            artist_id=source.artist_id,
            release_id=source.release_id,
            playlist_id=source.playlist_id,
            to_state=state,
            code=code,
            message=reason,
            now=now,
        )
        created = _item(conn, _one(conn, SQL_GET, (item_id,)))
        assert created is not None
        return created, outcome
    if not _add_source(conn, item.id, source, now):
        return item, "known"
    _fill_in(conn, item, track)
    events.record(
        conn,
        "item.source_added",
        item_id=item.id,
        artist_id=source.artist_id,
        release_id=source.release_id,
        playlist_id=source.playlist_id,
        code=source.kind,
        message=f"also wanted by {_describe(source)}",
        now=now,
    )
    if item.state == "skipped" and item.reason_code == "withdrawn":
        item = transition(
            conn, item.id, "wanted", "wanted_again", f"wanted again by {_describe(source)}", now=now
        )
    refreshed = _item(conn, _one(conn, SQL_GET, (item.id,)))
    assert refreshed is not None
    return refreshed, "added"


def withdraw(
    conn: apsw.Connection, item_id: int, source_keys: Iterable[str], why: str, *, now: float | None = None
) -> str:
    """Remove these sources from an item, inside the caller's transaction. An item left with no
    source stops being wanted (`skipped`, code `withdrawn`) unless a transfer or an import is
    under way or it is done. Returns `kept` (other sources remain), `withdrawn`, `in_flight`
    (left to finish), or `none` (it had none of these sources)."""
    now = time.time() if now is None else now
    keys = list(source_keys)
    removed = 0
    for key in keys:
        conn.execute("DELETE FROM wanted_sources WHERE item_id = ? AND source_key = ?", (item_id, key))
        removed += conn.changes()
    if not removed:
        return "none"
    conn.execute(SQL_RANK, (item_id, item_id))
    left = _one(conn, "SELECT count(*) AS n FROM wanted_sources WHERE item_id = ?", (item_id,))
    if left and left["n"]:
        return "kept"
    state = _one(conn, "SELECT state FROM wanted_items WHERE id = ?", (item_id,))
    if state is None:
        return "none"
    if state["state"] in IN_FLIGHT or state["state"] in ("done", "skipped"):
        events.record(conn, "item.orphaned", item_id=item_id, code="no_source", message=why, now=now)
        return "in_flight" if state["state"] in IN_FLIGHT else "kept"
    transition(conn, item_id, "skipped", "withdrawn", why, now=now)
    return "withdrawn"


def _add_source(conn: apsw.Connection, item_id: int, source: Source, now: float) -> bool:
    conn.execute(
        SQL_ADD_SOURCE,
        (item_id, source.key, source.kind, source.artist_id, source.release_id, source.playlist_id, now),
    )
    added = conn.changes() == 1
    if added:
        conn.execute(SQL_RANK, (item_id, item_id))
    return added


def _fill_in(conn: apsw.Connection, item: Item, track: Track) -> None:
    """An item found by identity keeps its metadata; it only learns an ISRC it lacked."""
    if item.isrc is None and track.isrc:
        conn.execute("UPDATE wanted_items SET isrc = ? WHERE id = ?", (track.isrc, item.id))


def _columns(track: Track) -> tuple[Any, ...]:
    return (
        track.spotify_id,
        track.isrc,
        track.identity,
        track.title,
        json.dumps(list(track.artists), ensure_ascii=False),
        track.album,
        track.album_artist,
        track.spotify_album_id,
        json.dumps(list(track.spotify_artist_ids)),
        track.track_number,
        track.track_total,
        track.disc_number,
        track.disc_total,
        track.duration_ms,
        track.release_date,
        int(track.explicit),
        track.cover_url,
    )


def _describe(source: Source) -> str:
    if source.kind == "release":
        return f"release {source.release_id} of a watched artist"
    if source.kind == "playlist":
        return f"playlist {source.playlist_id}"
    return "a manual request"


# --- operator actions (each owns its transaction) --------------------------------------------------


def set_priority(db: Database, item_id: int, priority: int) -> Item:
    with db.write() as conn:
        if _one(conn, SQL_GET, (item_id,)) is None:
            raise NotFound(f"no wanted item {item_id}", id=item_id)
        conn.execute(
            "UPDATE wanted_items SET priority = ?, updated_at = ? WHERE id = ?",
            (priority, time.time(), item_id),
        )
    return get(db, item_id)


def retry(db: Database, item_id: int) -> Item:
    """A failed, not-found or paused item goes back to `wanted`, its attempts reset."""
    with db.write() as conn:
        transition(
            conn,
            item_id,
            "wanted",
            "retry",
            "retry asked for by the operator",
            expect=("failed", "not_found", "paused"),
            attempts=0,
        )
    return get(db, item_id)


def skip(db: Database, item_id: int) -> Item:
    with db.write() as conn:
        transition(conn, item_id, "skipped", "skipped", "skipped by the operator")
    return get(db, item_id)


def unskip(db: Database, item_id: int) -> Item:
    with db.write() as conn:
        transition(
            conn, item_id, "wanted", "unskipped", "unskipped by the operator", expect=("skipped",), attempts=0
        )
    return get(db, item_id)


def delete(db: Database, item_id: int) -> None:
    """Forget an item and its sources. One under transfer or import must be skipped first (its
    transfer is cancelled then). A playlist that holds it does not want it again."""
    with db.write() as conn:
        row = _one(conn, SQL_GET, (item_id,))
        if row is None:
            raise NotFound(f"no wanted item {item_id}", id=item_id)
        if row["state"] in IN_FLIGHT:
            raise Conflict(f"item {item_id} is {row['state']}; skip it first", state=row["state"], id=item_id)
        conn.execute("DELETE FROM wanted_items WHERE id = ?", (item_id,))
        events.record(conn, "item.deleted", item_id=item_id, from_state=row["state"], message=row["title"])


# --- read-only views for the web UI ----------------------------------------------------------------


def titles(db: Database, item_ids: Iterable[int]) -> dict[int, str]:
    """`Artist – Title` of each existing item among `item_ids` (at most 500), by id."""
    ids = sorted({int(i) for i in item_ids})[:500]
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    rows = db.query(f"SELECT id, title, artists FROM wanted_items WHERE id IN ({marks})", ids)
    return {row["id"]: f"{', '.join(json.loads(row['artists']))} – {row['title']}" for row in rows}


def done_per_day(db: Database, since: float) -> dict[str, int]:
    """Items done since `since`, by the UTC day (`YYYY-MM-DD`) they became done."""
    rows = db.query(
        "SELECT date(state_since, 'unixepoch') AS day, count(*) AS n FROM wanted_items "
        "WHERE state = 'done' AND state_since >= ? GROUP BY day",
        (since,),
    )
    return {row["day"]: row["n"] for row in rows}
