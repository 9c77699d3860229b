"""A stateful property test of the job queue against an exact in-memory model.

Rules: enqueue, lease, heartbeat, complete, fail, release, lease expiry (the clock moves and
expired leases are recovered), requeue, purge, and crash-and-restart (the Database object is
dropped, a new one opened on the same file, start-up recovery run). Workers that held leases
before a crash or an expiry keep their stale `Job` objects and keep trying to use them.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from harmony.db import Database
from harmony.jobs import STATES, Job, Queue, backoff

LEASE_S = 10.0
BASE_S = 1.0
CAP_S = 8.0


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Model:
    type: str
    priority: int
    run_at: float
    key: str | None
    max_attempts: int
    state: str = "ready"
    attempts: int = 0
    token: str | None = None
    lease_until: float | None = None


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="jobs-machine-")
        self.path = f"{self.dir}/harmony.db"
        self.clock = Clock()
        self.db = Database(self.path)
        self.db.migrate()
        self.queue = self._queue()
        self.model: dict[int, Model] = {}
        self.held: list[Job] = []  # leases handed out, possibly stale
        self.ever_done: set[int] = set()
        self.highest_id = 0

    def _queue(self) -> Queue:
        return Queue(
            self.db,
            clock=self.clock,
            lease_s=LEASE_S,
            max_attempts=3,
            backoff_base_s=BASE_S,
            backoff_cap_s=CAP_S,
            rand=lambda: 0.5,
        )

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _holder(self, pick: int) -> Job:
        return self.held[pick % len(self.held)]

    def _owns(self, job: Job) -> bool:
        model = self.model.get(job.id)
        return model is not None and model.state == "running" and model.token == job.lease_token

    # --- rules ----------------------------------------------------------------------------

    @rule(
        type=st.sampled_from(["scan", "import"]),
        key=st.sampled_from([None, "a", "b", "c"]),
        priority=st.integers(0, 2),
        delay=st.sampled_from([0.0, 5.0, 20.0]),
        max_attempts=st.integers(1, 3),
    )
    def enqueue(self, type: str, key: str | None, priority: int, delay: float, max_attempts: int) -> None:
        holder = next(
            (
                job_id
                for job_id, m in self.model.items()
                if key is not None and m.key == key and m.state != "done"
            ),
            None,
        )
        job = self.queue.enqueue(
            type,
            {"p": priority},
            key=key,
            priority=priority,
            run_at=self.clock.t + delay,
            max_attempts=max_attempts,
        )
        if holder is not None:
            assert job.id == holder
            return
        assert job.id > self.highest_id and job.id not in self.model  # ids are never reused
        self.highest_id = job.id
        self.model[job.id] = Model(type, priority, self.clock.t + delay, key, max_attempts)

    @rule()
    def lease(self) -> None:
        now = self.clock.t
        due = [(-m.priority, m.run_at, job_id) for job_id, m in self.model.items() if m.state == "ready"]
        due = [entry for entry in due if entry[1] <= now]
        job = self.queue.lease()
        if not due:
            assert job is None
            return
        expected = min(due)[2]
        assert job is not None and job.id == expected
        assert job.id not in self.ever_done  # a completed job never runs again
        model = self.model[job.id]
        model.state, model.attempts, model.token = "running", model.attempts + 1, job.lease_token
        model.lease_until = now + LEASE_S
        self.held = [*self.held[-15:], job]

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 100))
    def heartbeat(self, pick: int) -> None:
        job = self._holder(pick)
        expected = self._owns(job)
        assert self.queue.heartbeat(job) == expected
        if expected:
            self.model[job.id].lease_until = self.clock.t + LEASE_S

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 100))
    def complete(self, pick: int) -> None:
        job = self._holder(pick)
        model = self.model.get(job.id)
        owns = self._owns(job)
        already = model is not None and model.state == "done" and model.token == job.lease_token
        assert self.queue.complete(job) == (owns or already)
        if owns:
            assert model is not None
            model.state, model.lease_until = "done", None
            self.ever_done.add(job.id)

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 100), give_up=st.booleans())
    def fail(self, pick: int, give_up: bool) -> None:
        job = self._holder(pick)
        owns = self._owns(job)
        result = self.queue.fail(job, "boom", give_up=give_up)
        if not owns:
            assert result is None
            return
        model = self.model[job.id]
        if give_up or model.attempts >= model.max_attempts:
            model.state, model.lease_until = "dead", None
        else:
            model.state, model.token, model.lease_until = "ready", None, None
            model.run_at = self.clock.t + backoff(model.attempts, base_s=BASE_S, cap_s=CAP_S, u=0.5)
        assert result is not None and result.state == model.state

    @precondition(lambda self: self.held)
    @rule(pick=st.integers(0, 100))
    def release(self, pick: int) -> None:
        job = self._holder(pick)
        owns = self._owns(job)
        assert self.queue.release(job) == owns
        if owns:
            model = self.model[job.id]
            model.state, model.attempts, model.token, model.lease_until = (
                "ready",
                model.attempts - 1,
                None,
                None,
            )

    def _expire(self) -> int:
        now, moved = self.clock.t, 0
        for model in self.model.values():
            if model.state == "running" and model.lease_until is not None and model.lease_until <= now:
                moved += 1
                if model.attempts >= model.max_attempts:
                    model.state, model.lease_until = "dead", None
                else:
                    model.state, model.run_at, model.token, model.lease_until = "ready", now, None, None
        return moved

    @rule(seconds=st.sampled_from([1.0, 4.0, 9.0, 10.0, 30.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.t += seconds
        expected = self._expire()
        assert self.queue.recover() == expected

    @precondition(lambda self: any(m.state == "dead" for m in self.model.values()))
    @rule(pick=st.integers(0, 100))
    def requeue(self, pick: int) -> None:
        dead = sorted(job_id for job_id, m in self.model.items() if m.state == "dead")
        job_id = dead[pick % len(dead)]
        assert self.queue.requeue([job_id]) == [job_id]
        model = self.model[job_id]
        model.state, model.attempts, model.run_at, model.token = "ready", 0, self.clock.t, None

    @precondition(lambda self: any(m.state == "dead" for m in self.model.values()))
    @rule(pick=st.integers(0, 100))
    def purge(self, pick: int) -> None:
        dead = sorted(job_id for job_id, m in self.model.items() if m.state == "dead")
        job_id = dead[pick % len(dead)]
        assert self.queue.purge([job_id]) == [job_id]
        del self.model[job_id]

    @rule(downtime=st.sampled_from([0.0, 5.0, 60.0]))
    def crash_and_restart(self, downtime: float) -> None:
        # No clean shutdown: leases stay in the file; the stale `held` jobs play zombie workers.
        self.db.close()
        self.clock.t += downtime
        self.db = Database(self.path)
        self.db.migrate()
        self.queue = self._queue()
        expected = self._expire()
        assert self.queue.recover() == expected

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        rows = {row["id"]: row for row in self.db.query("SELECT * FROM jobs")}
        assert set(rows) == set(self.model)  # no job disappears (or appears)
        for job_id, model in self.model.items():
            row = rows[job_id]
            assert row["state"] in STATES  # exactly one state, and a known one
            assert (row["state"], row["attempts"], row["priority"], row["idem_key"]) == (
                model.state,
                model.attempts,
                model.priority,
                model.key,
            )
            if model.state == "ready":
                assert row["run_at"] == model.run_at and row["lease_until"] is None
            if model.state == "running":
                assert (row["lease_token"], row["lease_until"]) == (model.token, model.lease_until)

    @invariant()
    def attempts_within_budget(self) -> None:
        assert self.db.query("SELECT id FROM jobs WHERE attempts > max_attempts OR attempts < 0") == []

    @invariant()
    def done_stays_done(self) -> None:
        states = {row["id"]: row["state"] for row in self.db.query("SELECT id, state FROM jobs")}
        assert all(states.get(job_id, "done") == "done" for job_id in self.ever_done)

    @invariant()
    def one_live_job_per_key(self) -> None:
        clashes = self.db.query(
            "SELECT idem_key FROM jobs WHERE idem_key IS NOT NULL AND state != 'done' "
            "GROUP BY idem_key HAVING count(*) > 1"
        )
        assert clashes == []


QueueMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestQueueMachine = QueueMachine.TestCase
