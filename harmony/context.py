"""The composition root: builds every long-lived object in order and tears them down in reverse.

`open_context(config)` is the only place that opens the database, builds the clients and the
pipeline's objects, and wires background work. After the objects come three literal tables,
in this order:

1. readiness checks: `(name, check, probed)` rows, each check a method of its owner;
2. periodic tasks for the timer wheel: `(name, interval, fn, initial delay)` rows;
3. job handlers for the worker pool: `{module.JOB: obj.run}`.

To add a pipeline stage, build its object here and add its rows to the tables; nothing
registers itself at import time, and no domain function takes the context. `close_context`
undoes everything, and `with opened(config) as ctx:` does both. The CLI, the demo and the
tests all go through here, so they run the same wiring.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import backfill, backups, importer, library, playlists, search, transfers, wanted, watchlist, webhooks
from . import config as options
from .auth import Throttle
from .config import Config
from .db import Database
from .downloads import Locator
from .errors import HarmonyError
from .health import Health
from .jobs import Handler, Queue, WorkerPool
from .metrics import Metrics
from .slskd import Slskd
from .spotify import Spotify
from .timers import Wheel
from .upstream import Upstream

log = logging.getLogger(__name__)

# Housekeeping: finished jobs are kept this long for the activity history.
DONE_JOB_RETENTION = 7 * 86400.0
DATA_DIR_MODE = 0o700


class Background(Protocol):
    """Something that owns threads: started after the app is built, stopped before the db closes."""

    def start(self) -> None: ...

    def stop(self, timeout: float) -> object: ...

    def is_alive(self) -> bool: ...


@dataclass
class Context:
    config: Config  # the current configuration; replaced whole when a live option changes
    base_config: Config  # defaults, file, environment and flags: what stored settings apply to
    db: Database
    metrics: Metrics
    health: Health
    upstream: Upstream
    spotify: Spotify
    slskd: Slskd
    queue: Queue
    wheel: Wheel
    workers: WorkerPool
    auth_throttle: Throttle
    watcher: watchlist.Watcher
    playlists: playlists.Playlists
    requests: watchlist.Requests
    searcher: search.Searcher
    library: library.Library
    importer: importer.Importer
    transfers: transfers.Transfers
    backfill: backfill.Backfiller
    webhooks: webhooks.Webhooks
    backups: backups.Backups
    started_at: float = field(default_factory=time.time)
    background: list[Background] = field(default_factory=list)
    running: bool = False
    # Set when the server starts to stop: open event streams end at once, so the drain of
    # in-flight requests is not held up by them.
    stopping: threading.Event = field(default_factory=threading.Event)
    close: Callable[[], None] = lambda: None

    def live(self) -> Config:
        """The current configuration: objects that honour live options call this once a cycle."""
        return self.config

    def start_background(self) -> None:
        for part in self.background:
            part.start()
        self.running = True

    def stop_background(self) -> None:
        """Stop in reverse order, sharing `server.shutdown_timeout` between the parts."""
        self.running = False
        self.stopping.set()
        deadline = time.monotonic() + self.config["server.shutdown_timeout"]
        for part in reversed(self.background):
            part.stop(max(0.1, deadline - time.monotonic()))

    def background_alive(self) -> str:
        """For /ready: every background thread runs (once started); names the dead ones."""
        if not self.running:
            return "not started"
        dead = [type(part).__name__ for part in self.background if not part.is_alive()]
        if dead:
            raise HarmonyError("background threads stopped: " + ", ".join(dead))
        return "timer wheel and job workers running"


def prepare_data_dir(path: str) -> None:
    """Create the data directory (mode 0700: it holds the database with Spotify's tokens), or
    raise HarmonyError saying why it cannot be used."""
    try:
        os.makedirs(path, mode=DATA_DIR_MODE, exist_ok=True)
    except FileExistsError:
        raise HarmonyError(f"data.dir {path} exists and is not a directory; set data.dir elsewhere") from None
    except NotADirectoryError:
        raise HarmonyError(
            f"data.dir {path} lies under a file, not a directory; set data.dir elsewhere"
        ) from None
    except OSError as exc:
        raise HarmonyError(
            f"cannot create data.dir {path}: {exc.strerror}; create it or set data.dir elsewhere"
        ) from None
    if not os.path.isdir(path):
        raise HarmonyError(f"data.dir {path} is not a directory; set data.dir elsewhere")
    if not os.access(path, os.W_OK | os.X_OK):
        raise HarmonyError(
            f"data.dir {path} is not writable by this user (uid {os.getuid()}); "
            "fix its owner or permissions, or set data.dir elsewhere"
        )


SNAPSHOT_MAX_AGE = 10.0  # seconds a whole-table count on /metrics is reused


def open_context(config: Config) -> Context:
    """Open the database (migrating it), build clients, checks and background parts, in order.

    If anything fails after the database is open, what was opened is closed again.
    """
    prepare_data_dir(config["data.dir"])
    with contextlib.ExitStack() as stack:
        db = Database(config.database_path)
        stack.callback(db.close)
        db.migrate()
        base_config = config
        config = options.apply_stored(db, base_config)
        metrics = Metrics()
        health = Health(metrics)
        upstream = Upstream(
            metrics,
            connect_timeout=config["upstream.connect_timeout"],
            read_timeout=config["upstream.read_timeout"],
            retries=config["upstream.retries"],
            max_retry_after=config["upstream.max_retry_after"],
            max_cooldown=config["upstream.max_cooldown"],
            quota_cooldown=config["upstream.quota_cooldown"],
        )
        stack.callback(upstream.close)
        spotify = Spotify(
            upstream,
            db,
            client_id=config["spotify.client_id"],
            client_secret=config["spotify.client_secret"],
            api_url=config["spotify.api_url"],
            accounts_url=config["spotify.accounts_url"],
            redirect_uri=config["spotify.redirect_uri"],
            rate=config["spotify.rate"],
            market=config["spotify.market"],
        )
        slskd = Slskd(upstream, config["slskd.url"], config["slskd.api_key"])
        queue = Queue(
            db, lease_s=config["jobs.lease"], max_attempts=config["jobs.max_attempts"], metrics=metrics
        )
        wheel = Wheel(db, metrics=metrics)
        throttle = Throttle(
            config["auth.failure_limit"],
            on_failure=lambda outcome: metrics.auth_failures.labels(outcome).inc(),
        )

        ctx: Context  # bound below; the background check and `live` read it only once running

        def live() -> Config:
            return ctx.config

        watcher = watchlist.Watcher(db, spotify, queue, metrics, live)
        followed = playlists.Playlists(db, spotify, queue, metrics, live)
        requests = watchlist.Requests(db, spotify)

        def downloaded(conn: Any, download: transfers.Download) -> None:
            """A finished file goes to import, as a job named after its transfer."""
            payload = {"transfer_id": download.id}
            queue.enqueue(importer.JOB, payload, key=f"import:{download.id}", priority=20)

        downloads = transfers.Transfers(
            db, slskd, queue, metrics, live, pick=search.next_candidate, downloaded=downloaded
        )
        searcher = search.Searcher(db, slskd, queue, downloads, metrics, live)
        library_dir, downloads_dir = config.library_dir, config.downloads_dir
        shelf = library.Library(db, queue, metrics, live)
        locator = Locator(
            slskd,
            downloads_dir,
            claimed=lambda: {
                row["local_path"]
                for row in db.query(
                    "SELECT local_path FROM transfers WHERE local_path IS NOT NULL AND library_path IS NULL"
                )
            },
        )
        imports = importer.Importer(
            db, metrics, live, locator=locator, transfers=downloads, cover=spotify.cover_image
        )

        backfiller = backfill.Backfiller(db, spotify, queue, metrics, live, library_dir)
        notifier = webhooks.Webhooks(db, queue, upstream, spotify, health, metrics, live)
        saver = backups.Backups(db, config.backup_dir, config["backup.keep"], metrics)

        # 1. Readiness checks: (name, check, probed). Probed checks touch the disk or an
        # upstream and run on the wheel; /ready reports their last result.
        checks: list[tuple[str, Callable[[], str], bool]] = [
            ("database", lambda: db.probe_write(config["data.min_free"]), True),
            ("background", lambda: ctx.background_alive(), False),
            ("library", lambda: library.writable(library_dir), False),
            ("downloads", lambda: library.readable(downloads_dir), False),
            ("move", lambda: library.move_possible(downloads_dir, library_dir), True),
            ("slskd", slskd.probe, True),
            ("spotify", spotify.probe, True),
        ]
        for name, check, probed in checks:
            health.add(name, check, probed=probed)

        # Free space is measured with the probes (one statvfs a directory), not at scrape time,
        # so a hung mount cannot hold up /metrics.
        disks = {"data": config["data.dir"], "library": library_dir, "downloads": downloads_dir}

        def probe() -> None:
            metrics.measure_disks(disks)
            health.probe()

        # 2. Periodic tasks: (name, interval, fn, initial delay); an interval of 0 turns a task off.
        tasks: list[tuple[str, float, Callable[[], Any], float]] = [
            ("health_probe", config["health.probe_interval"], probe, 0.0),
            ("job_housekeeping", 3600.0, lambda: queue.delete_done(DONE_JOB_RETENTION), 60.0),
            ("watchlist_dispatch", 60.0, watcher.dispatch, 5.0),
            ("playlist_dispatch", 60.0, followed.dispatch, 5.0),
            ("search_dispatch", 5.0, searcher.dispatch, 5.0),
            ("search_poll", 2.0, searcher.poll, 2.0),
            ("transfer_poll", config["transfers.poll_interval"], downloads.poll, 3.0),
            ("search_budget_housekeeping", 3600.0, searcher.budget.prune, 120.0),
            ("library_scan", 60.0, shelf.tick, 10.0),
            ("library_orphans", 3600.0, shelf.sweep, 300.0),
            ("webhook_dispatch", 5.0, notifier.dispatch, 5.0),
            ("backup", config["backup.interval"], saver.run, 600.0),
        ]
        for name, interval, fn, delay in tasks:
            if interval > 0:
                wheel.add(name, interval, fn, initial_delay_s=delay)
        # Probe as soon as the wheel starts, whatever the stored schedule: until the first probe
        # the probed checks are "pending" and /ready says 503.
        wheel.trigger("health_probe")

        # 3. Job handlers by type: the one place job types are registered.
        handlers: dict[str, Handler] = {
            watchlist.JOB: watcher.scan,
            watchlist.EXPAND_JOB: watcher.expand,
            playlists.JOB: followed.sync,
            search.JOB_START: searcher.start,
            search.JOB_EVALUATE: searcher.evaluate,
            transfers.JOB: downloads.start,
            library.JOB: shelf.run,
            importer.JOB: imports.run,
            backfill.JOB: backfiller.run,
            webhooks.JOB: notifier.deliver,
        }
        workers = WorkerPool(queue, handlers, threads=config["jobs.workers"], metrics=metrics)

        ctx = Context(
            config=config,
            base_config=base_config,
            db=db,
            metrics=metrics,
            health=health,
            upstream=upstream,
            spotify=spotify,
            slskd=slskd,
            queue=queue,
            wheel=wheel,
            workers=workers,
            auth_throttle=throttle,
            watcher=watcher,
            playlists=followed,
            requests=requests,
            searcher=searcher,
            library=shelf,
            importer=imports,
            transfers=downloads,
            backfill=backfiller,
            webhooks=notifier,
            backups=saver,
            background=[wheel, workers],
        )

        # Gauges read at scrape time, from the owners' own counts; the last element is how long a
        # read may be reused (0: read at every scrape), for counts that walk a whole table.
        snapshots: list[tuple[str, str, list[str], Callable[[], Mapping[tuple[str, ...], float]], float]] = [
            (
                "harmony_jobs",
                "Jobs by state and type.",
                ["state", "type"],
                lambda: {key: float(n) for key, n in queue.counts().items()},
                0.0,
            ),
            (
                "harmony_watched_artists",
                "Watched artists by state (ok, failing, cooling_down, paused).",
                ["state"],
                lambda: {(state,): n for state, n in watcher.counts().items()},
                0.0,
            ),
            (
                "harmony_wanted_items",
                "Wanted items by state.",
                ["state"],
                lambda: {(state,): n for state, n in wanted.counts_by_state(db).items()},
                0.0,
            ),
            (
                "harmony_wanted_items_by_source",
                "Wanted items by source kind (release, playlist, manual) and state.",
                ["source", "state"],
                lambda: {
                    (kind, state): n
                    for kind, states in wanted.counts_by_source(db).items()
                    for state, n in states.items()
                },
                SNAPSHOT_MAX_AGE,
            ),
            (
                "harmony_wanted_oldest_seconds",
                "Seconds the longest-waiting item has been in each passing state (0: none in it).",
                ["state"],
                lambda: {(state,): age for state, age in wanted.oldest_by_state(db, time.time()).items()},
                0.0,
            ),
            (
                "harmony_search_budget_remaining",
                "Searches the budget allows now.",
                [],
                lambda: {(): searcher.budget.status()["remaining"]},
                0.0,
            ),
            (
                "harmony_transfers",
                "Transfers under way by state.",
                ["state"],
                lambda: {(state,): n for state, n in downloads.counts().items()},
                0.0,
            ),
            (
                "harmony_stale_playlists",
                "Followed playlists not synced successfully within playlists.stale_after.",
                [],
                lambda: {(): followed.stale_count()},
                0.0,
            ),
            (
                "harmony_library_tracks",
                "Files in the library index.",
                [],
                lambda: {(): library.count_tracks(db)},
                SNAPSHOT_MAX_AGE,
            ),
            (
                "harmony_library_scan_running",
                "Whether a library scan runs (1) or not (0).",
                [],
                lambda: {(): shelf.progress()["running"]},
                0.0,
            ),
            (
                "harmony_library_scan_progress_files",
                "Files the running library scan has looked at so far (0 when none runs).",
                [],
                lambda: {(): shelf.progress()["files"]},
                0.0,
            ),
            (
                "harmony_library_scan_rate",
                "Files per second of the running library scan (0 when none runs).",
                [],
                lambda: {(): shelf.progress()["rate"]},
                0.0,
            ),
        ]
        for name, documentation, labels, read, max_age in snapshots:
            metrics.snapshot(name, documentation, labels, read, max_age)
        ctx.close = stack.pop_all().close
        return ctx


def close_context(ctx: Context) -> None:
    ctx.close()


@contextlib.contextmanager
def opened(config: Config) -> Iterator[Context]:
    """`open_context` for a `with` block: the context is closed however the block ends."""
    ctx = open_context(config)
    try:
        yield ctx
    finally:
        close_context(ctx)
