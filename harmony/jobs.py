"""The durable job queue: per-item background work, kept in the `jobs` table.

This module owns the `jobs` table and every statement on it, the retry policy (`backoff`)
and the worker pool that runs handlers. A job is in exactly one state:

    enqueue ─► ready ──lease──► running ──complete──► done
                 ▲                 │ ├──fail (attempts left)──► ready, run_at = now + backoff
                 │                 │ ├──fail (no attempts left, or GiveUp)──► dead
                 │                 │ └──release (shutdown: the attempt is not counted)──► ready
                 ├── lease expired (the worker vanished; the attempt counts) ◄┘
                 └── requeue (operator) ◄── dead ──purge──► (deleted)

Contracts:

- Leasing is one `BEGIN IMMEDIATE` transaction (an `UPDATE ... WHERE id = (SELECT ...)`), so two
  threads or two processes never lease the same job. It walks the partial index `jobs_ready`
  in (priority DESC, run_at, id) order, so it costs O(log n) however many jobs wait.
- Each lease carries a fresh token. `heartbeat`, `complete`, `fail` and `release` act only while
  the token still matches, so a worker whose lease expired (and was re-leased elsewhere) cannot
  overwrite the newer attempt's outcome.
- Delivery is at least once. For exactly-once effects a handler writes its effect inside
  `with queue.completing(job) as conn:`: the effect and `done` commit in one transaction, or
  neither does.
- Idempotency key: `enqueue` with a key that a ready, running or dead job holds returns that
  job unchanged (a dead job keeps its key until an operator requeues or purges it, so a failing
  item is not re-enqueued behind the operator's back). Once the job is done the key is free
  again and the next `enqueue` creates a new job. Keys thus deduplicate work in flight, and the
  domain tables (updated in the completion transaction) say whether the work is still needed.

To add a job type, add its handler to the dict the composition root passes to `WorkerPool`.
A handler takes a `Job`, returns on success and raises on failure (`GiveUp` to dead-letter
at once); it must be safe to run again after a crash.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import apsw

from .db import Database, Row
from .errors import BadInput, Conflict, DiskFull, NotFound, ReadOnly

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger(__name__)

STATES = ("ready", "running", "done", "dead")
TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
MAX_KEY_LENGTH = 200
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_ERROR_LENGTH = 2000
MAX_BATCH = 1000  # ids in one requeue or purge call


def backoff(attempt: int, *, base_s: float = 30.0, cap_s: float = 3600.0, u: float | None = None) -> float:
    """Seconds to wait before retrying after failed attempt number `attempt` (1 for the first).

    Exponential with "equal jitter": the step is min(cap_s, base_s * 2**(attempt - 1)) and the
    delay is uniform in [step / 2, step], so retries of many jobs that failed together spread
    out, yet no retry comes sooner than half its step. `u` in [0, 1) picks the point (random
    when None). Requires attempt >= 1 and 0 < base_s <= cap_s.
    """
    if attempt < 1:
        raise ValueError("attempt must be >= 1")
    if not 0 < base_s <= cap_s:
        raise ValueError("need 0 < base_s <= cap_s")
    # Cap the exponent before computing 2**n so a huge attempt count cannot overflow a float.
    step = cap_s if attempt > 64 else min(cap_s, base_s * 2.0 ** (attempt - 1))
    if u is None:
        u = random.random()
    return step / 2 + step / 2 * min(max(u, 0.0), 1.0)


class GiveUp(Exception):
    """Raised by a handler to dead-letter its job at once: retrying cannot help."""


class Later(Exception):
    """Raised by a handler when the job cannot run yet through no fault of its own (an upstream
    cooling down): it goes back to ready, due in `seconds`, and the attempt does not count."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"not before {seconds:.0f}s")
        self.seconds = max(0.0, seconds)
        self.reason = reason


class LeaseLost(Exception):
    """The job's lease expired and was taken back; this worker's outcome is dropped."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"lease on job {job_id} was lost")
        self.job_id = job_id


@dataclass(frozen=True)
class Job:
    """One row of `jobs`, as it was when read."""

    id: int
    type: str
    payload: dict[str, Any]
    priority: int
    state: str
    key: str | None
    run_at: float
    attempts: int
    max_attempts: int
    lease_token: str | None
    lease_until: float | None
    last_error: str | None
    created_at: float
    updated_at: float
    finished_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> Job:
        return cls(
            id=row["id"],
            type=row["type"],
            payload=json.loads(row["payload"]),
            priority=row["priority"],
            state=row["state"],
            key=row["idem_key"],
            run_at=row["run_at"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            lease_token=row["lease_token"],
            lease_until=row["lease_until"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        """The public view (API): everything but the lease token."""
        return {
            "id": self.id,
            "type": self.type,
            "state": self.state,
            "key": self.key,
            "payload": self.payload,
            "priority": self.priority,
            "run_at": self.run_at,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "lease_until": self.lease_until,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }


# --- SQL -----------------------------------------------------------------------------------

SQL_BY_KEY = "SELECT * FROM jobs WHERE idem_key = ? AND state != 'done'"
SQL_INSERT = """
    INSERT INTO jobs (type, payload, priority, state, idem_key, run_at, max_attempts, created_at, updated_at)
    VALUES (?, ?, ?, 'ready', ?, ?, ?, ?, ?)
    RETURNING *
"""
SQL_GET = "SELECT * FROM jobs WHERE id = ?"
SQL_STATE = "SELECT state FROM jobs WHERE id = ?"
# The next due job, by priority, then due time, then age; one walk down `jobs_ready`.
SQL_NEXT = """
    SELECT id FROM jobs INDEXED BY jobs_ready
    WHERE state = 'ready' AND run_at <= ?
    ORDER BY priority DESC, run_at, id
    LIMIT 1
"""
SQL_LEASE = f"""
    UPDATE jobs
    SET state = 'running', attempts = attempts + 1, lease_token = ?, lease_until = ?, updated_at = ?
    WHERE id = ({SQL_NEXT})
    RETURNING *
"""
SQL_HEARTBEAT = """
    UPDATE jobs SET lease_until = ?, updated_at = ?
    WHERE id = ? AND state = 'running' AND lease_token = ?
"""
SQL_COMPLETE = """
    UPDATE jobs SET state = 'done', lease_until = NULL, finished_at = ?, updated_at = ?
    WHERE id = ? AND state = 'running' AND lease_token = ?
"""
# A row this lease already finished: makes `complete` after `completing` a no-op.
SQL_DONE_BY = "SELECT 1 FROM jobs WHERE id = ? AND state = 'done' AND lease_token = ?"
SQL_FAIL_RETRY = """
    UPDATE jobs SET state = 'ready', run_at = ?, last_error = ?, lease_token = NULL, lease_until = NULL,
        updated_at = ?
    WHERE id = ? AND state = 'running' AND lease_token = ?
    RETURNING *
"""
SQL_FAIL_DEAD = """
    UPDATE jobs SET state = 'dead', last_error = ?, lease_until = NULL, finished_at = ?, updated_at = ?
    WHERE id = ? AND state = 'running' AND lease_token = ?
    RETURNING *
"""
SQL_RELEASE = """
    UPDATE jobs SET state = 'ready', attempts = attempts - 1, lease_token = NULL, lease_until = NULL,
        run_at = max(run_at, ?), updated_at = ?
    WHERE id = ? AND state = 'running' AND lease_token = ?
"""
# Expired leases: the worker vanished (crash, kill -9, a stalled process). The attempt counts,
# so a job that kills its worker every time ends up dead instead of looping forever.
SQL_EXPIRE_DEAD = """
    UPDATE jobs SET state = 'dead', last_error = 'lease expired on the last attempt', lease_until = NULL,
        finished_at = ?, updated_at = ?
    WHERE state = 'running' AND lease_until <= ? AND attempts >= max_attempts
"""
SQL_EXPIRE_READY = """
    UPDATE jobs SET state = 'ready', run_at = ?, last_error = 'lease expired', lease_token = NULL,
        lease_until = NULL, updated_at = ?
    WHERE state = 'running' AND lease_until <= ?
"""
SQL_REQUEUE = """
    UPDATE jobs SET state = 'ready', attempts = 0, run_at = ?, lease_token = NULL, finished_at = NULL,
        updated_at = ?
    WHERE id = ? AND state = 'dead'
"""
SQL_PURGE = "DELETE FROM jobs WHERE id = ? AND state = 'dead'"
SQL_DEAD_OF_TYPE = "SELECT id FROM jobs WHERE state = 'dead' AND type = ? ORDER BY id LIMIT ?"
SQL_HAS_TYPE = "SELECT 1 FROM jobs WHERE type = ? LIMIT 1"
SQL_DELETE_DONE = """
    DELETE FROM jobs WHERE id IN (
        SELECT id FROM jobs WHERE state = 'done' AND finished_at < ? LIMIT ?
    )
"""
# GROUP BY in the order of `jobs_type`, so the count walks that index and needs no sort.
SQL_COUNTS = "SELECT type, state, count(*) AS n FROM jobs GROUP BY type, state"


class Queue:
    """The job queue on one database. Safe to share between threads and processes.

    `clock` gives wall-clock seconds (stored times survive restarts); tests pass their own.
    `lease_s` is the visibility timeout, `max_attempts` the default attempt budget.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        lease_s: float = 60.0,
        max_attempts: int = 5,
        backoff_base_s: float = 30.0,
        backoff_cap_s: float = 3600.0,
        rand: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.rand = rand
        self.metrics = metrics
        # Wakes idle workers of this process when work arrives; other processes' work is
        # found by polling.
        self._cond = threading.Condition()
        self._seq = 0

    # --- producing ------------------------------------------------------------------------

    def enqueue(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        priority: int = 0,
        run_at: float | None = None,
        max_attempts: int | None = None,
    ) -> Job:
        """Add a job, or return the ready, running or dead job that already holds `key`.

        The existing job is returned unchanged (no upsert: its payload, priority and schedule
        stay). A done job does not hold its key. Raises BadInput for a malformed type, key,
        payload (a JSON object of at most 64 KiB) or attempt budget.
        """
        if not isinstance(type, str) or not TYPE_PATTERN.match(type):
            raise BadInput("job type must match [a-z][a-z0-9_.:-]{0,63}", type=str(type))
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH):
            raise BadInput(f"job key must be a string of 1 to {MAX_KEY_LENGTH} characters")
        if max_attempts is None:
            max_attempts = self.max_attempts
        if max_attempts < 1:
            raise BadInput("max_attempts must be at least 1")
        body = _encode_payload(payload)
        now = self.clock()
        with self.db.write() as conn:
            if key is not None:
                for row in conn.execute(SQL_BY_KEY, (key,)):
                    return Job.from_row(row)
            args = (type, body, priority, key, now if run_at is None else run_at, max_attempts, now, now)
            job = Job.from_row(next(conn.execute(SQL_INSERT, args)))
        self._notify()
        return job

    # --- consuming ------------------------------------------------------------------------

    def lease(self, now: float | None = None) -> Job | None:
        """Lease the next due job (highest priority, then earliest run_at, then oldest) or None.

        The job becomes running with attempts + 1 and a fresh token until now + lease_s.
        """
        now = self.clock() if now is None else now
        token = secrets.token_hex(8)
        with self.db.write() as conn:
            rows = list(conn.execute(SQL_LEASE, (token, now + self.lease_s, now, now)))
        return Job.from_row(rows[0]) if rows else None

    def heartbeat(self, job: Job, now: float | None = None) -> bool:
        """Extend `job`'s lease to now + lease_s; False if the lease is no longer this one's."""
        now = self.clock() if now is None else now
        with self.db.write() as conn:
            conn.execute(SQL_HEARTBEAT, (now + self.lease_s, now, job.id, job.lease_token))
            return conn.changes() == 1

    def complete(self, job: Job, now: float | None = None) -> bool:
        """Mark `job` done. True if it is done by this lease (also when `completing` did it)."""
        with self.db.write() as conn:
            return self._finish(conn, job, now)

    @contextlib.contextmanager
    def completing(self, job: Job, now: float | None = None) -> Iterator[apsw.Connection]:
        """Mark `job` done and yield the open write transaction for the handler's effect.

        The effect and the completion commit together or not at all. Raises LeaseLost (and
        writes nothing) if the lease was lost; an exception in the block rolls both back.
        """
        with self.db.write() as conn:
            if not self._finish(conn, job, now):
                raise LeaseLost(job.id)
            yield conn

    def _finish(self, conn: apsw.Connection, job: Job, now: float | None) -> bool:
        now = self.clock() if now is None else now
        conn.execute(SQL_COMPLETE, (now, now, job.id, job.lease_token))
        if conn.changes() == 1:
            return True
        return any(True for _ in conn.execute(SQL_DONE_BY, (job.id, job.lease_token)))

    def fail(
        self,
        job: Job,
        error: str,
        *,
        give_up: bool = False,
        retry_in: float | None = None,
        now: float | None = None,
    ) -> Job | None:
        """Record a failed attempt: back to ready after `backoff` (or `retry_in` seconds), or
        dead when the attempts are spent or `give_up` is set. Returns the updated job, or None
        if the lease was lost (nothing changed).
        """
        now = self.clock() if now is None else now
        error = error[:MAX_ERROR_LENGTH]
        with self.db.write() as conn:
            if give_up or job.attempts >= job.max_attempts:
                rows = list(conn.execute(SQL_FAIL_DEAD, (error, now, now, job.id, job.lease_token)))
            else:
                if retry_in is None:
                    retry_in = backoff(
                        job.attempts, base_s=self.backoff_base_s, cap_s=self.backoff_cap_s, u=self.rand()
                    )
                args = (now + retry_in, error, now, job.id, job.lease_token)
                rows = list(conn.execute(SQL_FAIL_RETRY, args))
        if not rows:
            return None
        if self.metrics is not None:
            self.metrics.job_failures.labels(job.type).inc()
        return Job.from_row(rows[0])

    def release(self, job: Job, now: float | None = None, *, delay: float = 0.0) -> bool:
        """Hand a running job back to ready without counting its attempt, due again no sooner
        than `delay` seconds from now (used at shutdown, and while the disk is full)."""
        now = self.clock() if now is None else now
        with self.db.write() as conn:
            conn.execute(SQL_RELEASE, (now + delay if delay > 0 else 0.0, now, job.id, job.lease_token))
            released = conn.changes() == 1
        if released:
            self._notify()
        return released

    def recover(self, now: float | None = None) -> int:
        """Return jobs whose lease expired to ready (or dead, on their last attempt).

        Run at start and periodically while running. Returns how many jobs moved.
        """
        now = self.clock() if now is None else now
        with self.db.write() as conn:
            conn.execute(SQL_EXPIRE_DEAD, (now, now, now))
            moved = conn.changes()
            conn.execute(SQL_EXPIRE_READY, (now, now, now))
            moved += conn.changes()
        if moved:
            log.warning("jobs_lease_expired", extra={"fields": {"jobs": moved}})
            self._notify()
        return moved

    # --- operating ------------------------------------------------------------------------

    def get(self, job_id: int) -> Job | None:
        row = self.db.query_one(SQL_GET, (job_id,))
        return Job.from_row(row) if row else None

    def has_type(self, type: str) -> bool:
        """True if any job of `type` exists, in any state."""
        return self.db.query_one(SQL_HAS_TYPE, (type,)) is not None

    def list_jobs(
        self, *, state: str | None = None, type: str | None = None, limit: int = 50, after: int = 0
    ) -> list[Job]:
        """Up to `limit` jobs with id > `after`, by ascending id, optionally of one state and/or type."""
        if state is not None and state not in STATES:
            raise BadInput(f"unknown job state {state!r}", allowed=list(STATES))
        where, args = _filters(state, type)
        sql = f"SELECT * FROM jobs WHERE id > ? {where} ORDER BY id LIMIT ?"
        return [Job.from_row(row) for row in self.db.query(sql, (after, *args, limit))]

    def count(self, *, state: str | None = None, type: str | None = None) -> int:
        where, args = _filters(state, type)
        return int(self.db.scalar(f"SELECT count(*) FROM jobs WHERE 1 {where}", args))

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of jobs by (state, type)."""
        return {(row["state"], row["type"]): row["n"] for row in self.db.query(SQL_COUNTS)}

    def stats(self) -> dict[str, Any]:
        """Totals by state, and by type then state; every state is present in `by_state`."""
        by_state = dict.fromkeys(STATES, 0)
        by_type: dict[str, dict[str, int]] = {}
        for (state, type), n in sorted(self.counts().items()):
            by_state[state] += n
            by_type.setdefault(type, dict.fromkeys(STATES, 0))[state] = n
        return {"by_state": by_state, "by_type": by_type, "total": sum(by_state.values())}

    def requeue(self, ids: Iterable[int] | None = None, *, type: str | None = None) -> list[int]:
        """Move dead jobs back to ready with a fresh attempt budget; returns their ids.

        Give ids (every one must name a dead job, else NotFound/Conflict and nothing changes)
        or a type (all its dead jobs, up to MAX_BATCH).
        """
        now = self.clock()
        with self.db.write() as conn:
            chosen = self._dead_ids(conn, ids, type)
            for job_id in chosen:
                conn.execute(SQL_REQUEUE, (now, now, job_id))
        if chosen:
            log.info("jobs_requeued", extra={"fields": {"ids": chosen[:20], "count": len(chosen)}})
            self._notify()
        return chosen

    def purge(self, ids: Iterable[int] | None = None, *, type: str | None = None) -> list[int]:
        """Delete dead jobs, chosen as for `requeue`; returns their ids."""
        with self.db.write() as conn:
            chosen = self._dead_ids(conn, ids, type)
            for job_id in chosen:
                conn.execute(SQL_PURGE, (job_id,))
        if chosen:
            log.info("jobs_purged", extra={"fields": {"ids": chosen[:20], "count": len(chosen)}})
        return chosen

    def _dead_ids(self, conn: apsw.Connection, ids: Iterable[int] | None, type: str | None) -> list[int]:
        if (ids is None) == (type is None):
            raise BadInput("give either ids or a type")
        if type is not None:
            return [row["id"] for row in conn.execute(SQL_DEAD_OF_TYPE, (type, MAX_BATCH))]
        chosen = list(ids or ())
        if not all(isinstance(job_id, int) and not isinstance(job_id, bool) for job_id in chosen):
            raise BadInput("ids must be integers")
        chosen = sorted(set(chosen))
        if not chosen:
            raise BadInput("ids must not be empty")
        if len(chosen) > MAX_BATCH:
            raise BadInput(f"at most {MAX_BATCH} ids at a time")
        states: dict[int, str | None] = {}
        for job_id in chosen:
            rows = list(conn.execute(SQL_STATE, (job_id,)))
            states[job_id] = rows[0]["state"] if rows else None
        missing = [job_id for job_id, state in states.items() if state is None]
        if missing:
            raise NotFound("no such jobs", ids=missing)
        alive = [job_id for job_id, state in states.items() if state != "dead"]
        if alive:
            named = ", ".join(f"{job_id} is {states[job_id]}" for job_id in alive[:10])
            alive_states = [states[job_id] for job_id in alive]
            raise Conflict(f"jobs are not dead-lettered ({named})", ids=alive, states=alive_states)
        return chosen

    def delete_done(self, older_than_s: float, *, limit: int = 10_000) -> int:
        """Housekeeping: delete up to `limit` done jobs finished more than `older_than_s` ago."""
        with self.db.write() as conn:
            conn.execute(SQL_DELETE_DONE, (self.clock() - older_than_s, limit))
            return conn.changes()

    # --- waking workers -------------------------------------------------------------------

    def _notify(self) -> None:
        with self._cond:
            self._seq += 1
            self._cond.notify_all()

    @property
    def seq(self) -> int:
        """A counter bumped whenever work may have become available in this process."""
        return self._seq

    def wait(self, seq: int, timeout: float) -> None:
        """Block until `seq` changes (new work, or `wake_all`) or `timeout` seconds pass."""
        with self._cond:
            if self._seq == seq:
                self._cond.wait(timeout)

    def wake_all(self) -> None:
        """Wake every waiting worker (used by `WorkerPool.stop`)."""
        self._notify()


def _filters(state: str | None, type: str | None) -> tuple[str, tuple[Any, ...]]:
    """Extra `AND ...` conditions (fixed SQL, values bound) for optional state and type filters."""
    sql, args = "", []
    if state is not None:
        sql += " AND state = ?"
        args.append(state)
    if type is not None:
        sql += " AND type = ?"
        args.append(type)
    return sql, tuple(args)


def _encode_payload(payload: Mapping[str, Any] | None) -> str:
    if payload is None:
        return "{}"
    if not isinstance(payload, Mapping):
        raise BadInput("job payload must be a JSON object")
    try:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"job payload is not JSON-serialisable: {exc}") from None
    if len(body.encode()) > MAX_PAYLOAD_BYTES:
        raise BadInput(f"job payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    return body


# --- the worker pool -----------------------------------------------------------------------

# Errors of the storage itself, not of a job: the pool pauses instead of failing jobs.
STORAGE_ERRORS = (apsw.FullError, apsw.ReadOnlyError, DiskFull, ReadOnly)

Handler = Callable[[Job], None]


class WorkerPool:
    """A bounded pool of threads that lease jobs and run their handlers.

    `handlers` maps each job type to its handler; it is the one place types are registered.
    A job of a type with no handler is dead-lettered with a message naming the type. One
    extra thread ("keeper") heartbeats the pool's running jobs every `heartbeat_s` and
    returns expired leases (of any process) to ready.
    """

    def __init__(
        self,
        queue: Queue,
        handlers: Mapping[str, Handler],
        *,
        threads: int = 2,
        poll_s: float = 1.0,
        heartbeat_s: float | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.queue = queue
        self.handlers = dict(handlers)
        self.size = threads
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else queue.lease_s / 3
        self.metrics = metrics
        self._stop = threading.Event()  # no new leases
        self._keeper_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._keeper: threading.Thread | None = None
        self._running: dict[int, Job] = {}  # job id -> the leased job, for heartbeats and release
        self._lock = threading.Lock()
        self.pause_s = 60.0
        self.paused_until = 0.0  # monotonic; no leases before it
        self.paused_reason = ""

    # --- one step, usable without threads -------------------------------------------------

    def run_one(self, now: float | None = None) -> Job | None:
        """Lease one due job and run it in this thread; returns the job run, or None if idle."""
        job = self.queue.lease(now)
        if job is not None:
            self._execute(job)
        return job

    def _execute(self, job: Job) -> None:
        handler = self.handlers.get(job.type)
        with self._lock:
            self._running[job.id] = job
        started = time.monotonic()
        outcome = "done"
        try:
            if handler is None:
                outcome = "failed"
                self.queue.fail(job, f"no handler for job type {job.type!r}", give_up=True)
                return
            handler(job)
            if not self.queue.complete(job):
                raise LeaseLost(job.id)
        except LeaseLost:
            outcome = "lost"
            log.warning("job_lease_lost", extra={"fields": {"job": job.id, "type": job.type}})
        except Later as exc:
            outcome = "later"
            log.info(
                "job_later",
                extra={
                    "fields": {"job": job.id, "type": job.type, "seconds": exc.seconds, "reason": exc.reason}
                },
            )
            self.queue.release(job, delay=exc.seconds)
        except STORAGE_ERRORS as exc:
            # The disk is full or read-only: no handler can succeed, and failing the job would
            # burn its attempts on something that is not its fault. Hand it back and pause.
            outcome = "paused"
            self.pause(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(*STORAGE_ERRORS):
                self.queue.release(job, delay=self.pause_s)
        except Exception as exc:
            outcome = "failed"
            give_up = isinstance(exc, GiveUp)
            error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "job_failed",
                exc_info=not give_up,
                extra={"fields": {"job": job.id, "type": job.type, "attempt": job.attempts, "error": error}},
            )
            self.queue.fail(job, error, give_up=give_up)
        finally:
            with self._lock:
                self._running.pop(job.id, None)
            if self.metrics is not None:
                self.metrics.job_duration.labels(job.type, outcome).observe(time.monotonic() - started)

    # --- threads --------------------------------------------------------------------------

    def start(self) -> None:
        """Recover expired leases, then start the workers and the keeper."""
        self.queue.recover()
        self._stop.clear()
        self._keeper_stop.clear()
        self._threads = [
            threading.Thread(target=self._work, name=f"harmony-worker-{n + 1}", daemon=True)
            for n in range(self.size)
        ]
        self._keeper = threading.Thread(target=self._keep, name="harmony-jobs-keeper", daemon=True)
        for thread in [*self._threads, self._keeper]:
            thread.start()

    def pause(self, reason: str) -> None:
        """Lease nothing for `pause_s` seconds (the storage cannot take writes)."""
        if time.monotonic() >= self.paused_until:
            log.warning("workers_paused", extra={"fields": {"reason": reason, "seconds": self.pause_s}})
        self.paused_until = time.monotonic() + self.pause_s
        self.paused_reason = reason

    def _work(self) -> None:
        while not self._stop.is_set():
            seq = self.queue.seq
            wait = self.paused_until - time.monotonic()
            if wait > 0:
                self._stop.wait(min(wait, self.poll_s))
                continue
            try:
                job = self.queue.lease()
                if job is not None:
                    self._execute(job)
                    continue
            except STORAGE_ERRORS as exc:
                self.pause(f"{type(exc).__name__}: {exc}")
            except Exception:
                # A database error (a lock timeout): log, back off one poll, go on.
                log.exception("worker_error")
            if not self._stop.is_set():
                self.queue.wait(seq, self.poll_s)

    def _keep(self) -> None:
        while not self._keeper_stop.wait(self.heartbeat_s):
            try:
                self.heartbeat()
                self.queue.recover()
            except Exception:
                log.exception("jobs_keeper_error")

    def heartbeat(self) -> None:
        """Extend the lease of every job this pool is running."""
        with self._lock:
            running = list(self._running.values())
        for job in running:
            if not self.queue.heartbeat(job):
                log.warning("job_lease_lost", extra={"fields": {"job": job.id, "type": job.type}})

    def running(self) -> list[Job]:
        with self._lock:
            return list(self._running.values())

    def is_alive(self) -> bool:
        """True while every worker thread and the keeper are running."""
        threads = [*self._threads, *([self._keeper] if self._keeper else [])]
        return bool(threads) and all(thread.is_alive() for thread in threads)

    def stop(self, timeout: float = 10.0) -> list[int]:
        """Stop leasing, give running jobs `timeout` seconds to finish, release the rest.

        Released jobs go back to ready without counting the attempt; their handlers may still
        be running in their (daemon) threads, and whatever they report later is dropped as a
        lost lease. Returns the ids released. Heartbeats go on until the release.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        self.queue.wake_all()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        released = []
        for job in self.running():
            if self.queue.release(job):
                released.append(job.id)
        if released:
            log.warning("jobs_released", extra={"fields": {"ids": released}})
        self._keeper_stop.set()
        if self._keeper is not None:
            self._keeper.join(max(1.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        if alive:
            log.warning("workers_still_running", extra={"fields": {"threads": alive}})
        return released
