"""Readiness: a registry of named checks behind `GET /ready`.

A check is a function that returns a short detail string when healthy and raises (any
exception, ideally a HarmonyError with a clear message) when not. Two kinds:

- inline checks are cheap and local (the database) and run on every `/ready` request;
- probed checks touch an upstream; they run only from `probe()`, which the timer wheel
  calls every `health.probe_interval`, and `/ready` reports their last result, so a slow
  upstream never makes `/ready` slow. A probed check that has not run yet is "pending",
  which counts as not ready.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .metrics import Metrics

log = logging.getLogger(__name__)

CheckFn = Callable[[], str]


@dataclass
class Result:
    ok: bool
    detail: str
    checked_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "checked_at": self.checked_at}


class Health:
    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.clock = clock
        self._inline: dict[str, CheckFn] = {}
        self._probed: dict[str, CheckFn] = {}
        self._results: dict[str, Result] = {}
        self._lock = threading.Lock()

    def add(self, name: str, fn: CheckFn, *, probed: bool = False) -> None:
        (self._probed if probed else self._inline)[name] = fn
        if probed:
            self._results[name] = Result(False, "pending: not probed yet", None)

    def _run(self, name: str, fn: CheckFn) -> Result:
        try:
            result = Result(True, fn(), self.clock())
        except Exception as exc:  # a check failing is data, not an error
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            result = Result(False, message, self.clock())
        self.metrics.ready.labels(name).set(1 if result.ok else 0)
        return result

    def probe(self) -> None:
        """Run every probed check once and keep the results (called by the wheel)."""
        for name, fn in list(self._probed.items()):
            result = self._run(name, fn)
            with self._lock:
                before = self._results.get(name)
                self._results[name] = result
            # Log each change, and a check failing at its first probe (pending -> failing).
            if before is None or before.ok != result.ok or before.checked_at is None:
                level = logging.INFO if result.ok else logging.WARNING
                log.log(level, "ready_check_changed", extra={"fields": {"check": name, **result.as_dict()}})

    def result(self, name: str) -> Result | None:
        """A probed check's last result (None for an unknown or inline check); runs nothing."""
        with self._lock:
            return self._results.get(name)

    def report(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        """Run the inline checks, read the probed results; return (all ok, per-check results)."""
        checks = {name: self._run(name, fn) for name, fn in self._inline.items()}
        with self._lock:
            checks.update(self._results)
        return all(r.ok for r in checks.values()), {name: r.as_dict() for name, r in sorted(checks.items())}
