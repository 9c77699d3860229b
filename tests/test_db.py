"""The database layer: migrations from every earlier version, the write helper, backups."""

from __future__ import annotations

import os
import stat
import threading
import time

import apsw
import pytest

from harmony import db as dbmod
from harmony.db import MIGRATIONS, Database, filters
from harmony.errors import DatabaseTooNew, DiskFull, HarmonyError


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


def test_a_python_step_moves_data_inside_its_transaction(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    with db.write() as conn:
        conn.execute("INSERT INTO settings VALUES ('a', 'x', 0)")

    def upper(conn: apsw.Connection) -> None:
        conn.execute("UPDATE settings SET value = upper(value)")

    def broken(conn: apsw.Connection) -> None:
        conn.execute("UPDATE settings SET value = 'lost'")
        raise RuntimeError("step failed halfway")

    assert db.migrate([*MIGRATIONS, ("upper", upper)]) == ["upper"]
    assert db.scalar("SELECT value FROM settings") == "X"
    with pytest.raises(RuntimeError):
        db.migrate([*MIGRATIONS, ("upper", upper), ("broken", broken)])
    assert db.scalar("SELECT value FROM settings") == "X" and db.user_version() == len(MIGRATIONS) + 1
    db.close()


def test_write_commits_or_rolls_back_as_one_unit(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute("INSERT INTO settings VALUES ('a', '1', 0)")
        with db.write() as inner:  # a nested block commits only with the outer one
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


def test_a_nested_failure_caught_by_the_outer_block_rolls_back_only_its_part(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    with db.write() as conn:
        conn.execute("INSERT INTO settings VALUES ('outer', '1', 0)")
        with pytest.raises(RuntimeError), db.write() as inner:
            inner.execute("INSERT INTO settings VALUES ('inner', '2', 0)")
            raise RuntimeError("inner step failed")
        with db.write() as again:  # the outer block goes on, and nests again
            again.execute("INSERT INTO settings VALUES ('after', '3', 0)")
    assert [r["key"] for r in db.query("SELECT key FROM settings ORDER BY key")] == ["after", "outer"]
    db.close()


def test_a_failed_commit_or_rollback_does_not_hide_the_error(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    # A tiny page budget makes the file "full", as a full disk does: SQLite rolls back itself.
    db.conn().execute("PRAGMA max_page_count = " + str(db.scalar("PRAGMA page_count")))
    with pytest.raises(apsw.FullError), db.write() as conn:
        conn.executemany("INSERT INTO settings VALUES (?, ?, 0)", [(f"k{i}", "x" * 500) for i in range(500)])
    assert not db.conn().in_transaction
    db.conn().execute("PRAGMA max_page_count = 1000000")
    with db.write() as conn:  # the connection is usable again
        conn.execute("INSERT INTO settings VALUES ('ok', '1', 0)")
    assert db.scalar("SELECT count(*) FROM settings") == 1
    db.close()


def test_filters_bind_values_and_refuse_names_that_are_not_columns() -> None:
    assert filters(state="ready", type=None) == (" AND state = ?", ("ready",))
    assert filters(state=("ready", "dead")) == (" AND state IN (?, ?)", ("ready", "dead"))
    assert filters(state=()) == (" AND 0", ())
    with pytest.raises(ValueError):
        filters(**{"state; DROP TABLE jobs": 1})


def test_the_database_and_its_backups_are_private(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    db.backup(str(tmp_path / "copy.db"))
    for name in ("h.db", "h.db-wal", "copy.db"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    db.close()


def test_backup_finishes_while_a_writer_runs(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    with db.write() as conn:  # about 20 MB, so a page-by-page copy would restart endlessly
        conn.executemany(
            "INSERT INTO settings VALUES (?, ?, 0)", [(f"k{i}", "v" * 2000) for i in range(10000)]
        )
    stop, written = threading.Event(), []

    def writer() -> None:
        while not stop.is_set():
            with db.write() as conn:
                conn.execute("INSERT INTO settings VALUES (?, 'w', 0)", (f"w{len(written)}",))
            written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.05)
        started = time.monotonic()
        db.backup(str(tmp_path / "copy.db"))
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
    assert written and took < 30
    copy = Database(str(tmp_path / "copy.db"))
    assert copy.scalar("PRAGMA integrity_check") == "ok"
    assert copy.scalar("SELECT count(*) FROM settings WHERE key LIKE 'k%'") == 10000
    copy.close()
    db.close()


def test_backup_refuses_the_live_database_and_a_missing_directory(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    for dest in ("h.db", "h.db-wal", "h.db-shm"):
        with pytest.raises(HarmonyError, match="live database"):
            db.backup(str(tmp_path / dest))
    os.symlink(tmp_path / "h.db", tmp_path / "link.db")
    with pytest.raises(HarmonyError, match="live database"):
        db.backup(str(tmp_path / "link.db"))
    with pytest.raises(HarmonyError, match="does not exist"):
        db.backup(str(tmp_path / "nowhere" / "b.db"))
    assert db.scalar("SELECT count(*) FROM api_keys") == 0  # the live file is untouched and open
    db.close()


def test_probe_write_fails_below_the_free_space_floor(tmp_path) -> None:
    db = Database(str(tmp_path / "h.db"))
    db.migrate()
    assert "schema version" in db.probe_write(0)
    with pytest.raises(DiskFull, match="MiB free"):
        db.probe_write(2**62)
    db.close()
