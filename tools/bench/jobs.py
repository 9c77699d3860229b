"""Benchmark of the job queue: throughput with the real worker pool, and lease latency vs queue size.

Run: .venv/bin/python tools/bench/jobs.py [--cycles N] [--out reports/bench/jobs.md]

1. Cycles: one producer thread enqueues N jobs (one transaction each) while a pool of 2
   workers leases and completes them (no-op handler), on a file database in a temporary
   directory; cycles/s = N / time from the first enqueue to the last completion.
2. Lease latency with 1k, 10k and 100k ready jobs queued: the time of `lease()` (a
   `BEGIN IMMEDIATE` transaction) and of the lease query alone, each job completed after.
3. The `EXPLAIN QUERY PLAN` of the lease statement, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import apsw  # noqa: E402

from harmony import jobs  # noqa: E402
from harmony.db import Database  # noqa: E402
from harmony.jobs import Job, Queue, WorkerPool  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
SAMPLES = 500


def bench_cycles(directory: str, cycles: int) -> dict[str, float]:
    db = Database(os.path.join(directory, "cycles.db"))
    db.migrate()
    queue = Queue(db)
    finished = threading.Event()
    done = [0]
    lock = threading.Lock()

    def handler(job: Job) -> None:
        with lock:
            done[0] += 1
            if done[0] == cycles:
                finished.set()

    pool = WorkerPool(queue, {"bench": handler}, threads=2, poll_s=0.5)
    pool.start()
    started = time.perf_counter()
    for n in range(cycles):
        queue.enqueue("bench", {"n": n}, key=f"bench:{n}")
    enqueued = time.perf_counter() - started
    finished.wait(600)
    # Completion happens after the handler returns: wait until the last one is committed.
    while queue.count(state="done") < cycles:
        time.sleep(0.001)
    elapsed = time.perf_counter() - started
    pool.stop(5)
    db.close()
    return {"cycles": cycles, "seconds": elapsed, "per_second": cycles / elapsed, "enqueue_seconds": enqueued}


def bench_drain(directory: str, size: int) -> dict[str, float]:
    """The pool alone: `size` jobs queued beforehand, drained by 2 workers (lease + complete)."""
    db = Database(os.path.join(directory, "drain.db"))
    db.migrate()
    fill(db, size)
    queue = Queue(db)
    pool = WorkerPool(queue, {"bench": lambda job: None}, threads=2, poll_s=0.5)
    started = time.perf_counter()
    pool.start()
    while queue.count(state="done") < size:
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    pool.stop(5)
    db.close()
    return {"jobs": size, "seconds": elapsed, "per_second": size / elapsed}


def fill(db: Database, size: int) -> None:
    now = time.time()
    with db.write() as conn:
        conn.executemany(
            "INSERT INTO jobs (type, payload, priority, state, idem_key, run_at, max_attempts, created_at,"
            " updated_at) VALUES ('bench', ?, ?, 'ready', ?, ?, 5, ?, ?)",
            ((f'{{"n":{n}}}', n % 3, f"fill:{n}", now - n % 1000, now, now) for n in range(size)),
        )


def bench_lease(directory: str, size: int) -> dict[str, float]:
    db = Database(os.path.join(directory, f"lease-{size}.db"))
    db.migrate()
    fill(db, size)
    queue = Queue(db)
    lease_times, query_times = [], []
    conn = db.conn()
    for _ in range(SAMPLES):
        now = time.time()
        t0 = time.perf_counter()
        list(conn.execute(jobs.SQL_NEXT, (now,)))
        query_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        job = queue.lease()
        lease_times.append(time.perf_counter() - t0)
        assert job is not None
        queue.complete(job)
    ready = queue.count(state="ready")
    db.close()
    return {
        "size": size,
        "ready_after": ready,
        "lease_p50_ms": statistics.median(lease_times) * 1000,
        "lease_p95_ms": statistics.quantiles(lease_times, n=20)[18] * 1000,
        "query_p50_us": statistics.median(query_times) * 1e6,
        "query_p95_us": statistics.quantiles(query_times, n=20)[18] * 1e6,
    }


def query_plan(directory: str) -> list[str]:
    db = Database(os.path.join(directory, "plan.db"))
    db.migrate()
    rows = db.query("EXPLAIN QUERY PLAN " + jobs.SQL_LEASE, ("token", 0.0, 0.0, 0.0))
    db.close()
    return [row["detail"] for row in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20_000)
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench" / "jobs.md"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="harmony-bench-") as directory:
        cycles = bench_cycles(directory, args.cycles)
        print(f"cycles: {cycles['per_second']:.0f}/s", flush=True)
        drain = bench_drain(directory, args.cycles)
        print(f"drain: {drain['per_second']:.0f}/s", flush=True)
        leases = []
        for size in SIZES:
            leases.append(bench_lease(directory, size))
            print(f"lease with {size}: p50 {leases[-1]['lease_p50_ms']:.3f} ms", flush=True)
        plan = query_plan(directory)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    lines = [
        "# Job queue benchmark",
        "",
        f"Produced by `tools/bench/jobs.py` on {time.strftime('%Y-%m-%d', time.gmtime())}: "
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}, "
        f"SQLite {apsw.sqlite_lib_version()}, APSW {apsw.apsw_version()}; file database in WAL mode "
        "with `synchronous = NORMAL`.",
        "",
        "## Throughput: enqueue → lease → complete",
        "",
        "One producer thread enqueues jobs (each with an idempotency key, one transaction each) while "
        "the worker pool (2 threads, no-op handler) leases and completes them: three write "
        "transactions per cycle.",
        "",
        "| jobs | seconds | cycles/s | enqueue phase (s) |",
        "|---:|---:|---:|---:|",
        f"| {cycles['cycles']:,} | {cycles['seconds']:.2f} | **{cycles['per_second']:,.0f}** "
        f"| {cycles['enqueue_seconds']:.2f} |",
        "",
        "Target: at least 2,000 cycles/s on a 2-core host.",
        "",
        "The workers alone (the same number of jobs queued beforehand, then drained by the pool: "
        "lease + complete, two write transactions a job):",
        "",
        "| jobs | seconds | jobs/s |",
        "|---:|---:|---:|",
        f"| {drain['jobs']:,} | {drain['seconds']:.2f} | {drain['per_second']:,.0f} |",
        "",
        "## Lease latency as the queue grows",
        "",
        f"{SAMPLES} leases (each completed before the next) with the queue pre-filled with ready jobs "
        "over three priorities. `lease()` is the whole `BEGIN IMMEDIATE` transaction (update + "
        "commit); the query column times the `SELECT` that picks the job.",
        "",
        "| ready jobs | lease p50 (ms) | lease p95 (ms) | query p50 (µs) | query p95 (µs) |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {r['size']:,} | {r['lease_p50_ms']:.3f} | {r['lease_p95_ms']:.3f} "
            f"| {r['query_p50_us']:.1f} | {r['query_p95_us']:.1f} |"
            for r in leases
        ),
        "",
        "The lease time stays flat from 1k to 100k queued jobs: the statement walks the partial index "
        "`jobs_ready (priority DESC, run_at, id) WHERE state = 'ready'` in order and stops at the "
        "first due row. Query plan of the lease statement:",
        "",
        "```",
        *plan,
        "```",
        "",
        "`SCAN ... USING COVERING INDEX jobs_ready` under `LIMIT 1` reads the index from its start and "
        "stops at the first row with `run_at <= now`, so it touches O(log n) pages when the "
        "best-priority jobs are due. (Jobs waiting for a retry time with a higher priority than every "
        "due job are stepped over one by one; their number is bounded by the failures in flight.)",
        "",
        "## Memory",
        "",
        f"Peak RSS of the benchmark process (including the 100k-job table build): {peak_rss_mb:.1f} MB.",
        "",
    ]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
