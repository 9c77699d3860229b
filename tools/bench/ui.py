"""Benchmark of the web UI: server-side render time and size of every page with 10,000 wanted
items and 250,000 library tracks.

Run: .venv/bin/python tools/bench/ui.py [--items N] [--tracks N] [--rounds N] [--out reports/bench/ui.md]

A database in a temporary directory gets N wanted items (through `harmony.wanted.want`, as the
watchlist and the playlists make them), spread over 50 watched artists with 200 releases,
20 followed playlists and manual wants, in every state (with `item.state` events for each
change), plus dead jobs; the acquisition and import tables get what a busy day leaves: 20
downloads under way and 2,000 finished, one item with 220 candidates (20 accepted, 200
rejected with their reasons), 300 quarantined files, a library scan and backfill runs; and the
library index gets `--tracks` rows (250,000) through `library.record`, 50 artists of 50 albums
of 10 tracks each per 25,000. Each page is then rendered in-process through the whole app (the
guard with a UI session, the handler, the template), `--rounds` times after a warm-up, and its
p50 and p95 wall time and its size in bytes are reported. No Spotify or slskd is involved: the
pages that ask Spotify (the watchlist's artist search, your playlists) are not measured, and
the downloads page shows what the last poll stored, as it does when served.

Target: p95 under 300 ms for every page.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import apsw  # noqa: E402

from harmony import __version__, auth, config, library, wanted  # noqa: E402
from harmony.context import opened  # noqa: E402
from harmony.web import make_app  # noqa: E402
from harmony.web_base import encode_cursor  # noqa: E402

TARGET_MS = 300.0
# The library's pages, measured with `--tracks` rows in `library_tracks` (see `populate_library`);
# the pages that need a cursor or a name from the data are added in `library_pages`.
LIBRARY_PAGES: list[tuple[str, str]] = [
    ("library: album artists, the scan, backfill", "/ui/library"),
    ("library: album artists, search", "/ui/library?q=glass"),
    ("library: albums with covers", "/ui/library/albums"),
    ("library: albums, search", "/ui/library/albums?q=glass"),
    ("library: tracks", "/ui/library/tracks"),
    ("library: tracks, search (common word)", "/ui/library/tracks?q=harbour"),
    ("library: tracks, search (one artist's serial)", "/ui/library/tracks?q=00123"),
    ("library: tracks, search (no match)", "/ui/library/tracks?q=no+such+words"),
]
WORDS = (
    "Amber", "Winter", "Glass", "Harbour", "Paper", "Static", "Velvet", "Hollow", "Cinder", "Orbit",
    "Meadow", "Copper", "Lantern", "Saltwater", "Tundra", "Ivory", "Pulse", "Signal", "Drift", "Ember",
)  # fmt: skip


def request(
    app: Any, method: str, url: str, cookie: str = "", body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": parts.path,
        "QUERY_STRING": parts.query,
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "HTTP_COOKIE": cookie,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    seen: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        seen["status"], seen["headers"] = int(status[:3]), {k.lower(): v for k, v in headers}
        return lambda data: None

    chunks = app(environ, start)
    data = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return seen["status"], seen["headers"], data


def populate(ctx: Any, items: int, rng: random.Random) -> dict[str, int]:
    """Artists, releases, playlists, items in every state with their events, dead jobs."""
    db = ctx.db
    now = time.time()
    with db.write() as conn:
        for a in range(50):
            conn.execute(
                "INSERT INTO artists (spotify_id, name, priority, release_groups, since, added_at, "
                "next_scan_at, last_scan_at, last_result_code, last_result) "
                "VALUES (?, ?, 0, 'album,single', '2020-01-01', ?, ?, ?, 'unchanged', 'no new releases')",
                (f"artist{a:018d}", f"Artist {a:02d}", now, now + 3600, now - 600),
            )
        for r in range(200):
            conn.execute(
                "INSERT INTO releases (spotify_id, name, album_type, release_date, date_precision, "
                "total_tracks, artist_names, first_seen_at, wanted, expanded_at) "
                "VALUES (?, ?, 'album', ?, 'day', 12, ?, ?, 1, ?)",
                (
                    f"release{r:017d}",
                    f"Album {r:03d}",
                    f"20{10 + r % 15}-01-{1 + r % 28:02d}",
                    '["x"]',
                    now,
                    now,
                ),
            )
            conn.execute(
                "INSERT INTO artist_releases (artist_id, release_id, release_group) VALUES (?, ?, 'album')",
                (1 + r % 50, r + 1),
            )
        for p in range(20):
            conn.execute(
                "INSERT INTO playlists (spotify_id, name, owner_id, collaborative, total, want_tracks, "
                "followed_at, next_sync_at) VALUES (?, ?, 'me', 0, 500, 1, ?, ?)",
                (f"playlist{p:016d}", f"Playlist {p:02d}", now, now + 3600),
            )
    states = [s for s in wanted.STATES if s != "wanted"]
    made = 0
    while made < items:
        with db.write() as conn:
            for _ in range(min(1000, items - made)):
                n = made
                made += 1
                kind = ("release", "playlist", "manual")[n % 3]
                source = wanted.Source(
                    kind,
                    artist_id=1 + n % 50 if kind == "release" else None,
                    release_id=1 + n % 200 if kind == "release" else None,
                    playlist_id=1 + n % 20 if kind == "playlist" else None,
                )
                track = wanted.Track(
                    title=f"Song {n:05d}",
                    artists=(f"Artist {n % 50:02d}",),
                    spotify_id=f"track{n:017d}",
                    album=f"Album {n % 200:03d}",
                    track_number=1 + n % 12,
                    duration_ms=180_000 + n,
                )
                item, _ = wanted.want(conn, track, source, now=now - rng.uniform(0, 30 * 86400))
                if kind == "playlist":
                    conn.execute(
                        "INSERT OR IGNORE INTO playlist_tracks (playlist_id, spotify_track_id, item_id, "
                        "position, added_at, generation) VALUES (?, ?, ?, ?, '', 0)",
                        (source.playlist_id, track.spotify_id, item.id, n),
                    )
                target = rng.choice(["wanted", *states])
                if target == "wanted":
                    continue
                path = {
                    "searching": ["searching"],
                    "found": ["searching", "found"],
                    "not_found": ["searching", "not_found"],
                    "queued": ["searching", "found", "queued"],
                    "downloading": ["searching", "found", "queued", "downloading"],
                    "downloaded": ["searching", "found", "queued", "downloading", "downloaded"],
                    "importing": ["searching", "found", "queued", "downloading", "downloaded", "importing"],
                    "done": [
                        "searching",
                        "found",
                        "queued",
                        "downloading",
                        "downloaded",
                        "importing",
                        "done",
                    ],
                    "failed": ["searching", "failed"],
                    "skipped": ["skipped"],
                    "paused": ["paused"],
                }[target]
                at = now - rng.uniform(0, 29 * 86400)
                for step in path:
                    wanted.transition(
                        conn, item.id, step, "bench", f"moved to {step} by the benchmark", now=at
                    )
    for j in range(200):
        job = ctx.queue.enqueue("bench.job", {"n": j}, key=f"bench:{j}")
        with db.write() as conn:
            conn.execute("UPDATE jobs SET state = 'dead', last_error = 'gave up' WHERE id = ?", (job.id,))
    populate_acquisition(ctx, rng, now)
    return {
        "items": int(db.scalar("SELECT count(*) FROM wanted_items")),
        "events": int(db.scalar("SELECT count(*) FROM events")),
        "sources": int(db.scalar("SELECT count(*) FROM wanted_sources")),
    }


def populate_acquisition(ctx: Any, rng: random.Random, now: float) -> None:
    """Downloads under way and finished, an item's candidates, quarantined files, a scan and
    backfill runs, as the pipeline's modules write them (their tables, directly)."""
    db = ctx.db
    items = [row["id"] for row in db.query("SELECT id FROM wanted_items ORDER BY id LIMIT 2100")]
    with db.write() as conn:
        for n, item_id in enumerate(items[: min(2020, len(items) - 1)]):
            active = n < 20
            size = rng.randrange(5_000_000, 60_000_000)
            done = size if not active else rng.randrange(0, size)
            state = "in_progress" if active else rng.choice(["succeeded"] * 8 + ["failed", "stalled"])
            conn.execute(
                "INSERT INTO transfers (item_id, username, filename, size, slskd_id, state, bytes, percent, "
                "speed, requested_at, queued_at, progress_at, seen_at, finished_at, outcome, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item_id,
                    f"peer{n % 40:02d}",
                    f"@@share\\Music\\Artist {n % 50:02d}\\2019 - Album\\{n % 12 + 1:02d} - Song {n}.flac",
                    size,
                    f"bench-{n}",
                    state,
                    done if state != "failed" else 0,
                    100.0 * done / size,
                    250_000.0 if active else 0.0,
                    now - 600 - n * 30,
                    now - 590 - n * 30,
                    now - 5,
                    now - 2,
                    None if active else now - n * 30,
                    None if active else {"in_progress": None}.get(state, state),
                    None
                    if active
                    else "every byte arrived"
                    if state == "succeeded"
                    else "no new bytes for 120 s",
                ),
            )
        search = next(
            conn.execute(
                "INSERT INTO searches (item_id, mode, variant, query, slskd_id, state, started_at, "
                "ended_at, responses, files, accepted) VALUES (?, 'track', 'primary', 'Artist 00 Song', "
                "'bench-search', 'evaluated', ?, ?, 140, 220, 20) RETURNING id",
                (items[-1], now - 300, now - 290),
            )
        )["id"]
        reasons = [
            "identity 0.97: title matches; artist in folder 'Artist 00'; album matches; length 3:00 vs 3:01",
            "quality flac 16-bit 44.1 kHz (ladder 2 of 4)",
            "free upload slot, queue 0, speed 1.8 MB/s",
        ]
        for c in range(220):
            accepted = c < 20
            conn.execute(
                "INSERT INTO candidates (item_id, search_id, username, filename, size, file, peer, "
                "accepted, rank, reasons, identity, quality, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    items[-1],
                    search,
                    f"peer{c:03d}",
                    f"@@share\\Music\\Artist 00\\2019 - Album\\{c % 12 + 1:02d} - Song {c}.flac",
                    30_000_000,
                    '{"extension": "flac", "bit_rate": null, "bit_depth": 16, "sample_rate": 44100, '
                    '"length": 180, "vbr": null}',
                    '{"has_free_slot": true, "upload_speed": 1800000, "queue_length": 0}',
                    int(accepted),
                    c + 1 if accepted else None,
                    json.dumps(reasons if accepted else ["rejected: another artist is credited", *reasons]),
                    0.97,
                    "quality flac 16-bit 44.1 kHz (ladder 2 of 4)",
                    now - 290,
                ),
            )
        for q in range(300):
            conn.execute(
                "INSERT INTO quarantine (item_id, path, origin, username, filename, code, reason, size, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    items[q % len(items)],
                    f"transfer-{q}/{q % 12 + 1:02d} - Song {q:05d}.flac",
                    f"/srv/slskd/downloads/Album/{q:05d}.flac",
                    f"peer{q % 40:02d}",
                    f"@@share\\Music\\Song {q:05d}.flac",
                    rng.choice(["not_audio", "incomplete", "duration", "duplicate"]),
                    "not a FLAC, MP3, M4A, Ogg Vorbis or Ogg Opus file",
                    30_000_000,
                    now - q * 60,
                ),
            )
        conn.execute(
            "INSERT INTO library_scans (state, started_at, updated_at, finished_at, files, unchanged) "
            "VALUES ('done', ?, ?, ?, 250000, 250000)",
            (now - 3600, now - 3590, now - 3590),
        )
        for r in range(3):
            conn.execute(
                "INSERT INTO backfill_jobs (state, started_at, updated_at, finished_at, total, done, "
                "matched, unmatched) VALUES ('done', ?, ?, ?, 1000, 1000, 900, 100)",
                (now - 86400 * (r + 1), now - 86400 * (r + 1) + 600, now - 86400 * (r + 1) + 600),
            )


def populate_library(ctx: Any, tracks: int, rng: random.Random) -> float:
    """`tracks` rows in the library index through `library.record`, as scans write them:
    artists of 50 albums of 10 tracks. Returns the seconds it took."""
    started = time.perf_counter()
    batch: list[library.Entry] = []

    def flush() -> None:
        with ctx.db.write() as conn:
            for entry in batch:
                library.record(conn, entry, 1.0)
        batch.clear()

    for n in range(tracks):
        artist_no, rest = divmod(n, 500)
        album_no, track_no = divmod(rest, 10)
        artist = f"{WORDS[artist_no % 20]} {WORDS[(artist_no // 20) % 20]} {artist_no:05d}"
        album = (
            f"{WORDS[(artist_no + album_no) % 20]} {WORDS[(artist_no * 7 + album_no) % 20]} {album_no:02d}"
        )
        title = f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
        year = 1995 + (artist_no + album_no) % 30
        batch.append(
            library.Entry(
                path=f"{artist}/{year} - {album}/{track_no + 1:02d} {title}.flac",
                identity=wanted.identity((artist,), title),
                title=title,
                artists=(artist,),
                album=album,
                album_artist=artist,
                format="flac",
                duration_ms=rng.randint(95_000, 420_000),
                size=rng.randint(10_000_000, 60_000_000),
                mtime=1.0,
                track_number=track_no + 1,
                year=year,
                isrc=f"QZBN{year % 100:02d}{n:07d}",
            )
        )
        if len(batch) == 1000:
            flush()
    flush()
    return time.perf_counter() - started


def library_pages(ctx: Any) -> list[tuple[str, str]]:
    """LIBRARY_PAGES and the pages that take a cursor or a name from the data."""
    total = library.count_tracks(ctx.db)
    if not total:
        return []
    middle = ctx.db.query_one(
        "SELECT path FROM library_tracks ORDER BY path LIMIT 1 OFFSET ?", (total * 3 // 5,)
    )
    row = ctx.db.query_one("SELECT album_artist, album FROM library_tracks WHERE path = ?", (middle["path"],))
    artist, album = row["album_artist"], row["album"]
    return [
        *LIBRARY_PAGES,
        (
            "library: tracks, three fifths down",
            "/ui/library/tracks?" + urlencode({"cursor": encode_cursor([middle["path"]])}),
        ),
        ("library: albums of an artist", "/ui/library/albums?" + urlencode({"artist": artist})),
        (
            "library: tracks of an album",
            "/ui/library/tracks?" + urlencode({"artist": artist, "album": album}),
        ),
        ("library: album artists, page 2", "/ui/library?" + urlencode({"cursor": encode_cursor([artist])})),
        (
            "library: an album's cover (no file: placeholder)",
            "/ui/library/cover?" + urlencode({"artist": artist, "album": album}),
        ),
    ]


def pages(ctx: Any) -> list[tuple[str, str]]:
    item = int(ctx.db.scalar("SELECT id FROM wanted_items WHERE state = 'wanted' ORDER BY id LIMIT 1"))
    busy = int(
        ctx.db.scalar(
            "SELECT item_id FROM events WHERE item_id IS NOT NULL "
            "GROUP BY item_id ORDER BY count(*) DESC LIMIT 1"
        )
    )
    last = wanted.list_items(ctx.db, limit=51)[49]
    cursor = encode_cursor(wanted.cursor_key(last, "priority"))
    chosen = int(
        ctx.db.scalar("SELECT item_id FROM candidates GROUP BY item_id ORDER BY count(*) DESC LIMIT 1")
    )
    finished = ctx.transfers.list_downloads(active=False, limit=51)[49]
    return [
        ("dashboard", "/ui/"),
        ("watchlist", "/ui/watchlist"),
        ("artist", "/ui/artists/1"),
        ("wanted", "/ui/wanted"),
        ("wanted, page 2", f"/ui/wanted?{urlencode({'cursor': cursor})}"),
        ("wanted, failed", "/ui/wanted?state=failed"),
        ("wanted, by playlist", "/ui/wanted?source=playlist&sort=changed"),
        ("wanted, text search", "/ui/wanted?q=Song+0999"),
        ("wanted, htmx fragment", "/ui/wanted?state=not_found"),
        ("wanted item", f"/ui/wanted/{item}"),
        ("wanted item, longest history", f"/ui/wanted/{busy}"),
        ("wanted item, 220 candidates", f"/ui/wanted/{chosen}"),
        ("downloads", "/ui/downloads"),
        ("downloads, page 2", "/ui/downloads?" + urlencode({"cursor": encode_cursor([finished.id])})),
        ("quarantine", "/ui/quarantine"),
        ("playlists", "/ui/playlists"),
        ("activity", "/ui/activity"),
        ("activity, items", "/ui/activity?kind=item."),
        ("jobs", "/ui/jobs"),
        ("jobs, dead letters", "/ui/jobs?state=dead"),
        ("settings", "/ui/settings"),
        ("keys", "/ui/keys"),
        ("spotify", "/ui/spotify"),
        ("system", "/ui/system"),
        ("login", "/ui/login"),
        *library_pages(ctx),
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--tracks", type=int, default=250_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench" / "ui.md"))
    args = parser.parse_args()
    rng = random.Random(14)
    with tempfile.TemporaryDirectory() as directory:
        cfg = config.load(None, {}, {"data.dir": directory, "log.level": "warning", "log.format": "text"})
        with opened(cfg) as ctx:
            started = time.perf_counter()
            counts = populate(ctx, args.items, rng)
            filled = time.perf_counter() - started
            counts["tracks_s"] = round(populate_library(ctx, args.tracks, rng))
            counts["tracks"] = library.count_tracks(ctx.db)
            app = make_app(ctx)
            key, _ = auth.create_key(ctx.db, "bench", "admin")
            session_id, _ = auth.open_session(ctx.db, key, lifetime_s=86400)
            cookie = f"harmony_session={session_id}"
            rows = []
            for name, url in pages(ctx):
                headers = {}
                if "htmx" in name:
                    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "wanted-table"}
                times = []
                size = 0
                for round_ in range(args.rounds + 3):
                    t0 = time.perf_counter()
                    status, _, body = request_with(app, url, "" if name == "login" else cookie, headers)
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert status == 200, (name, url, status, body[:300])
                    size = len(body)
                    if round_ >= 3:  # warm-up: template compilation, first reads
                        times.append(elapsed)
                rows.append((name, url, statistics.median(times), percentile(times, 0.95), max(times), size))
                print(
                    f"{name:32} p50 {rows[-1][2]:7.2f} ms  p95 {rows[-1][3]:7.2f} ms  {size:8,d} B",
                    flush=True,
                )
    write_report(args, counts, filled, rows)
    worst = max(row[3] for row in rows)
    return 0 if worst < TARGET_MS else 1


def request_with(app: Any, url: str, cookie: str, extra: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    if not extra:
        return request(app, "GET", url, cookie)
    original = app.wsgi if hasattr(app, "wsgi") else app

    def with_headers(environ: dict[str, Any], start: Any) -> Any:
        environ.update(extra)
        return original(environ, start)

    return request(with_headers, "GET", url, cookie)


def write_report(
    args: Any, counts: dict[str, int], filled: float, rows: list[tuple[str, str, float, float, float, int]]
) -> None:
    lines = [
        "# Web UI benchmark",
        "",
        f"Produced by `tools/bench/ui.py` on {time.strftime('%Y-%m-%d')}: {os.cpu_count()} CPUs, "
        f"{platform.machine()}, Python {platform.python_version()}, SQLite {apsw.sqlite_lib_version()}, "
        f"Harmony {__version__}.",
        "",
        f"The database holds {counts['items']:,} wanted items ({counts['sources']:,} sources, spread over 50 "
        f"watched artists with 200 releases, 20 followed playlists and manual wants, in every state) and "
        f"{counts['events']:,} events; filling it took {filled:.1f} s. The acquisition tables hold 20 "
        "downloads under way and 2,000 finished, an item with 220 candidates (20 accepted, 200 rejected), "
        "300 quarantined files, a library scan and three backfill runs; the library index holds "
        f"{counts['tracks']:,} tracks (written through `library.record` in {counts['tracks_s']} s). "
        "Each page is rendered in-process through the whole app (the guard with a UI session, the "
        f"handler, the template) {args.rounds} times after 3 warm-up renders; the time is the "
        "server's, without the network.",
        "",
        f"Target: p95 under {TARGET_MS:.0f} ms for every page.",
        "",
    ]
    table = ["| page | URL | p50 (ms) | p95 (ms) | max (ms) | bytes |", "|---|---|---:|---:|---:|---:|"]

    def row_line(row: tuple[str, str, float, float, float, int]) -> str:
        name, url, p50, p95, most, size = row
        return f"| {name} | `{url[:60]}` | {p50:.2f} | **{p95:.2f}** | {most:.2f} | {size:,} |"

    pages_rows = [row for row in rows if not row[0].startswith("library:")]
    library_rows = [row for row in rows if row[0].startswith("library:")]
    lines += ["## Pages", "", *table, *(row_line(row) for row in pages_rows), ""]
    lines += [f"## Library pages ({counts['tracks']:,} tracks)", ""]
    if library_rows:
        lines += [*table, *(row_line(row) for row in library_rows), ""]
        lines += [
            "A library page without `q` walks one index in its order and stops at the page (the path "
            "index for tracks, `library_album` for albums and artists), so a deep page costs what the "
            "first does. A search asks the trigram index first (see `reports/bench/library.md`); the "
            "album and artist searches test where in the text a common word falls, which is the "
            "slowest case. The albums page sends 50 cover URLs; each cover is a request of its own "
            "(the last row: an album without files on disk gets the placeholder).",
            "",
        ]
    else:
        lines += ["Not measured: run without `--tracks 0`.", ""]
    worst = max(rows, key=lambda row: row[3])
    lines += [
        f"Slowest p95: {worst[0]} at {worst[3]:.2f} ms "
        f"({'within' if worst[3] < TARGET_MS else 'over'} the target).",
        "",
    ]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
