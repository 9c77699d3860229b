"""The composition root: builds every long-lived object in order and tears them down in reverse.

`open_context(config)` is the only place that opens the database, builds clients and
registers readiness checks and background work; `close_context` undoes it, and
`with opened(config) as ctx:` does both. The CLI, the demo and the tests all go through it,
so they run the same wiring.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from .config import Config
from .db import BUSY_TIMEOUT_MS, Database
from .health import Health
from .jobs import Handler, Queue, QueueCollector, WorkerPool
from .metrics import Metrics
from .slskd import Slskd
from .spotify import Spotify
from .timers import Wheel
from .upstream import Upstream

log = logging.getLogger(__name__)


class Background(Protocol):
    """Something that owns threads: started after the app is built, stopped before the db closes."""

    def start(self) -> None: ...

    def stop(self, timeout: float) -> object: ...


@dataclass
class Context:
    config: Config
    db: Database
    metrics: Metrics
    health: Health
    upstream: Upstream
    spotify: Spotify
    slskd: Slskd
    queue: Queue
    wheel: Wheel
    workers: WorkerPool
    started_at: float = field(default_factory=time.time)
    background: list[Background] = field(default_factory=list)

    def start_background(self) -> None:
        for part in self.background:
            part.start()

    def stop_background(self) -> None:
        """Stop in reverse order, sharing `server.shutdown_timeout` between the parts."""
        deadline = time.monotonic() + self.config["server.shutdown_timeout"]
        for part in reversed(self.background):
            part.stop(max(0.1, deadline - time.monotonic()))


def _database_writable(db: Database) -> str:
    # BEGIN IMMEDIATE takes the write lock: it proves writability without writing anything.
    # A short busy timeout, so /ready answers "busy" in a second instead of waiting for a
    # long transaction to finish.
    conn = db.conn()
    conn.setbusytimeout(1000)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.setbusytimeout(BUSY_TIMEOUT_MS)
    return f"schema version {db.user_version()}"


def _directory_writable(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{path} is not writable by this user")
    return path


def _downloads_visible(config: Config) -> str:
    """slskd's download directory must be the one Harmony reads (shared or bind-mounted)."""
    ours = config.downloads_dir
    if not os.path.isdir(ours):
        raise FileNotFoundError(
            f"slskd download directory {ours} does not exist here (set slskd.downloads_dir)"
        )
    return ours


def _move_possible(config: Config) -> str:
    """A file can be moved from slskd's download directory into the library.

    Probes with a real file: created in the download directory, renamed into the library. Across
    filesystems the rename fails with EXDEV; imports then copy, fsync and rename, which works
    but costs the copy, so that is reported, not failed.
    """
    os.makedirs(config.library_dir, exist_ok=True)
    handle, source = tempfile.mkstemp(dir=config.downloads_dir, prefix=".harmony-probe-")
    os.close(handle)
    target = os.path.join(config.library_dir, os.path.basename(source))
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        return "different filesystems: imports copy, then rename"
    finally:
        for leftover in (source, target):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    return "same filesystem: imports are atomic renames"


# Job handlers by type: the one place job types are registered.
HANDLERS: dict[str, Handler] = {}

# Housekeeping: finished jobs are kept this long for the activity history.
DONE_JOB_RETENTION = 7 * 86400.0


def open_context(config: Config) -> Context:
    """Open the database (migrating it), build clients, checks and background parts, in order."""
    os.makedirs(config["data.dir"], exist_ok=True)
    db = Database(config.database_path)
    try:
        db.migrate()
    except BaseException:
        db.close()
        raise
    metrics = Metrics()
    health = Health(metrics)
    upstream = Upstream(
        metrics,
        connect_timeout=config["upstream.connect_timeout"],
        read_timeout=config["upstream.read_timeout"],
        retries=config["upstream.retries"],
        max_retry_after=config["upstream.max_retry_after"],
    )
    spotify = Spotify(
        upstream,
        db,
        client_id=config["spotify.client_id"],
        client_secret=config["spotify.client_secret"],
        api_url=config["spotify.api_url"],
        accounts_url=config["spotify.accounts_url"],
        redirect_uri=config["spotify.redirect_uri"],
        rate=config["spotify.rate"],
    )
    slskd = Slskd(upstream, config["slskd.url"], config["slskd.api_key"])
    queue = Queue(db, lease_s=config["jobs.lease"], max_attempts=config["jobs.max_attempts"], metrics=metrics)
    metrics.registry.register(QueueCollector(queue))
    workers = WorkerPool(queue, HANDLERS, threads=config["jobs.workers"], metrics=metrics)
    wheel = Wheel(db, metrics=metrics)
    ctx = Context(
        config=config,
        db=db,
        metrics=metrics,
        health=health,
        upstream=upstream,
        spotify=spotify,
        slskd=slskd,
        queue=queue,
        wheel=wheel,
        workers=workers,
    )
    health.add("database", lambda: _database_writable(db))
    health.add("library", lambda: _directory_writable(config.library_dir))
    health.add("downloads", lambda: _downloads_visible(config))
    health.add("move", lambda: _move_possible(config), probed=True)
    health.add("slskd", slskd.probe, probed=True)
    health.add("spotify", spotify.probe, probed=True)
    wheel.add("health_probe", config["health.probe_interval"], health.probe)
    # Probe as soon as the wheel starts, whatever the stored schedule: until the first probe
    # the upstream checks are "pending" and /ready says 503.
    wheel.trigger("health_probe")
    wheel.add("job_housekeeping", 3600.0, lambda: queue.delete_done(DONE_JOB_RETENTION), initial_delay_s=60.0)
    ctx.background = [wheel, workers]
    return ctx


def close_context(ctx: Context) -> None:
    ctx.upstream.close()
    ctx.db.close()


@contextlib.contextmanager
def opened(config: Config) -> Iterator[Context]:
    """`open_context` for a `with` block: the context is closed however the block ends."""
    ctx = open_context(config)
    try:
        yield ctx
    finally:
        close_context(ctx)
