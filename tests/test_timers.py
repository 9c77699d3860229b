"""The timer wheel, driven by a controlled clock through `run_due(now)`."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from conftest import Clock
from hypothesis import given, settings
from hypothesis import strategies as st

from harmony.db import Database
from harmony.errors import NotFound
from harmony.metrics import Metrics
from harmony.timers import Wheel


def wheel_on(db: Database, clock: Clock, **kwargs: Any) -> Wheel:
    return Wheel(db, clock=clock, monotonic=clock, **kwargs)


def test_new_task_runs_after_its_initial_delay_then_every_interval(db: Database, clock: Clock) -> None:
    wheel = wheel_on(db, clock)
    runs: list[float] = []
    wheel.add("scan", 60, lambda: runs.append(clock.t), initial_delay_s=10)
    assert wheel.run_due(clock.advance(9.999)) == []
    assert wheel.run_due(clock.advance(0.001)) == ["scan"]
    assert wheel.run_due(clock.t) == []  # at most once per due time
    assert wheel.run_due(clock.advance(59.9)) == []  # never early
    assert wheel.run_due(clock.advance(0.1)) == ["scan"]
    assert runs == [1_000_010.0, 1_000_070.0]


@settings(max_examples=80, deadline=None)
@given(
    interval=st.integers(1, 100),
    delay=st.integers(0, 100),
    gaps=st.lists(st.integers(0, 1000), min_size=1, max_size=40),
)
def test_schedule_is_never_early_never_doubled_never_bursting(
    tmp_path_factory: Any, interval: int, delay: int, gaps: list[int]
) -> None:
    # Whole seconds keep the arithmetic exact, so the wheel can be held to an exact model:
    # at step t it runs once iff a grid point (first_due + k * interval) lies in (last run, t].
    database = Database(str(tmp_path_factory.mktemp("wheel") / "harmony.db"))
    database.migrate()
    clock = Clock()
    wheel = wheel_on(database, clock)
    runs: list[float] = []
    wheel.add("t", interval, lambda: runs.append(clock.t), initial_delay_s=delay)
    first_due = clock.t + delay
    last_run = -1.0
    try:
        for gap in gaps:
            now = clock.advance(gap)
            latest_point = first_due + (now - first_due) // interval * interval if now >= first_due else None
            expected = latest_point is not None and latest_point > last_run
            ran = wheel.run_due(now)
            assert ran == (["t"] if expected else [])
            if expected:
                last_run = now
        assert runs == sorted(set(runs))  # one run per step at most, in order
    finally:
        database.close()


def test_long_pause_gives_one_run_and_keeps_the_grid(db: Database, clock: Clock) -> None:
    wheel = wheel_on(db, clock)
    runs: list[float] = []
    wheel.add("t", 10, lambda: runs.append(clock.t))
    assert wheel.run_due(clock.t) == ["t"]
    assert wheel.run_due(clock.advance(1000.5)) == ["t"]  # 100 ticks missed: one run, not 100
    assert wheel.run_due(clock.t) == []
    assert wheel.run_due(clock.advance(9.4)) == []
    assert wheel.run_due(clock.advance(0.1)) == ["t"]  # next grid point: start + 1010
    assert runs == [1_000_000.0, 1_001_000.5, 1_001_010.0]


def test_exceptions_are_caught_and_recorded(db: Database, clock: Clock) -> None:
    metrics = Metrics()
    wheel = wheel_on(db, clock, metrics=metrics)
    calls = [0]

    def flaky() -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("upstream down")

    other: list[int] = []
    wheel.add("flaky", 30, flaky)
    wheel.add("other", 30, lambda: other.append(1))
    assert wheel.run_due(clock.t) == ["flaky", "other"]  # the failure did not stop the step
    view = {task["name"]: task for task in wheel.tasks()}
    assert view["flaky"]["last_error"] == "RuntimeError: upstream down"
    assert view["flaky"]["last_error_at"] == clock.t and view["flaky"]["last_success_at"] is None
    assert view["flaky"]["failures"] == 1 and view["flaky"]["runs"] == 1
    assert view["flaky"]["next_run_at"] == clock.t + 30
    assert other == [1]
    wheel.run_due(clock.advance(30))
    view = {task["name"]: task for task in wheel.tasks()}
    assert view["flaky"]["last_success_at"] == clock.t and view["flaky"]["runs"] == 2
    assert view["flaky"]["last_error"] == "RuntimeError: upstream down"  # kept as history
    sample = metrics.registry.get_sample_value
    assert sample("harmony_task_runs_total", {"task": "flaky"}) == 2
    assert sample("harmony_task_failures_total", {"task": "flaky"}) == 1
    assert sample("harmony_task_last_success_timestamp_seconds", {"task": "flaky"}) == clock.t


def test_restart_resumes_from_the_stored_next_run(tmp_path: Any, clock: Clock) -> None:
    path = str(tmp_path / "harmony.db")
    first = Database(path)
    first.migrate()
    wheel = wheel_on(first, clock)
    wheel.add("scan", 3600, lambda: None)
    assert wheel.run_due(clock.advance(1)) == ["scan"]  # next run: start + 3600
    first.close()

    clock.advance(600)  # the process was down for ten minutes
    second = Database(path)
    restarted = wheel_on(second, clock)
    runs: list[float] = []
    restarted.add("scan", 3600, lambda: runs.append(clock.t))
    assert restarted.run_due(clock.t) == []  # not re-run just because the process started
    assert restarted.run_due(clock.advance(2998.9)) == []
    assert restarted.run_due(clock.advance(0.1)) == ["scan"]
    assert runs == [1_003_600.0]
    second.close()


def test_restart_after_a_long_outage_runs_once_at_start(tmp_path: Any, clock: Clock) -> None:
    path = str(tmp_path / "harmony.db")
    first = Database(path)
    first.migrate()
    wheel_on(first, clock).add("scan", 60, lambda: None, initial_delay_s=60)
    first.close()
    clock.advance(86_400)
    second = Database(path)
    wheel = wheel_on(second, clock)
    wheel.add("scan", 60, lambda: None)
    assert wheel.run_due(clock.t) == ["scan"]
    assert wheel.run_due(clock.advance(59)) == []
    second.close()


def test_stored_time_far_ahead_is_pulled_in_to_one_interval(db: Database, clock: Clock) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO tasks (name, interval_s, next_run_at) VALUES ('t', 60, ?)", (clock.t + 1e6,)
        )
    wheel = wheel_on(db, clock)
    wheel.add("t", 60, lambda: None)
    assert wheel.run_due(clock.advance(60)) == ["t"]


def test_trigger_runs_now_without_moving_the_schedule(db: Database, clock: Clock) -> None:
    wheel = wheel_on(db, clock)
    wheel.add("t", 100, lambda: None, initial_delay_s=100)
    wheel.trigger("t")
    assert wheel.tasks()[0]["triggered"] is True
    assert wheel.run_due(clock.advance(1)) == ["t"]
    assert wheel.run_due(clock.t) == []
    assert wheel.run_due(clock.advance(99)) == ["t"]
    with pytest.raises(NotFound):
        wheel.trigger("nope")


def test_add_rejects_duplicates_and_bad_intervals(db: Database, clock: Clock) -> None:
    wheel = wheel_on(db, clock)
    wheel.add("t", 1, lambda: None)
    with pytest.raises(ValueError):
        wheel.add("t", 1, lambda: None)
    with pytest.raises(ValueError):
        wheel.add("u", 0, lambda: None)


def test_thread_runs_tasks_wakes_on_trigger_and_stops_promptly(db: Database) -> None:
    wheel = Wheel(db)
    ticks = threading.Semaphore(0)
    manual = threading.Event()
    wheel.add("tick", 0.05, ticks.release)
    wheel.add("manual", 3600, manual.set, initial_delay_s=3600)
    wheel.start()
    try:
        assert wheel.is_alive()
        assert "harmony-timers" in {thread.name for thread in threading.enumerate()}
        for _ in range(3):
            assert ticks.acquire(timeout=5)
        wheel.trigger("manual")
        assert manual.wait(5)
    finally:
        started = time.monotonic()
        assert wheel.stop(5)
    assert time.monotonic() - started < 1
    assert not wheel.is_alive()


def test_a_task_that_raises_does_not_kill_the_thread(db: Database) -> None:
    wheel = Wheel(db)
    survived = threading.Semaphore(0)

    def boom() -> None:
        raise ValueError("broken task")

    wheel.add("boom", 0.02, boom)
    wheel.add("alive", 0.02, survived.release)
    wheel.start()
    try:
        for _ in range(3):
            assert survived.acquire(timeout=5)
        assert wheel.is_alive()
    finally:
        wheel.stop(5)
    assert {task["name"]: task["failures"] for task in wheel.tasks()}["boom"] >= 1
