"""Prometheus metrics: every metric Harmony exports is declared here, on one explicit registry.

Counters and histograms are attributes of `Metrics`, updated by the code that does the work.
Values read at scrape time (the queue by state, items by state, artists by state) are
`Snapshot` gauges: `Metrics.snapshot(name, help, labels, read)` declares one, and the
composition root passes the domain function that reads it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from . import __version__


class Snapshot:
    """A gauge family read when scraped: `read()` maps label values to a number. With `max_age`,
    a read is reused for that many seconds: for counts that cost milliseconds on a large
    database, so that scrapes close together (two Prometheus servers, a dashboard) cost one."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], Mapping[tuple[str, ...], float]],
        max_age: float = 0.0,
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self._read, self.max_age = read, max_age
        self._lock = threading.Lock()
        self._last: tuple[float, Mapping[tuple[str, ...], float]] | None = None

    def read(self) -> Mapping[tuple[str, ...], float]:
        if self.max_age <= 0:
            return self._read()
        with self._lock:  # one read at a time: concurrent scrapes wait for it, then share it
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= self.max_age:
                self._last = (now, self._read())
            return self._last[1]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labels)

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for key, value in sorted(self.read().items()):
            family.add_metric(list(key), value)
        yield family


class Metrics:
    """A fresh registry and Harmony's metrics on it; one per process (tests make their own)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        build = Info("harmony_build", "Harmony build information.", registry=self.registry)
        build.info({"version": __version__, "python": platform.python_version()})
        self.http_requests = Counter(
            "harmony_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "harmony_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.http_queue_depth = Gauge(
            "harmony_http_queue_depth",
            "Requests accepted by the server and waiting for a free request thread.",
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "harmony_auth_failures",
            "Failed authentications: rejected (a bad key) or throttled (too many from one address).",
            ["outcome"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "harmony_ready_check",
            "Result of each readiness check at its last run (1 ok, 0 failing).",
            ["check"],
            registry=self.registry,
        )
        # Background work (jobs.py, timers.py). Queue depth is a snapshot (see `snapshot`).
        self.job_duration = Histogram(
            "harmony_job_duration_seconds",
            "Time spent running jobs, by type and outcome (done, failed, lost).",
            ["type", "outcome"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=self.registry,
        )
        self.job_failures = Counter(
            "harmony_job_failures",
            "Failed job attempts, by type.",
            ["type"],
            registry=self.registry,
        )
        self.task_runs = Counter(
            "harmony_task_runs",
            "Runs of each timer task.",
            ["task"],
            registry=self.registry,
        )
        self.task_failures = Counter(
            "harmony_task_failures",
            "Runs of each timer task that raised.",
            ["task"],
            registry=self.registry,
        )
        self.task_last_success = Gauge(
            "harmony_task_last_success_timestamp_seconds",
            "When each timer task last succeeded (Unix time).",
            ["task"],
            registry=self.registry,
        )
        # Outbound requests to Spotify and slskd (upstream.py).
        self.upstream_requests = Counter(
            "harmony_upstream_requests",
            "Outbound requests by service and outcome (ok, http_4xx, http_5xx, error, cooldown).",
            ["service", "outcome"],
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "harmony_upstream_request_duration_seconds",
            "Outbound request latency by service (one attempt).",
            ["service"],
            registry=self.registry,
        )
        self.upstream_cooldown = Gauge(
            "harmony_upstream_cooldown_until_seconds",
            "Unix time until which a service is cooling down after a long Retry-After (0: none).",
            ["service"],
            registry=self.registry,
        )
        # The wanted list (watchlist.py, playlists.py, wanted.py).
        self.watchlist_scans = Counter(
            "harmony_watchlist_scans",
            "Artist scans by outcome (unchanged, new_releases, rate_limited, quota, not_found, failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.releases_found = Counter(
            "harmony_releases_found",
            "New releases found on watched artists, by release group.",
            ["group"],
            registry=self.registry,
        )
        self.playlist_syncs = Counter(
            "harmony_playlist_syncs",
            "Playlist syncs by outcome (synced, unchanged, unreadable, gone, rate_limited, quota, failed).",
            ["outcome"],
            registry=self.registry,
        )

        # Acquisition (search.py, transfers.py).
        self.searches = Counter(
            "harmony_searches",
            "Soulseek searches by outcome (started, found, nothing) and query variant.",
            ["outcome", "variant"],
            registry=self.registry,
        )
        self.candidates_per_search = Histogram(
            "harmony_candidates_per_search",
            "Acceptable candidates a search found.",
            buckets=(0, 1, 2, 3, 5, 10, 20, 50, 100),
            registry=self.registry,
        )
        self.search_to_enqueue = Histogram(
            "harmony_search_to_enqueue_seconds",
            "Seconds from the search that found a file to the file being asked of its peer.",
            buckets=(5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )
        self.transfers_started = Counter(
            "harmony_transfers_started", "Files asked of peers through slskd.", registry=self.registry
        )
        self.transfers_finished = Counter(
            "harmony_transfers_finished",
            "Transfers ended, by outcome (succeeded, rejected, timed_out, stalled_*, cancelled, ...).",
            ["outcome"],
            registry=self.registry,
        )
        self.stalls = Counter(
            "harmony_transfer_stalls",
            "Transfers given up for not moving, by kind (never_queued, no_progress, queue, ceiling).",
            ["kind"],
            registry=self.registry,
        )
        self.fall_throughs = Counter(
            "harmony_fall_throughs",
            "Times an item went on to its next candidate after a transfer failed.",
            registry=self.registry,
        )
        self.cooldowns = Counter(
            "harmony_peer_cooldowns",
            "Times a peer was put in a cooldown after a failure.",
            registry=self.registry,
        )
        self.slskd_list_calls = Counter(
            "harmony_slskd_list_calls",
            "Reads of slskd's transfer list (one per poll, whatever the number of transfers), by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        # Import (importer.py).
        self.imports = Counter(
            "harmony_imports",
            "Finished downloads imported, by outcome (imported, duplicate, refused).",
            ["outcome"],
            registry=self.registry,
        )
        self.quarantined = Counter(
            "harmony_quarantined",
            "Files set aside in quarantine, by reason (incomplete, not_audio, duplicate, replaced, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.wanted_to_library = Histogram(
            "harmony_wanted_to_library_seconds",
            "Seconds from an item becoming wanted to its file in the library.",
            buckets=(60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400),
            registry=self.registry,
        )
        # Backfill (backfill.py).
        self.backfill_tracks = Counter(
            "harmony_backfill_tracks",
            "Library tracks looked at by backfill: matched_isrc, matched_search, unmatched, error.",
            ["outcome"],
            registry=self.registry,
        )

        # Periodic backups (backups.py).
        self.backups = Counter(
            "harmony_backups",
            "Periodic backups by outcome (ok: written and checked; failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.backup_last_success = Gauge(
            "harmony_backup_last_success_timestamp_seconds",
            "When the newest checked backup in backup.dir was taken (Unix time; 0: none yet).",
            registry=self.registry,
        )
        self.backup_size = Gauge(
            "harmony_backup_size_bytes",
            "Size of the newest checked backup in bytes.",
            registry=self.registry,
        )
        for outcome in ("ok", "failed"):
            self.backups.labels(outcome)

        # The library index (library.py). Tracks and the running scan are snapshots.
        self.library_scan_files = Counter(
            "harmony_library_scan_files",
            "Files library scans looked at, by outcome (added, changed, unchanged, moved, removed, error).",
            ["outcome"],
            registry=self.registry,
        )
        self.library_orphans = Gauge(
            "harmony_library_orphans",
            "Files in slskd's download directory that no transfer claims, at the last sweep.",
            registry=self.registry,
        )
        # Free space where Harmony writes (data dir, library) and reads (slskd's downloads),
        # measured with statvfs at each health probe (see `measure_disks`).
        self.disk_free = Gauge(
            "harmony_disk_free_bytes",
            "Bytes free to Harmony's user on the filesystem of each directory (data, library, downloads).",
            ["path"],
            registry=self.registry,
        )
        self.disk_size = Gauge(
            "harmony_disk_size_bytes",
            "Size in bytes of the filesystem of each directory (data, library, downloads).",
            ["path"],
            registry=self.registry,
        )
        # Outbound webhooks (webhooks.py).
        self.webhook_deliveries = Counter(
            "harmony_webhook_deliveries",
            "Webhook delivery attempts by outcome (delivered, failed, dead, dropped).",
            ["outcome"],
            registry=self.registry,
        )

    def measure_disks(self, paths: Mapping[str, str]) -> None:
        """Set the disk gauges for each `label: directory` (one statvfs each); a directory that
        cannot be read (missing, unmounted) drops its series rather than report a stale figure."""
        for label, path in paths.items():
            try:
                stats = os.statvfs(path)
            except OSError:
                for gauge in (self.disk_free, self.disk_size):
                    with contextlib.suppress(KeyError):
                        gauge.remove(label)
                continue
            self.disk_free.labels(label).set(stats.f_bavail * stats.f_frsize)
            self.disk_size.labels(label).set(stats.f_blocks * stats.f_frsize)

    def snapshot(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], Mapping[tuple[str, ...], float]],
        max_age: float = 0.0,
    ) -> None:
        """Declare a gauge family computed at scrape time by `read` (reused for `max_age` s)."""
        self.registry.register(Snapshot(name, documentation, labels, read, max_age))
