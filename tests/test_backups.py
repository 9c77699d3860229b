"""Periodic backups (retention, checks, metrics, status) and `harmony restore`, through main(argv)."""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import threading
import time
from typing import Any

import apsw
from acquire_world import manual, world
from client import Client
from conftest import make_config

from harmony import auth, backups, wanted
from harmony import db as dblib
from harmony.__main__ import main
from harmony.context import opened
from harmony.db import SCHEMA_VERSION, Database
from harmony.web import make_app

DAY = 86400.0
T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z, a fixed time for backup names


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def names(directory: Any) -> list[str]:
    return sorted(os.listdir(directory))


def test_a_backup_is_a_checked_private_file_named_by_its_utc_time(tmp_path) -> None:
    with opened(make_config(tmp_path)) as ctx:
        auth.create_key(ctx.db, "kept", "read")
        backup = ctx.backups.run(now=T0)
        directory = tmp_path / "data" / "backups"
        assert names(directory) == ["harmony-20260921T141320Z.sqlite3"] == [os.path.basename(backup.path)]
        assert backup.at == T0 and backup.size_bytes == os.path.getsize(backup.path) > 0
        assert os.stat(backup.path).st_mode & 0o777 == 0o600 and os.stat(directory).st_mode & 0o777 == 0o700
        assert dblib.check(backup.path) == ""
        assert names(directory) == ["harmony-20260921T141320Z.sqlite3"]  # reading it left no -wal/-shm
        copy = Database(backup.path)
        assert copy.scalar("SELECT name FROM api_keys") == "kept"
        assert copy.user_version() == SCHEMA_VERSION
        copy.close()
        sample = ctx.metrics.registry.get_sample_value
        assert sample("harmony_backups_total", {"outcome": "ok"}) == 1
        assert sample("harmony_backups_total", {"outcome": "failed"}) == 0
        assert sample("harmony_backup_last_success_timestamp_seconds") == T0
        assert sample("harmony_backup_size_bytes") == backup.size_bytes
        # Two in the same second get distinct names.
        again = ctx.backups.run(now=T0)
        assert os.path.basename(again.path) == "harmony-20260921T141320Z-1.sqlite3"


def test_only_the_newest_keep_backups_are_kept_and_nothing_else_is_touched(tmp_path) -> None:
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    foreign = [
        "notes.txt",
        "harmony-before-upgrade.sqlite3",
        "harmony.sqlite3",
        "other-20260101T000000Z.sqlite3",
    ]
    for name in foreign:
        (directory / name).write_text("mine")
    with opened(make_config(tmp_path, backup_dir=str(directory), backup_keep="3")) as ctx:
        for day in range(5):
            ctx.backups.run(now=T0 + day * DAY)
        ours = [n for n in names(directory) if n not in foreign]
        assert ours == [
            "harmony-20260923T141320Z.sqlite3",
            "harmony-20260924T141320Z.sqlite3",
            "harmony-20260925T141320Z.sqlite3",
        ]
        assert all((directory / name).read_text() == "mine" for name in foreign)
        # A partial copy left by a crash goes once it is old; a young one may still be written.
        old, young = directory / "harmony-20260920T000000Z.sqlite3.partial", directory / "x.sqlite3.partial"
        old.write_text("half")
        young.write_text("half")
        os.utime(old, (T0, T0))
        ctx.backups.run(now=T0 + 5 * DAY)
        assert not old.exists() and young.exists()
        status = ctx.backups.status(ctx.config["backup.interval"])
        assert status["keep"] == 3 and status["interval_seconds"] == DAY
        assert status["last"]["path"] == str(directory / "harmony-20260926T141320Z.sqlite3")
    # After a restart the gauges start from the newest backup already there.
    with opened(make_config(tmp_path, backup_dir=str(directory))) as ctx:
        sample = ctx.metrics.registry.get_sample_value
        assert sample("harmony_backup_last_success_timestamp_seconds") == T0 + 5 * DAY


def test_a_failed_backup_is_logged_counted_and_shown(tmp_path, caplog) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with opened(make_config(tmp_path, backup_dir=str(blocker / "backups"))) as ctx:
        try:
            ctx.backups.run(now=T0)
        except OSError:
            pass
        else:
            raise AssertionError("the backup should have failed")
        sample = ctx.metrics.registry.get_sample_value
        assert sample("harmony_backups_total", {"outcome": "failed"}) == 1
        assert sample("harmony_backup_last_success_timestamp_seconds") == 0
        assert any(record.getMessage() == "backup_failed" for record in caplog.records)
        key, _ = auth.create_key(ctx.db, "reader", "read")
        status = Client(make_app(ctx), key).get("/api/v1/system/status").json
        assert status["backup"]["last"] is None and "Not a directory" in status["backup"]["last_error"]


def test_the_backup_task_is_on_the_wheel_unless_turned_off(tmp_path) -> None:
    with opened(make_config(tmp_path, backup_interval="6h")) as ctx:
        task = next(t for t in ctx.wheel.tasks() if t["name"] == "backup")
        assert task["interval_s"] == 6 * 3600
        ctx.wheel.trigger("backup")  # as POST /api/v1/tasks/backup/run does
        assert "backup" in ctx.wheel.run_due()
        assert len(backups.list_backups(ctx.config.backup_dir)) == 1
    with opened(make_config(tmp_path, backup_interval="0")) as ctx:
        assert "backup" not in {t["name"] for t in ctx.wheel.tasks()}


# --- restore -------------------------------------------------------------------------------


def key_names(data_dir: Any) -> list[str]:
    db = Database(str(data_dir / "harmony.sqlite3"))
    try:
        return [row["name"] for row in db.query("SELECT name FROM api_keys ORDER BY id")]
    finally:
        db.close()


def test_restore_puts_the_backup_in_place_and_keeps_the_current_database_aside(tmp_path) -> None:
    data = tmp_path / "data"
    assert run("apikey", "create", "--name", "before", "--data-dir", str(data))[0] == 0
    backup = tmp_path / "b.sqlite3"
    assert run("backup", str(backup), "--data-dir", str(data))[0] == 0
    assert run("apikey", "create", "--name", "after", "--data-dir", str(data))[0] == 0
    # A Harmony killed mid-run leaves a -wal with content: the database set aside keeps it.
    pid = os.fork()
    if pid == 0:
        live = Database(str(data / "harmony.sqlite3"))
        with live.write() as conn:
            conn.execute("INSERT INTO settings (key, value, updated_at) VALUES ('unsaved', '1', 0)")
        os._exit(0)  # no close, no checkpoint
    assert os.waitpid(pid, 0)[1] == 0
    assert os.path.getsize(data / "harmony.sqlite3-wal") > 0
    code, text = run("restore", str(backup), "--data-dir", str(data))
    assert code == 0, text
    assert f"restored {backup} (schema version {SCHEMA_VERSION})" in text
    assert key_names(data) == ["before"]
    aside = [n for n in names(data) if n.startswith("harmony.sqlite3.before-restore-")]
    assert len(aside) == 1 and f"kept as {data / aside[0]}" in text
    old = Database(str(data / aside[0]))
    assert [r["name"] for r in old.query("SELECT name FROM api_keys ORDER BY id")] == ["before", "after"]
    assert old.scalar("SELECT value FROM settings WHERE key = 'unsaved'") == "1"
    old.close()
    assert not (data / "harmony.sqlite3.restoring").exists()
    assert os.stat(data / "harmony.sqlite3").st_mode & 0o777 == 0o600


def test_restore_replaces_a_damaged_database_keeping_it_and_its_wal_aside(tmp_path) -> None:
    data = tmp_path / "data"
    assert run("apikey", "create", "--name", "saved", "--data-dir", str(data))[0] == 0
    backup = tmp_path / "b.sqlite3"
    assert run("backup", str(backup), "--data-dir", str(data))[0] == 0
    (data / "harmony.sqlite3").write_bytes(b"\x00garbage" * 1000)
    (data / "harmony.sqlite3-wal").write_bytes(b"wal" * 1000)
    (data / "harmony.sqlite3-shm").write_bytes(b"shm" * 1000)
    code, text = run("restore", str(backup), "--data-dir", str(data))
    assert code == 0, text
    assert key_names(data) == ["saved"]
    aside = sorted(n for n in names(data) if n.startswith("harmony.sqlite3.before-restore-"))
    assert len(aside) == 2 and aside[1] == aside[0] + "-wal"
    assert (data / aside[0]).read_bytes() == b"\x00garbage" * 1000
    assert (data / aside[1]).read_bytes() == b"wal" * 1000
    assert not (data / "harmony.sqlite3-shm").exists()


def test_restore_upgrades_an_older_backup(tmp_path) -> None:
    old = Database(str(tmp_path / "old.sqlite3"))
    old.migrate(dblib.MIGRATIONS[:1])
    with old.write() as conn:
        conn.execute(
            "INSERT INTO api_keys (name, role, prefix, hash, created_at) VALUES ('old', 'admin', 'p', 'h', 1)"
        )
    old.close()
    code, text = run("restore", str(tmp_path / "old.sqlite3"), "--data-dir", str(tmp_path / "fresh"))
    assert code == 0, text
    assert "schema version 1)" in text and f"upgraded it to schema version {SCHEMA_VERSION}" in text
    assert "kept as" not in text  # there was nothing to set aside
    assert key_names(tmp_path / "fresh") == ["old"]


def test_restore_refuses_while_harmony_runs_on_the_data_dir(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    assert run("apikey", "create", "--name", "live", "--data-dir", str(data))[0] == 0
    backup = tmp_path / "b.sqlite3"
    assert run("backup", str(backup), "--data-dir", str(data))[0] == 0
    fd = os.open(data / "harmony.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running `serve` holds it
        os.pwrite(fd, b"4242", 0)
        before = names(data)
        assert run("restore", str(backup), "--data-dir", str(data))[0] == 1
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert "(pid 4242) is already running" in err and "stop it before restoring" in err
    assert names(data) == before


def test_restore_refuses_what_is_not_a_sound_harmony_database_of_this_version(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    assert run("migrate", "--data-dir", str(data))[0] == 0
    good = tmp_path / "good.sqlite3"
    assert run("backup", str(good), "--data-dir", str(data))[0] == 0

    text = tmp_path / "notes.txt"
    text.write_text("not a database " * 500)
    other = Database(str(tmp_path / "other.sqlite3"))
    with other.write() as conn:
        conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
        conn.execute("PRAGMA user_version = 1")
    other.close()
    newer = tmp_path / "newer.sqlite3"
    shutil.copy(good, newer)
    conn = apsw.Connection(str(newer))
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    damaged = tmp_path / "damaged.sqlite3"
    raw = bytearray(good.read_bytes())
    page = 4096
    for offset in range(2 * page, len(raw) - page, page):  # scribble over every page but the first and last
        raw[offset + 8 : offset + 200] = b"\xff" * 192
    damaged.write_bytes(bytes(raw))

    cases = {
        str(tmp_path / "missing.sqlite3"): "is not a file",
        str(text): "not a SQLite database",
        str(tmp_path / "other.sqlite3"): "not a Harmony database",
        str(newer): "newer than this Harmony",
        str(damaged): "",
    }
    before = (data / "harmony.sqlite3").read_bytes()
    for path, message in cases.items():
        assert run("restore", path, "--data-dir", str(data))[0] == 1, path
        err = capsys.readouterr().err
        assert message in err and err.splitlines()[-1].startswith("harmony: error: "), (path, err)
    assert (data / "harmony.sqlite3").read_bytes() == before
    assert not any(n.startswith("harmony.sqlite3.before-restore") for n in names(data))


# --- a backup taken under load, restored ---------------------------------------------------

# Tables that only grow while the pipeline runs (nothing here deletes from them).
GROWING = ("wanted_items", "wanted_sources", "events", "jobs", "searches", "transfers")


def counts(db: Database) -> dict[str, int]:
    return {table: int(db.scalar(f"SELECT count(*) FROM {table}")) for table in GROWING}


def test_a_backup_taken_while_jobs_and_imports_run_restores_whole(tmp_path) -> None:
    with world(tmp_path, backup_keep="1000") as w:
        catalogue = w.fakes.catalogue
        peer = w.fakes.slskd_state.peers["vinylvault"]
        isrcs = {
            catalogue.tracks[f.track_id].isrc for f in peer.files if f.variant == "original" and f.track_id
        }
        tracks = [
            t.id
            for t in sorted(catalogue.tracks.values(), key=lambda t: t.id)
            if t.isrc in isrcs
            and not catalogue.albums[t.album_id].future
            and catalogue.albums[t.album_id].duplicate_of is None
        ][:3]
        assert len(tracks) == 3
        stop = threading.Event()
        taken: list[tuple[dict[str, int], str, dict[str, int]]] = []
        written: list[int] = []
        errors: list[BaseException] = []

        def writer() -> None:
            # Items wanted and set aside at once (so the pipeline leaves them be), and jobs.
            n = 0
            while not stop.is_set():
                n += 1
                track = wanted.Track(title=f"Filler {n}", artists=("Writer",), duration_ms=1000)
                with w.ctx.db.write() as conn:
                    item, _ = wanted.want(conn, track, manual())
                    wanted.transition(conn, item.id, "skipped", "skipped", "filler")
                w.ctx.queue.enqueue("filler", {"n": n}, key=f"filler:{n}", run_at=4e9)
                written.append(n)
                time.sleep(0.002)

        def backer() -> None:
            try:
                while not stop.is_set():
                    before = counts(w.ctx.db)
                    backup = w.ctx.backups.run()
                    taken.append((before, backup.path, counts(w.ctx.db)))
                    time.sleep(0.02)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer), threading.Thread(target=backer)]
        for thread in threads:
            thread.start()
        try:
            items = [w.want(track) for track in tracks]
            for item in items:  # searches, transfers and imports run in this thread meanwhile
                assert w.until(item.id, {"done"}, steps=80).reason_code == "imported"
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert not errors and written and len(taken) >= 2
        assert dblib.check(taken[-1][1]) == ""

    for n, (before, path, after) in enumerate([taken[0], taken[len(taken) // 2], taken[-1]]):
        data = tmp_path / f"restored-{n}"
        code, text = run("restore", path, "--data-dir", str(data))
        assert code == 0, text
        with opened(make_config(tmp_path / f"restored-{n}-root", data_dir=str(data))) as ctx:
            assert ctx.db.scalar("PRAGMA integrity_check") == "ok"
            assert ctx.db.query("PRAGMA foreign_key_check") == []
            now = counts(ctx.db)
            for table in GROWING:
                assert before[table] <= now[table] <= after[table], (table, before, now, after)
            # Every state change and its event were committed together: each item's state is
            # the one its last event moved it to.
            mismatched = ctx.db.query(
                """
                SELECT w.id, w.state, e.to_state FROM wanted_items w
                JOIN events e ON e.id = (
                    SELECT max(id) FROM events WHERE item_id = w.id AND to_state IS NOT NULL
                )
                WHERE e.to_state IS NOT w.state
                """
            )
            assert mismatched == []
            assert wanted.counts_by_state(ctx.db)  # the pipeline's own reads work on it
            assert sum(ctx.queue.counts().values()) == now["jobs"]
