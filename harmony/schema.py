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
    (
        "watchlist, playlists, wanted items, library index and events",
        """
        -- Watched artists (harmony/watchlist.py).
        CREATE TABLE artists (
            id INTEGER PRIMARY KEY,
            spotify_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            image_url TEXT NOT NULL DEFAULT '',
            paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
            priority INTEGER NOT NULL DEFAULT 0,
            release_groups TEXT NOT NULL DEFAULT 'album,single',  -- comma list of Spotify groups wanted
            since TEXT NOT NULL,                 -- YYYY-MM-DD: releases dated before are not wanted
            added_at REAL NOT NULL,
            last_scan_at REAL,                   -- last scan attempt
            last_success_at REAL,
            next_scan_at REAL NOT NULL,          -- due time; the dispatcher enqueues due artists
            last_result_code TEXT,               -- unchanged, new_releases, rate_limited, quota, failed...
            last_result TEXT,
            failures INTEGER NOT NULL DEFAULT 0, -- consecutive failed scans
            cooldown_until REAL,                 -- no scan before this (after failures or a 429)
            known_total INTEGER                  -- Spotify's release count at the last full success
        );
        CREATE INDEX artists_due ON artists (next_scan_at) WHERE paused = 0;
        CREATE INDEX artists_name ON artists (name COLLATE NOCASE, id);

        -- Releases seen on watched artists; the known set a scan diffs against.
        CREATE TABLE releases (
            id INTEGER PRIMARY KEY,
            spotify_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            album_type TEXT NOT NULL DEFAULT '',
            release_date TEXT NOT NULL DEFAULT '',
            date_precision TEXT NOT NULL DEFAULT 'day',
            total_tracks INTEGER NOT NULL DEFAULT 0,
            total_discs INTEGER,                 -- known once expanded
            image_url TEXT NOT NULL DEFAULT '',
            artist_names TEXT NOT NULL DEFAULT '[]', -- JSON list
            first_seen_at REAL NOT NULL,
            wanted INTEGER NOT NULL DEFAULT 0,   -- passed a watching artist's filters when first seen
            expanded_at REAL                     -- its tracks became wanted items
        );
        CREATE TABLE artist_releases (           -- which watched artist lists which release, in which group
            artist_id INTEGER NOT NULL REFERENCES artists (id) ON DELETE CASCADE,
            release_id INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
            release_group TEXT NOT NULL,
            PRIMARY KEY (artist_id, release_id)
        ) WITHOUT ROWID;
        CREATE INDEX artist_releases_release ON artist_releases (release_id);

        -- Followed playlists (harmony/playlists.py) and their current tracks.
        CREATE TABLE playlists (
            id INTEGER PRIMARY KEY,
            spotify_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            owner_id TEXT NOT NULL DEFAULT '',
            owner_name TEXT NOT NULL DEFAULT '',
            collaborative INTEGER NOT NULL DEFAULT 0,
            snapshot_id TEXT,                    -- of the last complete sync
            total INTEGER NOT NULL DEFAULT 0,
            want_tracks INTEGER NOT NULL DEFAULT 1 CHECK (want_tracks IN (0, 1)),
            followed_at REAL NOT NULL,
            last_sync_at REAL,
            last_success_at REAL,
            next_sync_at REAL NOT NULL,
            last_result_code TEXT,               -- ok, unchanged, unreadable, rate_limited, failed, ...
            last_result TEXT,
            failures INTEGER NOT NULL DEFAULT 0,
            readable INTEGER NOT NULL DEFAULT 1,
            generation INTEGER NOT NULL DEFAULT 0, -- counts syncs that walked the items
            skipped TEXT NOT NULL DEFAULT '{}'   -- JSON: entries skipped at the last sync, by reason
        );
        CREATE TABLE playlist_tracks (
            playlist_id INTEGER NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
            spotify_track_id TEXT NOT NULL,
            item_id INTEGER REFERENCES wanted_items (id) ON DELETE SET NULL,
            position INTEGER NOT NULL,
            added_at TEXT,
            generation INTEGER NOT NULL,         -- the sync that last saw it; older rows were removed
            PRIMARY KEY (playlist_id, spotify_track_id)
        ) WITHOUT ROWID;
        CREATE INDEX playlist_tracks_item ON playlist_tracks (item_id);

        -- Wanted items (harmony/wanted.py): one row per recording, whatever wants it.
        CREATE TABLE wanted_items (
            id INTEGER PRIMARY KEY,
            spotify_id TEXT UNIQUE,
            isrc TEXT,
            identity TEXT NOT NULL,              -- normalised primary artist and title
            title TEXT NOT NULL,
            artists TEXT NOT NULL,               -- JSON list of names
            album TEXT NOT NULL DEFAULT '',
            album_artist TEXT NOT NULL DEFAULT '',
            spotify_album_id TEXT,
            spotify_artist_ids TEXT NOT NULL DEFAULT '[]',
            track_number INTEGER,
            track_total INTEGER,
            disc_number INTEGER,
            disc_total INTEGER,
            duration_ms INTEGER NOT NULL DEFAULT 0,
            release_date TEXT NOT NULL DEFAULT '',
            explicit INTEGER NOT NULL DEFAULT 0,
            cover_url TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL CHECK (state IN ('wanted', 'searching', 'found', 'not_found', 'queued',
                'downloading', 'downloaded', 'importing', 'done', 'failed', 'skipped', 'paused')),
            state_since REAL NOT NULL,
            reason_code TEXT,
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_action TEXT,
            next_action_at REAL,
            priority INTEGER NOT NULL DEFAULT 0, -- set by the user
            source_rank INTEGER NOT NULL DEFAULT 1, -- manual 3, playlist 2, watchlist 1: the best source
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX wanted_isrc ON wanted_items (isrc) WHERE isrc IS NOT NULL;
        CREATE INDEX wanted_identity ON wanted_items (identity);
        CREATE INDEX wanted_state ON wanted_items (state, priority DESC, source_rank DESC, id);
        CREATE INDEX wanted_backlog ON wanted_items (priority DESC, source_rank DESC, id);
        CREATE INDEX wanted_changed ON wanted_items (state_since DESC, id DESC);
        CREATE TABLE wanted_sources (            -- why an item is wanted; an item can have several
            item_id INTEGER NOT NULL REFERENCES wanted_items (id) ON DELETE CASCADE,
            source_key TEXT NOT NULL,            -- 'release:<id>', 'playlist:<id>' or 'manual'
            kind TEXT NOT NULL CHECK (kind IN ('release', 'playlist', 'manual')),
            artist_id INTEGER REFERENCES artists (id) ON DELETE SET NULL,
            release_id INTEGER REFERENCES releases (id) ON DELETE CASCADE,
            playlist_id INTEGER REFERENCES playlists (id) ON DELETE CASCADE,
            added_at REAL NOT NULL,
            PRIMARY KEY (item_id, source_key)
        ) WITHOUT ROWID;
        CREATE INDEX wanted_sources_artist ON wanted_sources (artist_id, item_id)
            WHERE artist_id IS NOT NULL;
        CREATE INDEX wanted_sources_release ON wanted_sources (release_id, item_id)
            WHERE release_id IS NOT NULL;
        CREATE INDEX wanted_sources_playlist ON wanted_sources (playlist_id, item_id)
            WHERE playlist_id IS NOT NULL;

        -- The library index (harmony/library.py): what the user owns, for "already owned".
        CREATE TABLE library_tracks (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,           -- relative to the library root
            identity TEXT NOT NULL,
            spotify_id TEXT,
            spotify_album_id TEXT,
            isrc TEXT,
            title TEXT NOT NULL DEFAULT '',
            artists TEXT NOT NULL DEFAULT '[]',
            album TEXT NOT NULL DEFAULT '',
            album_artist TEXT NOT NULL DEFAULT '',
            track_number INTEGER,
            disc_number INTEGER,
            year INTEGER,
            format TEXT NOT NULL DEFAULT '',
            bitrate INTEGER,
            bit_depth INTEGER,
            sample_rate INTEGER,
            duration_ms INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL DEFAULT 0,
            mtime REAL NOT NULL DEFAULT 0,
            scanned_at REAL NOT NULL
        );
        CREATE INDEX library_spotify ON library_tracks (spotify_id) WHERE spotify_id IS NOT NULL;
        CREATE INDEX library_isrc ON library_tracks (isrc) WHERE isrc IS NOT NULL;
        CREATE INDEX library_identity ON library_tracks (identity);

        -- The activity feed (harmony/events.py). No foreign keys: the history outlives its subjects.
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            item_id INTEGER,
            artist_id INTEGER,
            release_id INTEGER,
            playlist_id INTEGER,
            from_state TEXT,
            to_state TEXT,
            code TEXT,
            message TEXT,
            data TEXT                            -- JSON object, or NULL
        );
        CREATE INDEX events_item ON events (item_id, id) WHERE item_id IS NOT NULL;
        CREATE INDEX events_artist ON events (artist_id, id) WHERE artist_id IS NOT NULL;
        CREATE INDEX events_playlist ON events (playlist_id, id) WHERE playlist_id IS NOT NULL;
        CREATE INDEX events_release ON events (release_id, id) WHERE release_id IS NOT NULL;
        CREATE INDEX events_kind ON events (kind, id);

        -- When the user authorised Harmony: Spotify's refresh token expires 6 months after it.
        -- Until now `updated_at` held that time (a refresh never moved it).
        ALTER TABLE spotify_auth ADD COLUMN authorized_at REAL;
        UPDATE spotify_auth SET authorized_at = updated_at;
        """,
    ),
    (
        "ui sessions",
        """
        -- Browser sessions of the web UI (harmony/auth.py): signed in with an API key, which
        -- gives the session its role. Only a hash of the session id is stored; the cookie
        -- holds the id itself.
        CREATE TABLE sessions (
            id_hash TEXT PRIMARY KEY,            -- sha256 of the session id, hex
            key_id INTEGER NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,            -- sent back with every state-changing request
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,          -- idle expiry counts from here
            expires_at REAL NOT NULL,            -- absolute expiry
            address TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX sessions_key ON sessions (key_id);
        CREATE INDEX sessions_expiry ON sessions (expires_at);
        """,
    ),
    (
        "searches, candidates, transfers and peers",
        """
        -- Every Soulseek search Harmony started (harmony/search.py), kept for the item's timeline.
        CREATE TABLE searches (
            id INTEGER PRIMARY KEY,
            item_id INTEGER REFERENCES wanted_items (id) ON DELETE CASCADE,
            release_id INTEGER,                  -- album mode: the release searched for
            mode TEXT NOT NULL CHECK (mode IN ('track', 'album')),
            variant TEXT NOT NULL,               -- which query variant (primary, wildcard, ...)
            query TEXT NOT NULL,
            slskd_id TEXT NOT NULL UNIQUE,       -- the search's GUID on slskd
            state TEXT NOT NULL CHECK (state IN ('running', 'complete', 'evaluated', 'failed')),
            started_at REAL NOT NULL,
            ended_at REAL,
            responses INTEGER,
            files INTEGER,
            accepted INTEGER,                    -- candidates that passed every gate
            error TEXT
        );
        CREATE INDEX searches_item ON searches (item_id, id);
        CREATE INDEX searches_state ON searches (state);
        CREATE INDEX searches_release ON searches (release_id, mode, started_at) WHERE release_id IS NOT NULL;
        -- One row per search created: the global budget counts these (kept a day).
        CREATE TABLE search_spend (at REAL NOT NULL);
        CREATE INDEX search_spend_at ON search_spend (at);

        -- The files an item's last search found, ranked, with the reasons (harmony/search.py).
        CREATE TABLE candidates (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES wanted_items (id) ON DELETE CASCADE,
            search_id INTEGER REFERENCES searches (id) ON DELETE SET NULL,
            username TEXT NOT NULL,
            filename TEXT NOT NULL,              -- the full remote path, exactly as slskd gave it
            size INTEGER NOT NULL,
            file TEXT NOT NULL,                  -- JSON: the file's attributes as searched
            peer TEXT NOT NULL,                  -- JSON: free slot, speed and queue when searched
            accepted INTEGER NOT NULL,
            rank INTEGER,
            reasons TEXT NOT NULL,               -- JSON list of short texts
            identity REAL NOT NULL DEFAULT 0,
            quality TEXT NOT NULL DEFAULT '',
            tried_at REAL,                       -- a transfer of it was started
            created_at REAL NOT NULL
        );
        CREATE INDEX candidates_item ON candidates (item_id, accepted DESC, rank);

        -- Files Harmony asked slskd for (harmony/transfers.py), tracked by slskd's transfer id.
        CREATE TABLE transfers (
            id INTEGER PRIMARY KEY,
            item_id INTEGER REFERENCES wanted_items (id) ON DELETE SET NULL,
            candidate_id INTEGER REFERENCES candidates (id) ON DELETE SET NULL,
            username TEXT NOT NULL,
            filename TEXT NOT NULL,
            size INTEGER NOT NULL,
            slskd_id TEXT,                       -- unknown only between the request and slskd's answer
            state TEXT NOT NULL CHECK (state IN ('requested', 'queued', 'remote_queued', 'in_progress',
                'retrying', 'succeeded', 'failed', 'cancelled', 'stalled', 'unknown')),
            slskd_state TEXT,
            bytes INTEGER NOT NULL DEFAULT 0,
            percent REAL NOT NULL DEFAULT 0,
            speed REAL NOT NULL DEFAULT 0,
            place INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            requested_at REAL NOT NULL,
            queued_at REAL,                      -- when the peer acknowledged it
            progress_at REAL,                    -- the last time bytes moved
            best_place INTEGER,                  -- the best place in the peer's queue seen
            place_at REAL,                       -- when that place was first seen
            seen_at REAL,                        -- the last poll that found it on slskd
            finished_at REAL,
            outcome TEXT,                        -- succeeded, rejected, failed, cancelled, stalled_*, ...
            reason TEXT
        );
        CREATE UNIQUE INDEX transfers_slskd ON transfers (slskd_id) WHERE slskd_id IS NOT NULL;
        CREATE INDEX transfers_active ON transfers (finished_at) WHERE finished_at IS NULL;
        CREATE INDEX transfers_item ON transfers (item_id, id);

        -- Soulseek users as Harmony knows them: blocked, cooling down after failures, history.
        CREATE TABLE peers (
            username TEXT PRIMARY KEY,
            blocked INTEGER NOT NULL DEFAULT 0,
            blocked_reason TEXT,
            blocked_at REAL,
            cooldown_until REAL,
            cooldown_s REAL,                     -- the next cooldown's length (doubles)
            successes INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            last_failure TEXT,
            updated_at REAL NOT NULL
        );
        -- Files never to be taken again: marked wrong, or failed verification.
        CREATE TABLE bad_files (
            username TEXT NOT NULL,
            filename TEXT NOT NULL,
            item_id INTEGER,
            reason TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (username, filename)
        ) WITHOUT ROWID;
        """,
    ),
    (
        "import, quarantine, library scans and backfill",
        """
        -- Where slskd put a finished download (found by the transfer's id), and the library
        -- path chosen for it before the move, so a crashed import finishes the same move.
        ALTER TABLE transfers ADD COLUMN local_path TEXT;
        ALTER TABLE transfers ADD COLUMN library_path TEXT;

        -- The library index (harmony/library.py) learns where a track came from, what the
        -- backfill matched it to, and what a scan found gone.
        ALTER TABLE library_tracks ADD COLUMN item_id INTEGER;      -- the wanted item it was imported for
        ALTER TABLE library_tracks ADD COLUMN spotify_artist_ids TEXT NOT NULL DEFAULT '[]';
        -- The running scan found the file gone: the row goes when that scan ends, unless a file
        -- at a new path claims it first (a move). Unchanged files are never written by a scan.
        ALTER TABLE library_tracks ADD COLUMN missing_scan INTEGER;
        -- Title, artists, album and album artist folded for search (case and accents dropped).
        ALTER TABLE library_tracks ADD COLUMN search TEXT NOT NULL DEFAULT '';
        ALTER TABLE library_tracks ADD COLUMN match_method TEXT;    -- backfill: tags, isrc or search
        ALTER TABLE library_tracks ADD COLUMN match_confidence REAL;
        ALTER TABLE library_tracks ADD COLUMN matched_at REAL;      -- backfill: when it was tried
        CREATE INDEX library_album ON library_tracks (album_artist, album);
        CREATE INDEX library_item ON library_tracks (item_id) WHERE item_id IS NOT NULL;
        CREATE INDEX library_unmatched ON library_tracks (id) WHERE spotify_id IS NULL;
        CREATE INDEX library_missing ON library_tracks (missing_scan) WHERE missing_scan IS NOT NULL;
        -- A trigram index of `search`, kept by the triggers below, so a search for any part of a
        -- word finds its few rows without reading every row (see library.list_tracks).
        CREATE VIRTUAL TABLE library_fts USING fts5 (
            search, content = 'library_tracks', content_rowid = 'id', tokenize = 'trigram', detail = 'none'
        );
        CREATE TRIGGER library_fts_insert AFTER INSERT ON library_tracks BEGIN
            INSERT INTO library_fts (rowid, search) VALUES (new.id, new.search);
        END;
        CREATE TRIGGER library_fts_delete AFTER DELETE ON library_tracks BEGIN
            INSERT INTO library_fts (library_fts, rowid, search) VALUES ('delete', old.id, old.search);
        END;
        CREATE TRIGGER library_fts_update AFTER UPDATE OF search ON library_tracks BEGIN
            INSERT INTO library_fts (library_fts, rowid, search) VALUES ('delete', old.id, old.search);
            INSERT INTO library_fts (rowid, search) VALUES (new.id, new.search);
        END;

        -- Files set aside (harmony/importer.py): a download that failed verification, or the
        -- worse of two copies of one recording. The file is under the quarantine directory.
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY,
            item_id INTEGER REFERENCES wanted_items (id) ON DELETE SET NULL,
            transfer_id INTEGER REFERENCES transfers (id) ON DELETE SET NULL,
            path TEXT NOT NULL UNIQUE,           -- relative to the quarantine directory
            origin TEXT NOT NULL,                -- where the file was: its full path then
            username TEXT,                       -- the peer it came from, if downloaded
            filename TEXT,                       -- its remote path, if downloaded
            code TEXT NOT NULL,                  -- short reason: incomplete, duration, duplicate, ...
            reason TEXT NOT NULL,
            size INTEGER NOT NULL DEFAULT 0,
            at REAL NOT NULL
        );
        CREATE INDEX quarantine_item ON quarantine (item_id) WHERE item_id IS NOT NULL;

        -- Library scans (harmony/library.py): resumable from the checkpoint, one at a time.
        CREATE TABLE library_scans (
            id INTEGER PRIMARY KEY,
            state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
            started_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL,
            checkpoint TEXT,                     -- the last relative path whose batch is committed
            files INTEGER NOT NULL DEFAULT 0,    -- files looked at so far
            added INTEGER NOT NULL DEFAULT 0,
            changed INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            moved INTEGER NOT NULL DEFAULT 0,
            removed INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE UNIQUE INDEX library_scans_running ON library_scans (state) WHERE state = 'running';

        -- Backfill runs (harmony/backfill.py): Spotify ids for library tracks without them.
        CREATE TABLE backfill_jobs (
            id INTEGER PRIMARY KEY,
            state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
            write_tags INTEGER NOT NULL DEFAULT 0,
            retry_unmatched INTEGER NOT NULL DEFAULT 0, -- also tracks tried before without a match
            started_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL,
            checkpoint INTEGER NOT NULL DEFAULT 0,  -- the last library_tracks.id looked at
            total INTEGER NOT NULL DEFAULT 0,
            done INTEGER NOT NULL DEFAULT 0,
            matched INTEGER NOT NULL DEFAULT 0,
            unmatched INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            error TEXT,                             -- the last error
            waiting_until REAL                      -- while Spotify is cooling down: resumes then
        );
        CREATE UNIQUE INDEX backfill_jobs_running ON backfill_jobs (state) WHERE state = 'running';
        """,
    ),
    (
        "api key expiry and rotation, webhooks",
        """
        -- API keys (harmony/auth.py) may expire, and a rotation records the key it replaced.
        ALTER TABLE api_keys ADD COLUMN expires_at REAL;     -- NULL: never
        ALTER TABLE api_keys ADD COLUMN rotated_from INTEGER REFERENCES api_keys (id);
        CREATE INDEX api_keys_rotated_from ON api_keys (rotated_from) WHERE rotated_from IS NOT NULL;

        -- Outbound webhooks (harmony/webhooks.py): the notifier's small durable state.
        --   cursor: the last event id handed to the webhooks (events after it are still to send);
        --   slskd: up or down, as last announced; spotify: <authorized_at>:<stage> last announced.
        CREATE TABLE webhook_state (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
        -- The events already in the feed are history: webhooks begin with the next one.
        INSERT INTO webhook_state (name, value, updated_at)
            SELECT 'cursor', coalesce(max(id), 0), 0 FROM events;
        """,
    ),
    (
        "wanted items by state and age",
        """
        -- The oldest item in each state (harmony_wanted_oldest_seconds, read at every scrape):
        -- one index lookup a state instead of a walk of every item in it.
        CREATE INDEX wanted_state_since ON wanted_items (state, state_since);
        """,
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)
