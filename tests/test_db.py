"""The database layer: migrations from every earlier version, the write helper, backups."""

from __future__ import annotations

import threading

import apsw
import pytest

from harmony import db as dbmod
from harmony.db import MIGRATIONS, Database
from harmony.errors import DatabaseTooNew


def tables(db: Database) -> set[str]:
    return {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}


def test_fresh_database_gets_every_step(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    assert db.migrate() == [name for name, _ in MIGRATIONS]
    assert db.user_version() == len(MIGRATIONS)
    assert db.migrate() == []
    assert db.scalar("PRAGMA journal_mode") == "wal"
    assert db.scalar("PRAGMA foreign_keys") == 1
    db.close()


@pytest.mark.parametrize("version", range(len(MIGRATIONS)))
def test_each_earlier_version_upgrades_to_the_same_schema(tmp_path, version: int) -> None:
    reference = Database(str(tmp_path / "ref.db"))
    reference.migrate()
    old = Database(str(tmp_path / "old.db"))
    old.migrate(MIGRATIONS[:version])  # the schema as an older Harmony left it
    assert old.user_version() == version
    if version >= 1:  # a row written by the old version survives the upgrade
        with old.write() as conn:
            conn.execute("INSERT INTO settings (key, value, updated_at) VALUES ('k', 'v', 1)")
    applied = old.migrate()
    assert applied == [name for name, _ in MIGRATIONS[version:]]
    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
    assert old.query(schema) == reference.query(schema)
    if version >= 1:
        assert old.scalar("SELECT value FROM settings WHERE key = 'k'") == "v"
    old.close()
    reference.close()


def test_refuses_a_database_newer_than_the_code(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    db.conn().execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(DatabaseTooNew, match="newer than this Harmony"):
        db.migrate()
    assert db.user_version() == len(MIGRATIONS) + 1
    db.close()


def test_a_failing_step_leaves_the_previous_version(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    broken = [*MIGRATIONS, ("broken", "CREATE TABLE later (x); INSERT INTO nosuch VALUES (1);")]
    with pytest.raises(apsw.SQLError):
        db.migrate(broken)
    assert db.user_version() == len(MIGRATIONS)
    assert "later" not in tables(db)
    db.close()


def test_write_commits_or_rolls_back_as_one_unit(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute("INSERT INTO settings VALUES ('a', '1', 0)")
        with db.write() as inner:  # nested blocks join the outer transaction
            inner.execute("INSERT INTO settings VALUES ('b', '2', 0)")
        raise RuntimeError("boom")
    assert db.scalar("SELECT count(*) FROM settings") == 0
    with db.write() as conn:
        conn.execute("INSERT INTO settings VALUES ('a', '1', 0)")
    assert db.scalar("SELECT count(*) FROM settings") == 1
    db.close()


def test_each_thread_has_its_own_connection(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    seen = []
    thread = threading.Thread(target=lambda: seen.append(db.conn()))
    thread.start()
    thread.join()
    assert seen[0] is not db.conn()
    db.close()


def test_backup_is_a_consistent_copy(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    with db.write() as conn:
        conn.executemany("INSERT INTO settings VALUES (?, ?, 0)", [(f"k{i}", "v") for i in range(500)])
    db.backup(str(tmp_path / "copy.db"))
    copy = Database(str(tmp_path / "copy.db"))
    assert copy.scalar("SELECT count(*) FROM settings") == 500
    assert copy.user_version() == dbmod.SCHEMA_VERSION
    copy.close()
    db.close()
