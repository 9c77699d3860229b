"""The fake services' clock: real wall-clock time plus an offset that tests can advance.

Everything time-dependent in the fakes (token expiry, search progress, transfer progress,
release dates becoming visible) reads this clock, so a test advances it instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import threading
import time


class FakeClock:
    """Wall-clock time shifted by an offset.

    `start` (epoch seconds) pins the clock's current reading at construction; it then keeps
    moving with real time. `advance()` only ever moves it forward. Safe to share between threads.
    """

    def __init__(self, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0 if start is None else start - time.time()
        self.started_at = self.now()

    def now(self) -> float:
        """Current fake time, in epoch seconds."""
        with self._lock:
            return time.time() + self._offset

    def utcnow(self) -> dt.datetime:
        """Current fake time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.now(), dt.UTC)

    def today(self) -> dt.date:
        """Current fake date (UTC)."""
        return self.utcnow().date()

    def advance(self, seconds: float) -> float:
        """Move the clock forward by `seconds` (negative values are refused) and return the new time."""
        if seconds < 0:
            raise ValueError(f"the fake clock cannot go backwards ({seconds} s)")
        with self._lock:
            self._offset += seconds
        return self.now()
