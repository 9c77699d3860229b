"""Prometheus metrics: every metric Harmony exports is declared here, on one explicit registry.

Scrape-time values (queue depth, counts of rows) come from collectors registered by the
composition root; counters and histograms are updated by the code that does the work.
"""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client import PlatformCollector, ProcessCollector

from . import __version__


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
        self.ready = Gauge(
            "harmony_ready_check",
            "Result of each readiness check at its last run (1 ok, 0 failing).",
            ["check"],
            registry=self.registry,
        )
