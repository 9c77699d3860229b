"""The SQLite database: connections, the one write helper, and the schema's history.

Rules every module follows:

- Each thread gets its own APSW connection (`Database.conn()`); APSW serialises calls on
  a shared connection, so sharing one would make every thread wait on every other.
- Every write goes through `with db.write() as conn:`, which runs `BEGIN IMMEDIATE`, so a
  read-then-write never fails upgrading its lock, and commits or rolls back as one unit.
  Nested `write()` blocks on one thread join the outer transaction.
- The schema changes only by appending a step to `MIGRATIONS`. A step is never edited
  once released: `PRAGMA user_version` counts the steps applied, each in one transaction.
  Domain modules own their queries; their tables' shapes are here, in order of history.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import apsw

from .errors import DatabaseTooNew

log = logging.getLogger(__name__)

Row = dict[str, Any]

BUSY_TIMEOUT_MS = 10_000

# (name, SQL script). Append only.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "api keys and settings",
        """
        CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('read', 'operator', 'admin')),
            prefix TEXT NOT NULL UNIQUE,      -- the public part, shown in listings
            hash TEXT NOT NULL,               -- sha256 of the whole key, hex
            created_at REAL NOT NULL,
            last_used_at REAL,
            revoked_at REAL
        );
        CREATE TABLE settings (               -- small durable key/value state
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
        """,
    ),
    (
        "jobs and timer tasks",
        """
        -- The durable job queue (harmony/jobs.py). A job is in exactly one state:
        --   ready (waiting for run_at), running (leased until lease_until),
        --   done (terminal), dead (dead-lettered with last_error; requeue or purge).
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: purged ids stay unknown
            type TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',   -- JSON object
            priority INTEGER NOT NULL DEFAULT 0,  -- higher runs first
            state TEXT NOT NULL DEFAULT 'ready'
                CHECK (state IN ('ready', 'running', 'done', 'dead')),
            idem_key TEXT,                        -- idempotency key, unique among jobs not done
            run_at REAL NOT NULL,                 -- epoch seconds; not leased before
            attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
            lease_token TEXT,                     -- set while running: fences stale workers
            lease_until REAL,                     -- set while running
            last_error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL                      -- when it became done or dead
        );
        -- Leasing walks this index in order: O(log n) however many jobs are queued.
        CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, id) WHERE state = 'ready';
        CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
        CREATE INDEX jobs_state ON jobs (state, id);
        CREATE INDEX jobs_type ON jobs (type, state, id);
        CREATE UNIQUE INDEX jobs_idem_key ON jobs (idem_key)
            WHERE idem_key IS NOT NULL AND state != 'done';

        -- The timer wheel's schedule (harmony/timers.py), one row per named task.
        CREATE TABLE tasks (
            name TEXT PRIMARY KEY,
            interval_s REAL NOT NULL,
            next_run_at REAL,                     -- epoch seconds
            last_run_at REAL,
            last_success_at REAL,
            last_error TEXT,
            last_error_at REAL,
            last_duration_s REAL,
            runs INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0
        );
        """,
    ),
    (
        "spotify authorisation",
        """
        -- The user's Spotify authorisation (harmony/spotify.py): at most one row.
        CREATE TABLE spotify_auth (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            access_token TEXT NOT NULL,
            refresh_token TEXT NOT NULL,
            scope TEXT NOT NULL DEFAULT '',
            expires_at REAL NOT NULL,             -- epoch seconds
            user_id TEXT,
            display_name TEXT,
            updated_at REAL NOT NULL,
            revoked_reason TEXT                   -- set when Spotify refused the refresh token
        );
        -- PKCE authorisations started and not yet completed; single use, short-lived.
        CREATE TABLE spotify_pkce (
            state TEXT PRIMARY KEY,
            code_verifier TEXT NOT NULL,
            redirect_uri TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """,
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


def _row_trace(cursor: apsw.Cursor, row: tuple[Any, ...]) -> Row:
    return dict(zip((d[0] for d in cursor.get_description()), row))


def connect(path: str) -> apsw.Connection:
    """Open one connection with Harmony's pragmas; rows come back as dicts."""
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
        """One write transaction (`BEGIN IMMEDIATE`): commits on success, rolls back on error."""
        conn = self.conn()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, bindings: Any = None) -> list[Row]:
        return list(self.conn().execute(sql, bindings))

    def query_one(self, sql: str, bindings: Any = None) -> Row | None:
        for row in self.conn().execute(sql, bindings):
            return row  # type: ignore[no-any-return]
        return None

    def scalar(self, sql: str, bindings: Any = None) -> Any:
        for row in self.conn().execute(sql, bindings):
            return next(iter(row.values()))
        return None

    def user_version(self) -> int:
        return int(self.scalar("PRAGMA user_version"))

    def migrate(self, migrations: list[tuple[str, str]] = MIGRATIONS) -> list[str]:
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
            name, script = migrations[number]
            with self.write() as conn:
                # Re-read inside the transaction: another process may have migrated.
                if self.user_version() != number:
                    continue
                conn.execute(script)
                conn.execute(f"PRAGMA user_version = {number + 1}")
            log.info("migrated", extra={"fields": {"step": number + 1, "name": name}})
            applied.append(name)
        return applied

    def backup(self, dest: str) -> None:
        """Copy the live database to `dest` with SQLite's online backup (safe while running)."""
        tmp = dest + ".partial"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        target = apsw.Connection(tmp)
        try:
            with target.backup("main", self.conn(), "main") as job:
                while not job.done:
                    job.step(1024)
        finally:
            target.close()
        os.replace(tmp, dest)

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
