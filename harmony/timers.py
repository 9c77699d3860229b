"""The timer wheel: one thread running named periodic tasks, with its schedule kept in SQLite.

This module owns the `tasks` table. A task is a name, an interval and a function without
arguments; tasks are quick (they scan and enqueue), and per-item work goes to the job queue
(`jobs.py`), so one thread runs them all, one after another.

Contracts:

- Never early: a task runs only once its due time has come (or when triggered).
- At most once per due time, and no burst after a pause: after a run the next due time is the
  first point of the task's grid (due + k * interval) after now, so ticks missed while the
  process was stalled, suspended or busy are skipped, not replayed (replaying would only
  repeat the same scan back to back).
- Due times are computed on a monotonic clock, so wall-clock jumps neither stall nor rush the
  wheel. They are stored as wall-clock times (`tasks.next_run_at`) so a restart resumes the
  schedule; a stored time more than one interval ahead (the clock went back) is pulled in.
- A task's exception is caught, logged and recorded (`last_error`); it never stops the wheel.
- `run_due(now)` is the wheel's one step, and tests call it directly with their own `now`.

To add a task, call `wheel.add(name, interval_s, fn)` in the composition root before `start()`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .db import Database
from .errors import NotFound

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 2000

SQL_GET = "SELECT * FROM tasks WHERE name = ?"
SQL_ALL = "SELECT * FROM tasks"
SQL_UPSERT = """
    INSERT INTO tasks (name, interval_s, next_run_at) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET interval_s = excluded.interval_s, next_run_at = excluded.next_run_at
"""
SQL_SUCCEEDED = """
    UPDATE tasks SET last_run_at = ?, last_success_at = ?, last_duration_s = ?, next_run_at = ?,
        runs = runs + 1
    WHERE name = ?
"""
SQL_FAILED = """
    UPDATE tasks SET last_run_at = ?, last_error = ?, last_error_at = ?, last_duration_s = ?, next_run_at = ?,
        runs = runs + 1, failures = failures + 1
    WHERE name = ?
"""


@dataclass
class _Task:
    name: str
    interval_s: float
    fn: Callable[[], object]
    due: float  # on the monotonic clock
    triggered: bool = False
    running: bool = False


class Wheel:
    """Runs named periodic tasks on one daemon thread ("harmony-timers").

    `clock` is the wall clock (stored times); `monotonic` the clock due times are computed on.
    Tests may pass the same controlled clock for both. `max_wait_s` bounds one idle wait.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
        max_wait_s: float = 60.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.monotonic = monotonic
        self.metrics = metrics
        self.max_wait_s = max_wait_s
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and trigger(); the thread waits on it
        self._thread: threading.Thread | None = None

    def add(
        self, name: str, interval_s: float, fn: Callable[[], object], *, initial_delay_s: float = 0.0
    ) -> None:
        """Register a task. Its first run is at the stored next run (a restart resumes the
        schedule) or, for a task never seen before, `initial_delay_s` from now.

        Raises ValueError for a duplicate name or a non-positive interval.
        """
        if not interval_s > 0:
            raise ValueError("interval_s must be positive")
        mono, wall = self.monotonic(), self.clock()
        row = self.db.query_one(SQL_GET, (name,))
        if row is not None and row["next_run_at"] is not None:
            delay = min(max(0.0, row["next_run_at"] - wall), interval_s)
        else:
            delay = max(0.0, initial_delay_s)
        with self._lock:
            if name in self._tasks:
                raise ValueError(f"task {name!r} is already registered")
            self._tasks[name] = _Task(name, interval_s, fn, due=mono + delay)
        with self.db.write() as conn:
            conn.execute(SQL_UPSERT, (name, interval_s, wall + delay))
        self._wake.set()

    def trigger(self, name: str) -> None:
        """Ask for a run of `name` at the wheel's next step, whatever its schedule.

        A triggered run does not move the schedule. Raises NotFound for an unknown task.
        """
        with self._lock:
            task = self._tasks.get(name)
            if task is None:
                raise NotFound(f"no task named {name!r}", task=name, known=sorted(self._tasks))
            task.triggered = True
        self._wake.set()

    def run_due(self, now: float | None = None) -> list[str]:
        """Run every task that is due at monotonic time `now` or triggered; return their names.

        Catches and records each task's exception. After a scheduled run the task's next due
        time is the first grid point after `now`.
        """
        now = self.monotonic() if now is None else now
        with self._lock:
            chosen = [task for task in self._tasks.values() if task.triggered or now >= task.due]
            for task in chosen:
                task.running = True
                task.triggered = False  # a trigger arriving during the run asks for another run
        ran = []
        for task in chosen:
            self._run(task, now)
            ran.append(task.name)
        return ran

    def _run(self, task: _Task, now: float) -> None:
        started_wall, started = self.clock(), time.perf_counter()
        error = None
        try:
            task.fn()
        except Exception as exc:
            error = "".join(traceback.format_exception_only(exc)).strip()[:MAX_ERROR_LENGTH]
            log.exception("task_failed", extra={"fields": {"task": task.name}})
        duration = time.perf_counter() - started
        with self._lock:
            if now >= task.due:
                # Skip missed ticks: jump to the first grid point strictly after now.
                task.due += task.interval_s * (math.floor((now - task.due) / task.interval_s) + 1)
            task.running = False
            next_wall = started_wall + (task.due - now)
        if self.metrics is not None:
            self.metrics.task_runs.labels(task.name).inc()
            if error is None:
                self.metrics.task_last_success.labels(task.name).set(started_wall)
            else:
                self.metrics.task_failures.labels(task.name).inc()
        try:
            with self.db.write() as conn:
                if error is None:
                    conn.execute(SQL_SUCCEEDED, (started_wall, started_wall, duration, next_wall, task.name))
                else:
                    args = (started_wall, error, started_wall, duration, next_wall, task.name)
                    conn.execute(SQL_FAILED, args)
        except Exception:
            # The schedule in memory is right; the stored copy catches up at the next run.
            log.exception("task_state_not_saved", extra={"fields": {"task": task.name}})
        if error is None:
            log.debug("task_ran", extra={"fields": {"task": task.name, "duration_s": round(duration, 3)}})

    def seconds_until_due(self, now: float | None = None) -> float:
        """Seconds from monotonic `now` until the next task is due or triggered (0 if one is)."""
        now = self.monotonic() if now is None else now
        with self._lock:
            if any(task.triggered for task in self._tasks.values()):
                return 0.0
            dues = [task.due for task in self._tasks.values()]
        return max(0.0, min(dues) - now) if dues else math.inf

    def tasks(self) -> list[dict[str, Any]]:
        """Each registered task's schedule and its stored history, by name."""
        rows = {row["name"]: row for row in self.db.query(SQL_ALL)}
        mono, wall = self.monotonic(), self.clock()
        with self._lock:
            tasks = sorted(self._tasks.values(), key=lambda task: task.name)
            views = [
                {
                    "name": task.name,
                    "interval_s": task.interval_s,
                    "next_run_at": wall + (task.due - mono),
                    "running": task.running,
                    "triggered": task.triggered,
                }
                for task in tasks
            ]
        for view in views:
            row = rows.get(view["name"], {})
            for column in (
                "last_run_at",
                "last_success_at",
                "last_error",
                "last_error_at",
                "last_duration_s",
            ):
                view[column] = row.get(column)
            view["runs"] = row.get("runs", 0)
            view["failures"] = row.get("failures", 0)
        return views

    # --- the thread -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the wheel's thread. Tasks added later are picked up at their due time."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="harmony-timers", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            # Cleared before the step, so a trigger() during the step makes the wait return at once.
            self._wake.clear()
            try:
                self.run_due()
            except Exception:
                log.exception("wheel_error")  # run_due catches task errors; this is a last resort
            self._wake.wait(min(self.seconds_until_due(), self.max_wait_s))

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread after the task it is running, waiting at most `timeout` seconds.

        Returns True if the thread has ended; logs a warning if it has not.
        """
        self._stop.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            running = [task.name for task in self._tasks.values() if task.running]
            log.warning("wheel_still_running", extra={"fields": {"tasks": running}})
            return False
        return True
