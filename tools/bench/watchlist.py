"""Benchmark of the wanted list: 5,000 watched artists, a 5,000-track playlist, `GET /api/v1/wanted`.

Run: .venv/bin/python tools/bench/watchlist.py [--quick] [--out reports/bench/watchlist.md]

Everything runs Harmony's own code (`opened`, `ctx.watcher`, `ctx.playlists`, `ctx.workers.run_one`,
the WSGI app from `make_app`) against the fake Spotify from `harmony.fakes.start_fakes`. The fakes
run in a process of their own, so the CPU time measured is Harmony's alone, and each section runs in
a fresh child process (the same script with `--child`), so its peak RSS (VmHWM) is its own.

The fake world: the seeded catalogue plus N synthetic artists (2 to 12 releases each, albums and
singles dated 1995-2024), added to the fake's `Catalogue` object before it serves. The fake's
`artist_albums` scans the whole catalogue on every call, which is fine for its 150 artists and
dominates at 5,000: the fakes process replaces it on that one catalogue object with a lookup in an
index built once, with the same result. A WSGI wrapper counts the requests the fake answers, by
endpoint, as a cross-check of Harmony's `harmony_upstream_requests_total{service="spotify"}`.

Sections, one function each, in report order:

1. `artists`: watch N artists (`ctx.watcher.add`), run their first scans, then a routine pass with
   nothing new (the dispatcher's `watchlist.batch` at a time, as on the wheel): Spotify requests per
   artist (target at most 1.1), CPU seconds per 1,000 artists, the wall time of the pass with the
   request budget lifted, the time a pass needs under the default budget (`spotify.rate` 2.5/s),
   and a slice of scans paced at the highest configurable rate (50/s) to check the model.
2. `playlist`: follow a playlist of 5,200 tracks (the fake's "Everything Ever"; 1,000 with `--quick`)
   and sync it, then resync it unchanged, each in its own process: requests, wall and CPU time,
   peak RSS.
3. `wanted_api`: 10,000 items made through `harmony.wanted.want` in chunks, then a few hundred
   `GET /api/v1/wanted` through the in-process app for the default list, a filtered one (state and
   q) and a deep page (cursor): p50 and p95 (target p95 under 50 ms).

To add a section, write a function returning a `Section` and call it from `main`. With `--quick`
the sizes shrink (500 artists, 1,000 tracks, 2,000 items, 100 requests a case) and it runs in well
under a minute (about 12 s here); the full run takes about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import apsw  # noqa: E402
import urllib3  # noqa: E402
from client import Client  # noqa: E402
from harness import Row  # noqa: E402

from harmony import __version__, auth, config, wanted  # noqa: E402
from harmony import log as logsetup  # noqa: E402
from harmony.context import Context, opened  # noqa: E402
from harmony.fakes import start_fakes  # noqa: E402
from harmony.fakes.catalogue import (  # noqa: E402
    USER_ID,
    Album,
    Artist,
    Catalogue,
    Playlist,
    PlaylistEntry,
    Track,
    spotify_id,
)
from harmony.spotify import TokenBucket  # noqa: E402
from harmony.watchlist import SQL_DUE, SQL_KNOWN  # noqa: E402
from harmony.web import make_app  # noqa: E402

TARGET_REQUESTS_PER_ARTIST = 1.1
TARGET_P95_MS = 50.0
DEFAULT_RATE = 2.5  # spotify.rate's default
MAX_RATE = 50.0  # the highest spotify.rate the configuration accepts
DISPATCH_INTERVAL_S = 60.0  # the watchlist_dispatch task's interval (harmony/context.py)
SEED = 20261130
UNLIMITED = 1e9
REDIRECT_URI = "http://127.0.0.1:8337/auth/spotify/callback"
COUNTS_PATH = "/_bench/counts"


@dataclass(frozen=True)
class Sizes:
    artists: int
    paced: int  # routine scans paced at MAX_RATE
    playlist: int  # 0: the fake's own "Everything Ever" (5,200 tracks)
    items: int
    requests: int  # timed requests per /api/v1/wanted case

    @classmethod
    def pick(cls, quick: bool) -> Sizes:
        return cls(500, 50, 1_000, 2_000, 100) if quick else cls(5_000, 250, 0, 10_000, 300)


@dataclass
class Section:
    title: str
    intro: list[str]
    rows: list[Row]
    details: list[str] = field(default_factory=list)


# --- the fake world (runs in its own process) ----------------------------------------------------


_WORDS = (
    "Amber", "Winter", "Glass", "Harbour", "Paper", "Static", "Velvet", "Hollow", "Cinder", "Orbit",
    "Meadow", "Copper", "Lantern", "Saltwater", "Tundra", "Ivory", "Pulse", "Signal", "Drift", "Ember",
    "Marble", "Nocturne", "Quartz", "Ribbon", "Solstice", "Thistle", "Undertow", "Willow", "Zephyr", "Basalt",
)  # fmt: skip
_ISRC_COUNTRIES = ("GB", "US", "SE", "FR", "DE", "NO", "JP", "ES")


def synthetic_artists(cat: Catalogue, count: int, rng: random.Random) -> list[str]:
    """Add `count` artists with 2 to 12 releases each (albums of 4 to 10 tracks, singles of 1 or
    2, dated 1995 to 2024 at day precision) to the catalogue; return their ids in order."""
    ids = []
    serial = 0
    for n in range(count):
        name = f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} {n:05d}"
        artist = Artist(spotify_id(rng), name, ("indie pop",))
        cat.artists[artist.id] = artist
        ids.append(artist.id)
        for r in range(rng.randint(2, 12)):
            kind = "album" if r % 3 == 0 else "single"
            day = dt.date(1995, 1, 1) + dt.timedelta(days=rng.randrange(30 * 365))
            album = Album(
                id=spotify_id(rng),
                name=f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}",
                album_type=kind,
                artist_ids=(artist.id,),
                release_date=day.isoformat(),
                release_date_precision="day",
                upc=f"{rng.randrange(10**11, 10**12)}",
                label="Bench Records",
            )
            cat.albums[album.id] = album
            for number in range(1, (rng.randint(4, 10) if kind == "album" else rng.randint(1, 2)) + 1):
                serial += 1
                track = Track(
                    id=spotify_id(rng),
                    name=f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}",
                    artist_ids=(artist.id,),
                    album_id=album.id,
                    duration_ms=rng.randint(95_000, 420_000),
                    track_number=number,
                    disc_number=1,
                    isrc=f"{rng.choice(_ISRC_COUNTRIES)}BN{day.year % 100:02d}{serial:07d}",
                )
                cat.tracks[track.id] = track
                album.track_ids.append(track.id)
    return ids


def index_artist_albums(cat: Catalogue) -> None:
    """Replace `cat.artist_albums` (a scan of every album per call) with a lookup, same result:
    (album, group) pairs, newest first, own releases under their type and compilations the artist
    appears on as `appears_on`."""
    index: dict[str, list[tuple[Album, str]]] = collections.defaultdict(list)
    for album in cat.albums.values():
        for artist_id in album.artist_ids:
            index[artist_id].append((album, album.album_type))
        if album.album_type == "compilation":
            guests = {a for t in album.track_ids for a in cat.tracks[t].artist_ids} - set(album.artist_ids)
            for artist_id in guests:
                index[artist_id].append((album, "appears_on"))
    for pairs in index.values():
        pairs.sort(key=lambda pair: (pair[0].released_on, pair[0].id), reverse=True)
    cat.artist_albums = lambda artist_id: list(index.get(artist_id, ()))  # type: ignore[method-assign]


def bench_playlist(cat: Catalogue, size: int) -> str:
    """The fake's "Everything Ever" (5,200 tracks, owned by the user) when `size` is 0; else a new
    playlist of the user's holding its first `size` entries."""
    everything = next(p for p in cat.playlists.values() if p.name == "Everything Ever")
    if not size:
        return everything.id
    rows = [PlaylistEntry(e.track_id, e.added_at, e.added_by) for e in everything.entries[:size]]
    owner = everything.owner_name
    playlist = Playlist(
        spotify_id(random.Random(size)), f"First {size}", "", USER_ID, owner, False, False, rows
    )
    cat.playlists[playlist.id] = playlist
    return playlist.id


def endpoint(path: str) -> str:
    """A request path as an endpoint name: ids become `{id}`."""
    parts = path.strip("/").split("/")
    if parts[:1] != ["v1"]:
        return path
    return "/" + "/".join("{id}" if len(p) == 22 else p for p in parts)


class Counting:
    """WSGI wrapper: counts requests by endpoint; `GET /_bench/counts` answers the counts (JSON)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == COUNTS_PATH:
            with self.lock:
                body = json.dumps(dict(self.counts)).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        with self.lock:
            self.counts[endpoint(path)] += 1
        return self.app(environ, start_response)


def serve_fakes(artists: int, playlist: int) -> None:
    """`--fakes`: start the fakes with the bigger world, print one JSON line (the options pointing
    Harmony at them, the synthetic artists' ids, the playlist's id), serve until stdin closes."""
    with tempfile.TemporaryDirectory(prefix="harmony-bench-fakes-") as directory:
        started = time.perf_counter()
        fakes = start_fakes(os.path.join(directory, "slskd"))
        try:
            cat = fakes.catalogue
            ids = synthetic_artists(cat, artists, random.Random(SEED))
            playlist_id = bench_playlist(cat, playlist)
            index_artist_albums(cat)
            fakes.spotify.stop()  # serve the same app, counted, on the same port
            fakes.spotify.app = Counting(fakes.spotify.app)
            fakes.spotify.start()
            world = {
                # Spotify only: nothing here may reach the fake slskd.
                "options": {
                    k: v for k, v in fakes.harmony_options(REDIRECT_URI).items() if k.startswith("spotify.")
                },
                "artist_ids": ids,
                "playlist_id": playlist_id,
                "playlist_tracks": len(cat.playlists[playlist_id].entries),
                "catalogue": {
                    "artists": len(cat.artists),
                    "albums": len(cat.albums),
                    "tracks": len(cat.tracks),
                },
                "build_s": time.perf_counter() - started,
            }
            print(json.dumps(world), flush=True)
            sys.stdin.read()  # until the parent closes it
        finally:
            fakes.stop()


@contextlib.contextmanager
def fake_world(sizes: Sizes) -> Iterator[dict[str, Any]]:
    """The fakes process (this script with `--fakes`) and the world it described."""
    argv = [sys.executable, __file__, "--fakes", str(sizes.artists), str(sizes.playlist)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fakes process exited with {proc.wait()}")
        yield json.loads(line)
    finally:
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# --- helpers for the section processes ------------------------------------------------------------


def run_child(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run `name` in a fresh process (this script with `--child`); its result is stdout's last line."""
    argv = [sys.executable, __file__, "--child", name]
    done = subprocess.run(argv, input=json.dumps(spec), capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_config(data_dir: str, options: dict[str, str], **extra: str) -> config.Config:
    """Harmony's defaults, data in `data_dir`, pointed at the fakes by `options`."""
    values = {"data.dir": data_dir, "log.format": "text", "log.level": "warning", **options}
    values.update({name.replace("_", ".", 1): value for name, value in extra.items()})
    return config.load(None, {}, values)


def pace(ctx: Context, rate: float) -> None:
    """Replace the process-wide Spotify token bucket (UNLIMITED lifts the budget)."""
    ctx.spotify.bucket = TokenBucket(rate, burst=UNLIMITED if rate >= UNLIMITED else 5.0)


def spotify_requests(ctx: Context) -> float:
    """`harmony_upstream_requests_total{service="spotify"}`, every outcome."""
    total = 0.0
    for metric in ctx.metrics.registry.collect():
        if metric.name == "harmony_upstream_requests":
            total += sum(
                s.value
                for s in metric.samples
                if s.name.endswith("_total") and s.labels["service"] == "spotify"
            )
    return total


def counter_values(ctx: Context, name: str) -> dict[str, float]:
    """A labelled counter's values by its one label."""
    out: dict[str, float] = {}
    for metric in ctx.metrics.registry.collect():
        if metric.name == name:
            for s in metric.samples:
                if s.name.endswith("_total"):
                    out[next(iter(s.labels.values()))] = s.value
    return out


HTTP = urllib3.PoolManager(retries=False)


def fake_counts(options: dict[str, str]) -> collections.Counter[str]:
    response = HTTP.request("GET", options["spotify.accounts_url"] + COUNTS_PATH)
    return collections.Counter(json.loads(response.data))


# Jobs run by this process, by type: only the section's own kinds are expected (nothing runs the
# wheel, so no search or transfer is ever queued).
JOBS_RUN: collections.Counter[str] = collections.Counter()


def run_jobs(ctx: Context) -> int:
    ran = 0
    while (job := ctx.workers.run_one(now=ctx.queue.clock() + 10**7)) is not None:
        JOBS_RUN[job.type] += 1
        ran += 1
    return ran


def vm_mb(name: str) -> float:
    """VmRSS, VmHWM, ... of this process from /proc/self/status, in MB."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key == name:
                return float(rest.split()[0]) / 1024
    raise KeyError(name)


def measure(ctx: Context, options: dict[str, str], work: Callable[[], Any]) -> dict[str, Any]:
    """Run `work`; its wall and CPU seconds, Spotify requests (Harmony's metric) and the requests
    the fake answered, by endpoint."""
    fake_before, requests_before = fake_counts(options), spotify_requests(ctx)
    cpu, wall = time.process_time(), time.perf_counter()
    value = work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    fake = fake_counts(options) - fake_before
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "requests": spotify_requests(ctx) - requests_before,
        "fake": dict(fake.most_common()),
        "value": value,
    }


def plan(ctx: Context, sql: str, args: Iterable[Any]) -> list[str]:
    return [row["detail"] for row in ctx.db.query("EXPLAIN QUERY PLAN " + sql, tuple(args))]


def top_functions(profile: cProfile.Profile, count: int) -> list[dict[str, Any]]:
    """The `count` functions with the most own time in a profile."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = (
            os.path.relpath(filename, ROOT) if filename.startswith(str(ROOT)) else os.path.basename(filename)
        )
        rows.append(
            {"function": f"{where}:{line}({name})", "calls": calls, "own_s": own, "cum_s": cumulative}
        )
    rows.sort(key=lambda r: r["own_s"], reverse=True)
    return rows[:count]


# --- children: each runs in its own process ------------------------------------------------------


def child_artists(spec: dict[str, Any]) -> dict[str, Any]:
    """Watch the artists, first scans, a routine pass, a paced slice and a profiled slice."""
    options, ids = spec["options"], spec["artist_ids"]
    with opened(bench_config(spec["directory"], options)) as ctx:
        pace(ctx, UNLIMITED)
        out: dict[str, Any] = {"artists": len(ids), "batch": ctx.config["watchlist.batch"]}

        def watch() -> int:
            for spotify_artist in ids:
                ctx.watcher.add(spotify_artist)
            return len(ids)

        out["watch"] = measure(ctx, options, watch)
        out["first"] = measure(ctx, options, lambda: run_jobs(ctx))
        out["first_outcomes"] = counter_values(ctx, "harmony_watchlist_scans")
        out["releases"] = ctx.db.scalar("SELECT count(*) FROM releases")
        out["wanted_items"] = ctx.db.scalar("SELECT count(*) FROM wanted_items")
        # Every artist is due again one interval after its first scan; a scan sets the next due time
        # one interval after itself, so no artist is due twice within this pass.
        due_at = float(ctx.db.scalar("SELECT max(next_scan_at) FROM artists"))
        before = counter_values(ctx, "harmony_watchlist_scans")

        def routine() -> dict[str, float]:
            dispatches, scans, dispatch_s = 0, 0, 0.0
            while True:
                started = time.perf_counter()
                queued = ctx.watcher.dispatch(now=due_at)
                dispatch_s += time.perf_counter() - started
                if not queued:
                    return {"dispatches": dispatches, "scans": scans, "dispatch_s": dispatch_s}
                dispatches += 1
                scans += run_jobs(ctx)

        out["routine"] = measure(ctx, options, routine)
        after = counter_values(ctx, "harmony_watchlist_scans")
        out["routine_outcomes"] = {
            k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)
        }
        out["plans"] = {
            "due": plan(ctx, SQL_DUE, (due_at, due_at, 100)),
            "known": plan(ctx, SQL_KNOWN, (1,)),
        }
        # A slice of routine scans paced at the highest configurable rate.
        slice_ids = [
            row["id"] for row in ctx.db.query("SELECT id FROM artists ORDER BY id LIMIT ?", (spec["paced"],))
        ]
        pace(ctx, MAX_RATE)
        for artist_id in slice_ids:
            ctx.watcher.request_scan(artist_id)
        out["paced"] = measure(ctx, options, lambda: run_jobs(ctx))
        # The same slice again, unpaced and under cProfile: where the CPU of a routine scan goes.
        pace(ctx, UNLIMITED)
        for artist_id in slice_ids:
            ctx.watcher.request_scan(artist_id)
        profile = cProfile.Profile(time.process_time)  # CPU time: waits on the fake do not count
        profile.enable()
        run_jobs(ctx)
        profile.disable()
        total = pstats.Stats(profile, stream=io.StringIO()).total_tt  # type: ignore[attr-defined]
        out["profile"] = {"scans": len(slice_ids), "total_s": total, "top": top_functions(profile, 12)}
        out["vm_hwm_mb"] = vm_mb("VmHWM")
        out["db_mb"] = os.path.getsize(ctx.config.database_path) / 1e6
        return out


def connect_user(ctx: Context) -> None:
    """The PKCE flow as a browser runs it against the fake (which approves at once)."""
    location = HTTP.request("GET", ctx.spotify.authorize_url(), redirect=False).headers["Location"]
    query = parse_qs(urlsplit(location).query)
    ctx.spotify.complete_authorization(query["state"][0], query["code"][0])


def child_playlist(spec: dict[str, Any]) -> dict[str, Any]:
    """`first`: connect, follow and sync the playlist; `resync`: sync it again (unchanged)."""
    options = spec["options"]
    with opened(bench_config(spec["directory"], options)) as ctx:
        pace(ctx, UNLIMITED)
        out: dict[str, Any] = {}
        if spec["mode"] == "first":
            connect_user(ctx)
            follow = measure(ctx, options, lambda: ctx.playlists.follow(spec["playlist_id"]).id)
            out["follow"] = follow
            playlist_id = follow["value"]
        else:
            playlist_id = ctx.db.scalar("SELECT id FROM playlists")
            ctx.playlists.request_sync(playlist_id)
        out["rss_before_mb"] = vm_mb("VmRSS")
        out["hwm_before_mb"] = vm_mb("VmHWM")
        out["sync"] = measure(ctx, options, lambda: run_jobs(ctx))
        out["hwm_after_mb"] = vm_mb("VmHWM")
        synced = ctx.playlists.get(playlist_id)
        out["result"] = f"{synced.last_result_code}: {synced.last_result}"
        out["listed"] = ctx.db.scalar(
            "SELECT count(*) FROM playlist_tracks WHERE playlist_id = ?", (playlist_id,)
        )
        out["items"] = wanted.count_items(ctx.db, playlist_id=playlist_id)
        return out


def fill_wanted(ctx: Context, count: int, chunk: int = 500) -> dict[str, int]:
    """`count` manual wants through `wanted.want`, `chunk` a transaction; then a quarter of them
    searched and not found and a tenth skipped, through `wanted.transition`."""
    rng = random.Random(SEED)
    artists = [f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} {n}" for n in range(max(10, count // 12))]
    source = wanted.Source("manual")
    ids: list[int] = []
    for start in range(0, count, chunk):
        with ctx.db.write() as conn:
            for n in range(start, min(count, start + chunk)):
                title = f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} {rng.choice(_WORDS)}"
                track = wanted.Track(
                    title=title,
                    artists=(rng.choice(artists),),
                    spotify_id=spotify_id(rng),
                    isrc=f"{rng.choice(_ISRC_COUNTRIES)}WN{n % 100:02d}{n:07d}",
                    album=f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}",
                    duration_ms=rng.randint(95_000, 420_000),
                    track_number=1 + n % 12,
                    release_date=f"{rng.randint(1970, 2026)}",
                )
                ids.append(wanted.want(conn, track, source)[0].id)
    for start in range(0, len(ids), chunk):
        with ctx.db.write() as conn:
            for n, item_id in enumerate(ids[start : start + chunk], start):
                if n % 10 == 3:
                    wanted.transition(conn, item_id, "skipped", "skipped", "skipped by the operator")
                elif n % 4 == 1:
                    wanted.transition(conn, item_id, "searching", "search", "searching")
                    wanted.transition(conn, item_id, "not_found", "no_results", "nothing found")
    return wanted.counts_by_state(ctx.db)


def latency(client: Client, url: str, count: int, warmup: int = 20) -> dict[str, Any]:
    samples = []
    items = 0
    for n in range(warmup + count):
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status} {response.text[:300]}")
        if n >= warmup:
            samples.append(elapsed)
        items = len(response.json["items"])
    cuts = statistics.quantiles(samples, n=100)
    return {"url": url, "n": count, "items": items, "p50": cuts[49] * 1000, "p95": cuts[94] * 1000,
            "p99": cuts[98] * 1000, "max": max(samples) * 1000}  # fmt: skip


def statements(ctx: Context, client: Client, url: str, repeat: int = 30) -> list[dict[str, Any]]:
    """The SQL one request runs (traced): each distinct SELECT with its calls per request, its time
    (the statement re-run `repeat` times with the first bindings seen, every row fetched; median
    per call times calls) and its query plan."""
    conn = ctx.db.conn()
    seen: dict[str, dict[str, Any]] = {}

    def trace(cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        if sql.lstrip().upper().startswith("SELECT"):
            entry = seen.setdefault(sql, {"sql": sql, "bindings": bindings or (), "calls": 0})
            entry["calls"] += 1
        return True

    conn.exec_trace = trace
    try:
        client.get(url)
    finally:
        conn.exec_trace = None
    out = []
    for entry in seen.values():
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            list(conn.execute(entry["sql"], entry["bindings"]))
            times.append(time.perf_counter() - started)
        per_call = statistics.median(times)
        out.append(
            {
                "sql": " ".join(entry["sql"].split()),
                "calls": entry["calls"],
                "ms_call": per_call * 1000,
                "ms": per_call * entry["calls"] * 1000,
                "plan": plan(ctx, entry["sql"], entry["bindings"]),
            }
        )
    out.sort(key=lambda e: e["ms"], reverse=True)
    return out


def child_wanted(spec: dict[str, Any]) -> dict[str, Any]:
    """Fill the wanted list, then time `GET /api/v1/wanted` cases through the in-process app."""
    with opened(bench_config(spec["directory"], {})) as ctx:
        started = time.perf_counter()
        states = fill_wanted(ctx, spec["items"])
        out: dict[str, Any] = {"fill_s": time.perf_counter() - started, "states": states}
        client = Client(make_app(ctx), auth.create_key(ctx.db, "bench", "admin")[0])
        # A page nine tenths of the way down the default list: follow the cursors there.
        pages, url = int(spec["items"] * 0.9) // 50, "/api/v1/wanted"
        for _ in range(pages):
            url = "/api/v1/wanted?" + urlencode({"cursor": client.get(url).json["next_cursor"]})
        cases = {
            "default": "/api/v1/wanted",
            "filtered": "/api/v1/wanted?" + urlencode({"state": "wanted,not_found", "q": "harbour"}),
            "deep": url,
        }
        # A served request is logged (JSON, info); so are these, to a file.
        with open(os.path.join(spec["directory"], "requests.log"), "w", encoding="utf-8") as sink:
            logsetup.configure("info", "json", sink)
            out["cases"] = {name: latency(client, path, spec["requests"]) for name, path in cases.items()}
            logsetup.configure("warning", "text")
        out["statements"] = {name: statements(ctx, client, path) for name, path in cases.items()}
        out["deep_page"] = pages + 1
        return out


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "artists": child_artists,
    "playlist": child_playlist,
    "wanted": child_wanted,
}


def child_main(name: str) -> None:
    spec = json.load(sys.stdin)
    logsetup.configure("warning", "text")
    result = CHILDREN[name](spec)
    result["jobs"] = dict(JOBS_RUN.most_common())
    print(json.dumps(result, default=str))


# --- sections (run in this process, each starting its children) ---------------------------------


def minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def jobs(ran: dict[str, int]) -> str:
    return ", ".join(f"`{kind}` {n:,}" for kind, n in ran.items()) or "none"


def endpoints(fake: dict[str, int]) -> str:
    return ", ".join(f"`{path}` {n:,}" for path, n in fake.items()) or "none"


def pass_seconds(artists: int, scan_s: float, batch: int, every: float = DISPATCH_INTERVAL_S) -> float:
    """When the last of `artists` due artists is scanned: the dispatcher runs every `every` seconds
    and queues the first `batch` artists still due (those queued or running included, so it adds
    `batch` minus the ones not finished yet); scans run one after another, `scan_s` each (the
    token bucket's pace, shared by the workers)."""
    finishes: list[float] = []
    queued, run = 0, 0
    while len(finishes) < artists:
        at = run * every
        done = bisect.bisect_right(finishes, at)
        queued = max(queued, min(artists, done + batch))
        while len(finishes) < queued:
            finishes.append(max(finishes[-1] if finishes else 0.0, at) + scan_s)
        run += 1
    return finishes[-1] if finishes else 0.0


def artists(world: dict[str, Any], sizes: Sizes, directory: str) -> Section:
    """Section 1: the watchlist at N artists."""
    spec = {
        "options": world["options"],
        "artist_ids": world["artist_ids"],
        "paced": sizes.paced,
        "directory": os.path.join(directory, "artists"),
    }
    r = run_child("artists", spec)
    n, routine, first, watch, paced = r["artists"], r["routine"], r["first"], r["watch"], r["paced"]
    per_artist = routine["requests"] / n
    fake_per_artist = sum(routine["fake"].values()) / n
    cpu_per_1000 = routine["cpu_s"] / n * 1000
    budget_s = routine["requests"] / DEFAULT_RATE
    dispatch_runs = -(-n // r["batch"])
    pass_s = pass_seconds(n, per_artist / DEFAULT_RATE, r["batch"])
    interval = float(config.BY_KEY["watchlist.interval"].default)
    model_s = max(0.0, paced["requests"] - 5) / MAX_RATE  # a burst of 5, then the rate
    unchanged = r["routine_outcomes"].get("unchanged", 0)
    rows = [
        Row(
            "Spotify requests per artist, routine pass with nothing new",
            f"**{per_artist:.3f}** ({routine['requests']:,.0f} for {n:,}; "
            f"the fake counted {fake_per_artist:.3f})",
            f"≤ {TARGET_REQUESTS_PER_ARTIST}",
            per_artist <= TARGET_REQUESTS_PER_ARTIST,
        ),
        Row(
            "CPU seconds per 1,000 artists, routine pass",
            f"**{cpu_per_1000:.2f} s** ({routine['cpu_s']:.1f} s in all)",
        ),
        Row(
            "Wall time of the routine pass, request budget lifted",
            f"{routine['wall_s']:.1f} s ({n / routine['wall_s']:,.0f} artists/s)",
        ),
        Row(
            f"Full pass under the default budget (`spotify.rate` {DEFAULT_RATE}/s)",
            f"**{minutes(pass_s)}**: {dispatch_runs} dispatcher runs a minute apart queue {r['batch']} "
            f"each, scanned at {DEFAULT_RATE / per_artist:.1f} a second; requests / rate alone: "
            f"{minutes(budget_s)}",
            f"within `watchlist.interval` ({minutes(interval)})",
            pass_s <= interval,
        ),
        Row(
            f"{paced['requests']:,.0f} routine scans paced at {MAX_RATE:.0f}/s (the highest `spotify.rate`)",
            f"{paced['wall_s']:.2f} s (bucket model: {model_s:.2f} s)",
        ),
        Row(
            "Spotify requests per artist, first scan",
            f"{first['requests'] / n:.2f} ({first['requests']:,.0f}; "
            f"{r['releases']:,} releases learnt, {r['wanted_items']:,} items wanted)",
        ),
    ]
    phases = [("watch (`ctx.watcher.add`)", watch), ("first scans", first), ("routine pass", routine)]
    phases.append((f"{paced['requests']:,.0f} scans paced at {MAX_RATE:.0f}/s", paced))
    phase_rows = [
        f"| {name} | {m['requests']:,.0f} | {sum(m['fake'].values()):,} | {m['requests'] / n:.3f} "
        f"| {m['wall_s']:.1f} | {m['cpu_s']:.1f} | {m['cpu_s'] / n * 1000:.2f} | {endpoints(m['fake'])} |"
        for name, m in phases[:3]
    ]
    profile = r["profile"]
    profile_rows = [
        f"| `{p['function']}` | {p['calls']:,} | {p['own_s'] * 1000 / profile['scans']:.3f} "
        f"| {p['cum_s'] * 1000 / profile['scans']:.3f} |"
        for p in profile["top"]
    ]
    intro = [
        f"{n:,} synthetic artists in the fake catalogue ({world['catalogue']['albums']:,} albums and "
        f"{world['catalogue']['tracks']:,} tracks in all), each with 2 to 12 albums and singles dated "
        "1995-2024, watched with the defaults (album + single, releases since today). The first scans "
        "learn every release and want none (all predate `since`); the routine pass then finds nothing "
        f"new. The pass runs as the wheel does it: `dispatch` queues the due artists {r['batch']} at a "
        "time (`watchlist.batch`), `workers.run_one` runs the scans, until nothing is due. Requests are "
        'Harmony\'s `harmony_upstream_requests_total{service="spotify"}` (every outcome, token '
        "requests included); the fake's own count is beside it. CPU is `time.process_time()` of the "
        "Harmony process (the fakes run in another); the token bucket is lifted except in the paced row.",
    ]
    details = [
        "Phases (per-artist figures over all the artists):",
        "",
        "| phase | requests (metric) | requests (fake) | per artist | wall (s) | CPU (s) "
        "| CPU s / 1,000 artists | at the fake, by endpoint |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *phase_rows,
        "",
        f"Routine pass: {routine['value']['dispatches']} dispatcher runs queued "
        f"{routine['value']['scans']:,} scans ({routine['value']['dispatch_s'] * 1000:.0f} ms in `dispatch` "
        "in all); outcomes "
        f"{json.dumps(r['routine_outcomes'])}, so {unchanged:,.0f} of {n:,} artists cost exactly the first "
        f"page. First-scan outcomes: {json.dumps(r['first_outcomes'])}. Peak RSS of the process "
        f"{r['vm_hwm_mb']:.0f} MB; database {r['db_mb']:.1f} MB. Jobs run: {jobs(r['jobs'])}.",
        "",
        f"Where the CPU of a routine scan goes: cProfile (timer `time.process_time`, so waiting for the "
        f"fake does not count) over {profile['scans']} routine scans, unpaced: "
        f"{profile['total_s'] * 1000 / profile['scans']:.2f} ms of CPU a scan under the profiler against "
        f"{routine['cpu_s'] / n * 1000:.2f} ms without it. The functions with the most own time, per scan:",
        "",
        "| function | calls | own ms / scan | cumulative ms / scan |",
        "|---|---:|---:|---:|",
        *profile_rows,
        "",
        "Query plans of the dispatcher's due-artist query and of a scan's known-release query:",
        "",
        "```",
        *(f"due:   {line}" for line in r["plans"]["due"]),
        *(f"known: {line}" for line in r["plans"]["known"]),
        "```",
        "",
        f"Reading it: a routine scan asks for the first page of the artist's releases "
        f"(`include_groups={','.join(('album', 'single'))}`, newest first) and stops there when its total "
        "and ids are the ones already known, so an unchanged artist costs exactly one request and the "
        "target holds with room to spare (an app-token refresh adds one request an hour). Harmony's own "
        f"cost is small: {routine['cpu_s'] / n * 1000:.2f} ms of CPU a scan, spread over the job "
        "queue's lease and completion, the scan's two statements and one write transaction, urllib3 and "
        "parsing the page's albums; at the default budget the watchlist keeps "
        f"{routine['cpu_s'] / n * DEFAULT_RATE / per_artist * 100:.2f} % of one core busy. A full pass "
        "is bounded by the dispatcher rather than by the rate budget: it queues at most "
        f"`watchlist.batch` = {r['batch']} artists a minute, and the bucket could serve "
        f"{DEFAULT_RATE * DISPATCH_INTERVAL_S / per_artist:.0f} a minute, so {n:,} due artists take "
        f"{minutes(pass_s)} instead of {minutes(budget_s)}. That matters only when many artists are due at "
        "once (the first start, after downtime, after an import of followed artists); after one pass their "
        "due times are spread over the interval.",
    ]
    return Section("Watched artists", intro, rows, details)


def playlist(world: dict[str, Any], sizes: Sizes, directory: str) -> Section:
    """Section 2: a big playlist's first sync and its unchanged resync, each in its own process."""
    spec = {"options": world["options"], "playlist_id": world["playlist_id"]}
    spec["directory"] = os.path.join(directory, "playlist")
    first = run_child("playlist", {**spec, "mode": "first"})
    again = run_child("playlist", {**spec, "mode": "resync"})
    tracks = world["playlist_tracks"]
    pages = -(-tracks // 50)
    rows = []
    for name, r, target in (("first sync", first, 1 + pages), ("unchanged resync", again, 1)):
        sync = r["sync"]
        rows += [
            Row(
                f"{name}: Spotify requests",
                f"**{sync['requests']:,.0f}** ({endpoints(sync['fake'])})",
                f"{target} (1 + {pages} pages of 50)" if target > 1 else "1",
                sync["requests"] <= target,
            ),
            Row(
                f"{name}: wall time, budget lifted / at {DEFAULT_RATE}/s",
                f"{sync['wall_s']:.2f} s / {minutes(sync['requests'] / DEFAULT_RATE)} "
                f"(CPU {sync['cpu_s']:.2f} s)",
            ),
            Row(
                f"{name}: peak RSS (VmHWM)",
                f"**{r['hwm_after_mb']:.1f} MB**, {r['hwm_after_mb'] - r['rss_before_mb']:+.1f} MB over the "
                f"{r['rss_before_mb']:.1f} MB before it",
            ),
        ]
    which = 'the fake\'s own "Everything Ever"' if not sizes.playlist else "its first entries"
    intro = [
        f"A playlist of {tracks:,} tracks owned by the connected user "
        f"({which}), "
        "followed with `ctx.playlists.follow` and synced by `workers.run_one`; then synced again with its "
        "snapshot unchanged. Each runs in a fresh process opening the same database, so each peak RSS "
        "(VmHWM from /proc/self/status) is that sync's own, the interpreter, Harmony and the open "
        "context included. Budget lifted; the time at the default rate is requests / 2.5.",
    ]
    details = [
        f"After the first sync: {first['result']}; {first['listed']:,} tracks listed, {first['items']:,} "
        "wanted items from the playlist (two entries can be one recording). After the resync: "
        f"{again['result']}. Following it cost {first['follow']['requests']:,.0f} request(s) "
        f"({endpoints(first['follow']['fake'])}) before the sync. Jobs run: {jobs(first['jobs'])}, then "
        f"{jobs(again['jobs'])}.",
    ]
    grew = first["hwm_after_mb"] - first["rss_before_mb"]
    details += [
        "",
        f"Reading it: the first sync costs the metadata request plus one request per page of 50 "
        f"({minutes(first['sync']['requests'] / DEFAULT_RATE)} at the default budget), and its memory "
        f"stays flat: the peak is {grew:.1f} MB above the process before the sync, for {tracks:,} tracks, "
        "because `Playlists._walk` consumes `Spotify.playlist_items` as a generator and commits every "
        "50 entries; what grows with the playlist is the database, not the process. The unchanged resync "
        "is one request: the snapshot id matches, nothing else is read.",
    ]
    return Section(f"A {tracks:,}-track playlist", intro, rows, details)


def wanted_api(sizes: Sizes, directory: str) -> Section:
    """Section 3: `GET /api/v1/wanted` at 10,000 items."""
    spec: dict[str, Any] = {"items": sizes.items, "requests": sizes.requests}
    spec["directory"] = os.path.join(directory, "wanted")
    os.makedirs(spec["directory"], exist_ok=True)
    r = run_child("wanted", spec)
    labels = {
        "default": "default list (first page, 50, with the total)",
        "filtered": "filtered: `state=wanted,not_found&q=harbour`",
        "deep": f"deep page: page {r['deep_page']} by cursor",
    }
    rows = []
    for name, case in r["cases"].items():
        rows.append(
            Row(
                f"{labels[name]}: p95 (p50)",
                f"**{case['p95']:.2f} ms** ({case['p50']:.2f} ms; p99 {case['p99']:.2f}; "
                f"{case['items']} items)",
                f"p95 < {TARGET_P95_MS:.0f} ms",
                case["p95"] < TARGET_P95_MS,
            )
        )
    states = ", ".join(f"{k} {v:,}" for k, v in r["states"].items() if v)
    intro = [
        f"{sizes.items:,} items created through `harmony.wanted.want` (manual source, 500 a transaction; "
        f"{r['fill_s']:.1f} s), then moved through `wanted.transition` to {states}. Each case is "
        f"{sizes.requests} requests (after 20 unrecorded) through the app from `make_app`, called in "
        "process with an admin API key, as the tests call it; the request log goes to a file as a served "
        "request's does. No server, socket or HTTP parsing: add about 1 ms for those (see "
        "`reports/bench/service.md`).",
    ]
    details = [
        "The SQL one request runs (traced with APSW), each statement re-run alone with the bindings it "
        "had (median of 30; ms is calls × ms per call), and its plan:",
        "",
    ]
    for name, found in r["statements"].items():
        details += [f"*{labels[name]}*:", "", "| statement | calls | ms per call | ms | plan |"]
        details.append("|---|---:|---:|---:|---|")
        for s in found:
            sql = s["sql"] if len(s["sql"]) <= 170 else s["sql"][:167] + "..."
            cells = f"{s['calls']} | {s['ms_call']:.3f} | {s['ms']:.3f} | {'; '.join(s['plan'])}"
            details.append(f"| `{sql}` | {cells} |")
        details.append("")

    def statement(case: str, start: str) -> dict[str, Any]:
        found = [e for e in r["statements"][case] if e["sql"].startswith(start)]
        return found[0] if found else {"sql": start, "calls": 0, "ms": 0.0}

    count = statement("filtered", "SELECT count(*)")
    sources = statement("default", "SELECT * FROM wanted_sources")
    page_query = "SELECT * FROM wanted_items"
    worst = max(r["cases"], key=lambda name: r["cases"][name]["p95"])
    details += [
        f"Reading it: the slowest case is the {labels[worst].split(':')[0]} one, at p95 "
        f"{r['cases'][worst]['p95']:.1f} ms against {TARGET_P95_MS:.0f} ms. Every page pays one sources "
        f"query per item ({sources['calls']} of them, {sources['ms']:.2f} ms) and the JSON of 50 items. "
        f"The filtered case adds the list's total, `{count['sql'][:48]}...` ({count['ms']:.2f} ms), which "
        "walks every item in the chosen states through `wanted_state` and tests the three LIKEs on each, "
        "so it grows with the list; the page itself "
        f"({statement('filtered', page_query)['ms']:.2f} ms) stops early (the index gives each state's "
        "rows in the sort order, and LIMIT ends the "
        "walk). The deep page's seek condition is an OR of comparisons, which SQLite does not turn into "
        "an index range: `wanted_backlog` is walked from its start to the cursor "
        f"({statement('deep', page_query)['ms']:.2f} ms for page {r['deep_page']} against "
        f"{statement('default', page_query)['ms']:.2f} ms for the first), also growing with the depth.",
    ]
    return Section(f"`GET /api/v1/wanted` at {sizes.items:,} items", intro, rows, details)


# --- report --------------------------------------------------------------------------------------


def report(sections: list[Section], quick: bool, load: str, elapsed: float, build_s: float) -> list[str]:
    mode = "`--quick`: smaller sizes" if quick else "full sizes"
    targets = [row for section in sections for row in section.rows if row.met is not None]
    missed = [row.figure for row in targets if not row.met]
    lines = [
        "# Wanted-list benchmark",
        "",
        f"Produced by `tools/bench/watchlist.py` ({mode}) on {time.strftime('%Y-%m-%d', time.gmtime())}: "
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {apsw.sqlite_lib_version()}, Harmony {__version__}; load average {load} at the start (the "
        "host is shared: latencies move by a few ms between runs). Harmony's real code against the fake "
        f"Spotify (`harmony.fakes.start_fakes`) in a process of its own; the fake world took {build_s:.1f} s "
        f"to build; the whole run {elapsed:.0f} s.",
        "",
        f"Targets: {len(targets) - len(missed)} of {len(targets)} met"
        + (f"; not met: {'; '.join(missed)}." if missed else "."),
        "",
    ]
    for n, section in enumerate(sections, 1):
        lines += [f"## {n}. {section.title}", "", *section.intro, ""]
        lines += [
            "| figure | measured | target | |",
            "|---|---|---|---|",
            *(row.cells() for row in section.rows),
        ]
        lines += ["", *section.details, ""]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: well under a minute")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench" / "watchlist.md"))
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--fakes", nargs=2, type=int, metavar=("ARTISTS", "PLAYLIST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child)
        return
    if args.fakes:
        serve_fakes(*args.fakes)
        return

    sizes = Sizes.pick(args.quick)
    with open("/proc/loadavg", encoding="ascii") as handle:
        load = " ".join(handle.read().split()[:3])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="harmony-bench-") as directory, fake_world(sizes) as world:
        print(f"fake world: {world['catalogue']} in {world['build_s']:.1f} s", flush=True)
        sections = []
        for section in (artists, playlist):
            sections.append(section(world, sizes, directory))
            print(f"{sections[-1].title}: {[(r.figure, r.value) for r in sections[-1].rows[:3]]}", flush=True)
        sections.append(wanted_api(sizes, directory))
        print(f"{sections[-1].title}: {[(r.figure, r.value) for r in sections[-1].rows]}", flush=True)
    lines = report(sections, args.quick, load, time.perf_counter() - started, world["build_s"])
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
