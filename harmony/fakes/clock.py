"""The fake services' clock: real wall-clock time plus an offset that tests can advance.

Everything time-dependent in the fakes (token expiry, search progress, transfer progress,
release dates becoming visible, rate-limit windows, idle keep-alive connections, a request
held while slskd "connects to a peer") reads this clock, so a test advances it instead of
sleeping. A fake that must wait inside a request calls `sleep`, which returns as soon as the
clock has moved far enough, by real time or by `advance`.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable


class FakeClock:
    """Wall-clock time shifted by an offset.

    `start` (epoch seconds) pins the clock's current reading at construction; it then keeps
    moving with real time. `advance()` only ever moves it forward. Safe to share between threads.
    """

    def __init__(self, start: float | None = None) -> None:
        self._moved = threading.Condition()
        self._offset = 0.0 if start is None else start - time.time()
        self._listeners: list[Callable[[float], None]] = []
        self.started_at = self.now()

    def now(self) -> float:
        """Current fake time, in epoch seconds."""
        with self._moved:
            return time.time() + self._offset

    def utcnow(self) -> dt.datetime:
        """Current fake time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.now(), dt.UTC)

    def today(self) -> dt.date:
        """Current fake date (UTC)."""
        return self.utcnow().date()

    def advance(self, seconds: float) -> float:
        """Move the clock forward by `seconds` (negative values are refused) and return the new time.

        Listeners (`on_advance`) run before this returns, so whatever they settle (a server
        closing its idle connections) is done by the time the caller's next request goes out."""
        if seconds < 0:
            raise ValueError(f"the fake clock cannot go backwards ({seconds} s)")
        with self._moved:
            self._offset += seconds
            self._moved.notify_all()
            listeners = list(self._listeners)
        now = self.now()
        for listener in listeners:
            listener(now)
        return now

    def on_advance(self, listener: Callable[[float], None]) -> Callable[[], None]:
        """Call `listener(now)` after every `advance`; returns a function that removes it."""
        with self._moved:
            self._listeners.append(listener)

        def remove() -> None:
            with self._moved:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Wait until the fake clock has moved `seconds` on (or `stop` is set)."""
        deadline = self.now() + seconds
        with self._moved:
            while (left := deadline - (time.time() + self._offset)) > 0:
                if stop is not None and stop.is_set():
                    return
                self._moved.wait(min(left, 0.05) if stop is not None else left)
