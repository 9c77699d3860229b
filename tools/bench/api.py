"""Load benchmark of the HTTP API: a real `harmony serve` under a loopback load generator.

Run: .venv/bin/python tools/bench/api.py [--quick] [--generator auto|wrk|python] [--out reports/bench/api.md]

What runs, in order:

1. The fakes (`harmony.fakes.start_fakes`: the fake Spotify and the fake slskd) start in a process
   of their own (this script with `--child fakes`), so they share no interpreter with the server
   or the load generator.
2. A database in a temporary directory is filled by another child (`--child fill`) with the code
   `tools/bench/ui.py` uses for its pages: 10,000 wanted items through `wanted.want` and
   `wanted.transition` (every state, with their events and sources; 50 watched artists, 200
   releases, 20 playlists), 200 dead jobs, and the acquisition tables written with SQL (2,020
   downloads, 20 of them under way, candidates, 300 quarantined files, a scan and backfill runs);
   then 250,000 library tracks through `library.record`, in transactions of 1,000.
3. `python -m harmony serve` starts on a free 127.0.0.1 port against the fakes, with the default
   server settings (8 request threads, `server.connection_limit` 2000, waitress's listen backlog
   of 1024, JSON request log at info into a file) and `library.scan_interval = 0` (the index is
   filled by hand; a scan of the empty library folder would empty it). Its first start writes
   the admin key to `<data.dir>/admin-key`; that key is the only one used: no request ever
   fails authentication, so the failed-authentication throttle (429) never engages. The
   background work runs as in production: the 'wanted' part of the backlog is searched on the
   fake slskd, its downloads polled; its CPU while idle is reported.
4. Idle memory: once `/ready` is 200 and the process has settled (or after a bounded wait),
   VmRSS and VmHWM from /proc/<pid>/status.
5. Each endpoint at 16 keep-alive connections for a fixed time after an unrecorded warm-up:
   requests/s, p50/p95/p99/max latency (request sent to response read, per request), every
   status and connection error, the server's CPU per request (from /proc/<pid>/stat) and the
   generator's own CPU. Target: p95 < 50 ms. VmRSS is sampled every 0.2 s under load.
6. 256 connections for a longer run, every connection cycling through all the endpoints: every
   non-2xx/3xx response and every connection error is counted. Waitress holds up to
   `server.connection_limit` (2000) connections and queues their requests for the 8 threads
   without bound (`harmony_http_queue_depth`), so 256 connections must see only longer
   latencies, never an error; anything else is a finding.
7. Recovery: right after the storm, how long until `/live` and `/ready` answer 200 on a fresh
   connection, then a 16-connection burst on `/live` and `/api/v1/wanted` compared with step 5;
   VmRSS again after a few idle seconds (memory growth).
8. After the server stops (SIGTERM; its exit code and the 5xx lines of its request log are
   checked), a last child (`--child trace`) opens the same database in process and calls every
   endpoint one request at a time through `make_app`: the app's own time per request, and each
   statement it runs with its time (APSW's profile hook) and its query plan, as
   `tools/bench/library.py` traces them.

The load generator is `wrk` (Debian's package) when it is on PATH: a Lua script adds the key,
cycles the paths and counts each status. Otherwise a threaded Python client: one thread per
connection, each with its own `http.client` keep-alive connection, closed-loop. The Python client
needs CPU of its own on the same cores (reported), so its req/s figures are a lower bound.

The figures are closed-loop: each connection sends its next request when the previous answer
arrives, so latency at N connections is about N divided by the server's throughput.
`--quick` shrinks everything (1,000 items, 20,000 tracks, 1 s a case) to run in well under a
minute; the full run takes about four minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools" / "bench"))

import apsw  # noqa: E402
from harness import Row, free_port, proc_status  # noqa: E402

from harmony import __version__, config, library  # noqa: E402
from harmony import log as logsetup  # noqa: E402

TARGET_P95_MS = 50.0
CONNECTIONS = 16
STORM_CONNECTIONS = 256
SEED = 14  # tools/bench/ui.py's
START_TIMEOUT = 120.0
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
CLIENT_TIMEOUT = 60.0  # far above any latency seen: a timeout is an error, not a slow answer
RECOVERY_FACTOR = 2.0  # "normal latency again": p95 within this factor of step 5's, or under target
SAMPLE_S = 0.2

# (name, path, what it shows): every case of step 5, and the mix of step 6.
ENDPOINTS: list[tuple[str, str, str]] = [
    ("live", "/live", "liveness, no I/O"),
    ("ready", "/ready", "readiness report (probed checks cached)"),
    ("metrics", "/metrics", "Prometheus text, queue counts read at scrape"),
    ("wanted", "/api/v1/wanted", "first page, backlog order, with `total`"),
    ("wanted_state", "/api/v1/wanted?state=not_found,failed", "two states, with `total`"),
    ("tracks", "/api/v1/library/tracks", "first page by path"),
    ("tracks_q", "/api/v1/library/tracks?q=harbour", "search, a word in one title in ten"),
    ("downloads", "/api/v1/downloads", "newest first, with slskd's live state"),
    ("events", "/api/v1/events", "activity feed, newest first"),
    ("jobs", "/api/v1/jobs", "by id, with `total`"),
    ("artists", "/api/v1/artists", "watched artists by name"),
]


@dataclass(frozen=True)
class Sizes:
    items: int
    tracks: int
    warmup_s: float
    case_s: float
    storm_s: float
    settle_s: float
    trace_calls: int

    @classmethod
    def pick(cls, quick: bool) -> Sizes:
        if quick:
            return cls(1_000, 20_000, 0.3, 1.0, 3.0, 3.0, 10)
        return cls(10_000, 250_000, 1.0, 8.0, 20.0, 20.0, 40)


# --- processes -----------------------------------------------------------------------------------


def child_env(directory: str, **extra: str) -> dict[str, str]:
    """This environment without HARMONY_* variables, .pyc files kept in the temporary directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMONY_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(directory, "pycache")
    env.update(extra)
    return env


def run_child(name: str, spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run `name` in a fresh process (this script with `--child`); its result is stdout's last line."""
    argv = [sys.executable, __file__, "--child", name]
    done = subprocess.run(argv, input=json.dumps(spec), capture_output=True, text=True, timeout=3600, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@contextmanager
def fakes_process(directory: str, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The fakes in a child that runs until its stdin closes; yields Harmony's options for them."""
    argv = [sys.executable, __file__, "--child", "fakes"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"downloads": os.path.join(directory, "slskd-downloads")}) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fakes exited with {proc.wait(10)} before starting")
        yield json.loads(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proc_cpu(pid: int) -> float:
    """User plus system CPU seconds of `pid` so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    with open("/proc/loadavg", encoding="ascii") as handle:
        return " ".join(handle.read().split()[:3])


def get(port: int, path: str, key: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"X-API-Key": key})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def first_200(port: int, path: str, key: str, limit: float) -> tuple[float | None, list[str]]:
    """Seconds until `path` answers 200 on a fresh connection (None if never within `limit`), and
    what the attempts before it got."""
    started = time.perf_counter()
    seen: list[str] = []
    while time.perf_counter() - started < limit:
        try:
            status, _ = get(port, path, key, timeout=max(1.0, limit - (time.perf_counter() - started)))
        except OSError as exc:
            seen.append(type(exc).__name__)
        else:
            if status == 200:
                return time.perf_counter() - started, seen
            seen.append(str(status))
        time.sleep(0.05)
    return None, seen


class Server:
    """`python -m harmony serve` on a free port, its output in files; the admin key from the file
    the first start writes it to (`<data.dir>/admin-key`)."""

    def __init__(self, data_dir: str, options: dict[str, str], env: dict[str, str], directory: str) -> None:
        self.port = free_port()
        self.stdout_path = os.path.join(directory, "serve.out")
        self.log_path = os.path.join(directory, "serve.log")
        extra = {config.BY_KEY[k].env: v for k, v in options.items()}
        argv = [sys.executable, "-m", "harmony", "serve", "--data-dir", data_dir,
                "--server-port", str(self.port), "--library-scan-interval", "0"]  # fmt: skip
        self.started = time.perf_counter()
        with open(self.stdout_path, "wb") as out, open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env={**env, **extra}, cwd=directory
            )
        self.pid = self.proc.pid
        self.key = self._key(os.path.join(data_dir, "admin-key"))

    def _key(self, path: str) -> str:
        while time.perf_counter() - self.started < START_TIMEOUT:
            with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as handle:
                text = handle.read()
                if text.endswith("\n"):
                    return text.strip()
            if self.proc.poll() is not None:
                raise RuntimeError(f"harmony serve exited with {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"harmony serve wrote no admin key within {START_TIMEOUT:.0f} s")

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"harmony serve exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self) -> str:
        with open(self.log_path, "rb") as handle:
            return handle.read()[-3000:].decode("utf-8", "replace")

    def stop(self) -> tuple[int | None, float]:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; the exit code and the seconds it took."""
        started = time.perf_counter()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, time.perf_counter() - started

    def request_log(self) -> dict[str, Any]:
        """The server's own record: request lines by status class, and unhandled errors."""
        classes: Counter[str] = Counter()
        unhandled = 0
        other_errors: Counter[str] = Counter()
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.startswith("{"):
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("event") == "request":
                    classes[f"{int(entry.get('status', 0)) // 100}xx"] += 1
                elif entry.get("event") == "unhandled_error":
                    unhandled += 1
                elif entry.get("level") in ("error", "critical"):
                    other_errors[str(entry.get("event"))] += 1
        return {"classes": dict(classes), "unhandled": unhandled, "errors": dict(other_errors)}


class Sampler:
    """VmRSS of `pid` every SAMPLE_S while running: the largest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            try:
                self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])
            except OSError:
                return

    def __enter__(self) -> Sampler:
        self.peak = proc_status(self.pid)["VmRSS"]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- load generators -----------------------------------------------------------------------------


@dataclass
class Load:
    """One run of the generator: what it sent, what came back, how long it took."""

    generator: str
    connections: int
    seconds: float
    requests: int
    p50: float
    p95: float
    p99: float
    max: float
    statuses: dict[int, int]
    errors: dict[str, int]
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    paths: dict[str, dict[str, float]] = field(default_factory=dict)  # Python client, mixed runs

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def bad(self) -> int:
        """Responses that are neither 2xx nor 3xx."""
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 400)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def statuses_text(self) -> str:
        return ", ".join(f"{n:,}× {s}" for s, n in sorted(self.statuses.items())) or "none"

    def errors_text(self) -> str:
        shown = {k: v for k, v in self.errors.items() if v}
        return ", ".join(f"{n:,} {kind}" for kind, n in sorted(shown.items())) or "none"


_WRK_SCRIPT = """
wrk.headers["X-API-Key"] = "@KEY@"
local paths = {@PATHS@}
local n = 0
statuses = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n = tonumber(args[1]) or 0
end

function request()
  n = n + 1
  return wrk.format(nil, paths[(n % #paths) + 1])
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local pairs_out = {}
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses")) do
      table.insert(pairs_out, string.format("[%d, %d]", status, count))
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us": %d, "requests": %d, "p50": %d, "p95": %d, "p99": %d, "max": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, "statuses": [%s]}\\n',
    summary.duration, summary.requests, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout,
    table.concat(pairs_out, ", ")))
end
"""


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "wrk"


def wrk_load(port: int, key: str, paths: list[str], connections: int, seconds: float, directory: str) -> Load:
    """`wrk` for `seconds` at `connections`, cycling `paths`; statuses counted by the script."""
    script = os.path.join(directory, "bench.lua")
    listed = ", ".join(json.dumps(p) for p in paths)
    with open(script, "w", encoding="utf-8") as handle:
        handle.write(_WRK_SCRIPT.replace("@KEY@", key).replace("@PATHS@", listed))
    threads = min(2, connections)
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
            "--timeout", f"{CLIENT_TIMEOUT:.0f}s", "-s", script,
            f"http://127.0.0.1:{port}{paths[0]}"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + CLIENT_TIMEOUT + 30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(script)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-1500:]} {done.stderr[-1500:]}")
    r = json.loads(line.removeprefix("WRKJSON "))
    statuses: Counter[int] = Counter()
    for status, count in r["statuses"]:
        statuses[status] += count
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Load("wrk", connections, r["duration_us"] / 1e6, r["requests"], r["p50"] / 1000, r["p95"] / 1000,
                r["p99"] / 1000, r["max"] / 1000, dict(statuses), r["errors"], client_cpu_s=cpu)  # fmt: skip


def python_load(
    port: int, key: str, paths: list[str], connections: int, seconds: float, directory: str
) -> Load:
    """One thread per connection, each an `http.client` keep-alive connection sending GETs of
    `paths` in turn until `seconds` have passed; a failed connection is counted and replaced."""
    headers = {"X-API-Key": key}
    barrier = threading.Barrier(connections + 1)
    results: list[tuple[list[tuple[int, float]], Counter[int], Counter[str]]] = []
    lock = threading.Lock()
    deadline = [0.0]

    def worker(offset: int) -> None:
        samples: list[tuple[int, float]] = []  # (path index, seconds)
        statuses: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        conn: http.client.HTTPConnection | None = None
        n = offset
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            index = n % len(paths)
            n += 1
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
                try:
                    conn.connect()
                except OSError:
                    errors["connect"] += 1
                    conn = None
                    time.sleep(0.01)
                    continue
            started = time.perf_counter()
            try:
                conn.request("GET", paths[index], headers=headers)
                response = conn.getresponse()
                response.read()
            except TimeoutError:
                errors["timeout"] += 1
                conn.close()
                conn = None
                continue
            except (OSError, http.client.HTTPException) as exc:
                errors["write" if isinstance(exc, BrokenPipeError) else "read"] += 1
                conn.close()
                conn = None
                continue
            samples.append((index, time.perf_counter() - started))
            statuses[response.status] += 1
            if response.will_close:  # the server asked to close: open another
                conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            results.append((samples, statuses, errors))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    cpu = time.process_time()
    started = time.perf_counter()
    deadline[0] = started + seconds
    barrier.wait()
    for t in threads:
        t.join(seconds + CLIENT_TIMEOUT + 30)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    samples = [s for r in results for s in r[0]]
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter({"connect": 0, "read": 0, "write": 0, "timeout": 0})
    for _, s, e in results:
        statuses.update(s)
        errors.update(e)
    times = [t for _, t in samples]
    cuts = quantiles(times)
    per_path: dict[str, dict[str, float]] = {}
    if len(paths) > 1:
        for index, path in enumerate(paths):
            mine = [t for i, t in samples if i == index]
            if mine:
                c = quantiles(mine)
                per_path[path] = {
                    "n": len(mine),
                    "p50": c[0],
                    "p95": c[1],
                    "p99": c[2],
                    "max": max(mine) * 1000,
                }
    return Load("python", connections, wall, len(times), cuts[0], cuts[1], cuts[2],
                max(times, default=0.0) * 1000, dict(statuses), dict(errors), client_cpu_s=cpu,
                paths=per_path)  # fmt: skip


def quantiles(times: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 in ms."""
    if len(times) < 2:
        only = times[0] * 1000 if times else 0.0
        return only, only, only
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


Generator = Callable[[int, str, list[str], int, float, str], Load]


def measured(gen: Generator, server: Server, paths: list[str], connections: int, sizes: Sizes,
             seconds: float, directory: str) -> Load:  # fmt: skip
    """An unrecorded warm-up, then the recorded run with the server's CPU over it."""
    if sizes.warmup_s:  # the Python client whatever the generator: wrk counts whole seconds
        python_load(server.port, server.key, paths, min(connections, CONNECTIONS), sizes.warmup_s, directory)
    cpu = proc_cpu(server.pid)
    result = gen(server.port, server.key, paths, connections, seconds, directory)
    result.server_cpu_s = proc_cpu(server.pid) - cpu
    server.alive()
    return result


# --- children ------------------------------------------------------------------------------------


def child_fakes(spec: dict[str, Any]) -> None:
    """Start the fakes, print Harmony's options for them, serve until stdin closes."""
    from harmony.fakes import start_fakes

    fakes = start_fakes(spec["downloads"])
    try:
        print(json.dumps(fakes.harmony_options("http://127.0.0.1:8337/auth/spotify/callback")), flush=True)
        sys.stdin.read()
    finally:
        fakes.stop()


def bench_config(spec: dict[str, Any]) -> config.Config:
    values = {"data.dir": spec["data"], "log.format": "text", "log.level": "warning"}
    values.update(spec.get("options", {}))
    return config.load(None, {}, values)


def child_fill(spec: dict[str, Any]) -> dict[str, Any]:
    """The database as `tools/bench/ui.py` fills it: items, events, acquisition, library."""
    import ui as ui_bench  # tools/bench/ui.py

    from harmony.context import opened

    rng = random.Random(SEED)
    with opened(bench_config(spec)) as ctx:
        started = time.perf_counter()
        counts = ui_bench.populate(ctx, spec["items"], rng)
        items_s = time.perf_counter() - started
        tracks_s = ui_bench.populate_library(ctx, spec["tracks"], rng)
        db = ctx.db
        counts.update(
            items_s=items_s,
            tracks_s=tracks_s,
            tracks=library.count_tracks(db),
            transfers=int(db.scalar("SELECT count(*) FROM transfers")),
            jobs=int(db.scalar("SELECT count(*) FROM jobs")),
            artists=int(db.scalar("SELECT count(*) FROM artists")),
            states={
                row["state"]: int(row["n"])
                for row in db.query("SELECT state, count(*) AS n FROM wanted_items GROUP BY state")
            },
        )
        path = ctx.config.database_path
    counts["database_bytes"] = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    return counts


def child_trace(spec: dict[str, Any]) -> dict[str, Any]:
    """Every endpoint through the app, one request at a time: its time, the functions it spends
    it in, each statement it runs with its time and plan."""
    import cProfile
    import pstats

    from client import Client  # tests/client.py

    from harmony.context import opened
    from harmony.web import make_app

    out: dict[str, Any] = {}
    sink = open(os.path.join(spec["data"], "trace.log"), "w", encoding="utf-8")  # noqa: SIM115
    logsetup.configure("info", "json", sink)  # the request log line, as the server writes it
    with sink, opened(bench_config(spec)) as ctx:
        client = Client(make_app(ctx), spec["key"])
        conn = ctx.db.conn()
        for name, path, _ in ENDPOINTS:
            times = []
            for n in range(5 + spec["calls"]):
                started = time.perf_counter()
                response = client.get(path)
                elapsed = time.perf_counter() - started
                if n >= 5:
                    times.append(elapsed)
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(10):
                client.get(path)
            profile.disable()
            stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
            own = sorted(stats.items(), key=lambda kv: -kv[1][2])[:5]
            top = [{"function": f"{Path(f).name}:{line} {fn}", "calls": c[1] / 10, "own_ms": c[2] / 10 * 1000}
                   for (f, line, fn), c in own]  # fmt: skip
            seen: dict[str, list[Any]] = {}  # sql -> [calls, first bindings]

            def trace(cursor: apsw.Cursor, sql: str, args: Any, seen: dict[str, list[Any]] = seen) -> bool:
                seen.setdefault(sql, [0, args or ()])[0] += 1
                return True

            conn.exec_trace = trace
            try:
                client.get(path)
            finally:
                conn.exec_trace = None
            found = []
            for sql, (calls, args) in seen.items():
                plan: list[str] = []
                per_call = 0.0
                if sql.lstrip().upper().startswith(("SELECT", "WITH")):
                    plan = [row["detail"] for row in ctx.db.query("EXPLAIN QUERY PLAN " + sql, args)]
                    runs = []
                    for _ in range(7):
                        started = time.perf_counter()
                        conn.execute(sql, args).fetchall()
                        runs.append(time.perf_counter() - started)
                    per_call = statistics.median(runs) * 1000
                found.append(
                    {"sql": " ".join(sql.split()), "plan": plan, "calls": calls, "ms": per_call * calls}
                )
            found.sort(key=lambda s: -s["ms"])
            p50, p95, _ = quantiles(times)
            out[name] = {"status": response.status, "bytes": len(response.body), "p50": p50, "p95": p95,
                         "statements": found, "top": top}  # fmt: skip
    return out


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"fill": child_fill, "trace": child_trace}


def child_main(name: str) -> None:
    logsetup.configure("warning", "text")
    if name == "fakes":
        child_fakes(json.loads(sys.stdin.readline()))
        return
    spec = json.load(sys.stdin)
    print(json.dumps(CHILDREN[name](spec), default=str))


# --- the run -------------------------------------------------------------------------------------


def settle(server: Server, limit: float) -> dict[str, Any]:
    """Wait until the server spends under 5 % of a core for a second, at most `limit` seconds;
    returns the CPU share of the last second and whether it settled."""
    started = time.perf_counter()
    share = 1.0
    while True:
        cpu = proc_cpu(server.pid)
        time.sleep(1.0)
        share = proc_cpu(server.pid) - cpu
        if share < 0.05 or time.perf_counter() - started >= limit:
            break
    return {"cpu_share": share, "settled": share < 0.05, "waited_s": time.perf_counter() - started}


def run(sizes: Sizes, gen: Generator, directory: str) -> dict[str, Any]:
    env = child_env(directory)
    data = os.path.join(directory, "data")
    r: dict[str, Any] = {"load_start": load_average()}
    with fakes_process(directory, env) as options:
        fill = run_child("fill", {"data": data, "items": sizes.items, "tracks": sizes.tracks}, env)
        r["fill"] = fill
        print(f"filled: {fill['items']:,} items, {fill['tracks']:,} tracks in "
              f"{fill['items_s'] + fill['tracks_s']:.0f} s", flush=True)  # fmt: skip
        server = Server(data, options, env, directory)
        try:
            live_s, _ = first_200(server.port, "/live", server.key, START_TIMEOUT)
            r["start_s"] = time.perf_counter() - server.started
            ready_s, ready_seen = first_200(server.port, "/ready", server.key, READY_TIMEOUT)
            r["ready"] = {"after_s": ready_s, "before": Counter(ready_seen)}
            if live_s is None:
                raise RuntimeError(f"/live never answered 200:\n{server.tail()}")
            r["settle"] = settle(server, sizes.settle_s)
            r["idle"] = proc_status(server.pid)
            print(
                f"idle: {r['idle']['VmRSS']:.0f} MB RSS, {r['settle']['cpu_share'] * 100:.0f} % CPU",
                flush=True,
            )

            cases: dict[str, Load] = {}
            with Sampler(server.pid) as sampler:
                for name, path, _ in ENDPOINTS:
                    load = measured(gen, server, [path], CONNECTIONS, sizes, sizes.case_s, directory)
                    cases[name] = load
                    print(f"{path:40} {load.rps:8,.0f} req/s  p50 {load.p50:7.1f}  p95 {load.p95:7.1f} ms  "
                          f"{load.statuses_text()}; errors {load.errors_text()}", flush=True)  # fmt: skip
            r["cases"] = cases
            r["loaded"] = dict(proc_status(server.pid), peak=sampler.peak)

            paths = [path for _, path, _ in ENDPOINTS]
            with Sampler(server.pid) as sampler:
                storm = measured(gen, server, paths, STORM_CONNECTIONS, sizes, sizes.storm_s, directory)
            r["storm"] = storm
            ended = time.perf_counter()
            r["stormed"] = dict(proc_status(server.pid), peak=sampler.peak)
            print(f"storm at {STORM_CONNECTIONS}: {storm.rps:,.0f} req/s p95 {storm.p95:.0f} ms; "
                  f"{storm.statuses_text()}; errors {storm.errors_text()}", flush=True)  # fmt: skip

            live_after, live_seen = first_200(server.port, "/live", server.key, CLIENT_TIMEOUT)
            ready_after, ready_seen = first_200(server.port, "/ready", server.key, CLIENT_TIMEOUT)
            r["after"] = {
                "live_s": live_after, "live_seen": Counter(live_seen),
                "ready_s": ready_after, "ready_seen": Counter(ready_seen),
                "since_storm_s": time.perf_counter() - ended,
            }  # fmt: skip
            recovery = {}
            for name in ("live", "wanted"):
                path = next(p for n, p, _ in ENDPOINTS if n == name)
                recovery[name] = measured(gen, server, [path], CONNECTIONS, sizes, sizes.case_s, directory)
            r["recovery"] = recovery
            time.sleep(sizes.settle_s / 2)
            r["final"] = proc_status(server.pid)
            r["load_end"] = load_average()
        finally:
            r["exit"], r["stop_s"] = server.stop()
        r["log"] = server.request_log()
        trace_spec = {"data": data, "key": server.key, "calls": sizes.trace_calls, "options": options}
        r["trace"] = run_child("trace", trace_spec, env)
    return r


# --- report --------------------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def storm_ok(r: dict[str, Any]) -> bool:
    storm: Load = r["storm"]
    return storm.bad == 0 and storm.failed == 0


def recovered(r: dict[str, Any]) -> dict[str, bool]:
    out = {}
    for name, load in r["recovery"].items():
        before: Load = r["cases"][name]
        out[name] = (
            load.bad == 0
            and load.failed == 0
            and (load.p95 <= max(TARGET_P95_MS, before.p95 * RECOVERY_FACTOR))
        )
    return out


def report(r: dict[str, Any], sizes: Sizes, quick: bool, generator: str, elapsed: float) -> list[str]:
    fill, cases, storm = r["fill"], r["cases"], r["storm"]
    trace = r["trace"]
    mode = "`--quick`: smaller database, shorter runs" if quick else "full sizes"
    labels = {name: (path, what) for name, path, what in ENDPOINTS}
    case_rows = [
        Row(
            f"`{labels[name][0]}` at {CONNECTIONS} connections: p95",
            f"**{ms(load.p95)} ms** (p50 {ms(load.p50)}, p99 {ms(load.p99)}; {load.rps:,.0f} req/s)",
            f"p95 < {TARGET_P95_MS:.0f} ms",
            load.p95 < TARGET_P95_MS and load.bad == 0 and load.failed == 0,
        )
        for name, load in cases.items()
    ]
    ok_recovery = recovered(r)
    after = r["after"]
    summary = [
        *case_rows,
        Row(
            f"{STORM_CONNECTIONS} connections, all endpoints in turn: responses other than 2xx/3xx, "
            "connection errors",
            f"**{storm.bad:,} and {storm.failed:,}** of {storm.requests:,} requests "
            f"(p95 {ms(storm.p95)} ms, max {ms(storm.max)} ms)",
            "none (only queueing: slower answers)",
            storm_ok(r),
        ),
        Row(
            "After the storm: `/live` and `/ready` answer 200 on a fresh connection",
            f"`/live` after {after['live_s'] or 0:.2f} s, `/ready` {after['ready_s'] or 0:.2f} s later"
            if after["live_s"] is not None and after["ready_s"] is not None
            else f"**no**: `/live` {after['live_seen']}, `/ready` {after['ready_seen']}",
            "both 200",
            after["live_s"] is not None and after["ready_s"] is not None,
        ),
        *(
            Row(
                f"After the storm: `{labels[name][0]}` at {CONNECTIONS} connections: p95",
                f"**{ms(load.p95)} ms** (before the storm {ms(cases[name].p95)} ms)",
                f"≤ {RECOVERY_FACTOR:g}× before, or < {TARGET_P95_MS:.0f} ms",
                ok_recovery[name],
            )
            for name, load in r["recovery"].items()
        ),
    ]
    targets = [row for row in summary if row.met is not None]
    missed = [row.figure for row in targets if not row.met]
    idle, loaded, stormed, final = r["idle"], r["loaded"], r["stormed"], r["final"]
    gen_text = (
        f"`{r['generator_version']}` (Debian's package), 2 threads"
        if generator == "wrk"
        else "the threaded Python client (one thread and one `http.client` keep-alive connection per "
        "connection, in this script's process)"
    )
    lines = [
        "# API load benchmark",
        "",
        f"Produced by `tools/bench/api.py` ({mode}) on {time.strftime('%Y-%m-%d', time.gmtime())}: "
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {apsw.sqlite_lib_version()}, Harmony {__version__}. Load generator: {gen_text}. "
        f"The whole run took {elapsed:.0f} s.",
        "",
        f"**Load average {r['load_start']} at the start, {r.get('load_end', '?')} at the end.** The host "
        "is shared (other test runs use the same 2 cores), and the server, its fakes and the load "
        "generator all run on them: the figures are noisy, latencies especially. Read them as orders of "
        "magnitude and compare the server's CPU per request, which moves least; re-run on a quiet "
        "machine for figures to quote.",
        "",
        f"Targets: {len(targets) - len(missed)} of {len(targets)} met"
        + (f"; not met: {'; '.join(missed)}." if missed else "."),
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
        *(row.cells() for row in summary),
        "",
        "## 1. The service under test",
        "",
        f"- Database: {fill['items']:,} wanted items ({fill['sources']:,} sources, "
        f"{fill['events']:,} events; by state: "
        + ", ".join(f"{s} {n:,}" for s, n in sorted(fill["states"].items()))
        + f") through `wanted.want` and `wanted.transition`, in {fill['items_s']:.1f} s (with "
        f"{fill['artists']} watched artists, {fill['jobs']} jobs, {fill['transfers']:,} downloads and the "
        "rest of the acquisition tables, written with SQL, as `tools/bench/ui.py` fills them); "
        f"{fill['tracks']:,} library tracks through `library.record`, 1,000 a transaction, in "
        f"{fill['tracks_s']:.1f} s. Database {fill['database_bytes'] / 2**20:.0f} MiB.",
        "- `python -m harmony serve` on 127.0.0.1, defaults but `library.scan_interval = 0`: "
        "8 request threads (`server.threads`), up to 2,000 connections (`server.connection_limit`), "
        "waitress's listen backlog of 1,024, keep-alive connections closed after 15 s idle, the JSON "
        "request log at info into a file (every API request writes a line; `/live`, `/ready` and "
        "`/metrics` only at debug). Spotify and slskd are the built-in fakes, in a process of their own.",
        f"- From start to the first 200 from `/live`: {r['start_s']:.1f} s; `/ready` was 200 "
        + (
            f"{r['ready']['after_s']:.1f} s after that"
            if r["ready"]["after_s"] is not None
            else f"**never** within {READY_TIMEOUT:.0f} s ({dict(r['ready']['before'])})"
        )
        + ". The background work runs as in production: the items in state `wanted` are searched on "
        "the fake slskd, downloads polled, readiness probed. "
        + (
            f"The process settled to {r['settle']['cpu_share'] * 100:.0f} % of a core after "
            f"{r['settle']['waited_s']:.0f} s."
            if r["settle"]["settled"]
            else f"It had not settled after {r['settle']['waited_s']:.0f} s: it still used "
            f"{r['settle']['cpu_share'] * 100:.0f} % of a core on background work when the measurements "
            "began, and keeps doing so under them."
        ),
        "- One API key (the admin key `serve` writes to `<data.dir>/admin-key` on its first start) "
        "on every request, so the "
        "failed-authentication throttle never engages.",
        "",
        "## 2. Memory",
        "",
        "From `/proc/<pid>/status` of the `harmony serve` process; the peak under load is the largest "
        f"VmRSS of samples every {SAMPLE_S:g} s; VmHWM is the kernel's high-water mark since start.",
        "",
        "| when | VmRSS (MB) | VmHWM (MB) | threads |",
        "|---|---:|---:|---:|",
        f"| idle, after start | **{idle['VmRSS']:.1f}** | {idle['VmHWM']:.1f} | {idle['Threads']:.0f} |",
        f"| under load, {CONNECTIONS} connections (peak sampled) | **{loaded['peak']:.1f}** | "
        f"{loaded['VmHWM']:.1f} | {loaded['Threads']:.0f} |",
        f"| under load, {STORM_CONNECTIONS} connections (peak sampled) | **{stormed['peak']:.1f}** | "
        f"{stormed['VmHWM']:.1f} | {stormed['Threads']:.0f} |",
        f"| idle again, after the recovery runs | **{final['VmRSS']:.1f}** | {final['VmHWM']:.1f} | "
        f"{final['Threads']:.0f} |",
        "",
        f"## 3. Each endpoint at {CONNECTIONS} connections",
        "",
        f"{CONNECTIONS} keep-alive connections sending the same GET for {sizes.case_s:g} s, after "
        f"{sizes.warmup_s:g} s unrecorded. Latency is per request, sent to read. Server CPU is the "
        "process's user + system time over the run divided by its requests (background work "
        "included); the app column is the same request through `make_app` in process, one at a time, "
        "after the server stopped (section 6): no socket, no waitress, no concurrency.",
        "",
        "| endpoint | what | status | req/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) "
        "| server CPU/req (ms) | server CPU (% of a core) | app alone p50 (ms) | generator CPU (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, load in cases.items():
        path, what = labels[name]
        lines.append(
            f"| `{path}` | {what} | {load.statuses_text()}"
            + (f"; errors: {load.errors_text()}" if load.failed else "")
            + f" | {load.rps:,.0f} | {ms(load.p50)} | **{ms(load.p95)}** | {ms(load.p99)} | {ms(load.max)} "
            f"| {load.server_cpu_s / max(1, load.requests) * 1000:.2f} "
            f"| {load.server_cpu_s / load.seconds * 100:.0f} | {trace[name]['p50']:.2f} "
            f"| {load.client_cpu_s:.1f} |"
        )
    lines += [
        "",
        "Reading it: the figures are closed-loop, so by Little's law the latency at "
        f"{CONNECTIONS} connections is {CONNECTIONS} ÷ req/s. Harmony is one Python process: its 8 request "
        "threads share one interpreter lock, so whatever the number of cores it serves about one "
        "request's worth of Python at a time, and req/s is bounded by 1 ÷ (server CPU per request). "
        f"A p95 under {TARGET_P95_MS:.0f} ms at {CONNECTIONS} connections therefore needs roughly "
        f"{TARGET_P95_MS / CONNECTIONS:.1f} ms of server CPU per request or less, all of waitress, "
        "the guard's key lookup, the handler, the JSON encoding and the request log included.",
        "",
        f"## 4. {STORM_CONNECTIONS} connections",
        "",
        f"{STORM_CONNECTIONS} keep-alive connections for {sizes.storm_s:g} s (after {sizes.warmup_s:g} s "
        "unrecorded), each sending the endpoints above in turn. Waitress accepts every connection (under "
        "`server.connection_limit`) and queues their requests for the 8 threads; the documented "
        "behaviour when more arrive than the threads can serve is that they wait "
        "(`harmony_http_queue_depth`), and past 2,000 connections new ones wait unaccepted in the "
        "listen backlog. No request should fail.",
        "",
        "| figure | measured |",
        "|---|---|",
        f"| requests answered | {storm.requests:,} in {storm.seconds:.1f} s ({storm.rps:,.0f} req/s) |",
        f"| statuses | {storm.statuses_text()} |",
        f"| connection errors (connect, read, write, timeout after {CLIENT_TIMEOUT:.0f} s) | "
        f"{storm.errors_text()} |",
        f"| latency p50 / p95 / p99 / max (ms) | {ms(storm.p50)} / **{ms(storm.p95)}** / {ms(storm.p99)} / "
        f"{ms(storm.max)} |",
        f"| server CPU | {storm.server_cpu_s:.1f} s "
        f"({storm.server_cpu_s / storm.seconds * 100:.0f} % of a core, "
        f"{storm.server_cpu_s / max(1, storm.requests) * 1000:.2f} ms a request) |",
        f"| generator CPU | {storm.client_cpu_s:.1f} s |",
    ]
    if storm.paths:
        lines += [
            "",
            "Per endpoint within the storm (Python client only):",
            "",
            "| endpoint | requests | p50 (ms) | p95 (ms) | max (ms) |",
            "|---|---:|---:|---:|---:|",
            *(
                f"| `{path}` | {p['n']:,.0f} | {ms(p['p50'])} | {ms(p['p95'])} | {ms(p['max'])} |"
                for path, p in storm.paths.items()
            ),
        ]
    log = r["log"]
    lines += [
        "",
        f"The server's own request log over the whole run: {json.dumps(log['classes'], sort_keys=True)} "
        f"(request lines by status class; `/live`, `/ready` and `/metrics` are logged only when they "
        f"fail), {log['unhandled']} `unhandled_error` lines"
        + (f", other error lines: {log['errors']}" if log["errors"] else "")
        + f". It stopped on SIGTERM with exit code {r['exit']} in {r['stop_s']:.1f} s.",
        "",
        "## 5. Recovery",
        "",
        "The storm's connections close when the generator stops; requests still queued run to the end. "
        "`/live` then answered 200 on a fresh connection after "
        + (f"{after['live_s']:.2f} s" if after["live_s"] is not None else "**never**")
        + (f" (before it: {dict(after['live_seen'])})" if after["live_seen"] else "")
        + ", `/ready` "
        + (f"{after['ready_s']:.2f} s later" if after["ready_s"] is not None else "**never**")
        + (f" (before it: {dict(after['ready_seen'])})" if after["ready_seen"] else "")
        + f". Then a burst at {CONNECTIONS} connections, as in section 3:",
        "",
        "| endpoint | status | req/s | p50 (ms) | p95 (ms) | p95 before the storm (ms) | normal again |",
        "|---|---|---:|---:|---:|---:|---|",
        *(
            f"| `{labels[name][0]}` | {load.statuses_text()} | {load.rps:,.0f} | {ms(load.p50)} "
            f"| **{ms(load.p95)}** | {ms(cases[name].p95)} | {'yes' if ok_recovery[name] else '**no**'} |"
            for name, load in r["recovery"].items()
        ),
        "",
        "## 6. Where the time goes: each endpoint in process",
        "",
        "After the server stopped, the same database was opened in process and each endpoint called "
        f"through `make_app` with the same key and the request log at info into a file, {sizes.trace_calls} "
        "times after 5 unrecorded: p50 and p95 of the whole request (guard, handler, JSON encoding, log "
        "line), without the socket, waitress or concurrency. Then 10 calls under cProfile (the functions "
        "with the most time of their own, per request; the profiler roughly doubles the times), and one "
        "call with every statement traced: each SELECT was then run again with the same bindings, its "
        "median of 7 times the calls the request made is its cost a request, next to its plan "
        "(`EXPLAIN QUERY PLAN`). Statements under 0.05 ms a request are left out.",
        "",
        "| endpoint | app p50 (ms) | app p95 (ms) | body (bytes) | statement | calls | ms a request | plan |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for name, _, _ in ENDPOINTS:
        t = trace[name]
        shown = [s for s in t["statements"] if s["ms"] >= 0.05]
        head = f"| `{labels[name][0]}` | {t['p50']:.2f} | {t['p95']:.2f} | {t['bytes']:,} "
        if not shown:
            lines.append(head + "| (none over 0.05 ms) | | | |")
        for n, s in enumerate(shown):
            sql = s["sql"] if len(s["sql"]) <= 160 else s["sql"][:157] + "..."
            sql = sql.replace("|", "\\|")
            cells = f"| `{sql}` | {s['calls']} | {s['ms']:.2f} | {'; '.join(s['plan'])} |"
            lines.append((head if n == 0 else "| | | | ") + cells)
    lines += [
        "",
        "The functions with the most time of their own (cProfile, per request):",
        "",
        "| endpoint | functions (own ms a request, calls a request) |",
        "|---|---|",
        *(
            f"| `{labels[name][0]}` | "
            + "; ".join(f"`{f['function']}` {f['own_ms']:.2f} ms ×{f['calls']:g}" for f in trace[name]["top"])
            + " |"
            for name, _, _ in ENDPOINTS
        ),
    ]
    lines += ["", "## 7. Reading it", "", *reading(r), ""]
    return lines


def reading(r: dict[str, Any]) -> list[str]:
    """The findings, written from the figures of this run."""
    cases: dict[str, Load] = r["cases"]
    storm: Load = r["storm"]
    out = []
    over = [name for name, load in cases.items() if load.p95 >= TARGET_P95_MS]
    labels = {name: path for name, path, _ in ENDPOINTS}
    if over:
        worst = max(over, key=lambda n: cases[n].p95)
        out.append(
            f"- Over the target at {CONNECTIONS} connections: "
            + ", ".join(f"`{labels[n]}` ({ms(cases[n].p95)} ms)" for n in over)
            + f". The worst, `{labels[worst]}`, costs {r['trace'][worst]['p50']:.1f} ms in the app alone "
            "(section 6): the statements listed there are where that goes."
        )
    else:
        out.append(f"- Every endpoint met p95 < {TARGET_P95_MS:.0f} ms at {CONNECTIONS} connections.")
    if storm_ok(r):
        out.append(
            f"- At {STORM_CONNECTIONS} connections nothing failed: {storm.requests:,} requests, every one "
            f"answered 2xx/3xx, no connection refused, reset or timed out; only the latency grew "
            f"(p95 {ms(storm.p95)} ms), which is the documented queueing."
        )
    else:
        out.append(
            f"- At {STORM_CONNECTIONS} connections: {storm.statuses_text()}; connection errors: "
            f"{storm.errors_text()}. Anything but 2xx/3xx here is not documented queueing."
        )
    growth = r["final"]["VmRSS"] - r["idle"]["VmRSS"]
    out.append(
        f"- Memory: {r['idle']['VmRSS']:.0f} MB idle, {r['stormed']['VmHWM']:.0f} MB at the highest, "
        f"{r['final']['VmRSS']:.0f} MB idle again at the end ({growth:+.0f} MB)."
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller database, shorter runs: well under a minute"
    )
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                        help="wrk when on PATH (auto), or the threaded Python client")  # fmt: skip
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench" / "api.md"))
    parser.add_argument("--child", choices=("fakes", *sorted(CHILDREN)), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child)
        return
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    elif generator == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not on PATH (apt-get install wrk), or use --generator python")
    gen: Generator = wrk_load if generator == "wrk" else python_load
    sizes = Sizes.pick(args.quick)
    _raise_fd_limit(STORM_CONNECTIONS * 2 + 256)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="harmony-bench-api-") as directory:
        r = run(sizes, gen, directory)
    r["generator_version"] = wrk_version() if generator == "wrk" else "python"
    lines = report(r, sizes, args.quick, generator, time.perf_counter() - started)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    print(f"wrote {args.out}")


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard)
        )


if __name__ == "__main__":
    main()
