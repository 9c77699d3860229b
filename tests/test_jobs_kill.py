"""kill -9 at random moments loses nothing and duplicates nothing.

A child process (`jobs_child.py`) runs the real worker pool on a file database. The test
kills it with SIGKILL several times while it works, restarts it, and at the end checks that
every job is done and every effect is recorded exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harmony.db import Database
from harmony.jobs import Queue

HERE = Path(__file__).parent
ITEMS = 1000
KILLS = 8

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def start_child(path: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    child = subprocess.Popen(
        [sys.executable, str(HERE / "jobs_child.py"), path], env=env, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == b"started"
    return child


def counts(db: Database) -> dict[str, int]:
    return {
        row["state"]: row["n"] for row in db.query("SELECT state, count(*) AS n FROM jobs GROUP BY state")
    }


def test_kill_9_loses_and_duplicates_nothing(tmp_path: Any) -> None:
    path = str(tmp_path / "harmony.db")
    db = Database(path)
    db.migrate()
    with db.write() as conn:
        conn.execute(
            "CREATE TABLE effects (id INTEGER PRIMARY KEY, job_id INTEGER NOT NULL, n INTEGER NOT NULL)"
        )
        conn.execute("CREATE TABLE marks (n INTEGER PRIMARY KEY)")
        queue = Queue(db)
        for n in range(ITEMS):
            queue.enqueue("record", {"n": n}, key=f"record:{n}")
    rng = random.Random()
    deadline = time.monotonic() + 60
    kills_mid_work = 0

    for _ in range(KILLS):
        child = start_child(path)
        time.sleep(rng.uniform(0.05, 0.5))
        before = counts(db)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if before.get("running"):
            kills_mid_work += 1

    child = start_child(path)
    try:
        while time.monotonic() < deadline:
            state = counts(db)
            if state.get("done", 0) == 2 * ITEMS:
                break
            time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        assert child.returncode == 0

    assert counts(db) == {"done": 2 * ITEMS}
    assert kills_mid_work >= 1  # at least one kill landed while jobs were leased
    per_item = db.query("SELECT n, count(*) AS c FROM effects GROUP BY n HAVING c != 1")
    assert per_item == []
    assert db.scalar("SELECT count(DISTINCT n) FROM effects") == ITEMS
    # The effect row belongs to the attempt that completed the job.
    assert (
        db.scalar("SELECT count(*) FROM effects e JOIN jobs j ON j.id = e.job_id WHERE j.state = 'done'")
        == ITEMS
    )
    assert db.scalar("SELECT count(*) FROM marks") == ITEMS
    assert db.scalar("SELECT count(*) FROM jobs WHERE type = 'mark'") == ITEMS  # one follow-up per item
    db.close()
