"""The schema's history: `MIGRATIONS`, an append-only list of steps.

This module owns no rows; it holds the shape of every table, in the order the shapes were
made. Each step is `(name, SQL script)` or `(name, function)`: a function takes the open
connection and moves data that a script cannot (it runs inside the step's transaction and
must not commit). `PRAGMA user_version` counts the steps applied; `Database.migrate` applies
the missing ones, each in one transaction.

To change the schema, append a step. A step is never edited once released: a database
created by an older Harmony has already run it. A step that moves data gets an upgrade test
with data in it (tests/test_schema.py carries rows through every step). Each domain module's
docstring names the tables it owns; the comments here say what the columns mean.
"""

from __future__ import annotations

from collections.abc import Callable

import apsw

StepFn = Callable[[apsw.Connection], None]
Step = tuple[str, str | StepFn]

MIGRATIONS: list[Step] = [
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
