"""The durable job queue: enqueue, lease, retry, dead letters, recovery and the worker pool."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from conftest import Clock
from hypothesis import given
from hypothesis import strategies as st

from harmony import jobs
from harmony.db import Database
from harmony.errors import BadInput, Conflict, NotFound
from harmony.jobs import GiveUp, Job, Queue, WorkerPool, backoff


@pytest.fixture
def queue(db: Database, clock: Clock) -> Queue:
    return Queue(db, clock=clock, lease_s=60, max_attempts=3, backoff_base_s=10, rand=lambda: 0.5)


# --- backoff ---------------------------------------------------------------------------------


@given(
    attempt=st.integers(1, 10_000),
    base=st.floats(0.001, 1000),
    extra=st.floats(0, 100_000),
    u=st.floats(0, 1, exclude_max=True),
)
def test_backoff_is_bounded_and_jittered_within_its_step(
    attempt: int, base: float, extra: float, u: float
) -> None:
    cap = base + extra
    delay = backoff(attempt, base_s=base, cap_s=cap, u=u)
    step = min(cap, base * 2.0 ** min(attempt - 1, 64))
    assert step / 2 <= delay <= step * (1 + 1e-9)
    assert 0 < delay <= cap * (1 + 1e-9)


@given(attempt=st.integers(1, 200), base=st.floats(0.01, 100), u=st.floats(0, 1, exclude_max=True))
def test_backoff_never_shrinks_as_attempts_grow(attempt: int, base: float, u: float) -> None:
    # At the same point of the jitter range, a later attempt never waits less.
    cap = base * 1000
    assert backoff(attempt + 1, base_s=base, cap_s=cap, u=u) >= backoff(attempt, base_s=base, cap_s=cap, u=u)


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        backoff(0)
    with pytest.raises(ValueError):
        backoff(1, base_s=10, cap_s=5)


# --- enqueue and idempotency -------------------------------------------------------------------


def test_enqueue_stores_a_ready_job(queue: Queue, clock: Clock) -> None:
    job = queue.enqueue("scan", {"artist": "a1", "n": 1}, priority=5)
    assert job.state == "ready" and job.attempts == 0 and job.max_attempts == 3
    assert job.payload == {"artist": "a1", "n": 1} and job.run_at == clock.t
    assert queue.get(job.id) == job


def test_same_key_while_live_returns_the_same_job_unchanged(queue: Queue) -> None:
    first = queue.enqueue("scan", {"v": 1}, key="scan:a1")
    again = queue.enqueue("scan", {"v": 2}, key="scan:a1", priority=9)
    assert again == first
    leased = queue.lease()
    assert leased is not None
    running = queue.enqueue("scan", {"v": 3}, key="scan:a1")
    assert running.id == first.id and running.state == "running" and running.payload == {"v": 1}
    assert queue.count() == 1


def test_done_job_frees_its_key(queue: Queue) -> None:
    first = queue.enqueue("scan", key="scan:a1")
    leased = queue.lease()
    assert leased is not None and queue.complete(leased)
    second = queue.enqueue("scan", key="scan:a1")
    assert second.id != first.id and second.state == "ready"
    assert queue.enqueue("scan", key="scan:a1").id == second.id


def test_dead_job_holds_its_key_until_requeued_or_purged(queue: Queue) -> None:
    first = queue.enqueue("scan", key="k")
    leased = queue.lease()
    assert leased is not None
    queue.fail(leased, "bad", give_up=True)
    held = queue.enqueue("scan", key="k")
    assert held.id == first.id and held.state == "dead"
    queue.purge([first.id])
    assert queue.enqueue("scan", key="k").id != first.id


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("",), {}),
        (("Bad Type",), {}),
        (("x" * 65,), {}),
        (("scan", ["not", "a", "dict"]), {}),
        (("scan", {"f": float("nan")}), {}),
        (("scan", {"o": object()}), {}),
        (("scan", {"big": "x" * 70_000}), {}),
        (("scan",), {"key": ""}),
        (("scan",), {"key": "k" * 201}),
        (("scan",), {"max_attempts": 0}),
    ],
)
def test_enqueue_rejects_bad_input_and_stores_nothing(
    queue: Queue, args: tuple[Any, ...], kwargs: Any
) -> None:
    with pytest.raises(BadInput):
        queue.enqueue(*args, **kwargs)
    assert queue.count() == 0


# --- leasing -----------------------------------------------------------------------------------


def test_lease_order_is_priority_then_due_time_then_age(queue: Queue, clock: Clock) -> None:
    low = queue.enqueue("t", priority=0)
    high_late = queue.enqueue("t", priority=5, run_at=clock.t - 1)
    high_early = queue.enqueue("t", priority=5, run_at=clock.t - 10)
    future = queue.enqueue("t", priority=9, run_at=clock.t + 100)
    order = []
    while (job := queue.lease()) is not None:
        order.append(job.id)
    assert order == [high_early.id, high_late.id, low.id]
    clock.advance(100)
    job = queue.lease()
    assert job is not None and job.id == future.id


def test_lease_sets_running_with_a_fresh_token(queue: Queue, clock: Clock) -> None:
    queue.enqueue("t")
    job = queue.lease()
    assert job is not None
    assert job.state == "running" and job.attempts == 1 and job.lease_until == clock.t + 60
    assert job.lease_token and queue.lease() is None


def test_lease_query_uses_the_ready_index(db: Database) -> None:
    plan = " ".join(row["detail"] for row in db.query("EXPLAIN QUERY PLAN " + jobs.SQL_LEASE, ("t", 1, 1, 1)))
    assert "jobs_ready" in plan and "TEMP B-TREE" not in plan


def test_concurrent_leases_never_share_a_job(tmp_path: Any) -> None:
    # Separate Database objects: separate connections, as two processes would have.
    path = str(tmp_path / "shared.db")
    setup = Database(path)
    setup.migrate()
    queue = Queue(setup)
    for n in range(300):
        queue.enqueue("t", {"n": n})
    leased: list[int] = []
    lock = threading.Lock()

    def lease_all() -> None:
        database = Database(path)
        mine = Queue(database)
        try:
            while (job := mine.lease()) is not None:
                with lock:
                    leased.append(job.id)
        finally:
            database.close()

    threads = [threading.Thread(target=lease_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(leased) == 300 and len(set(leased)) == 300
    setup.close()


# --- outcomes ----------------------------------------------------------------------------------


def test_fail_retries_with_backoff_then_dead_letters(queue: Queue, clock: Clock) -> None:
    job = queue.enqueue("t")
    delays = []
    for attempt in (1, 2):
        leased = queue.lease()
        assert leased is not None and leased.attempts == attempt
        failed = queue.fail(leased, f"error {attempt}")
        assert failed is not None and failed.state == "ready" and failed.last_error == f"error {attempt}"
        delays.append(failed.run_at - clock.t)
        assert queue.lease() is None  # not before its retry time
        clock.advance(failed.run_at - clock.t)
    assert delays == [backoff(1, base_s=10, u=0.5), backoff(2, base_s=10, u=0.5)]
    leased = queue.lease()
    assert leased is not None and leased.attempts == 3
    dead = queue.fail(leased, "error 3")
    assert dead is not None and dead.state == "dead" and dead.last_error == "error 3"
    assert dead.finished_at == clock.t
    assert queue.get(job.id) == dead


def test_fail_with_give_up_dead_letters_at_once(queue: Queue) -> None:
    queue.enqueue("t")
    job = queue.lease()
    assert job is not None
    dead = queue.fail(job, "no such artist", give_up=True)
    assert dead is not None and dead.state == "dead" and dead.attempts == 1


def test_stale_worker_cannot_touch_a_reclaimed_job(queue: Queue, clock: Clock) -> None:
    queue.enqueue("t")
    stale = queue.lease()
    assert stale is not None
    clock.advance(61)
    assert queue.recover() == 1
    fresh = queue.lease()
    assert fresh is not None and fresh.id == stale.id and fresh.lease_token != stale.lease_token
    assert not queue.heartbeat(stale)
    assert not queue.complete(stale)
    assert queue.fail(stale, "late") is None
    assert not queue.release(stale)
    with pytest.raises(jobs.LeaseLost), queue.completing(stale):
        pass
    assert queue.complete(fresh)


def test_heartbeat_keeps_the_lease(queue: Queue, clock: Clock) -> None:
    queue.enqueue("t")
    job = queue.lease()
    assert job is not None
    for _ in range(5):
        clock.advance(50)
        assert queue.heartbeat(job)
        assert queue.recover() == 0
    assert queue.complete(job)


def test_completing_commits_the_effect_with_the_completion(queue: Queue, db: Database) -> None:
    with db.write() as conn:
        conn.execute("CREATE TABLE effects (job_id INTEGER PRIMARY KEY)")
    queue.enqueue("t")
    queue.enqueue("t")
    first, second = queue.lease(), queue.lease()
    assert first is not None and second is not None
    with queue.completing(first) as conn:
        conn.execute("INSERT INTO effects VALUES (?)", (first.id,))
    assert queue.complete(first)  # the pool's own completion afterwards is a no-op
    with pytest.raises(RuntimeError), queue.completing(second) as conn:
        conn.execute("INSERT INTO effects VALUES (?)", (second.id,))
        raise RuntimeError("handler broke after writing")
    assert db.query("SELECT job_id FROM effects") == [{"job_id": first.id}]
    assert queue.get(first.id).state == "done"  # type: ignore[union-attr]
    assert queue.get(second.id).state == "running"  # type: ignore[union-attr]


def test_recover_returns_expired_leases_and_dead_letters_on_the_last_attempt(
    queue: Queue, clock: Clock
) -> None:
    a = queue.enqueue("t")
    b = queue.enqueue("t", max_attempts=1)
    assert queue.lease() and queue.lease()
    clock.advance(59)
    assert queue.recover() == 0
    clock.advance(1)
    assert queue.recover() == 2
    job_a, job_b = queue.get(a.id), queue.get(b.id)
    assert job_a is not None and job_a.state == "ready" and job_a.attempts == 1
    assert job_a.last_error == "lease expired"
    assert job_b is not None and job_b.state == "dead"


def test_release_does_not_count_the_attempt(queue: Queue) -> None:
    queue.enqueue("t")
    job = queue.lease()
    assert job is not None and queue.release(job)
    again = queue.lease()
    assert again is not None and again.attempts == 1


# --- requeue and purge -------------------------------------------------------------------------


def _dead(queue: Queue, type: str = "t") -> Job:
    queue.enqueue(type)
    job = queue.lease()
    assert job is not None
    dead = queue.fail(job, "boom", give_up=True)
    assert dead is not None
    return dead


def test_requeue_by_ids_and_by_type(queue: Queue, clock: Clock) -> None:
    a, b, c = _dead(queue, "t"), _dead(queue, "t"), _dead(queue, "u")
    clock.advance(5)
    assert queue.requeue([a.id]) == [a.id]
    job = queue.get(a.id)
    assert job is not None and job.state == "ready" and job.attempts == 0 and job.run_at == clock.t
    assert queue.requeue(type="t") == [b.id]
    assert queue.requeue(type="t") == []
    assert queue.purge(type="u") == [c.id] and queue.get(c.id) is None


@pytest.mark.parametrize("op", ["requeue", "purge"])
def test_requeue_and_purge_change_nothing_on_bad_input(queue: Queue, op: str) -> None:
    dead = _dead(queue)
    queue.enqueue("t")
    live = queue.lease()
    assert live is not None
    before = queue.list_jobs(limit=100)
    action = getattr(queue, op)
    with pytest.raises(NotFound):
        action([dead.id, 999])
    with pytest.raises(Conflict):
        action([dead.id, live.id])
    for bad in ([], ["1"], [True], list(range(1, 1002))):
        with pytest.raises(BadInput):
            action(bad)
    with pytest.raises(BadInput):
        action()
    with pytest.raises(BadInput):
        action([dead.id], type="t")
    assert queue.list_jobs(limit=100) == before


def test_list_filters_and_pages_by_id(queue: Queue) -> None:
    ids = [queue.enqueue("a" if n % 2 else "b").id for n in range(7)]
    assert [job.id for job in queue.list_jobs(limit=3)] == ids[:3]
    assert [job.id for job in queue.list_jobs(limit=3, after=ids[2])] == ids[3:6]
    assert [job.id for job in queue.list_jobs(type="a")] == ids[1::2]
    assert queue.list_jobs(state="dead") == []
    with pytest.raises(BadInput):
        queue.list_jobs(state="zombie")


def test_stats_count_every_state(queue: Queue) -> None:
    _dead(queue, "t")
    queue.enqueue("u")
    stats = queue.stats()
    assert stats["by_state"] == {"ready": 1, "running": 0, "done": 0, "dead": 1}
    assert stats["by_type"]["t"]["dead"] == 1 and stats["by_type"]["u"]["ready"] == 1
    assert stats["total"] == 2


def test_delete_done_keeps_recent_and_unfinished_jobs(queue: Queue, clock: Clock) -> None:
    old = queue.enqueue("t")
    job = queue.lease()
    assert job is not None and queue.complete(job)
    clock.advance(100)
    queue.enqueue("t")
    assert queue.delete_done(150) == 0
    assert queue.delete_done(50) == 1 and queue.get(old.id) is None and queue.count() == 1


# --- the worker pool ---------------------------------------------------------------------------


def test_run_one_completes_fails_and_dead_letters_unknown_types(queue: Queue) -> None:
    seen: list[dict[str, Any]] = []

    def ok(job: Job) -> None:
        seen.append(job.payload)

    def broken(job: Job) -> None:
        raise ValueError("nope")

    def hopeless(job: Job) -> None:
        raise GiveUp("gone for good")

    pool = WorkerPool(queue, {"ok": ok, "broken": broken, "hopeless": hopeless})
    ids = [queue.enqueue(t, {"t": t}).id for t in ("ok", "broken", "hopeless", "mystery")]
    while pool.run_one() is not None:
        pass
    states = [queue.get(job_id) for job_id in ids]
    assert [job.state for job in states if job] == ["done", "ready", "dead", "dead"]
    assert seen == [{"t": "ok"}]
    assert states[1] and states[1].last_error == "ValueError: nope"
    assert states[2] and states[2].last_error == "GiveUp: gone for good"
    assert states[3] and states[3].last_error == "no handler for job type 'mystery'"


def test_pool_threads_run_jobs_and_stop(db: Database) -> None:
    queue = Queue(db, lease_s=30)
    done = threading.Event()
    count = [0]
    lock = threading.Lock()

    def handler(job: Job) -> None:
        with lock:
            count[0] += 1
            if count[0] == 50:
                done.set()

    pool = WorkerPool(queue, {"t": handler}, threads=2, poll_s=5)
    pool.start()
    try:
        assert pool.is_alive()
        names = {thread.name for thread in threading.enumerate()}
        assert {"harmony-worker-1", "harmony-worker-2", "harmony-jobs-keeper"} <= names
        for n in range(50):
            queue.enqueue("t", {"n": n})  # wakes idle workers; no wait for the 5 s poll
        assert done.wait(10)
    finally:
        started = time.monotonic()
        assert pool.stop(5) == []
    assert time.monotonic() - started < 2
    assert not pool.is_alive()
    assert queue.stats()["by_state"]["done"] == 50


def test_stop_lets_running_jobs_finish_within_the_timeout(db: Database) -> None:
    queue = Queue(db, lease_s=30)
    started, finish = threading.Event(), threading.Event()

    def slow(job: Job) -> None:
        started.set()
        finish.wait(5)

    pool = WorkerPool(queue, {"t": slow}, threads=1, poll_s=0.05)
    pool.start()
    job = queue.enqueue("t")
    assert started.wait(5)
    threading.Timer(0.2, finish.set).start()
    assert pool.stop(3) == []
    final = queue.get(job.id)
    assert final is not None and final.state == "done"


def test_stop_releases_jobs_that_outlive_the_timeout(db: Database) -> None:
    queue = Queue(db, lease_s=30)
    started, finish = threading.Event(), threading.Event()

    def stuck(job: Job) -> None:
        started.set()
        finish.wait(10)

    pool = WorkerPool(queue, {"t": stuck}, threads=1, poll_s=0.05)
    pool.start()
    job = queue.enqueue("t")
    assert started.wait(5)
    assert pool.stop(0.2) == [job.id]
    released = queue.get(job.id)
    assert released is not None and released.state == "ready" and released.attempts == 0
    finish.set()  # the handler finishes late: its outcome is dropped
    time.sleep(0.1)
    after = queue.get(job.id)
    assert after is not None and after.state == "ready"


def test_keeper_heartbeats_long_jobs(db: Database) -> None:
    queue = Queue(db, lease_s=0.3)
    done = threading.Event()

    def long(job: Job) -> None:
        time.sleep(1.0)  # three leases long
        done.set()

    pool = WorkerPool(queue, {"t": long}, threads=1, poll_s=0.05, heartbeat_s=0.05)
    pool.start()
    try:
        job = queue.enqueue("t")
        assert done.wait(5)
        deadline = time.monotonic() + 5
        while (current := queue.get(job.id)) and current.state != "done" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        pool.stop(2)
    final = queue.get(job.id)
    assert final is not None and final.state == "done" and final.attempts == 1


def test_start_recovers_expired_leases(db: Database, clock: Clock) -> None:
    queue = Queue(db, clock=clock, lease_s=10)
    job = queue.enqueue("t")
    assert queue.lease() is not None  # leased by a process that then died
    clock.advance(11)
    ran = threading.Event()
    pool = WorkerPool(queue, {"t": lambda job: ran.set()}, threads=1, poll_s=0.05)
    pool.start()
    try:
        assert ran.wait(5)
    finally:
        pool.stop(1)
    final = queue.get(job.id)
    assert final is not None and final.state == "done" and final.attempts == 2


# --- the HTTP API (fixtures from conftest: ctx, client, keys) -----------------------------------


def _dead_in(ctx: Any, type: str, n: int = 1) -> list[int]:
    ids = []
    for _ in range(n):
        job = ctx.queue.enqueue(type, priority=100)  # leased ahead of anything else queued
        leased = ctx.queue.lease()
        assert leased is not None and leased.id == job.id
        ctx.queue.fail(leased, "boom", give_up=True)
        ids.append(job.id)
    return ids


def _snapshot(ctx: Any) -> list[dict[str, Any]]:
    return ctx.db.query("SELECT * FROM jobs ORDER BY id")  # type: ignore[no-any-return]


def test_api_lists_jobs_by_state_and_type_in_pages(ctx: Any, client: Any, keys: dict[str, str]) -> None:
    ready = [ctx.queue.enqueue("scan", {"n": n}).id for n in range(5)]
    dead = _dead_in(ctx, "import", 2)
    first = client.request("GET", "/api/v1/jobs?limit=3", key=keys["read"])
    assert first.status == 200
    assert [job["id"] for job in first.json["items"]] == ready[:3]
    assert "lease_token" not in first.json["items"][0]
    rest = client.request("GET", f"/api/v1/jobs?limit=3&cursor={first.json['next_cursor']}").json
    assert [job["id"] for job in rest["items"]] == ready[3:] + dead[:1]
    filtered = client.request("GET", "/api/v1/jobs?state=dead&type=import").json
    assert [job["id"] for job in filtered["items"]] == dead and filtered["next_cursor"] is None
    for bad in ("state=zombie", "type=nope", "type=Bad%20Type", "limit=0", "limit=501", "cursor=x"):
        response = client.request("GET", f"/api/v1/jobs?{bad}")
        assert response.status == 400 and response.json["error"]["code"] == "bad_input", bad


def test_api_shows_one_job_and_the_stats(ctx: Any, client: Any) -> None:
    job = ctx.queue.enqueue("scan", {"artist": "a"}, key="scan:a")
    _dead_in(ctx, "import")
    shown = client.request("GET", f"/api/v1/jobs/{job.id}")
    assert shown.status == 200 and shown.json["payload"] == {"artist": "a"} and shown.json["key"] == "scan:a"
    assert client.request("GET", "/api/v1/jobs/999").status == 404
    for bad in ("abc", "0", "-1", "1" * 30):
        assert client.request("GET", f"/api/v1/jobs/{bad}").status == 400
    stats = client.request("GET", "/api/v1/jobs/stats").json
    assert stats["by_state"] == {"ready": 1, "running": 0, "done": 0, "dead": 1} and stats["total"] == 2
    assert stats["by_type"]["import"]["dead"] == 1


@pytest.mark.parametrize(("action", "gone"), [("requeue", False), ("purge", True)])
def test_api_requeues_and_purges_dead_jobs(
    ctx: Any, client: Any, keys: dict[str, str], action: str, gone: bool
) -> None:
    ids = _dead_in(ctx, "import", 3)
    other = _dead_in(ctx, "scan")
    url = f"/api/v1/jobs/dead/{action}"
    assert client.request("POST", url, json_body={"ids": ids[:1]}, key=keys["read"]).status == 403
    one = client.request("POST", url, json_body={"ids": ids[:1]}, key=keys["operator"])
    assert one.status == 200 and one.json["count"] == 1
    by_type = client.request("POST", url, json_body={"type": "import"}, key=keys["operator"])
    assert by_type.status == 200 and by_type.json["count"] == 2
    for job_id in ids:
        job = ctx.queue.get(job_id)
        assert job is None if gone else (job is not None and job.state == "ready" and job.attempts == 0)
    assert ctx.queue.get(other[0]).state == "dead"


@pytest.mark.parametrize("action", ["requeue", "purge"])
def test_api_bad_requeue_or_purge_changes_nothing(ctx: Any, client: Any, action: str) -> None:
    dead = _dead_in(ctx, "import", 2)
    live = ctx.queue.enqueue("import").id
    before = _snapshot(ctx)
    url = f"/api/v1/jobs/dead/{action}"
    cases: list[tuple[Any, int]] = [
        ({"ids": [dead[0], 9999]}, 404),
        ({"ids": [dead[0], live]}, 409),
        ({"type": "nope"}, 422),
        ({"type": 7}, 422),
        ({"ids": []}, 422),
        ({"ids": "1"}, 422),
        ({"ids": ["1"]}, 422),
        ({"ids": [True]}, 422),
        ({"ids": [0]}, 422),
        ({"ids": list(range(1, 1002))}, 422),
        ({"ids": dead, "type": "import"}, 422),
        ({"ids": dead, "force": True}, 422),
        ({}, 422),
    ]
    for body, status in cases:
        response = client.request("POST", url, json_body=body)
        assert response.status == status, body
        assert set(response.json["error"]) == {"code", "message", "details"}
    for raw in (b"not json", b"[1, 2]", b'"ids"'):
        response = client.request("POST", url, body=raw, headers={"Content-Type": "application/json"})
        assert response.status == 400
    assert client.request("POST", url, body=b"{}", headers={"Content-Type": "text/plain"}).status == 415
    assert _snapshot(ctx) == before


def test_lists_held_in_memory_page_by_position(client: Any) -> None:
    """Tasks and settings come from memory, yet page like every list: limit, cursor, total."""
    for path in ("/api/v1/tasks", "/api/v1/settings"):
        whole = client.request("GET", path).json
        assert whole["next_cursor"] is None and whole["total"] == len(whole["items"]) > 3
        first = client.request("GET", f"{path}?limit=2").json
        rest = client.request("GET", f"{path}?limit=500&cursor={first['next_cursor']}").json
        names = [row.get("name") or row.get("key") for row in first["items"] + rest["items"]]
        assert names == [row.get("name") or row.get("key") for row in whole["items"]]
        assert rest["next_cursor"] is None
        assert client.request("GET", f"{path}?cursor=WzEwMDBd").status == 400  # past the end
        assert client.request("GET", f"{path}?limit=501").status == 400


def test_api_lists_and_triggers_tasks(ctx: Any, client: Any, keys: dict[str, str]) -> None:
    listed = client.request("GET", "/api/v1/tasks", key=keys["read"])
    assert listed.status == 200
    names = [task["name"] for task in listed.json["items"]]
    assert "job_housekeeping" in names
    task = next(task for task in listed.json["items"] if task["name"] == "job_housekeeping")
    assert {"interval_s", "next_run_at", "last_run_at", "last_error", "runs", "failures"} <= set(task)
    assert client.request("POST", "/api/v1/tasks/job_housekeeping/run", key=keys["read"]).status == 403
    run = client.request("POST", "/api/v1/tasks/job_housekeeping/run", key=keys["operator"])
    assert run.status == 202 and run.json == {"task": "job_housekeeping", "triggered": True}
    after = client.request("GET", "/api/v1/tasks").json["items"]
    assert next(task for task in after if task["name"] == "job_housekeeping")["triggered"] is True
    missing = client.request("POST", "/api/v1/tasks/nope/run")
    assert missing.status == 404 and missing.json["error"]["code"] == "not_found"


def test_metrics_show_queue_depth_and_job_outcomes(ctx: Any, client: Any) -> None:
    ctx.queue.enqueue("scan")
    _dead_in(ctx, "import")
    pool = WorkerPool(ctx.queue, {"scan": lambda job: None}, metrics=ctx.metrics)
    ctx.queue.enqueue("scan")
    assert pool.run_one() is not None
    text = client.request("GET", "/metrics").text
    assert 'harmony_jobs{state="dead",type="import"} 1.0' in text
    assert 'harmony_jobs{state="done",type="scan"} 1.0' in text
    assert 'harmony_jobs{state="ready",type="scan"} 1.0' in text
    assert 'harmony_job_failures_total{type="import"} 1.0' in text
    assert 'harmony_job_duration_seconds_count{outcome="done",type="scan"} 1.0' in text
