"""The service manager's notification protocol (sd_notify), with the stdlib socket only.

Under a unit with `Type=notify`, systemd passes `$NOTIFY_SOCKET` (a path, or an abstract socket
name starting with `@`): Harmony sends `READY=1` once it listens and its background work runs,
`STOPPING=1` when a stop begins, `STATUS=...` lines `systemctl status` shows, and, when the unit
has `WatchdogSec=` (`$WATCHDOG_USEC`), `WATCHDOG=1` at half that interval for as long as it is
healthy. Without `$NOTIFY_SOCKET` every call does nothing: outside systemd nothing changes.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` (`READY=1`, `STATUS=...`; several separated by newlines) to the service
    manager; return whether it was sent. Never raises: a lost notification must not stop
    the service, and systemd notices a missing one on its own (start timeout, watchdog)."""
    address = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket: its name begins with a NUL byte
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8", "replace"))
    except OSError as exc:
        log.warning("notify_failed", extra={"fields": {"state": state.split("=", 1)[0], "error": str(exc)}})
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """The unit's watchdog timeout in seconds, or None when there is none for this process
    (`$WATCHDOG_PID`, when set, names the process the watchdog is meant for)."""
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None


class Watchdog:
    """Pings `WATCHDOG=1` at half the unit's watchdog timeout while `healthy()` passes.

    `tick()` is called from the serving loop (at least every half second), so a ping also
    means the loop that accepts connections still turns; `healthy()` raises (any exception
    with a message) when a part has died, such as the timer wheel or the job workers. Then
    the pings stop, systemd kills the process after the timeout and `Restart=on-failure`
    starts it again. A part that recovers makes the pings resume, and `status` is shown again.
    """

    def __init__(
        self,
        healthy: Callable[[], object],
        interval: float | None,
        status: str = "",
        send: Callable[[str], object] = notify,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.healthy, self.status, self.send, self.clock = healthy, status, send, clock
        self.every = interval / 2 if interval else None
        self.next_at = 0.0
        self.failing: str | None = None

    def tick(self) -> None:
        if self.every is None or self.clock() < self.next_at:
            return
        self.next_at = self.clock() + self.every
        try:
            self.healthy()
        except Exception as exc:  # whatever made the check fail: stop pinging
            reason = str(exc) or type(exc).__name__
            if reason != self.failing:
                self.failing = reason
                log.error("watchdog_withheld", extra={"fields": {"reason": reason}})
                self.send(f"STATUS=Unhealthy, watchdog pings withheld: {reason}")
            return
        if self.failing is not None:
            self.failing = None
            log.info("watchdog_resumed")
            self.send(f"STATUS={self.status}")
        self.send("WATCHDOG=1")
