"""The pipeline under fire: Harmony as a real process against the fakes, faults, kill -9, then checks.

Run: .venv/bin/python tools/chaos.py [--items 500] [--kills 20] [--seed 1] [--out reports/chaos.md]

What it does, in order:

1. Starts the fake Spotify and slskd in this process, on one fake clock that a thread moves on
   `--clock-rate` seconds per second (Harmony itself runs on the host's clock: only the fakes'
   searches, transfers, queues and tokens go faster).
2. Chooses `--items` recordings from the fakes' catalogue, by whole albums (and single tracks to
   make the count exact): mostly releases peers share, among them releases with trap files (live,
   remix, cover, cut versions) and releases the stalling peer shares, the singles the damaging
   peers serve corrupt or truncated, and a few releases nobody shares. Wants them through
   `POST /api/v1/wanted` while everything below goes on.
3. Runs `python -m harmony serve` on one data directory and kills it with SIGKILL at random
   moments, `--kills` times, restarting it each time (after a random pause). A process that exits
   without being killed is a crash.
4. Injects faults on a seeded schedule: slskd down for minutes (its server stopped; all of its API
   answering 503; every connection dropped), 5xx and 429 bursts from both fakes, slow answers,
   peers vanishing (behaviour `offline`) and peers stalling (behaviour `stalls`), the library's
   disk full, and slskd's download directory read-only to Harmony.
5. When the kills and faults are over, waits for every item to come to rest, then checks the
   invariants below against Harmony's API, the disk and the fakes' own records, stops Harmony with
   SIGTERM, and writes the report (`--out`). Exit status 0 only when every invariant holds.

Invariants (each a section of the report, with every violation listed):

- every item is `done`, `failed`, `skipped` or `not_found` (with its next action), with a reason;
- no recording wanted was lost and none is held by two items: the wanted tracks, grouped as
  Harmony's identity rule groups them (Spotify id, ISRC, normalised artist and title within 3 s),
  against the items by Spotify id and ISRC;
- the library holds exactly one file per `done` item, the library index and a walk of the folder
  agree, and each file is complete (mutagen reads it; its size and length are the download's) and
  tagged with its item's Spotify track id;
- nothing was written outside the library root: the data directory holds only the database and
  its lock, the quarantine only files its records name, slskd's download directory only files the
  fake slskd wrote (untouched by Harmony), and Harmony's working and temporary directories nothing;
- no job is left leased after its lease ran out (`GET /api/v1/jobs?state=running`);
- the search budget was never exceeded: the fake slskd's own record of search creations
  (`GET /_fake/slskd/search-log`, on the host's clock, which Harmony's budget counts on) holds at
  most `search.budget` searches in any window (t - `search.window`, t];
- every Harmony process became live, none died unkilled, and the last one stopped cleanly.

The disk: with the right to mount (root, as in CI), a tmpfs holds slskd's download directory, the
library and the quarantine (one filesystem, as they must be for imports to be renames; the fakes'
files are sparse, so it costs little memory), and Harmony sees it through a bind mount, so its
view of the download directory alone can be made read-only (EROFS) while the fake slskd still
writes. The full disk shrinks the tmpfs to what it holds (ENOSPC for the library, the quarantine
and slskd's finished files alike: the fake slskd then answers 500 until it can write). Without
the right to mount, both become `chmod a-w` of Harmony's folders (EACCES), which the report says.

Harmony runs with short timings (`--transfers-poll-interval 1s --search-timeout 5s`,
`--transfers-item-ceiling 5m`) and a search budget of `--budget` per `--window` (20 per 30 s, more
than the default 34 per 220 s, so that 500 items fit in a quarter of an hour; it is enforced all
the same and checked). `main(argv)` returns the exit status; `tests/test_chaos.py` runs the short
version (50 items, 5 kills).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import dataclasses
import functools
import heapq
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harmony import backups, config, tags, wanted
from harmony.fakes import Fakes, start_fakes
from harmony.fakes.catalogue import Album, Catalogue, Track
from harmony.fakes.peers import DAMAGED_ARTISTS

TERMINAL = ("done", "failed", "skipped", "not_found")
AUDIO = (".flac", ".mp3", ".m4a", ".ogg", ".opus")
DATA_FILES = {"harmony.sqlite3", "harmony.sqlite3-wal", "harmony.sqlite3-shm", "harmony.lock", "admin-key"}
TMPFS_SIZE = "8g"  # a ceiling, not memory: the files are sparse
LEASE_GRACE_S = 30.0  # the keeper returns expired leases every lease/3 (20 s by default)
SIZE_SLACK = 256 * 1024  # tags and a cover written into a file change its size by a few KiB


# --- options ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=500, help="recordings wanted (default 500)")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs, at least (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice (default 1)")
    parser.add_argument("--out", default="reports/chaos.md", help="the report (default reports/chaos.md)")
    parser.add_argument("--workdir", help="where the run's files go (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder afterwards")
    parser.add_argument("--budget", type=int, default=20, help="search.budget (default 20)")
    parser.add_argument("--window", type=float, default=30.0, help="search.window in seconds (default 30)")
    parser.add_argument("--clock-rate", type=float, default=20.0, help="fake seconds per second (default 20)")
    parser.add_argument(
        "--time-limit", type=float, help="seconds before the run stops waiting (default: from --items)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    if args.items < 10 or args.kills < 0:
        parser.error("--items must be at least 10 and --kills not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chaos test; 0 when every invariant held, 1 otherwise."""
    args = parse_args(argv)
    run = Chaos(args)
    try:
        results = run.run()
    finally:
        run.close()
    report = render(run, results)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(report)
    failed = [check.name for check in results if not check.ok]
    run.say(f"report written to {args.out}; " + (f"FAILED: {', '.join(failed)}" if failed else "all held"))
    return 1 if failed else 0


# --- the disk -------------------------------------------------------------------------------------


class Disk:
    """Where slskd's downloads, the library and the quarantine live, and the two disk faults.

    `downloads` is where the fake slskd writes; `view` is the same folder as Harmony is told to
    see it, and `library` and `quarantine` sit beside it on the same filesystem."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.disk = os.path.join(root, "disk")  # the tmpfs (or a plain folder)
        self.view_root = os.path.join(root, "view")  # Harmony's bind mount of it
        os.makedirs(self.disk)
        os.makedirs(self.view_root)
        self.mounted: list[str] = []
        self.mounts = self._mount()
        for part in ("downloads", "library", "quarantine"):
            os.makedirs(os.path.join(self.disk, part), exist_ok=True)
        self.overlays: dict[str, str] = {}  # part -> path of its read-only bind mount
        self.locked: dict[str, list[tuple[str, int]]] = {}  # chmod fallback: part -> (path, old mode)

    def _mount(self) -> bool:
        try:
            run_quietly("mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "tmpfs", self.disk)
        except (OSError, subprocess.CalledProcessError):
            os.rmdir(self.view_root)
            os.symlink(self.disk, self.view_root)  # no mounts: Harmony sees the folders themselves
            return False
        self.mounted.append(self.disk)
        run_quietly("mount", "--bind", self.disk, self.view_root)
        self.mounted.append(self.view_root)
        return True

    @property
    def downloads(self) -> str:
        return os.path.join(self.disk, "downloads")

    def view(self, part: str) -> str:
        return os.path.join(self.view_root, part)

    def real(self, part: str) -> str:
        return os.path.join(self.disk, part)

    # -- faults --

    def fill(self) -> str:
        """The disk is full: the tmpfs shrinks to what it holds (chmod fallback: the library
        and the quarantine lose their write permission). Returns what was done."""
        if not self.mounts:
            self._lock("library")
            self._lock("quarantine")
            return "chmod a-w on the library and the quarantine (no right to mount a tmpfs)"
        stat = os.statvfs(self.disk)
        used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
        run_quietly("mount", "-o", f"remount,size={max(used, 4096)}", self.disk)
        return f"tmpfs shrunk to the {used // 1024} KiB it holds: ENOSPC"

    def unfill(self) -> None:
        if not self.mounts:
            self._unlock("library")
            self._unlock("quarantine")
            return
        run_quietly("mount", "-o", f"remount,size={TMPFS_SIZE}", self.disk)

    def read_only(self, part: str) -> str:
        """Harmony's view of `part` becomes read-only (the fake slskd still writes its own)."""
        if not self.mounts:
            self._lock(part)
            return f"chmod a-w on {part} (no right to mount)"
        path = self.view(part)
        run_quietly("mount", "--bind", path, path)
        run_quietly("mount", "-o", "remount,bind,ro", path)
        self.overlays[part] = path
        return f"{part} bind-mounted read-only in Harmony's view: EROFS"

    def writable(self, part: str) -> None:
        if not self.mounts:
            self._unlock(part)
            return
        path = self.overlays.pop(part, None)
        if path:
            run_quietly("umount", "-l", path)  # lazily: Harmony may hold a file open in it

    def _lock(self, part: str) -> None:
        changed = []
        for folder, _, _ in os.walk(self.real(part)):
            mode = os.stat(folder).st_mode & 0o7777
            os.chmod(folder, mode & ~0o222)
            changed.append((folder, mode))
        self.locked[part] = changed

    def _unlock(self, part: str) -> None:
        for folder, mode in self.locked.pop(part, []):
            with contextlib.suppress(OSError):
                os.chmod(folder, mode)

    def close(self) -> None:
        for part in list(self.overlays):
            with contextlib.suppress(Exception):
                self.writable(part)
        for part in list(self.locked):
            self._unlock(part)
        for path in reversed(self.mounted):
            with contextlib.suppress(Exception):
                run_quietly("umount", "-l", path)
        self.mounted.clear()


def run_quietly(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


# --- Harmony as a process -------------------------------------------------------------------------


class Service:
    """`python -m harmony serve` on one data directory, started, killed and restarted."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, log_path: str, base: str) -> None:
        self.argv, self.env, self.cwd, self.log_path, self.base = argv, env, cwd, log_path, base
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.started_at = 0.0
        self.live_at: float | None = None
        self.crashes: list[dict[str, Any]] = []
        self.never_live: list[int] = []  # starts that were killed (or crashed) before /live answered

    def start(self) -> None:
        self.starts += 1
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            log.write(
                json.dumps({"event": "chaos.start", "run": self.starts, "at": time.time()}).encode() + b"\n"
            )
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "harmony", *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.cwd,
                env=self.env,
            )
        self.started_at, self.live_at = time.time(), None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_live(self) -> bool:
        """Whether /live answers (noting the first time it does)."""
        if self.live_at is None and self.alive():
            try:
                with urllib.request.urlopen(self.base + "/live", timeout=1) as resp:
                    if resp.status == 200:
                        self.live_at = time.time()
            except OSError:
                pass
        return self.live_at is not None

    def exited(self) -> int | None:
        """The exit status of a process that ended on its own (a crash), once; else None."""
        if self.proc is None or self.proc.poll() is None:
            return None
        code = self.proc.returncode
        self.crashes.append({"run": self.starts, "code": code, "after_s": time.time() - self.started_at})
        if self.live_at is None:
            self.never_live.append(self.starts)
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.live_at is None:
            self.never_live.append(self.starts)
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait: the exit status, or None if it had to be killed."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self.proc = None
        return code


class Api:
    """A small JSON client of Harmony's API. Connection failures raise OSError (the process may
    be between a kill and a restart); HTTP errors come back as (status, body)."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key

    def call(self, method: str, path: str, body: Any = None, timeout: float = 15.0) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-API-Key": self.key}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw) if raw else None
            except ValueError:
                return exc.code, raw.decode("utf-8", "replace")

    def pages(self, path: str, **query: Any) -> list[dict[str, Any]]:
        """Every item of a paged list; raises OSError, or RuntimeError on an error status."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {**query, "limit": 500, **({"cursor": cursor} if cursor else {})}
            status, body = self.call("GET", f"{path}?{urllib.parse.urlencode(params)}", timeout=30)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body}")
            items += body["items"]
            cursor = body.get("next_cursor")
            if not cursor:
                return items


def control(url: str, path: str, body: Any = None, method: str = "POST") -> Any:
    """Call a fake's control API (`/_fake/...`), as an outside operator would."""
    data = json.dumps(body if body is not None else {}).encode() if method != "GET" else None
    request = urllib.request.Request(url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- what is wanted -----------------------------------------------------------------------------


@dataclasses.dataclass
class Wants:
    """What the run asks for: artists to watch (whole discographies, album and single groups)
    and refs to post, the tracks they want, and those tracks grouped into recordings as
    Harmony's identity rule groups them (`group[track id]` is a group number)."""

    artists: list[str]  # Spotify artist ids to watch
    refs: list[str]  # album and track refs to want by hand
    tracks: dict[str, Track]
    group: dict[str, int]
    kinds: dict[str, int]  # what the chosen releases are, for the report

    @property
    def groups(self) -> int:
        return len(set(self.group.values()))


class Grouping:
    """Union-find of tracks into recordings: same ISRC, or the same normalised primary artist and
    title with lengths within `wanted.DURATION_TOLERANCE_MS`."""

    def __init__(self, cat: Catalogue) -> None:
        self.cat = cat
        self.parent: dict[str, str] = {}
        self.by_isrc: dict[str, str] = {}
        self.by_identity: dict[str, list[str]] = collections.defaultdict(list)

    def find(self, track_id: str) -> str:
        while self.parent[track_id] != track_id:
            self.parent[track_id] = self.parent[self.parent[track_id]]
            track_id = self.parent[track_id]
        return track_id

    def add(self, track: Track) -> None:
        if track.id in self.parent:
            return
        self.parent[track.id] = track.id
        if track.isrc:
            if track.isrc in self.by_isrc:
                self.parent[self.find(track.id)] = self.find(self.by_isrc[track.isrc])
            else:
                self.by_isrc[track.isrc] = track.id
        key = identity_of(self.cat, track)
        for other in self.by_identity[key]:
            if abs(self.cat.tracks[other].duration_ms - track.duration_ms) <= wanted.DURATION_TOLERANCE_MS:
                self.parent[self.find(track.id)] = self.find(other)
        self.by_identity[key].append(track.id)

    def count_with(self, tracks: list[Track]) -> int:
        """How many recordings there would be with `tracks` added (without adding them)."""
        trial = Grouping(self.cat)
        trial.parent, trial.by_isrc = dict(self.parent), dict(self.by_isrc)
        trial.by_identity = collections.defaultdict(list, {k: list(v) for k, v in self.by_identity.items()})
        for track in tracks:
            trial.add(track)
        return trial.count()

    def count(self) -> int:
        return len({self.find(t) for t in self.parent})


def identity_of(cat: Catalogue, track: Track) -> str:
    names = [cat.artists[a].name for a in track.artist_ids]
    return wanted.identity(names, track.name)


def choose_wants(fakes: Fakes, n: int, rng: random.Random) -> Wants:
    """Exactly `n` recordings: watched artists' discographies (about 80 %: the searches for
    their releases go album by album), then by hand a few releases nobody shares, the singles
    the damaging peers spoil, and releases of other artists, album by album, with single tracks
    to make the count exact. Artists with releases still to come are not watched (one could
    appear on the fake clock during the run and change what is wanted)."""
    cat, peers, spotify = fakes.catalogue, fakes.slskd_state.peers, fakes.spotify_state
    shared: dict[str, set[str]] = collections.defaultdict(set)
    trapped: set[str] = set()
    for peer in peers.values():
        for f in peer.files:
            if f.track_id:
                album_id = cat.tracks[f.track_id].album_id
                if f.variant == "original":
                    shared[album_id].add(peer.username)
                else:
                    trapped.add(album_id)
    grouping = Grouping(cat)
    kinds: collections.Counter[str] = collections.Counter()

    def note(album: Album, kind: str) -> None:
        kinds[kind] += 1
        if album.id in trapped:
            kinds["with trap files shared beside them"] += 1
        if "staller" in shared[album.id]:
            kinds["shared by the stalling peer"] += 1

    def discography(artist_id: str) -> list[Album]:
        return [
            a
            for a, group in cat.artist_albums(artist_id)
            if group in ("album", "single") and spotify.visible(a) and a.available_in("US")
        ]

    by_hand = max(4, n // 10)
    watchable = [
        a
        for a in cat.main_artist_ids
        if not any(album.future for album, _ in cat.artist_albums(a))
        and not any(shared[album.id] & set(DAMAGED_ARTISTS) for album in discography(a))
    ]
    rng.shuffle(watchable)  # the order among artists of one size

    def size(artist_id: str) -> int:
        return len({t for album in discography(artist_id) for t in album.track_ids})

    watchable.sort(key=size, reverse=True)  # the biggest that fit first: little is left to want by hand
    artists: list[str] = []
    for artist_id in watchable:
        tracks = [t for album in discography(artist_id) for t in cat.album_tracks(album)]
        if grouping.count_with(tracks) > n - by_hand:
            continue
        artists.append(artist_id)
        for album in discography(artist_id):
            note(album, "watched artist's release")
        for track in tracks:
            grouping.add(track)
    refs: list[str] = []

    def take(album: Album, kind: str, limit: int) -> None:
        tracks = cat.album_tracks(album)
        if grouping.count_with(tracks) <= limit:
            refs.append(f"spotify:album:{album.id}")
            for track in tracks:
                grouping.add(track)
        else:  # the album would overshoot: its tracks one by one, as far as they fit
            for track in tracks:
                if grouping.count_with([track]) <= limit:
                    refs.append(f"spotify:track:{track.id}")
                    grouping.add(track)
        note(album, kind)

    releases = sorted(
        (a for a in cat.albums.values() if spotify.visible(a) and a.duplicate_of is None),
        key=lambda a: a.id,
    )
    watched = {album.id for artist_id in artists for album in discography(artist_id)}
    nobody = [a for a in releases if not shared[a.id] and a.album_type != "compilation"]
    damaged = [a for a in releases if shared[a.id] & set(DAMAGED_ARTISTS)]
    others = [
        a
        for a in releases
        if shared[a.id] and a not in damaged and a.album_type != "compilation" and a.id not in watched
    ]
    rng.shuffle(nobody)
    rng.shuffle(others)
    floor = grouping.count()
    for album in nobody:
        if grouping.count() >= floor + max(1, n // 50):
            break
        take(album, "by hand, shared by nobody", floor + max(1, n // 50))
    floor = grouping.count()
    for album in damaged:
        if grouping.count() >= floor + max(2, n // 25):
            break
        take(album, "by hand, served damaged by a peer", floor + max(2, n // 25))
    for album in others:
        if grouping.count() >= n:
            break
        take(album, "by hand", n)
    if grouping.count() != n:
        raise RuntimeError(f"the catalogue gave {grouping.count()} recordings, not {n}")
    rng.shuffle(refs)
    chosen = {t: cat.tracks[t] for t in grouping.parent}
    roots = {t: grouping.find(t) for t in grouping.parent}
    numbers = {root: k for k, root in enumerate(sorted(set(roots.values())))}
    return Wants(artists, refs, chosen, {t: numbers[r] for t, r in roots.items()}, dict(kinds))


# --- faults ---------------------------------------------------------------------------------------


@dataclasses.dataclass(order=True)
class Fault:
    """One fault: applied at `at` seconds into the run, undone `duration` seconds later (0: it
    undoes itself, as a rule with `times` does)."""

    at: float
    kind: str = dataclasses.field(compare=False)
    duration: float = dataclasses.field(compare=False, default=0.0)
    params: dict[str, Any] = dataclasses.field(compare=False, default_factory=dict)
    detail: str = dataclasses.field(compare=False, default="")
    applied_at: float | None = dataclasses.field(compare=False, default=None)
    undone_at: float | None = dataclasses.field(compare=False, default=None)
    undo: Callable[[], None] | None = dataclasses.field(compare=False, default=None, repr=False)


SLSKD_PATHS = ("/api/v0/searches", "/api/v0/transfers", "/api/v0/events", "/api/v0/options", "/api/v0")
SPOTIFY_PATHS = ("/v1/albums", "/v1/tracks", "/v1/artists", "/v1", "/api/token", "/images")
# Peers that vanish or stall for a while (besides the one that shares everything, briefly).
STEADY_PEERS = ("mp3mike", "linux_larry", "lockbox", "listener01", "listener02", "listener04", "hifi_hanna")


def plan_faults(span: float, rng: random.Random) -> list[Fault]:
    """The schedule over `span` seconds (the busy time expected): the long faults at fixed shares
    of it (slskd stopped for 30 % of it: two minutes in the full run), bursts at random moments."""
    long = max(5.0, span / 5)
    faults = [
        Fault(span * 0.15, "slskd down: server stopped", max(5.0, span * 0.3)),
        Fault(span * 0.50, "slskd down: every API call 503", max(4.0, span * 0.1), {"status": 503}),
        Fault(span * 0.75, "slskd down: every connection dropped", max(3.0, span * 0.05)),
        Fault(span * 0.25, "library disk full", long * 0.5),
        Fault(span * 0.55, "download directory read-only", long * 0.5),
        Fault(span * 0.85, "library disk full", long * 0.3),
        Fault(span * 0.33, "peer vanished", long * 0.4, {"peer": "vinylvault", "behaviour": "offline"}),
    ]

    def at() -> float:
        return rng.uniform(0.02, 0.9) * span

    def burst(kind: str, paths: tuple[str, ...], times: tuple[int, int], **params: Any) -> Fault:
        return Fault(at(), kind, 0, {"path": rng.choice(paths), "times": rng.randint(*times), **params})

    bursts = max(2, round(span / 30))
    for _ in range(bursts):
        status = rng.choice((500, 502, 503))
        faults += [
            burst("slskd 5xx burst", SLSKD_PATHS, (5, 40), status=status),
            burst("spotify 5xx burst", SPOTIFY_PATHS, (3, 20), status=status, edge=rng.random() < 0.3),
            burst("slskd 429 burst", SLSKD_PATHS, (3, 20), seconds=rng.randint(1, 5)),
            burst("spotify 429 burst", SPOTIFY_PATHS, (2, 10), seconds=rng.randint(1, 20)),
            burst("slskd slow answers", SLSKD_PATHS, (2, 6), seconds=rng.choice((2, 5, 10, 35))),
        ]
    for _ in range(max(1, bursts // 2)):
        faults.append(Fault(at(), "slskd search creations busy (429)", 0, {"times": rng.randint(2, 8)}))
    for n in range(max(2, bursts // 2)):
        behaviour = "offline" if n % 2 == 0 else "stalls"
        kind = "peer vanished" if behaviour == "offline" else "peer stalls"
        peer = {"peer": STEADY_PEERS[n % len(STEADY_PEERS)], "behaviour": behaviour}
        faults.append(Fault(rng.uniform(0.05, 0.8) * span, kind, long, peer))
    return sorted(faults)


class Injector:
    """Applies and undoes faults on the fakes (through their control APIs) and the disk."""

    def __init__(self, fakes: Fakes, disk: Disk) -> None:
        self.fakes, self.disk = fakes, disk
        self.slskd_control = fakes.slskd.url
        self.spotify_control = fakes.spotify.url
        self.slskd_stopped = False
        self.peers = {
            p["username"]: p for p in control(self.slskd_control, "/_fake/slskd/peers", method="GET")["peers"]
        }

    def reachable(self, fault: Fault) -> bool:
        """Whether the fault can be applied or undone now: not one that needs the fake slskd's
        control API while its server is stopped."""
        needs_slskd = fault.kind.startswith(("slskd", "peer")) and fault.kind != "slskd down: server stopped"
        return not (needs_slskd and self.slskd_stopped)

    def apply(self, fault: Fault) -> None:
        """Apply `fault`, setting its `detail` (what was done) and `undo` (for a lasting one)."""
        kind, p = fault.kind, fault.params
        slskd, spotify = self.slskd_control, self.spotify_control
        if kind == "slskd down: server stopped":
            self.fakes.slskd.stop()
            self.slskd_stopped = True
            fault.undo, fault.detail = (
                self._restart_slskd,
                "the fake slskd's server stopped: connections refused",
            )
        elif kind == "slskd down: every API call 503":
            fault.undo = self._rule(slskd, {"kind": "status", "path": "/api/v0", "status": p["status"]})
            fault.detail = f"every /api/v0 request answered {p['status']}"
        elif kind == "slskd down: every connection dropped":
            fault.undo = self._rule(slskd, {"kind": "drop", "path": "/api/v0"})
            fault.detail = "every /api/v0 connection closed without an answer"
        elif kind in ("slskd 5xx burst", "spotify 5xx burst"):
            edge = p.get("edge", False)  # an HTML page from a proxy in front, as Spotify's edge sends
            rule = {"kind": "edge" if edge else "status", "path": p["path"], "status": p["status"]}
            self._rule(slskd if kind.startswith("slskd") else spotify, {**rule, "times": p["times"]})
            fault.detail = f"{p['times']} × {p['status']}{' (a proxy page)' if edge else ''} on {p['path']}"
        elif kind in ("slskd 429 burst", "spotify 429 burst"):
            rule = {"kind": "rate_limit", "path": p["path"], "seconds": p["seconds"], "times": p["times"]}
            self._rule(slskd if kind.startswith("slskd") else spotify, rule)
            fault.detail = f"{p['times']} × 429 (Retry-After {p['seconds']} s) on {p['path']}"
        elif kind == "slskd slow answers":
            self._rule(
                slskd, {"kind": "delay", "path": p["path"], "seconds": p["seconds"], "times": p["times"]}
            )
            fault.detail = f"{p['times']} answers held {p['seconds']} s on {p['path']}"
        elif kind == "slskd search creations busy (429)":
            control(slskd, "/_fake/slskd/search-busy", {"times": p["times"]})
            fault.detail = f"the next {p['times']} search creations answered 429"
        elif kind in ("peer vanished", "peer stalls"):
            peer, before = p["peer"], self.peers[p["peer"]]["behaviour"]
            control(slskd, "/_fake/slskd/peers", {"username": peer, "behaviour": p["behaviour"]})
            fault.undo = lambda: control(slskd, "/_fake/slskd/peers", {"username": peer, "behaviour": before})
            fault.detail = f"{peer}: {before} → {p['behaviour']}"
        elif kind == "library disk full":
            fault.detail, fault.undo = self.disk.fill(), self.disk.unfill
        elif kind == "download directory read-only":
            fault.detail = self.disk.read_only("downloads")
            fault.undo = lambda: self.disk.writable("downloads")
        else:
            raise ValueError(kind)  # the plan names only the kinds above
        fault.applied_at = time.time()

    def _restart_slskd(self) -> None:
        self.fakes.slskd.start()
        self.slskd_stopped = False

    def _rule(self, url: str, rule: dict[str, Any]) -> Callable[[], None]:
        """Add a fault rule; returns what removes it."""
        added = control(url, "/_fake/faults", rule)

        def remove() -> None:
            with contextlib.suppress(urllib.error.HTTPError):  # a rule with `times` may be gone
                control(url, f"/_fake/faults/{added['id']}", method="DELETE")

        return remove

    def clear(self) -> None:
        """Every rule gone, every peer as it was, the disk writable."""
        for url in (self.slskd_control, self.spotify_control):
            control(url, "/_fake/faults", method="DELETE")
        control(self.slskd_control, "/_fake/slskd/search-busy", {"times": 0})
        for name, peer in self.peers.items():
            control(
                self.slskd_control, "/_fake/slskd/peers", {"username": name, "behaviour": peer["behaviour"]}
            )


# --- the run ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    summary: str
    details: list[str] = dataclasses.field(default_factory=list)


class Chaos:
    """One run: set up, drive (wants, kills, faults, the clock), settle, check."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.span = max(30.0, args.items * 0.8)  # the busy time expected, seconds
        self.time_limit = args.time_limit or max(240.0, args.items * 1.8)
        self.started = time.time()
        self.workdir = args.workdir or tempfile.mkdtemp(prefix="harmony-chaos-")
        os.makedirs(self.workdir, exist_ok=True)
        self.fakes: Fakes | None = None
        self.disk: Disk | None = None
        self.service: Service | None = None
        self.kills: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.asked: list[dict[str, Any]] = []  # every POST of an artist or a want, with its status
        self.rescans: list[str] = []  # artists scanned again by hand after the faults
        self.notes: list[str] = []  # faults that could not be applied or undone
        self.last_states: collections.Counter[str] = collections.Counter()
        self.final_stop: int | None = None
        self.phases: dict[str, float] = {}
        # What the checks read, kept for the report.
        self.items: list[dict[str, Any]] = []
        self.tracks: list[dict[str, Any]] = []
        self.search_log: list[dict[str, Any]] = []
        self.dead_jobs: list[dict[str, Any]] = []
        self.log_events: collections.Counter[str] = collections.Counter()
        self._clock_stop = threading.Event()
        self._clock_thread: threading.Thread | None = None

    def say(self, message: str) -> None:
        if not self.args.quiet:
            print(f"[chaos {time.time() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)

    # -- setting up --

    def setup(self) -> None:
        root = self.workdir
        self.disk = Disk(os.path.join(root, "files"))
        self.data = os.path.join(root, "data")
        self.tmp = os.path.join(root, "tmp")  # Harmony's TMPDIR
        self.cwd = os.path.join(root, "cwd")  # Harmony's working directory
        for path in (self.data, self.tmp, self.cwd):
            os.makedirs(path, exist_ok=True)
        self.log_path = os.path.join(root, "harmony.log")
        self.fakes = start_fakes(self.disk.downloads, seed=self.args.seed)
        self.injector = Injector(self.fakes, self.disk)
        self.wants = choose_wants(self.fakes, self.args.items, self.rng)
        self.plan = plan_faults(self.span, self.rng)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        options = self.fakes.harmony_options("")
        options["slskd.downloads_dir"] = self.disk.view("downloads")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HARMONY_")}
        env.update({config.BY_KEY[key].env: value for key, value in options.items()})
        env["TMPDIR"] = self.tmp
        self.options = {
            "--data-dir": self.data,
            "--server-port": str(port),
            "--library-dir": self.disk.view("library"),
            "--library-quarantine-dir": self.disk.view("quarantine"),
            "--transfers-poll-interval": "1s",
            "--search-timeout": "5s",
            "--search-budget": str(self.args.budget),
            "--search-window": f"{self.args.window:g}s",
            "--transfers-item-ceiling": "5m",
            "--spotify-rate": "20",
            "--jobs-lease": "10s",
            "--transfers-user-cooldown": "1m",
        }
        argv = [part for pair in self.options.items() for part in pair]
        # An admin key made before the first start, so no start has to print one.
        cli = [sys.executable, "-m", "harmony"]
        run = {
            "check": True,
            "capture_output": True,
            "text": True,
            "env": env,
            "cwd": self.cwd,
            "timeout": 60,
        }
        subprocess.run([*cli, "migrate", "--data-dir", self.data], **run)  # type: ignore[call-overload]
        created = subprocess.run(  # type: ignore[call-overload]
            [*cli, "apikey", "create", "--name", "chaos", "--role", "admin", "--data-dir", self.data], **run
        )
        key = created.stdout.splitlines()[0].rsplit(" ", 1)[1]  # "created key 1 (admin): <key>"
        self.api = Api(self.base, key)
        self.service = Service(["serve", *argv], env, self.cwd, self.log_path, self.base)

    def _advance_clock(self) -> None:
        assert self.fakes is not None
        step = 0.2
        while not self._clock_stop.wait(step):
            self.fakes.clock.advance(step * self.args.clock_rate)

    # -- driving --

    def run(self) -> list[Check]:
        self.setup()
        assert self.service is not None and self.fakes is not None
        self.say(
            f"{self.args.items} recordings in {len(self.wants.refs)} wants, {self.args.kills} kills, "
            f"{len(self.plan)} faults over ~{self.span:.0f} s; work in {self.workdir}"
        )
        self._clock_thread = threading.Thread(target=self._advance_clock, name="chaos-clock", daemon=True)
        self._clock_thread.start()
        self.service.start()
        self.drive()
        self.phases["driven"] = time.time()
        self.injector.clear()
        settled = self.settle()
        self.phases["settled"] = time.time()
        self.say("settled" if settled else "time limit reached before every item came to rest")
        results = self.check()
        self.final_stop = self.service.stop()
        results.append(self.check_processes())
        return results

    def drive(self) -> None:
        """Until every kill and fault is done and everything is asked for: wants, kills, faults."""
        service = self.service
        assert service is not None
        t0 = time.time()
        pending = [("artist", a) for a in self.wants.artists] + [("want", r) for r in self.wants.refs]
        plan = list(self.plan)
        undo: list[tuple[float, int, Fault]] = []
        mean_gap = max(3.0, self.span * 0.9 / max(1, self.args.kills))
        next_kill = t0 + self.rng.uniform(0.3, 1.7) * mean_gap
        restart_at: float | None = None
        next_status = 0.0
        while True:
            now = time.time()
            if now - self.started > self.time_limit:
                self.say("time limit reached while driving")
                break
            elapsed = now - t0
            # Faults due, and undone when their time is up; while the fake slskd's server is
            # stopped its control API cannot be reached, so what needs it waits a second.
            while plan and plan[0].at <= elapsed:
                fault = plan.pop(0)
                if not self.injector.reachable(fault):
                    fault.at = elapsed + 1.0
                    bisect.insort(plan, fault)
                    break
                self._safely(functools.partial(self.injector.apply, fault), f"apply {fault.kind}")
                self.faults.append(fault)
                if fault.duration and fault.undo:
                    heapq.heappush(undo, (now + fault.duration, id(fault), fault))
            while undo and undo[0][0] <= now:
                _, _, fault = heapq.heappop(undo)
                if not self.injector.reachable(fault):
                    heapq.heappush(undo, (now + 1.0, id(fault), fault))
                    break
                if fault.undo:
                    self._safely(fault.undo, f"undo {fault.kind}")
                fault.undone_at = time.time()
            # The process: a crash is restarted; a kill is due; a restart is due.
            code = service.exited()
            if code is not None:
                self.say(f"Harmony exited by itself with status {code}: restarting")
                restart_at = now + 1.0
            if service.alive() and len(self.kills) < self.args.kills and now >= next_kill:
                self.kills.append({"at": now - t0, "run": service.starts, "uptime": now - service.started_at})
                service.kill()
                restart_at = now + self.rng.choice((0.0, 0.2, 0.5, 1.0, 2.0, 3.0))
                self.say(f"kill {len(self.kills)} of {self.args.kills} (run {service.starts})")
            if service.proc is None and restart_at is not None and now >= restart_at:
                service.start()
                restart_at = None
                next_kill = time.time() + self.rng.uniform(0.3, 1.7) * mean_gap
            # Wants, one a turn, while the process answers.
            if pending and service.check_live() and self._ask(*pending[0]):
                pending.pop(0)
            if now >= next_status:
                next_status = now + 2.0
                self._poll_states()
            if not plan and not undo and not pending and len(self.kills) >= self.args.kills:
                break
            time.sleep(0.05)
        for _, _, fault in undo:  # stopped early: undo what is still in force
            if fault.undo:
                self._safely(fault.undo, f"undo {fault.kind}")
            fault.undone_at = time.time()
        if service.proc is None:
            service.start()

    def _safely(self, action: Callable[[], Any], what: str) -> None:
        try:
            action()
        except Exception as exc:  # a fault that cannot be applied is reported, not fatal
            self.say(f"could not {what}: {type(exc).__name__}: {exc}")
            self.notes.append(f"could not {what}: {type(exc).__name__}: {exc}")

    def _ask(self, what: str, ref: str) -> bool:
        """Watch an artist (from 1900, albums and singles) or want a ref; True once Harmony has
        taken it. Asking again after a kill is safe: a second watch is 409, a second want 200."""
        if what == "artist":
            path, body = "/api/v1/artists", {"spotify": f"spotify:artist:{ref}", "since": "1900-01-01"}
        else:
            path, body = "/api/v1/wanted", {"spotify": ref}
        try:
            status, _ = self.api.call("POST", path, body, timeout=60)
        except OSError:
            return False  # killed meanwhile, or slow: asked again
        self.asked.append({"what": what, "ref": ref, "status": status, "at": time.time()})
        if what == "artist":
            return status in (201, 409)
        return status in (200, 201)  # else Spotify failing (502/503) or busy: again later

    def _rescan_failing(self) -> None:
        """As an operator would: a watched artist whose scan failed under the faults (it waits an
        hour before the next) is scanned again now that they are over."""
        try:
            artists = self.api.pages("/api/v1/artists")
        except (OSError, RuntimeError):
            return
        for artist in artists:
            if artist["state"] in ("failing", "cooling_down") or artist["last_success_at"] is None:
                with contextlib.suppress(OSError):
                    status, _ = self.api.call("POST", f"/api/v1/artists/{artist['id']}/scan")
                    if status == 202:
                        self.rescans.append(artist["name"])

    def _poll_states(self) -> None:
        try:
            items = self.api.pages("/api/v1/wanted")
        except (OSError, RuntimeError):
            return
        self.last_states = collections.Counter(item["state"] for item in items)
        busy = sum(n for state, n in self.last_states.items() if state not in TERMINAL)
        self.say(f"{len(items)} items, {busy} under way: {dict(sorted(self.last_states.items()))}")

    def settle(self) -> bool:
        """Wait for every item to rest (a terminal state in two reads 5 s apart); False at the
        time limit. The process keeps running; if it dies it is restarted (and counted)."""
        service = self.service
        assert service is not None
        quiet_since: float | None = None
        next_rescan = 0.0
        while time.time() - self.started < self.time_limit:
            if service.exited() is not None:
                service.start()
            if not service.check_live():
                time.sleep(0.5)
                continue
            if time.time() >= next_rescan:
                self._rescan_failing()
                next_rescan = time.time() + 30
            try:
                items = self.api.pages("/api/v1/wanted")
            except (OSError, RuntimeError):
                time.sleep(1)
                continue
            states = collections.Counter(item["state"] for item in items)
            if states != self.last_states:
                self.say(f"settling: {len(items)} items: {dict(sorted(states.items()))}")
            self.last_states = states
            resting = len(items) >= self.wants.groups and all(item["state"] in TERMINAL for item in items)
            if resting:
                quiet_since = quiet_since or time.time()
                if time.time() - quiet_since >= 5:
                    return True
            else:
                quiet_since = None
            time.sleep(1)
        return False

    # -- checks --

    def check(self) -> list[Check]:
        assert self.fakes is not None and self.disk is not None
        items = self.api.pages("/api/v1/wanted")
        tracks = self.api.pages("/api/v1/library/tracks")
        self.items, self.tracks = items, tracks
        self._keep_records(items, tracks)
        results = [
            self.check_terminal(items),
            self.check_identity(items),
            self.check_library(items, tracks),
            self.check_outside(),
            self.check_jobs(),
            self.check_budget(),
        ]
        return results

    def _keep_records(self, items: list[dict[str, Any]], tracks: list[dict[str, Any]]) -> None:
        """The run's records beside Harmony's data, for a closer look (with --keep or --workdir)."""
        assert self.fakes is not None
        records = {
            "items.json": items,
            "library.json": tracks,
            "search-log.json": control(self.fakes.slskd.url, "/_fake/slskd/search-log", method="GET"),
            "faults.json": [
                {fld.name: getattr(f, fld.name) for fld in dataclasses.fields(f) if fld.name != "undo"}
                for f in self.faults
            ],
            "kills.json": self.kills,
            "asked.json": self.asked,
        }
        for name, value in records.items():
            with open(os.path.join(self.workdir, name), "w", encoding="utf-8") as handle:
                json.dump(value, handle, indent=1, default=str)

    def events(self, item_id: int, limit: int = 12) -> list[str]:
        try:
            status, body = self.api.call("GET", f"/api/v1/events?item={item_id}&limit={limit}")
        except OSError as exc:
            return [f"(events unavailable: {exc})"]
        if status != 200:
            return [f"(events: {status})"]
        return [
            f"{time.strftime('%H:%M:%S', time.localtime(e['at']))} {e['kind']} {e.get('from_state') or ''}→"
            f"{e.get('to_state') or ''} {e.get('code') or ''}: {e.get('message') or ''}"
            for e in reversed(body["items"])
        ]

    def describe(self, item: dict[str, Any]) -> str:
        return (
            f"item {item['id']} “{item['title']}” ({item['spotify_id']}): {item['state']} "
            f"[{item['reason_code']}] {item['reason']}"
        )

    def check_terminal(self, items: list[dict[str, Any]]) -> Check:
        bad = []
        for item in items:
            why = []
            if item["state"] not in TERMINAL:
                why.append(f"still {item['state']}")
            if not item["reason_code"] or not item["reason"]:
                why.append("no reason")
            if item["state"] == "not_found" and (not item["next_action"] or not item["next_action_at"]):
                why.append("not_found without a next action")
            if why:
                bad.append((item, why))
        details = []
        for item, why in bad[:20]:
            details.append(f"{self.describe(item)} — {', '.join(why)}")
            details += [f"    {line}" for line in self.events(item["id"])]
        if len(bad) > 20:
            details.append(f"... and {len(bad) - 20} more")
        states = collections.Counter(item["state"] for item in items)
        summary = ", ".join(f"{n} {state}" for state, n in states.most_common())
        return Check(
            "every item at rest with a reason", not bad, f"{summary}; {len(bad)} not at rest", details
        )

    def check_identity(self, items: list[dict[str, Any]]) -> Check:
        wants = self.wants
        by_track = wants.group
        by_isrc = {t.isrc: wants.group[t.id] for t in wants.tracks.values() if t.isrc}
        held: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
        stray = []
        for item in items:
            group = by_track.get(item["spotify_id"] or "")
            if group is None and item["isrc"]:
                group = by_isrc.get(item["isrc"])
            if group is None:
                stray.append(item)
            else:
                held[group].append(item)
        lost = sorted(set(wants.group.values()) - set(held))
        doubled = {g: its for g, its in held.items() if len(its) > 1}
        details = []
        for group in lost[:20]:
            names = [f"{t.name} ({t.id})" for t_id, t in wants.tracks.items() if wants.group[t_id] == group]
            details.append(f"lost: no item for {', '.join(names)}")
        for its in list(doubled.values())[:20]:
            details.append("duplicated: " + "; ".join(self.describe(item) for item in its))
        for item in stray[:20]:
            details.append(f"not wanted by this run: {self.describe(item)}")
        ok = not lost and not doubled and not stray
        summary = (
            f"{len(wants.tracks)} tracks wanted = {wants.groups} recordings; {len(items)} items; "
            f"{len(lost)} lost, {len(doubled)} duplicated, {len(stray)} unexpected"
        )
        return Check("nothing lost, nothing duplicated", ok, summary, details)

    def check_library(self, items: list[dict[str, Any]], tracks: list[dict[str, Any]]) -> Check:
        assert self.disk is not None
        root = self.disk.real("library")
        details: list[str] = []
        on_disk, covers, other = set(), 0, []
        for folder, _, names in os.walk(root):
            for name in names:
                relative = os.path.relpath(os.path.join(folder, name), root)
                if name.lower().endswith(AUDIO) and not name.startswith("."):
                    on_disk.add(relative)
                elif name == "cover.jpg":
                    covers += 1
                else:
                    other.append(relative)
        indexed = {t["path"] for t in tracks}
        for path in sorted(on_disk - indexed)[:20]:
            details.append(f"on disk, not in the index: {path}")
        for path in sorted(indexed - on_disk)[:20]:
            details.append(f"in the index, not on disk: {path}")
        for path in sorted(other)[:20]:
            details.append(f"not a library file: {path}")
        done = {item["id"]: item for item in items if item["state"] == "done"}
        by_spotify = {item["spotify_id"]: item for item in done.values() if item["spotify_id"]}
        files_of: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
        for track in tracks:
            item = done.get(track["item_id"]) or by_spotify.get(track["spotify_id"])
            if item is None:
                details.append(f"a file for no done item: {track['path']} (item {track['item_id']})")
            else:
                files_of[item["id"]].append(track)
        for item_id, item in done.items():
            if len(files_of[item_id]) != 1:
                paths = [t["path"] for t in files_of[item_id]]
                details.append(f"{len(paths)} files for {self.describe(item)}: {paths}")
        sizes = self._download_sizes()
        checked = 0
        for item_id, files in files_of.items():
            for track in files:
                path = os.path.join(root, track["path"])
                problem = self._file_problem(path, done[item_id], sizes.get(track["path"]))
                checked += 1
                if problem:
                    details.append(f"{track['path']}: {problem}")
        ok = not details
        summary = (
            f"{len(done)} done items, {len(indexed)} indexed files, {len(on_disk)} audio files on disk "
            f"(+{covers} cover.jpg), {checked} files read back"
        )
        return Check("one complete, tagged file per done item", ok, summary, details[:60])

    def _download_sizes(self) -> dict[str, int]:
        """Library path -> size of the download that brought it (Harmony's transfer record)."""
        try:
            rows = self.api.pages("/api/v1/downloads")
        except (OSError, RuntimeError):
            return {}
        return {row["library_path"]: row["size"] for row in rows if row.get("library_path")}

    def _file_problem(self, path: str, item: dict[str, Any], size: int | None) -> str | None:
        try:
            info = tags.audio_info(path)
            written = tags.read_tags(path, cover=False)
        except Exception as exc:  # not audio, unreadable, gone
            return f"cannot be read: {type(exc).__name__}: {exc}"
        if written.spotify_track_id != item["spotify_id"]:
            return f"tagged {written.spotify_track_id!r}, not the item's {item['spotify_id']!r}"
        if size is not None and os.path.getsize(path) < size - SIZE_SLACK:
            return f"{os.path.getsize(path)} bytes, the download had {size}: incomplete"
        if item["duration_ms"] and abs(info.duration - item["duration_ms"] / 1000) > 10:
            return f"{info.duration:.1f} s long, the track is {item['duration_ms'] / 1000:.1f} s"
        return None

    def check_outside(self) -> Check:
        """Every file outside the library root that should not be there."""
        assert self.disk is not None and self.fakes is not None
        details = []
        for folder, _, names in os.walk(self.data):
            for name in names:
                path = os.path.join(folder, name)
                backup = folder == os.path.join(self.data, "backups") and backups.NAME.fullmatch(name)
                if not backup and (folder != self.data or name not in DATA_FILES):
                    details.append(f"in the data directory: {os.path.relpath(path, self.data)}")
        for where in (self.tmp, self.cwd):
            for folder, _, names in os.walk(where):
                for name in names:
                    what = "TMPDIR" if where == self.tmp else "working directory"
                    details.append(
                        f"in Harmony's {what}: {os.path.relpath(os.path.join(folder, name), where)}"
                    )
        quarantine = self.disk.real("quarantine")
        try:
            held = {row["path"] for row in self.api.pages("/api/v1/quarantine")}
        except (OSError, RuntimeError) as exc:
            held = set()
            details.append(f"quarantine list unavailable: {exc}")
        quarantined = 0
        for folder, _, names in os.walk(quarantine):
            for name in names:
                relative = os.path.relpath(os.path.join(folder, name), quarantine)
                quarantined += 1
                if relative not in held:
                    details.append(f"in the quarantine without a record: {relative}")
        with self.fakes.slskd_state.lock:
            written = {
                t.local_path for t in self.fakes.slskd_state.transfers.values() if t.written and t.local_path
            }
        downloads = self.disk.real("downloads")
        left, slskd_temps, touched = 0, 0, []
        for folder, _, names in os.walk(downloads):
            for name in names:
                path = os.path.join(folder, name)
                if name.startswith(".") and name.endswith(".part") and not name.startswith(".harmony-"):
                    slskd_temps += 1  # the fake slskd's own, left by a write the full disk failed
                    continue
                if path not in written:
                    relative = os.path.relpath(path, downloads)
                    details.append(f"in slskd's download directory, not written by slskd: {relative}")
                    continue
                left += 1
                with contextlib.suppress(Exception):
                    if tags.read_tags(path, cover=False).spotify_track_id:
                        touched.append(os.path.relpath(path, downloads))
        for path in touched:
            details.append(f"in slskd's download directory, tagged by Harmony and left there: {path}")
        summary = (
            f"{quarantined} files in the quarantine, {left} of slskd's files left in its download "
            f"directory ({len(written)} written; {slskd_temps} of its own temporary files a full disk left), "
            f"{len(details)} files that should not exist"
        )
        return Check("nothing written outside the library root", not details, summary, details[:60])

    def check_jobs(self) -> Check:
        now = time.time()
        details = []
        running = self.api.pages("/api/v1/jobs", state="running")
        for job in running:
            if job["lease_until"] is not None and job["lease_until"] < now - LEASE_GRACE_S:
                details.append(
                    f"job {job['id']} {job['type']} {job['payload']} leased until "
                    f"{now - job['lease_until']:.0f} s ago, attempts {job['attempts']}"
                )
        dead = self.api.pages("/api/v1/jobs", state="dead")
        self.dead_jobs = dead
        summary = (
            f"{len(running)} running at the end, {len(details)} with an expired lease; {len(dead)} dead jobs"
        )
        return Check("no job stuck leased", not details, summary, details)

    def check_budget(self) -> Check:
        assert self.fakes is not None
        log = control(self.fakes.slskd.url, "/_fake/slskd/search-log", method="GET")["searches"]
        self.search_log = log
        budget, window = self.args.budget, self.args.window
        sent = sorted(entry["wall"] for entry in log if not entry["errored"])
        worst, over = 0, []
        for t in sent:
            held = bisect.bisect_right(sent, t) - bisect.bisect_right(sent, t - window)
            worst = max(worst, held)
            if held > budget:
                over.append((t, held))
        details = [
            f"{held} searches in the {window:g} s up to {time.strftime('%H:%M:%S', time.localtime(t))}"
            f".{int(t % 1 * 1000):03d}"
            for t, held in over[:20]
        ]
        summary = (
            f"{len(sent)} searches reached slskd ({len(log) - len(sent)} refused as errored); at most "
            f"{worst} in any {window:g} s window (budget {budget}); {len(over)} windows over"
        )
        return Check("search budget never exceeded (slskd's own record)", not over, summary, details)

    def check_processes(self) -> Check:
        service = self.service
        assert service is not None
        details = [
            f"run {c['run']} exited by itself with status {c['code']} after {c['after_s']:.1f} s"
            for c in service.crashes
        ]
        if self.final_stop != 0:
            details.append(f"the last process did not stop cleanly on SIGTERM (status {self.final_stop})")
        details += self._log_findings()
        summary = (
            f"{service.starts} starts, {len(self.kills)} kills, {len(service.crashes)} crashes, "
            f"{len(service.never_live)} starts killed before /live answered, "
            f"last stop status {self.final_stop}"
        )
        return Check(
            "every process ran until killed, the last stopped cleanly", not details, summary, details
        )

    def _log_findings(self) -> list[str]:
        """Tracebacks of unexpected errors in Harmony's logs (expected failures are one line)."""
        findings: collections.Counter[str] = collections.Counter()
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.startswith("{"):
                    continue
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("level") in ("warning", "error", "critical"):
                        self.log_events[f"{entry.get('level')} {entry.get('event')}"] += 1
                    if entry.get("event") in (
                        "request_failed",
                        "task_failed",
                        "worker_error",
                        "jobs_keeper_error",
                    ):
                        findings[
                            f"{entry.get('event')}: {str(entry.get('error') or entry.get('exc') or '')[:160]}"
                        ] += 1
        return [f"log: {n} × {what}" for what, n in findings.most_common(10)]

    # -- cleaning up --

    def close(self) -> None:
        self._clock_stop.set()
        if self.service is not None and self.service.proc is not None:
            self.service.kill()
        if self.fakes is not None:
            self.fakes.stop()
        if self.disk is not None:
            self.disk.close()
        if not self.args.keep and not self.args.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


# --- the report -----------------------------------------------------------------------------------


def render(run: Chaos, results: list[Check]) -> str:
    """reports/chaos.md: the figures, then every invariant with its violations."""
    args, wants = run.args, run.wants
    failed = [c for c in results if not c.ok]
    verdict = "**every invariant held**" if not failed else f"**{len(failed)} invariant(s) failed**"
    shown = {k: v for k, v in run.options.items() if not k.endswith(("-dir", "-port"))}
    ended = run.phases.get("settled", time.time())
    driven = run.phases.get("driven", run.started)
    lines = [
        "# Chaos run: the pipeline under fire",
        "",
        f"`tools/chaos.py --items {args.items} --kills {args.kills} --seed {args.seed}`: {verdict}.",
        "",
        "Harmony ran as a real process (`python -m harmony serve`) against the fake Spotify and slskd, "
        f"whose clock moved {args.clock_rate:g} s a second (Harmony keeps the host's), with "
        f"`{' '.join(f'{k} {v}' for k, v in shown.items())}`. It took {ended - run.started:.0f} s: "
        f"{driven - run.started:.0f} s of kills and faults, then {ended - driven:.0f} s for every item "
        "to come to rest.",
        "",
        "## Invariants",
        "",
        "| invariant | result | figures |",
        "|---|---|---|",
    ]
    lines += [f"| {c.name} | {'ok' if c.ok else '**FAILED**'} | {c.summary} |" for c in results]
    items = run.items
    states = collections.Counter(item["state"] for item in items)
    reasons = collections.Counter((item["state"], item["reason_code"]) for item in items)
    asked = collections.Counter((a["what"], a["status"]) for a in run.asked)
    lines += ["", "## Items", "", "| state | items |", "|---|---|"]
    lines += [f"| {state} | {n} |" for state, n in states.most_common()]
    lines += ["", "By final reason:", "", "| state | reason code | items |", "|---|---|---|"]
    lines += [f"| {st} | {code} | {n} |" for (st, code), n in sorted(reasons.items(), key=lambda kv: -kv[1])]
    lines += [
        "",
        f"Wanted: {len(wants.tracks)} tracks, {wants.groups} recordings, by watching {len(wants.artists)} "
        f"artists (albums and singles since 1900) and {len(wants.refs)} refs by hand. Releases: "
        + ", ".join(f"{n} {kind}" for kind, n in sorted(wants.kinds.items()))
        + ". Requests (asked again until taken): "
        + ", ".join(f"{n} × {what} {status}" for (what, status), n in sorted(asked.items()))
        + "."
        + (f" Artists scanned again by hand after a failed scan: {len(run.rescans)}." if run.rescans else ""),
        "",
        "## Kills",
        "",
        f"{len(run.kills)} SIGKILLs, {run.service.starts if run.service else 0} starts. Uptime before each "
        "kill (s): " + ", ".join(f"{k['uptime']:.1f}" for k in run.kills) + ".",
        "",
        "## Faults injected",
        "",
        "| fault | times | seconds in force | what |",
        "|---|---|---|---|",
    ]
    by_kind: dict[str, list[Fault]] = collections.defaultdict(list)
    for fault in run.faults:
        by_kind[fault.kind].append(fault)
    for kind, faults in sorted(by_kind.items()):
        lasting = [f for f in faults if f.duration and f.applied_at]
        seconds = sum((f.undone_at or f.applied_at or 0.0) - (f.applied_at or 0.0) for f in lasting)
        what = "; ".join(f.detail for f in faults[:3]) + ("; ..." if len(faults) > 3 else "")
        lines.append(f"| {kind} | {len(faults)} | {seconds:.0f} | {what} |")
    disk = run.disk
    lines += [
        "",
        "The disk faults used "
        + (
            "a tmpfs (slskd's downloads, the library and the quarantine) and a read-only bind mount."
            if disk and disk.mounts
            else "chmod a-w: there was no right to mount a tmpfs, so EACCES stood in for ENOSPC."
        ),
    ]
    lines += [f"Not applied: {note}" for note in run.notes]
    fake = run.fakes.slskd_state if run.fakes else None
    written = sum(1 for t in fake.transfers.values() if t.written) if fake else 0
    dead, logged = run.dead_jobs, run.log_events
    lines += [
        "",
        "## Files, transfers, searches, jobs",
        "",
        f"- library: {len(run.tracks)} indexed files;",
        f"- the fake slskd was asked for {len(fake.transfers) if fake else 0} files and wrote {written};",
        f"- searches slskd recorded: {len(run.search_log)};",
        f"- dead jobs at the end: {len(dead)}"
        + (f" ({', '.join(sorted({j['type'] for j in dead}))})" if dead else ""),
        "- warnings and errors Harmony logged: "
        + (", ".join(f"{n} × {what}" for what, n in logged.most_common(12)) or "none")
        + ".",
    ]
    for check in results:
        if check.details:
            lines += ["", f"## {check.name}: details", "", "```", *check.details, "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
