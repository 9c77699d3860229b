"""Backups and restore: this module owns the backup directory (`backup.dir`) and no table.

`Backups.run` is the periodic task (`backup.interval`): it copies the live database with
SQLite's online backup (`Database.backup`: a temporary name, `PRAGMA quick_check`, fsync,
rename) into a file named after the UTC time, `harmony-20261130T031500Z.sqlite3`, then deletes
the oldest beyond `backup.keep`. Only files with that name are ever deleted, so an operator's
own files in the directory are safe.

`restore` is `harmony restore PATH`: it checks that the file is a sound Harmony database no
newer than this build, sets the current database aside under a timestamped name and puts a
copy of the file in its place atomically. The caller holds the data directory's lock, so no
Harmony runs on it meanwhile.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import apsw

from . import db as dblib
from .db import Database
from .errors import HarmonyError
from .schema import MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger(__name__)

# Harmony's own backup names: the UTC time of the backup, then a counter when two fall in
# the same second. Nothing else in backup.dir is ever deleted.
NAME = re.compile(r"harmony-(\d{8}T\d{6}Z)(?:-(\d{1,4}))?\.sqlite3")
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
# A partial copy left by a crash is removed once it is this old (a running copy is younger).
PARTIAL_AGE_S = 3600.0


@dataclass(frozen=True)
class BackupFile:
    path: str
    at: float  # when it was taken (Unix time, from its name)
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "at": self.at, "size_bytes": self.size_bytes}


def _stamp(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime(TIME_FORMAT)


def _parse(name: str) -> tuple[float, int] | None:
    match = NAME.fullmatch(name)
    if match is None:
        return None
    when = datetime.datetime.strptime(match.group(1), TIME_FORMAT).replace(tzinfo=datetime.UTC)
    return when.timestamp(), int(match.group(2) or 0)


def list_backups(directory: str) -> list[BackupFile]:
    """Harmony's backups in `directory`, oldest first (a directory that is absent or cannot be
    read holds none: the next backup says why)."""
    found = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        parsed = _parse(name)
        if parsed is None:
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(FileNotFoundError):
            found.append((parsed, BackupFile(path, parsed[0], os.stat(path).st_size)))
    return [backup for _, backup in sorted(found, key=lambda pair: pair[0])]


class Backups:
    """The periodic backup task: one checked copy into `directory` a run, `keep` kept."""

    def __init__(
        self,
        db: Database,
        directory: str,
        keep: int,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db, self.directory, self.keep, self.metrics, self.clock = db, directory, keep, metrics, clock
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        # After a restart the gauges start from the newest backup already there, so an alert on
        # the backup's age does not fire because the process is new.
        newest = self.newest()
        if newest is not None:
            metrics.backup_last_success.set(newest.at)
            metrics.backup_size.set(newest.size_bytes)

    def newest(self) -> BackupFile | None:
        backups = list_backups(self.directory)
        return backups[-1] if backups else None

    def _destination(self, now: float) -> str:
        base = f"harmony-{_stamp(now)}"
        path = os.path.join(self.directory, base + ".sqlite3")
        counter = 0
        while os.path.exists(path) or os.path.exists(path + ".partial"):
            counter += 1
            path = os.path.join(self.directory, f"{base}-{counter}.sqlite3")
        return path

    def run(self, now: float | None = None) -> BackupFile:
        """Write one backup and delete the oldest beyond `keep`; the task's body.

        A failure is logged (`backup_failed`), counted and raised, so the wheel records it too.
        """
        now = self.clock() if now is None else now
        started = time.monotonic()
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            path = self._destination(now)
            self.db.backup(path)
            backup = BackupFile(path, now, os.stat(path).st_size)
        except (HarmonyError, apsw.Error, OSError) as exc:
            self.metrics.backups.labels("failed").inc()
            self.last_error, self.last_error_at = _reason(exc), now
            log.error("backup_failed", extra={"fields": {"dir": self.directory, "error": self.last_error}})
            raise
        self.metrics.backups.labels("ok").inc()
        self.metrics.backup_last_success.set(now)
        self.metrics.backup_size.set(backup.size_bytes)
        self.last_error = self.last_error_at = None
        deleted = self.prune(now)
        log.info(
            "backup_written",
            extra={
                "fields": {
                    "path": path,
                    "size_bytes": backup.size_bytes,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "deleted": deleted,
                }
            },
        )
        return backup

    def prune(self, now: float | None = None) -> list[str]:
        """Delete Harmony's backups beyond the newest `keep`, and partial copies a crash left;
        return the names deleted."""
        now = self.clock() if now is None else now
        deleted = []
        backups = list_backups(self.directory)
        for backup in backups[: max(0, len(backups) - self.keep)]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(backup.path)
                deleted.append(os.path.basename(backup.path))
        for name in os.listdir(self.directory):
            stem, dot, rest = name.partition(".sqlite3.partial")
            if not dot or rest not in ("", "-journal") or _parse(stem + ".sqlite3") is None:
                continue
            path = os.path.join(self.directory, name)
            with contextlib.suppress(FileNotFoundError):
                if now - os.stat(path).st_mtime > PARTIAL_AGE_S:
                    os.unlink(path)
                    deleted.append(name)
        return deleted

    def status(self, interval_s: float) -> dict[str, Any]:
        """For /api/v1/system/status: where backups go, how often, and the newest one."""
        newest = self.newest()
        return {
            "dir": self.directory,
            "interval_seconds": interval_s,
            "keep": self.keep,
            "last": newest.to_dict() if newest else None,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


def _reason(exc: BaseException) -> str:
    if isinstance(exc, HarmonyError):
        return exc.message
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc.strerror or exc)
    return f"{type(exc).__name__}: {exc}"


# --- restore --------------------------------------------------------------------------------


def _tables_at(version: int) -> set[str]:
    """The tables a database at schema `version` holds, from the schema history itself (run
    quietly on a database in memory)."""
    conn = dblib.connect(":memory:")
    try:
        for _, step in MIGRATIONS[:version]:
            if isinstance(step, str):
                conn.execute(step)
            else:
                step(conn)
        return {row["name"] for row in conn.execute(SQL_TABLES)}
    finally:
        conn.close()


SQL_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"


def inspect(path: str) -> int:
    """Check that `path` is a sound Harmony database this build can open; return its schema
    version. Opens it read-only; raises HarmonyError saying what is wrong."""
    if not os.path.isfile(path):
        raise HarmonyError(f"{path} is not a file")
    try:
        problems = dblib.check(path)
        conn = dblib.open_readonly(path)
        try:
            version = int(next(iter(conn.execute("PRAGMA user_version")))["user_version"])
            tables = {row["name"] for row in conn.execute(SQL_TABLES)}
        finally:
            conn.close()
    except (apsw.NotADBError, apsw.CorruptError):
        raise HarmonyError(f"{path} is not a SQLite database, or it is damaged") from None
    except apsw.CantOpenError:
        raise HarmonyError(f"cannot open {path}: check its permissions") from None
    if problems:
        first = problems.splitlines()[0]
        raise HarmonyError(f"{path} fails SQLite's integrity check ({first}); choose another backup")
    if version > SCHEMA_VERSION:
        raise HarmonyError(
            f"{path} is at schema version {version}, newer than this Harmony ({SCHEMA_VERSION}); "
            "restore it with the Harmony that wrote it"
        )
    expected = _tables_at(version) if version else set()
    if version == 0 or not expected <= tables:
        raise HarmonyError(f"{path} is not a Harmony database (missing {sorted(expected - tables)[:3]})")
    return version


@dataclass(frozen=True)
class Restored:
    version: int  # the backup's schema version
    migrated_to: int  # after opening it
    aside: str | None  # where the database it replaced went


def restore(source: str, database_path: str, *, now: float | None = None) -> Restored:
    """Replace the database at `database_path` by a copy of `source`.

    The caller holds the data directory's lock. Steps: check `source` (`inspect`); copy it with
    the backup API to a temporary file beside the database (so a -wal beside `source` is
    included and the copy is on the same filesystem), check and fsync it; checkpoint and close
    the current database, so its -wal is folded in, and rename it to
    `harmony.sqlite3.before-restore-<UTC time>` (a -wal that could not be folded in goes with
    it); rename the copy into place; open it, applying any newer schema steps, and check it.
    A current database that fails its check is set aside untouched, with its -wal.
    """
    now = time.time() if now is None else now
    source = os.path.abspath(source)
    target = os.path.abspath(database_path)
    version = inspect(source)
    if os.path.exists(target) and os.path.samefile(source, target):
        raise HarmonyError(f"{source} is the current database; choose a backup")
    tmp = target + ".restoring"
    reader = dblib.open_readonly(source)
    try:
        dblib.copy_checked(reader, tmp)
    finally:
        reader.close()
    aside = None
    if os.path.exists(target):
        aside = f"{target}.before-restore-{_stamp(now)}"
        # Fold the -wal into the database before it is set aside, but only when the database is
        # sound: SQLite would discard a -wal it cannot use, and a damaged database (a reason to
        # restore) is kept exactly as it was, -wal included, for whoever looks into it.
        try:
            problem = dblib.check(target, quick=True)
        except apsw.Error as exc:
            problem = str(exc)
        if problem:
            log.warning("restore_checkpoint_failed", extra={"fields": {"error": problem[:500]}})
        else:
            current = Database(target)
            try:
                current.checkpoint()
            except apsw.Error as exc:
                log.warning("restore_checkpoint_failed", extra={"fields": {"error": str(exc)}})
            finally:
                with contextlib.suppress(apsw.Error):
                    current.close()
        os.replace(target, aside)
        if os.path.exists(target + "-wal"):
            os.replace(target + "-wal", aside + "-wal")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target + "-shm")  # only an index of the -wal: rebuilt from it
    os.replace(tmp, target)
    dblib.fsync_path(os.path.dirname(target))
    restored = Database(target)
    try:
        restored.migrate()
        migrated_to = restored.user_version()
    finally:
        restored.close()
    problems = dblib.check(target, quick=True)
    if problems:
        raise HarmonyError(f"the restored database failed its check: {problems}")
    log.info(
        "restored",
        extra={"fields": {"source": source, "version": version, "migrated_to": migrated_to, "aside": aside}},
    )
    return Restored(version, migrated_to, aside)
