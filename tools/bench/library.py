"""Benchmark of the library index: cold scan, unchanged rescan, memory, `GET /api/v1/library/tracks`.

Run: .venv/bin/python tools/bench/library.py [--quick] [--out reports/bench/library.md]

Everything runs Harmony's own code: `opened` builds the context, `ctx.library.start()` records a
scan and `ctx.workers.run_one()` runs its `library.scan` jobs one chunk after another, as the
worker pool does; the API is the WSGI app from `make_app`, called in process with an admin key.
Each measured part runs in a fresh child process (this script with `--child`), so its peak RSS
(VmHWM) is its own.

The generated library: artists with five albums of ten tracks each, laid out as
`Artist/Year - Album/NN Title.ext`, four files in five FLAC and one MP3, every file a tiny but
valid stream written by `harmony.fakes.audio.render` with title, artist, album, album artist,
track number and ISRC tags (a few kilobytes each: the headers declare minutes of audio). The
files were just written, so the page cache is warm: these are the CPU costs of a scan, not the
seeks of a cold disk (see the notes in the report).

Sections, one function each, in report order:

1. `cold`: the first scan of 20,000 files into an empty index (files per second, target at least
   200), with its CPU time and peak RSS, then an unchanged rescan of the same tree.
2. `rescan`: unchanged rescans of 100,000 and 250,000 files (their rows written straight from the
   generated tags and `os.stat`, since only size and mtime are compared), timed (target: 250,000
   under 30 s; with `--quick`, 10,000 files extrapolated to 250,000).
3. `api`: 250,000 rows written through `library.record`, then `GET /api/v1/library/tracks` for the
   first page, a deep page, searches (a rare word, a common word, no match) and filters, and the
   albums and artists lists: p50 and p95 (target p95 under 50 ms).
4. `import_album`: the import of a 12-track FLAC album of full-size files (verify, tag with the
   Spotify metadata and a 100 KB cover, move, index), its downloads on the library's filesystem
   and, where /dev/shm is a separate filesystem, on another one (the move is then a copy).

With `--quick` the sizes shrink (2,000 files, a 10,000-file rescan, 25,000 rows, 50 requests a
case) and it runs in well under a minute; the full run takes about five minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import apsw  # noqa: E402
from client import Client  # noqa: E402
from harness import Row  # noqa: E402

from harmony import __version__, auth, config, importer, library, wanted  # noqa: E402
from harmony import log as logsetup  # noqa: E402
from harmony.context import Context, opened  # noqa: E402
from harmony.fakes.audio import render  # noqa: E402
from harmony.tags import AudioInfo, Tags  # noqa: E402
from harmony.web import make_app  # noqa: E402
from harmony.web_base import encode_cursor  # noqa: E402

TARGET_FILES_PER_S = 200.0
TARGET_RESCAN_S = 30.0
RESCAN_TARGET_FILES = 250_000
TARGET_P95_MS = 50.0
SEED = 20261201
TRACKS_PER_ALBUM = 10
ALBUMS_PER_ARTIST = 5
ALBUM_TRACKS = 12
TRACK_SECONDS = 240
FLAC_KBPS = 880  # what a 16-bit CD rip averages: the files are full-size

_WORDS = (
    "Amber", "Winter", "Glass", "Harbour", "Paper", "Static", "Velvet", "Hollow", "Cinder", "Orbit",
    "Meadow", "Copper", "Lantern", "Saltwater", "Tundra", "Ivory", "Pulse", "Signal", "Drift", "Ember",
    "Marble", "Nocturne", "Quartz", "Ribbon", "Solstice", "Thistle", "Undertow", "Willow", "Zephyr", "Basalt",
)  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    cold: int
    rescan: tuple[int, ...]
    rows: int
    requests: int

    @classmethod
    def pick(cls, quick: bool) -> Sizes:
        return cls(2_000, (10_000,), 25_000, 50) if quick else cls(20_000, (100_000, 250_000), 250_000, 300)


@dataclass
class Section:
    title: str
    intro: list[str]
    rows: list[Row]
    details: list[str] = field(default_factory=list)


# --- the generated library -----------------------------------------------------------------------


@dataclass(frozen=True)
class Song:
    path: str
    fmt: str
    seconds: float
    tags: dict[str, str]


def songs(count: int, seed: int = SEED) -> Iterator[Song]:
    """`count` files of a made-up library, the same for the same seed."""
    rng = random.Random(seed)
    per_artist = TRACKS_PER_ALBUM * ALBUMS_PER_ARTIST
    for n in range(count):
        artist_no, rest = divmod(n, per_artist)
        album_no, track_no = divmod(rest, TRACKS_PER_ALBUM)
        artist = f"{_WORDS[artist_no % 30]} {_WORDS[(artist_no // 30) % 30]} {artist_no:05d}"
        album = f"{_WORDS[(artist_no + album_no) % 30]} {_WORDS[(artist_no * 7 + album_no) % 30]}"
        year = 1995 + (artist_no + album_no) % 30
        title = f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}"
        fmt = "mp3" if n % 5 == 4 else "flac"
        tags = {
            "title": title,
            "artist": artist,
            "album": album,
            "albumartist": artist,
            "tracknumber": str(track_no + 1),
            "isrc": f"QZBN{year % 100:02d}{n:07d}",
        }
        path = f"{artist}/{year} - {album}/{track_no + 1:02d} {title}.{fmt}"
        yield Song(path, fmt, float(rng.randint(95, 420)), tags)


def write_tree(root: str, count: int) -> float:
    """Write `count` generated files under `root`; returns the seconds it took."""
    started = time.perf_counter()
    made: set[str] = set()
    for song in songs(count):
        folder = os.path.dirname(song.path)
        if folder not in made:
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            made.add(folder)
        with open(os.path.join(root, song.path), "wb") as handle:
            handle.write(render(song.fmt, song.seconds, bitrate=320, tags=song.tags))
    return time.perf_counter() - started


def tree_bytes(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


def entry_of(song: Song, size: int, mtime: float) -> library.Entry:
    """The index entry a scan would make of `song`, without reading it."""
    tags = Tags(
        title=song.tags["title"],
        artists=(song.tags["artist"],),
        album=song.tags["album"],
        album_artist=song.tags["albumartist"],
        track_number=int(song.tags["tracknumber"]),
        isrc=song.tags["isrc"],
    )
    if song.fmt == "mp3":
        info = AudioInfo("mp3", "mp3", song.seconds, 320, 44100, 2, None)
    else:
        info = AudioInfo("flac", "flac", song.seconds, 0, 44100, 2, 16)
    return library.Entry.of(song.path, tags, info, size, mtime)


# --- helpers for the children --------------------------------------------------------------------


def run_child(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run `name` in a fresh process (this script with `--child`); its result is stdout's last line."""
    argv = [sys.executable, __file__, "--child", name]
    done = subprocess.run(argv, input=json.dumps(spec), capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_config(data_dir: str, **extra: str) -> config.Config:
    values = {"data.dir": data_dir, "log.format": "text", "log.level": "warning"}
    values.update({name.replace("_", ".", 1): value for name, value in extra.items()})
    return config.load(None, {}, values)


def database_bytes(ctx: Context) -> int:
    """The database file and its write-ahead log."""
    path = ctx.config.database_path
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def vm_mb(name: str) -> float:
    """VmRSS, VmHWM, ... of this process from /proc/self/status, in MB."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key == name:
                return float(rest.split()[0]) / 1024
    raise KeyError(name)


def timed_scan(ctx: Context) -> dict[str, Any]:
    """Start a scan and run its chunks to the end: wall and CPU seconds, chunks, the scan's row."""
    cpu, wall = time.process_time(), time.perf_counter()
    ctx.library.start()
    chunks = 0
    while ctx.workers.run_one() is not None:
        chunks += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    status = ctx.library.status()
    if status["state"] != "done":
        raise RuntimeError(f"the scan ended {status['state']}: {status['error']}")
    return {"wall_s": wall, "cpu_s": cpu, "chunks": chunks, "status": status}


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


def statements(ctx: Context, client: Client, url: str) -> list[dict[str, Any]]:
    """The SELECTs one request runs (traced), each with its query plan."""
    conn = ctx.db.conn()
    seen: dict[str, Any] = {}

    def trace(cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        if sql.lstrip().upper().startswith("SELECT") and "api_keys" not in sql and "sessions" not in sql:
            seen.setdefault(sql, bindings or ())
        return True

    conn.exec_trace = trace
    try:
        client.get(url)
    finally:
        conn.exec_trace = None
    out = []
    for sql, bindings in seen.items():
        plan = [row["detail"] for row in ctx.db.query("EXPLAIN QUERY PLAN " + sql, bindings)]
        out.append({"sql": " ".join(sql.split()), "plan": plan})
    return out


# --- children: each runs in its own process ------------------------------------------------------


def child_cold(spec: dict[str, Any]) -> dict[str, Any]:
    """The first scan of the tree at spec["root"] into an empty index, then an unchanged rescan."""
    with opened(bench_config(spec["data"], library_dir=spec["root"])) as ctx:
        before = vm_mb("VmRSS")
        first = timed_scan(ctx)
        hwm = vm_mb("VmHWM")
        again = timed_scan(ctx)
        database = database_bytes(ctx)
        return {"rss_before_mb": before, "hwm_mb": hwm, "hwm_after_rescan_mb": vm_mb("VmHWM"),
                "first": first, "again": again, "database_bytes": database}  # fmt: skip


def child_rescan(spec: dict[str, Any]) -> dict[str, Any]:
    """Rows for the tree at spec["root"] written straight from the generated tags and `os.stat`,
    then an unchanged rescan, timed."""
    with opened(bench_config(spec["data"], library_dir=spec["root"])) as ctx:
        started = time.perf_counter()
        batch: list[library.Entry] = []
        for song in songs(spec["files"]):
            st = os.stat(os.path.join(spec["root"], song.path))
            batch.append(entry_of(song, st.st_size, st.st_mtime))
            if len(batch) == 1000:
                with ctx.db.write() as conn:
                    for entry in batch:
                        library.record(conn, entry, time.time())
                batch = []
        with ctx.db.write() as conn:
            for entry in batch:
                library.record(conn, entry, time.time())
        fill = time.perf_counter() - started
        before = vm_mb("VmRSS")
        result = timed_scan(ctx)
        return {"fill_s": fill, "rss_before_mb": before, "hwm_mb": vm_mb("VmHWM"), "scan": result}


def child_api(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec["rows"]` rows through `library.record`, then the API cases, timed."""
    with opened(bench_config(spec["data"])) as ctx:
        started = time.perf_counter()
        batch: list[library.Entry] = []
        for song in songs(spec["rows"]):
            batch.append(entry_of(song, 4096, 1.0))
            if len(batch) == 1000:
                with ctx.db.write() as conn:
                    for entry in batch:
                        library.record(conn, entry, 1.0)
                batch = []
        with ctx.db.write() as conn:
            for entry in batch:
                library.record(conn, entry, 1.0)
        fill = time.perf_counter() - started
        client = Client(make_app(ctx), auth.create_key(ctx.db, "bench", "admin")[0])
        # The page that starts three fifths of the way down, by the cursor the page before it gives
        # (a cursor is the last path of a page, in the same opaque form).
        middle = sorted(s.path for s in songs(spec["rows"]))[int(spec["rows"] * 0.6)]
        deep = "/api/v1/library/tracks?" + urlencode({"cursor": encode_cursor([middle])})
        artist = next(songs(1, SEED)).tags["artist"]
        rare = f"{spec['rows'] // 2 // 50:05d}"  # one artist's serial: 50 tracks match
        cases = {
            "first": "/api/v1/library/tracks",
            "deep": deep,
            "q_rare": "/api/v1/library/tracks?" + urlencode({"q": rare}),
            "q_common": "/api/v1/library/tracks?" + urlencode({"q": "harbour"}),
            "q_none": "/api/v1/library/tracks?" + urlencode({"q": "no such words"}),
            "artist": "/api/v1/library/tracks?" + urlencode({"artist": artist}),
            "albums": "/api/v1/library/albums",
            "artists": "/api/v1/library/artists",
            "artists_q": "/api/v1/library/artists?" + urlencode({"q": "glass"}),
        }
        with open(os.path.join(spec["data"], "requests.log"), "w", encoding="utf-8") as sink:
            logsetup.configure("info", "json", sink)
            timings = {name: latency(client, url, spec["requests"]) for name, url in cases.items()}
            logsetup.configure("warning", "text")
        plans = {name: statements(ctx, client, url) for name, url in cases.items()}
        database = database_bytes(ctx)
        return {"fill_s": fill, "cases": timings, "plans": plans, "database_bytes": database,
                "hwm_mb": vm_mb("VmHWM")}  # fmt: skip


def child_import(spec: dict[str, Any]) -> dict[str, Any]:
    """Twelve wanted tracks of one album, each with a finished transfer whose full-size FLAC lies
    in spec["downloads"]; the `import` jobs run one after another, as the worker pool runs them."""
    cover = bytes.fromhex("ffd8ffe0") + random.Random(SEED).randbytes(100_000)
    with opened(
        bench_config(spec["data"], library_dir=spec["library"], slskd_downloads_dir=spec["downloads"])
    ) as ctx:
        ctx.importer.cover = lambda url: cover  # Spotify's image host is not asked here
        now = time.time()
        for n in range(1, ALBUM_TRACKS + 1):
            track = wanted.Track(
                title=f"Track {n} of the Bench", artists=("Bench Artist",), album="Bench Album",
                album_artist="Bench Artist", track_number=n, track_total=ALBUM_TRACKS, disc_number=1,
                disc_total=1, duration_ms=TRACK_SECONDS * 1000, release_date="2024-05-01",
                isrc=f"QZBEN24{n:05d}", spotify_id=f"{n:022d}", spotify_album_id="a" * 22,
                cover_url="https://i.scdn.co/image/bench",
            )  # fmt: skip
            name = f"{n:02d} - Track {n}.flac"
            path = os.path.join(spec["downloads"], "Bench Album", name)
            size = os.path.getsize(path)
            with ctx.db.write() as conn:
                item, _ = wanted.want(conn, track, wanted.Source("manual"))
                for state in ("searching", "found", "queued", "downloading", "downloaded"):
                    wanted.transition(conn, item.id, state, "bench", "bench")
                row = next(
                    conn.execute(SQL_TRANSFER, (item.id, f"@@b\\Bench Album\\{name}", size, now, now, path))
                )
            ctx.queue.enqueue(importer.JOB, {"transfer_id": row["id"]})
        cpu, wall = time.process_time(), time.perf_counter()
        while ctx.workers.run_one() is not None:
            pass
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        done = ctx.db.scalar("SELECT count(*) FROM wanted_items WHERE state = 'done'")
        if done != ALBUM_TRACKS:
            states = ctx.db.query("SELECT state, reason FROM wanted_items")
            raise RuntimeError(f"{done} of {ALBUM_TRACKS} imported: {states}")
        return {"wall_s": wall, "cpu_s": cpu, "hwm_mb": vm_mb("VmHWM")}


SQL_TRANSFER = """
    INSERT INTO transfers (item_id, username, filename, size, state, requested_at, finished_at,
        outcome, local_path)
    VALUES (?, 'bench', ?, ?, 'succeeded', ?, ?, 'succeeded', ?)
    RETURNING id
"""


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "cold": child_cold,
    "rescan": child_rescan,
    "api": child_api,
    "import": child_import,
}


def child_main(name: str) -> None:
    spec = json.load(sys.stdin)
    logsetup.configure("warning", "text")
    print(json.dumps(CHILDREN[name](spec), default=str))


# --- sections ------------------------------------------------------------------------------------


def cold(sizes: Sizes, directory: str) -> Section:
    """Section 1: the first scan of N files, and an unchanged rescan of them."""
    root = os.path.join(directory, "cold-library")
    made = write_tree(root, sizes.cold)
    size = tree_bytes(root)
    r = run_child("cold", {"root": root, "data": os.path.join(directory, "cold-data")})
    first, again = r["first"], r["again"]
    rate = first["status"]["files"] / first["wall_s"]
    rows = [
        Row(
            f"Cold scan of {sizes.cold:,} files: files per second",
            f"**{rate:,.0f} files/s** ({first['wall_s']:.1f} s wall, {first['cpu_s']:.1f} s CPU, "
            f"{first['chunks']} chunks)",
            f"≥ {TARGET_FILES_PER_S:.0f} files/s",
            rate >= TARGET_FILES_PER_S,
        ),
        Row(
            "Peak RSS of the process during the scan",
            f"**{r['hwm_mb']:.0f} MB** ({r['rss_before_mb']:.0f} MB before it began)",
        ),
        Row(
            f"Unchanged rescan of the same {sizes.cold:,} files",
            f"{again['wall_s']:.2f} s ({again['status']['files'] / again['wall_s']:,.0f} files/s, "
            f"{again['cpu_s']:.2f} s CPU)",
        ),
    ]
    counts = {k: first["status"][k] for k in ("added", "changed", "unchanged", "moved", "removed", "errors")}
    recounts = {
        k: again["status"][k] for k in ("added", "changed", "unchanged", "moved", "removed", "errors")
    }
    intro = [
        f"{sizes.cold:,} generated files ({size / 2**20:.0f} MiB; written in {made:.1f} s) under "
        f"{sizes.cold // (TRACKS_PER_ALBUM * ALBUMS_PER_ARTIST):,} artist folders, scanned into an empty "
        "index with the defaults: chunks of 1,000 files, each one `library.scan` job committing its rows "
        "and checkpoint with the next chunk's job. Every file is read twice by mutagen "
        "(`tags.read_tags` without the cover, then `tags.audio_info`).",
    ]
    details = [
        f"The first scan's counters: {counts}. The rescan's: {recounts} (no file opened: the "
        "size and mtime match the index). Peak RSS after the rescan "
        f"{r['hwm_after_rescan_mb']:.0f} MB; database {r['database_bytes'] / 2**20:.1f} MiB.",
        "",
        "Reading it: the scan's memory does not grow with the library: a chunk holds at most 1,000 "
        "entries, and the walk lists one folder at a time. The page cache was warm (the files had "
        "just been written); on a spinning disk or a network share the first scan waits on reads, "
        "two small ones per file (mutagen reads the head of the file, then seeks to the end of the "
        "tags and the first frame).",
    ]
    return Section(f"Cold scan of {sizes.cold:,} files", intro, rows, details)


def rescan(sizes: Sizes, directory: str) -> Section:
    """Section 2: unchanged rescans at each size, and 250,000 measured or extrapolated."""
    results = []
    for count in sizes.rescan:
        root = os.path.join(directory, f"rescan-{count}")
        made = write_tree(root, count)
        spec = {"root": root, "data": os.path.join(directory, f"rescan-data-{count}"), "files": count}
        results.append((count, made, run_child("rescan", spec)))
        shutil.rmtree(root, ignore_errors=True)
    rows, intro = [], []
    for count, made, r in results:
        scan, status = r["scan"], r["scan"]["status"]
        rows.append(
            Row(
                f"Unchanged rescan of {count:,} files (measured)",
                f"**{scan['wall_s']:.1f} s** ({status['files'] / scan['wall_s']:,.0f} files/s, "
                f"{scan['cpu_s']:.1f} s CPU, {scan['chunks']} chunks; peak RSS {r['hwm_mb']:.0f} MB, "
                f"{r['rss_before_mb']:.0f} MB before)",
                f"< {TARGET_RESCAN_S:.0f} s" if count == RESCAN_TARGET_FILES else "no target",
                scan["wall_s"] < TARGET_RESCAN_S if count == RESCAN_TARGET_FILES else None,
            )
        )
        intro.append(
            f"{count:,} generated files (written in {made:.0f} s), their rows written straight from the "
            f"generated tags and `os.stat` in {r['fill_s']:.0f} s; the rescan found {status['unchanged']:,} "
            f"unchanged, {status['errors']} errors, {status['added']} added, {status['removed']} removed."
        )
    if RESCAN_TARGET_FILES not in sizes.rescan:
        count, _, r = results[-1]
        projected = r["scan"]["wall_s"] / count * RESCAN_TARGET_FILES
        rows.append(
            Row(
                f"Unchanged rescan of {RESCAN_TARGET_FILES:,} files (extrapolated linearly from {count:,})",
                f"**{projected:.1f} s**",
                f"< {TARGET_RESCAN_S:.0f} s",
                projected < TARGET_RESCAN_S,
            )
        )
    else:
        count, _, r = next(x for x in results if x[0] != RESCAN_TARGET_FILES)
        projected = r["scan"]["wall_s"] / count * RESCAN_TARGET_FILES
        intro.append(
            f"Extrapolated linearly from the {count:,}-file rescan, 250,000 files would take "
            f"{projected:.1f} s; the measured figure above is the one that counts."
        )
    intro = [
        "A rescan compares only path, size and mtime, so the index is filled directly with the rows a "
        "scan would have written (a cold scan first would only cost time):",
        "",
        *(f"- {line}" for line in intro),
    ]
    details = [
        "Reading it: no file was opened. An unchanged file costs one `lstat` (through the folder "
        "listing's entry), a dictionary lookup against the chunk's rows (one range query on the path "
        "index per chunk) and no write; each chunk's transaction writes only the scan's row and the "
        "next job. It grows linearly with the files. With a cold cache (after a reboot, on a NAS) each "
        "folder listing and `lstat` may wait on the disk instead.",
    ]
    sizes_text = " and ".join(f"{n:,}" for n in sizes.rescan)
    return Section(f"Unchanged rescan: {sizes_text} files", intro, rows, details)


def api(sizes: Sizes, directory: str) -> Section:
    """Section 3: the library API at N indexed tracks."""
    r = run_child(
        "api", {"rows": sizes.rows, "requests": sizes.requests, "data": os.path.join(directory, "api")}
    )
    labels = {
        "first": ("tracks, first page", True),
        "deep": ("tracks, a page three fifths down (cursor)", True),
        "q_rare": ("tracks, `q` matching one artist's 50 tracks", True),
        "q_common": ("tracks, `q=harbour` (a word in about one title in eight)", True),
        "q_none": ("tracks, `q` matching nothing", True),
        "artist": ("tracks, `artist=` one album artist", True),
        "albums": ("albums, first page", False),
        "artists": ("artists, first page", False),
        "artists_q": ("artists, `q=glass`", False),
    }
    rows = []
    for name, case in r["cases"].items():
        label, targeted = labels[name]
        rows.append(
            Row(
                f"{label}: p95 (p50)",
                f"**{case['p95']:.2f} ms** ({case['p50']:.2f} ms; p99 {case['p99']:.2f}; "
                f"{case['items']} items)",
                f"p95 < {TARGET_P95_MS:.0f} ms" if targeted else "no target",
                case["p95"] < TARGET_P95_MS if targeted else None,
            )
        )
    intro = [
        f"{sizes.rows:,} rows written through `library.record` ({r['fill_s']:.1f} s; database "
        f"{r['database_bytes'] / 2**20:.0f} MiB), laid out as the generated library. Each case is "
        f"{sizes.requests} requests (after 20 unrecorded) through the app from `make_app` with an admin "
        "key, in process, the request log written to a file as a served request's is. No server, socket "
        "or HTTP parsing: add about 1 ms for those (see `reports/bench/service.md`).",
    ]
    details = [
        "The statements each case runs and their plans:",
        "",
        "| case | statement | plan |",
        "|---|---|---|",
    ]
    for name, found in r["plans"].items():
        for s in found:
            sql = s["sql"] if len(s["sql"]) <= 150 else s["sql"][:147] + "..."
            details.append(f"| {name} | `{sql}` | {'; '.join(s['plan'])} |")
    details += [
        "",
        "Reading it: a page without `q` is one walk of an index in the page's order, stopped by LIMIT "
        "(the path index for tracks, `library_album` for albums and artists), so depth costs nothing. "
        "A search first asks the trigram index `library_fts` (over the folded album artist, album, "
        "artists and title) for up to 2,000 matching ids: a rare word finds its few rows at once and "
        "sorts them, a word matching nothing costs nothing, and a common word stops at 2,000 and the "
        "page walks the path order instead, where matches are dense. The artists and albums searches "
        "must test where in the text the word falls (the album artist or album, not a title), so "
        "every row holding the word's trigrams is read: a common word (`glass` is in one artist name "
        "in fifteen and in many titles) costs tens of milliseconds at this size.",
    ]
    return Section(f"The library API at {sizes.rows:,} tracks", intro, rows, details)


def write_album(folder: str) -> int:
    """Twelve full-size FLAC files (a real header, then random bytes: nothing sparse, nothing
    compressible), as slskd leaves an album; returns their bytes."""
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(SEED)
    total = 0
    for n in range(1, ALBUM_TRACKS + 1):
        head = render("flac", TRACK_SECONDS, tags={"title": f"peer title {n}", "artist": "someone"})
        size = len(head) + TRACK_SECONDS * FLAC_KBPS * 125
        with open(os.path.join(folder, f"{n:02d} - Track {n}.flac"), "wb") as handle:
            handle.write(head)
            handle.write(rng.randbytes(size - len(head)))
        total += size
    return total


def import_album(sizes: Sizes, directory: str) -> Section:
    """Section 4: a 12-track FLAC album imported, on one filesystem and across two."""
    places = [("same filesystem (a link and an unlink)", directory)]
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat(directory).st_dev:
        places.append(("across filesystems (a copy, fsynced)", "/dev/shm"))
    rows, details = [], []
    for label, where in places:
        base = tempfile.mkdtemp(prefix="harmony-bench-import-", dir=where)
        try:
            total = write_album(os.path.join(base, "downloads", "Bench Album"))
            spec = {"data": os.path.join(directory, "import-data-" + str(len(rows))),
                    "library": os.path.join(directory, "import-library-" + str(len(rows))),
                    "downloads": os.path.join(base, "downloads")}  # fmt: skip
            r = run_child("import", spec)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        rows.append(
            Row(
                f"Import of a {ALBUM_TRACKS}-track FLAC album, {label}",
                f"**{r['wall_s']:.2f} s** ({r['wall_s'] / ALBUM_TRACKS * 1000:.0f} ms a track, "
                f"{total / 2**20 / r['wall_s']:,.0f} MiB/s, {r['cpu_s']:.2f} s CPU, "
                f"peak RSS {r['hwm_mb']:.0f} MB)",
            )
        )
    intro = [
        f"{ALBUM_TRACKS} wanted tracks, each with a finished transfer whose file lies in the download "
        f"folder: {TRACK_SECONDS} s of 16-bit FLAC at {FLAC_KBPS} kbps (about "
        f"{TRACK_SECONDS * FLAC_KBPS * 125 / 2**20:.0f} MiB, incompressible), with a peer's tags. Each "
        "`import` job verifies the file (size, stream, length, bitrate), checks the index for other "
        "copies, rewrites the tags from the Spotify metadata with a 100 KB cover (the peer's tags are "
        "replaced, so the file's head is rewritten), moves it under the library template, writes "
        "`cover.jpg` once and records the index row, each step durable (fsync) before the next.",
    ]
    if len(places) == 1:
        details.append("/dev/shm is not a separate filesystem here: the copying move was not measured.")
    return Section(f"Import of a {ALBUM_TRACKS}-track FLAC album", intro, rows, details)


# --- report --------------------------------------------------------------------------------------


def report(sections: list[Section], quick: bool, load: str, elapsed: float) -> list[str]:
    mode = "`--quick`: smaller sizes" if quick else "full sizes"
    targets = [row for section in sections for row in section.rows if row.met is not None]
    missed = [row.figure for row in targets if not row.met]
    lines = [
        "# Library benchmark",
        "",
        f"Produced by `tools/bench/library.py` ({mode}) on {time.strftime('%Y-%m-%d', time.gmtime())}: "
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {apsw.sqlite_lib_version()}, Harmony {__version__}; load average {load} at the start (the "
        "host is shared: figures move between runs). Each part ran in a process of its own; the whole "
        f"run took {elapsed:.0f} s.",
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
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench" / "library.md"))
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child)
        return
    sizes = Sizes.pick(args.quick)
    with open("/proc/loadavg", encoding="ascii") as handle:
        load = " ".join(handle.read().split()[:3])
    started = time.perf_counter()
    sections = []
    with tempfile.TemporaryDirectory(prefix="harmony-bench-library-") as directory:
        for section in (cold, rescan, api, import_album):
            sections.append(section(sizes, directory))
            print(f"{sections[-1].title}: {[(r.figure, r.value) for r in sections[-1].rows[:3]]}", flush=True)
            for leftover in os.listdir(directory):  # the next part needs the disk more than this one
                shutil.rmtree(os.path.join(directory, leftover), ignore_errors=True)
    lines = report(sections, args.quick, load, time.perf_counter() - started)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
