"""The SQLite database: connections, the one write helper, query helpers and migration.

Rules every module follows:

- Each thread gets its own APSW connection (`Database.conn()`); APSW serialises calls on
  a shared connection, so sharing one would make every thread wait on every other.
- Every write goes through `with db.write() as conn:`, which runs `BEGIN IMMEDIATE`, so a
  read-then-write never fails upgrading its lock, and commits or rolls back as one unit.
  A nested `write()` on the same thread is a SAVEPOINT: if its block raises, only its own
  changes are rolled back, and the outer block decides what happens to the rest.
- **`db` owns, `conn` joins.** A function that takes `db` owns its transaction (it opens
  `with db.write() as conn`); a function that takes `conn` joins the caller's transaction
  and never commits. A pipeline state change is therefore one function taking `conn`,
  called inside whatever transaction also records the effect that caused it.
- Long scans commit in chunks (500 to 1,000 rows a transaction), so a writer never holds
  the lock for long and a crash loses at most one chunk of progress.
- Lists take one signature, `list_x(db, *, after=None, limit=50, **filters)`, where
  `after` is the decoded keyset cursor (the sort key of the last row of the previous page)
  and the equality filters are spliced with `filters()`.
- The schema changes only by appending a step to `schema.MIGRATIONS`; `migrate()` applies
  the missing steps, each in one transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apsw

from .errors import DatabaseTooNew, DiskFull, HarmonyError, ReadOnly
from .schema import MIGRATIONS, SCHEMA_VERSION, Step

log = logging.getLogger(__name__)

Row = dict[str, Any]
# Positional (`?`) or named (`:name`) bindings, as APSW takes them.
Bindings = Sequence[Any] | Mapping[str, Any] | None

BUSY_TIMEOUT_MS = 10_000
FILE_MODE = 0o600  # the database holds Spotify tokens: readable by Harmony's user only

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Database", "Row", "connect", "filters"]

_COLUMN = re.compile(r"[a-z_][a-z0-9_.]*")


def filters(**conditions: object) -> tuple[str, tuple[Any, ...]]:
    """Fixed `AND ...` SQL and its bindings for the conditions whose value is not None.

    `state="ready"` becomes ` AND state = ?`; a tuple, list or (frozen)set value becomes
    ` AND state IN (?, ?)` (an empty one matches nothing). The names are code, never input:
    a name that is not a plain column name raises ValueError. Splice the SQL into a fixed
    statement (`f"SELECT ... WHERE 1 {where} ORDER BY id"`) and bind the values.
    """
    sql, args = [], []
    for name, value in conditions.items():
        if not _COLUMN.fullmatch(name):
            raise ValueError(f"not a column name: {name!r}")
        if value is None:
            continue
        if isinstance(value, tuple | list | set | frozenset):
            values = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
            if not values:
                sql.append(" AND 0")
                continue
            sql.append(f" AND {name} IN ({', '.join('?' * len(values))})")
            args.extend(values)
        else:
            sql.append(f" AND {name} = ?")
            args.append(value)
    return "".join(sql), tuple(args)


def _row_trace(cursor: apsw.Cursor, row: tuple[Any, ...]) -> Row:
    return dict(zip((d[0] for d in cursor.get_description()), row))


def _create_private(path: str) -> None:
    """Create an empty database file readable by this user only (SQLite gives its -wal and
    -shm files the same mode)."""
    if path == ":memory:" or os.path.exists(path):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))


def connect(path: str) -> apsw.Connection:
    """Open one connection with Harmony's pragmas; rows come back as dicts."""
    _create_private(path)
    conn = apsw.Connection(path)
    conn.setbusytimeout(BUSY_TIMEOUT_MS)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.row_trace = _row_trace
    return conn


class Database:
    """One SQLite file shared by every thread of the process.

    `close()` must be called once, from the owner, after every other thread has stopped.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[apsw.Connection] = []

    def conn(self) -> apsw.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[apsw.Connection]:
        """One write transaction: commits on success, rolls back on error.

        The outermost block runs `BEGIN IMMEDIATE`; a nested block is a SAVEPOINT, so an
        exception leaving the inner block undoes only the inner block's changes (the outer
        block may catch it and go on). Nothing is committed until the outermost block ends.
        """
        conn = self.conn()
        depth = getattr(self._local, "depth", 0)
        if depth:
            name = f"harmony_{depth}"
            conn.execute(f"SAVEPOINT {name}")
            self._local.depth = depth + 1
            try:
                yield conn
            except BaseException:
                _guarded(conn, f"ROLLBACK TO {name}; RELEASE {name}")
                raise
            else:
                conn.execute(f"RELEASE {name}")
            finally:
                self._local.depth = depth
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield conn
        except BaseException:
            _guarded(conn, "ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except BaseException:
                _guarded(conn, "ROLLBACK")
                raise
        finally:
            self._local.depth = 0

    def query(self, sql: str, bindings: Bindings = None) -> list[Row]:
        return list(self.conn().execute(sql, bindings))

    def query_one(self, sql: str, bindings: Bindings = None) -> Row | None:
        for row in self.conn().execute(sql, bindings):
            return row  # type: ignore[no-any-return]
        return None

    def scalar(self, sql: str, bindings: Sequence[Any] | None = None) -> Any:
        for row in self.conn().execute(sql, bindings):
            return next(iter(row.values()))
        return None

    def user_version(self) -> int:
        return int(self.scalar("PRAGMA user_version"))

    def migrate(self, migrations: Sequence[Step] = MIGRATIONS) -> list[str]:
        """Apply every missing step, each in its own transaction; return the names applied.

        Raises DatabaseTooNew, touching nothing, if the file is ahead of this code.
        """
        applied = []
        with self.write():
            current = self.user_version()
            if current > len(migrations):
                raise DatabaseTooNew(
                    f"database {self.path} is at schema version {current}, newer than this "
                    f"Harmony ({len(migrations)}); upgrade Harmony or restore a backup",
                    database_version=current,
                    code_version=len(migrations),
                )
        for number in range(current, len(migrations)):
            name, step = migrations[number]
            with self.write() as conn:
                # Re-read inside the transaction: another process may have migrated.
                if self.user_version() != number:
                    continue
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
                conn.execute(f"PRAGMA user_version = {number + 1}")
            log.info("migrated", extra={"fields": {"step": number + 1, "name": name}})
            applied.append(name)
        return applied

    def probe_write(self, min_free_bytes: int = 0) -> str:
        """For /ready: raise unless the database can take a write now.

        Checks, cheapest first: free space on its filesystem against `min_free_bytes`, a
        read-only mount (connections opened before the remount would write through their
        descriptors until the next commit fails), then the write lock, waiting at most 1 s.
        Runs as a probed check, so /ready never takes the write lock itself.
        """
        directory = os.path.dirname(os.path.abspath(self.path))
        stats = os.statvfs(directory)
        free = stats.f_bavail * stats.f_frsize
        if stats.f_flag & os.ST_RDONLY or not os.access(directory, os.W_OK):
            raise ReadOnly(f"data directory {directory} is read-only")
        if free < min_free_bytes:
            raise DiskFull(
                f"only {free // 2**20} MiB free under {directory} (floor {min_free_bytes // 2**20} MiB)",
                free_bytes=free,
            )
        conn = self.conn()
        conn.setbusytimeout(1000)
        try:
            # BEGIN IMMEDIATE takes the write lock: it proves a writer could start now.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.setbusytimeout(BUSY_TIMEOUT_MS)
        return f"schema version {self.user_version()}, {free // 2**20} MiB free"

    def backup(self, dest: str) -> None:
        """Copy the live database to `dest` (mode 0600) with SQLite's online backup, check the
        copy and put it in place atomically.

        The copy is one backup step under one read transaction: in WAL mode a reader does not
        block writers, so it finishes under any write load (a stepwise copy restarts whenever
        another connection writes). It is written under a temporary name, switched to the
        rollback journal (so reading it later leaves no -wal or -shm beside it), checked with
        `PRAGMA quick_check`, fsynced and only then renamed to `dest`: a file at `dest` is always
        a whole, checked copy. Refuses a destination that is the live database or its
        -wal/-shm file, or whose directory does not exist; raises HarmonyError when the check
        fails.
        """
        dest = os.path.abspath(dest)
        live = os.path.realpath(self.path)
        if os.path.realpath(dest) in {live, live + "-wal", live + "-shm", live + "-journal"}:
            raise HarmonyError(f"refusing to back up onto the live database ({dest}); choose another path")
        directory = os.path.dirname(dest)
        if not os.path.isdir(directory):
            raise HarmonyError(f"cannot back up to {dest}: directory {directory} does not exist")
        tmp = dest + ".partial"
        copy_checked(self.conn(), tmp)
        os.replace(tmp, dest)
        fsync_path(directory)

    def checkpoint(self) -> None:
        self.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Checkpoint the WAL and close every connection this object opened."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(apsw.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()
        self._local = threading.local()


def copy_checked(source: apsw.Connection, tmp: str) -> None:
    """Copy the database open on `source` into a new file `tmp` (mode 0600) in one step of
    SQLite's online backup, switch the copy to the rollback journal (so reading it later leaves
    no -wal or -shm beside it), check it with `PRAGMA quick_check` and fsync it. On any failure
    `tmp` is removed and the error raised (HarmonyError when the check fails)."""
    _remove_with_journals(tmp)
    try:
        _create_private(tmp)
        target = apsw.Connection(tmp)
        try:
            with target.backup("main", source, "main") as job:
                job.step(-1)
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
        problems = check(tmp, quick=True)
        if problems:
            raise HarmonyError(f"the copy failed SQLite's quick_check: {problems}")
        os.chmod(tmp, FILE_MODE)
        fsync_path(tmp)
    except BaseException:
        _remove_with_journals(tmp)
        raise


def open_readonly(path: str) -> apsw.Connection:
    """Open a database file for reading only, leaving nothing beside it.

    A file in WAL mode without a -wal file is opened immutable (a read-only WAL open would
    create -wal and -shm files next to it); one with a -wal file is opened read-only so the
    WAL's pages are seen.
    """
    uri = "file:" + urllib.parse.quote(os.path.abspath(path))
    uri += "?mode=ro" if os.path.exists(path + "-wal") else "?immutable=1"
    conn = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    conn.row_trace = _row_trace
    return conn


def check(path: str, *, quick: bool = False) -> str:
    """SQLite's own check of the file at `path`, opened read-only: "" when it is sound, else
    the problems it reports (one per line). `quick` runs `quick_check`, which skips the index
    contents and is several times faster."""
    conn = open_readonly(path)
    try:
        pragma = "quick_check" if quick else "integrity_check"
        problems = [next(iter(row.values())) for row in conn.execute(f"PRAGMA {pragma}")]
    finally:
        conn.close()
    return "" if problems == ["ok"] else "\n".join(str(p) for p in problems)


def fsync_path(path: str) -> None:
    """fsync a file or a directory (after a rename in it), so it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_with_journals(path: str) -> None:
    for leftover in (path, path + "-journal", path + "-wal", path + "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(leftover)


def _guarded(conn: apsw.Connection, sql: str) -> None:
    """Roll back without masking the error that caused it: SQLite may already have rolled
    the transaction back itself (a full disk, an I/O error), and then ROLLBACK fails too."""
    try:
        if conn.in_transaction:
            conn.execute(sql)
    except apsw.Error:
        log.warning("rollback_failed", exc_info=True)
