"""A worker process for the kill -9 test: runs the real worker pool on a file database.

Usage: jobs_child.py DB_PATH. Runs until killed (SIGKILL) or asked to stop (SIGTERM).

Handlers:
- "record" writes its effect in the completion transaction (`Queue.completing`) and, in the
  same transaction, enqueues a follow-up "mark" job keyed by the item; every tenth item fails
  its first attempt, to exercise retries.
- "mark" records its effect idempotently (INSERT OR IGNORE), then the pool completes it.
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import threading
import time

from harmony.db import Database
from harmony.jobs import Job, Queue, WorkerPool

LEASE_S = 1.0


def main(path: str) -> None:
    logging.basicConfig(level=logging.ERROR)  # retries and expired leases are expected here
    db = Database(path)
    queue = Queue(db, lease_s=LEASE_S, max_attempts=50, backoff_base_s=0.02, backoff_cap_s=0.1)

    def record(job: Job) -> None:
        n = job.payload["n"]
        time.sleep(random.uniform(0, 0.004))  # the slow part of real work, outside any transaction
        if n % 10 == 0 and job.attempts == 1:
            raise RuntimeError("first attempt fails")
        with queue.completing(job) as conn:
            conn.execute("INSERT INTO effects (job_id, n) VALUES (?, ?)", (job.id, n))
            queue.enqueue("mark", {"n": n}, key=f"mark:{n}")

    def mark(job: Job) -> None:
        time.sleep(random.uniform(0, 0.002))
        with db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO marks (n) VALUES (?)", (job.payload["n"],))

    pool = WorkerPool(
        queue, {"record": record, "mark": mark}, threads=2, poll_s=0.05, heartbeat_s=LEASE_S / 4
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    pool.start()
    print("started", flush=True)
    stop.wait()
    pool.stop(2)
    db.close()


if __name__ == "__main__":
    main(sys.argv[1])
