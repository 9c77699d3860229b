"""The schema's history: every earlier version, holding data, upgrades to the newest without losing a row."""

from __future__ import annotations

from typing import Any

import apsw
import pytest

from harmony.db import Database
from harmony.schema import MIGRATIONS

# One row for every table a step creates, as an older Harmony would have written it. A new
# step that creates a table adds its row here (the last test fails until it does).
SAMPLES: dict[str, dict[str, Any]] = {
    "api_keys": {
        "name": "old key",
        "role": "admin",
        "prefix": "ab12cd34",
        "hash": "0" * 64,
        "created_at": 1.0,
    },
    "settings": {"key": "log.level", "value": '"debug"', "updated_at": 1.0},
    "jobs": {
        "type": "example",
        "payload": '{"n": 1}',
        "state": "dead",
        "idem_key": "example:1",
        "run_at": 1.0,
        "attempts": 5,
        "max_attempts": 5,
        "last_error": "boom",
        "created_at": 1.0,
        "updated_at": 2.0,
        "finished_at": 2.0,
    },
    "tasks": {"name": "health_probe", "interval_s": 30.0, "next_run_at": 10.0, "runs": 3, "failures": 1},
    "spotify_auth": {
        "id": 1,
        "access_token": "at",
        "refresh_token": "rt",
        "expires_at": 5.0,
        "user_id": "u1",
        "updated_at": 1.0,
    },
    "spotify_pkce": {
        "state": "st",
        "code_verifier": "cv",
        "redirect_uri": "http://127.0.0.1/cb",
        "created_at": 1.0,
    },
    "artists": {
        "spotify_id": "a" * 22,
        "name": "Aurora Vale",
        "since": "2020-01-01",
        "added_at": 1.0,
        "next_scan_at": 2.0,
    },
    "releases": {"spotify_id": "r" * 22, "name": "Low Tide", "first_seen_at": 1.0, "wanted": 1},
    "artist_releases": {"artist_id": 1, "release_id": 1, "release_group": "album"},
    "playlists": {"spotify_id": "p" * 22, "name": "Mix", "followed_at": 1.0, "next_sync_at": 2.0},
    "wanted_items": {
        "spotify_id": "t" * 22,
        "identity": "aurora vale\x1fglass harbour",
        "title": "Glass Harbour",
        "artists": '["Aurora Vale"]',
        "state": "wanted",
        "state_since": 1.0,
        "created_at": 1.0,
        "updated_at": 1.0,
    },
    "playlist_tracks": {
        "playlist_id": 1,
        "spotify_track_id": "t" * 22,
        "item_id": 1,
        "position": 1,
        "generation": 1,
    },
    "wanted_sources": {
        "item_id": 1,
        "source_key": "playlist:1",
        "kind": "playlist",
        "playlist_id": 1,
        "added_at": 1.0,
    },
    "library_tracks": {"path": "A/B/01 C.flac", "identity": "a\x1fc", "scanned_at": 1.0},
    "events": {"at": 1.0, "kind": "item.created", "item_id": 1, "to_state": "wanted"},
    "searches": {
        "item_id": 1,
        "mode": "track",
        "variant": "primary",
        "query": "aurora vale glass harbour",
        "slskd_id": "0f6f3a1c-0000-4000-8000-000000000001",
        "state": "evaluated",
        "started_at": 1.0,
    },
    "search_spend": {"at": 1.0},
    "candidates": {
        "item_id": 1,
        "search_id": 1,
        "username": "vinylvault",
        "filename": "@@m\\Aurora Vale\\01 Glass Harbour.flac",
        "size": 1000,
        "file": '{"extension": "flac"}',
        "peer": '{"free_slot": true}',
        "accepted": 1,
        "rank": 1,
        "reasons": '["identity 1.00"]',
        "created_at": 1.0,
    },
    "transfers": {
        "item_id": 1,
        "candidate_id": 1,
        "username": "vinylvault",
        "filename": "@@m\\Aurora Vale\\01 Glass Harbour.flac",
        "size": 1000,
        "slskd_id": "0f6f3a1c-0000-4000-8000-000000000002",
        "state": "succeeded",
        "requested_at": 1.0,
        "outcome": "succeeded",
    },
    "peers": {"username": "vinylvault", "blocked": 1, "blocked_reason": "transcodes", "updated_at": 1.0},
    "bad_files": {"username": "vinylvault", "filename": "x.flac", "reason": "wrong", "at": 1.0},
    "quarantine": {
        "item_id": 1,
        "path": "1-01 Glass Harbour.flac",
        "origin": "/downloads/Low Tide/01 Glass Harbour.flac",
        "code": "incomplete",
        "reason": "1000 of 2000 bytes",
        "at": 1.0,
    },
    "library_scans": {"state": "done", "started_at": 1.0, "updated_at": 2.0, "files": 10, "added": 10},
    "backfill_jobs": {"state": "done", "started_at": 1.0, "updated_at": 2.0, "total": 5, "matched": 4},
    "webhook_state": {"name": "slskd", "value": "down", "updated_at": 1.0},
    "sessions": {
        "id_hash": "0" * 64,
        "key_id": 1,
        "csrf_token": "c",
        "created_at": 1.0,
        "last_seen_at": 1.0,
        "expires_at": 2.0,
    },
}
# Parents before children, so foreign keys hold when the samples are written.
ORDER = ["artists", "releases", "playlists", "wanted_items", "searches", "candidates", "transfers"]


def user_tables(db: Database) -> set[str]:
    rows = db.query("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    # A full-text index and its shadow tables hold what triggers derive from another table's
    # rows: they get no sample of their own.
    virtual = [row["name"] for row in rows if row["sql"].upper().startswith("CREATE VIRTUAL TABLE")]
    return {
        row["name"]
        for row in rows
        if not any(row["name"] == name or row["name"].startswith(name + "_") for name in virtual)
    }


def insert(db: Database, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    with db.write() as conn:
        conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))


class _Undo(Exception):
    pass


def accepted(db: Database, table: str, row: dict[str, Any]) -> bool:
    """Whether the table takes the row (its NOT NULL, CHECK, UNIQUE and foreign keys); nothing
    is kept."""
    try:
        with db.write():
            insert(db, table, row)
            raise _Undo
    except _Undo:
        return True
    except apsw.ConstraintError:
        return False


# Values tried, in order, for a column the sample leaves out, by its declared type.
FILLERS: dict[str, tuple[Any, ...]] = {
    "INTEGER": (7, 1, 0),
    "REAL": (7.25, 1.0, 0.0),
    "TEXT": ("filled", "{}", "[]"),
    "BLOB": (b"\x01",),
    "": ("filled", 7),
}


def full_row(db: Database, table: str) -> dict[str, Any]:
    """The table's sample with every other column it has at this version filled in with a value
    of the column's type its constraints accept (left NULL when none is), so the value of every
    column, not only the sample's, is carried through the upgrade."""
    row = dict(SAMPLES[table])
    for column in db.query(f"PRAGMA table_info({table})"):
        if column["name"] in row or column["pk"]:
            continue
        for value in FILLERS.get(column["type"].upper(), FILLERS[""]):
            if accepted(db, table, {**row, column["name"]: value}):
                row[column["name"]] = value
                break
    return row


def columns(db: Database, table: str) -> set[str]:
    return {column["name"] for column in db.query(f"PRAGMA table_info({table})")}


@pytest.mark.parametrize("version", range(len(MIGRATIONS)))
def test_each_earlier_version_with_data_upgrades_to_the_same_schema(tmp_path, version: int) -> None:
    reference = Database(str(tmp_path / "ref.db"))
    reference.migrate()
    old = Database(str(tmp_path / "old.db"))
    old.migrate(MIGRATIONS[:version])  # the schema as an older Harmony left it
    assert old.user_version() == version
    present = user_tables(old)
    rows = {}
    for table in sorted(present, key=lambda t: (t not in ORDER, ORDER.index(t) if t in ORDER else 0, t)):
        rows[table] = full_row(old, table)
        insert(old, table, rows[table])
    counts = {table: old.scalar(f"SELECT count(*) FROM {table}") for table in present}
    applied = old.migrate()
    assert applied == [name for name, _ in MIGRATIONS[version:]]
    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
    assert old.query(schema) == reference.query(schema)
    assert old.scalar("PRAGMA integrity_check") == "ok"
    assert old.query("PRAGMA foreign_key_check") == []
    for table in sorted(present):  # every row written by the old version is still there, unchanged
        assert old.scalar(f"SELECT count(*) FROM {table}") == counts[table], f"{table} lost or gained rows"
        kept = columns(old, table)
        row = {column: value for column, value in rows[table].items() if column in kept}
        assert set(SAMPLES[table]) <= set(row), f"a column of the {table} sample is gone"
        where = " AND ".join(f"{column} IS ?" for column in row)
        count = old.scalar(f"SELECT count(*) FROM {table} WHERE {where}", tuple(row.values()))
        assert count == 1, f"the {table} row did not survive the upgrade from version {version}: {row}"
    old.close()
    reference.close()


def test_the_generic_fill_covers_the_columns_the_samples_leave_out(tmp_path) -> None:
    """The fill is what makes the upgrade test check more than the samples: at the newest
    version most nullable columns get a value (those only a CHECK list or a foreign key to an
    empty table accepts stay NULL)."""
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    filled = left = 0
    for table in sorted(
        user_tables(db), key=lambda t: (t not in ORDER, ORDER.index(t) if t in ORDER else 0, t)
    ):
        row = full_row(db, table)
        insert(db, table, row)
        for column in db.query(f"PRAGMA table_info({table})"):
            if column["name"] not in SAMPLES[table] and not column["pk"]:
                filled, left = (filled + 1, left) if column["name"] in row else (filled, left + 1)
    assert filled > 2 * left, (filled, left)
    db.close()


def test_every_table_has_a_sample_row(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    assert user_tables(db) <= set(SAMPLES), "add a sample row for each new table to SAMPLES"
    db.close()


def test_the_authorisation_time_moves_from_updated_at_to_its_own_column(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    step = next(n for n, (name, _) in enumerate(MIGRATIONS) if name.startswith("watchlist"))
    db.migrate(MIGRATIONS[:step])
    insert(db, "spotify_auth", {**SAMPLES["spotify_auth"], "updated_at": 1234.5})
    db.migrate()
    assert db.scalar("SELECT authorized_at FROM spotify_auth") == 1234.5
    db.close()


def test_webhooks_begin_after_the_events_an_upgraded_database_holds(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    step = next(n for n, (name, _) in enumerate(MIGRATIONS) if name.startswith("api key expiry"))
    db.migrate(MIGRATIONS[:step])
    for _ in range(3):
        insert(db, "events", SAMPLES["events"])
    insert(db, "api_keys", SAMPLES["api_keys"])
    db.migrate()
    assert db.scalar("SELECT value FROM webhook_state WHERE name = 'cursor'") == "3"
    key = db.query_one("SELECT expires_at, rotated_from FROM api_keys")
    assert key == {"expires_at": None, "rotated_from": None}  # old keys never expire
    db.close()
    fresh = Database(str(tmp_path / "fresh.db"))
    fresh.migrate()
    assert fresh.scalar("SELECT value FROM webhook_state WHERE name = 'cursor'") == "0"
    fresh.close()
