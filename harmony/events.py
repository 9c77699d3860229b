"""The activity feed: owns the `events` table, one row per thing that happened, newest first.

Every state change of a wanted item writes one event in the same transaction (`record`, which
joins the caller's `conn`); scans, syncs, searches and imports add theirs. Events name the
item, artist, release and playlist they concern by id without foreign keys, so the history
outlives what it describes. `list_events` pages newest first; `after_id` feeds the event
stream (`Last-Event-ID` resumes it).

To add a kind of event, call `record(conn, "<noun>.<verb>", ...)` where it happens; kinds are
short dotted names (`item.state`, `artist.scan`, `playlist.sync`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import apsw

from .db import Database, Row, filters

KIND = re.compile(r"[a-z][a-z_]*(\.[a-z_]+)*")
MAX_MESSAGE = 500

SQL_INSERT = """
    INSERT INTO events (at, kind, item_id, artist_id, release_id, playlist_id, from_state, to_state,
        code, message, data)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


@dataclass(frozen=True)
class Event:
    id: int
    at: float
    kind: str
    item_id: int | None
    artist_id: int | None
    release_id: int | None
    playlist_id: int | None
    from_state: str | None
    to_state: str | None
    code: str | None
    message: str | None
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: Row) -> Event:
        return cls(**{**row, "data": json.loads(row["data"]) if row["data"] else {}})

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "kind": self.kind,
            "item_id": self.item_id,
            "artist_id": self.artist_id,
            "release_id": self.release_id,
            "playlist_id": self.playlist_id,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "code": self.code,
            "message": self.message,
            "data": self.data,
        }


def record(
    conn: apsw.Connection,
    kind: str,
    *,
    item_id: int | None = None,
    artist_id: int | None = None,
    release_id: int | None = None,
    playlist_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    code: str | None = None,
    message: str | None = None,
    data: dict[str, Any] | None = None,
    now: float | None = None,
) -> int:
    """Append one event inside the caller's transaction; returns its id."""
    if not KIND.fullmatch(kind):
        raise ValueError(f"bad event kind {kind!r}")
    conn.execute(
        SQL_INSERT,
        (
            time.time() if now is None else now,
            kind,
            item_id,
            artist_id,
            release_id,
            playlist_id,
            from_state,
            to_state,
            code,
            (message or "")[:MAX_MESSAGE] or None,
            json.dumps(data, separators=(",", ":"), default=str) if data else None,
        ),
    )
    return int(conn.last_insert_rowid())


def list_events(
    db: Database,
    *,
    after: tuple[int] | None = None,
    limit: int = 50,
    kind: str | None = None,
    item_id: int | None = None,
    artist_id: int | None = None,
    release_id: int | None = None,
    playlist_id: int | None = None,
) -> list[Event]:
    """Events newest first; `after` is the (id,) of the last event of the previous page. A
    `kind` ending in `.` matches every kind under it (`item.`)."""
    where, args = filters(
        item_id=item_id, artist_id=artist_id, release_id=release_id, playlist_id=playlist_id
    )
    if kind is not None:
        if kind.endswith("."):
            where += " AND kind >= ? AND kind < ?"
            args += (kind, kind[:-1] + "/")  # '/' sorts right after '.'
        else:
            where += " AND kind = ?"
            args += (kind,)
    if after is not None:
        where += " AND id < ?"
        args += (after[0],)
    sql = f"SELECT * FROM events WHERE 1 {where} ORDER BY id DESC LIMIT ?"
    return [Event.from_row(row) for row in db.query(sql, (*args, limit))]


def since(db: Database, event_id: int, limit: int = 500) -> list[Event]:
    """Events after `event_id`, oldest first: what a stream sends next."""
    rows = db.query("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (event_id, limit))
    return [Event.from_row(row) for row in rows]


def last_id(db: Database) -> int:
    return int(db.scalar("SELECT coalesce(max(id), 0) FROM events"))
