"""The one outbound HTTP policy: every call to Spotify, slskd and the webhooks goes through
`Upstream.request`.

Policy, in one place:

- one `urllib3.PoolManager`, explicit connect and read timeouts, a User-Agent;
- retries with jittered exponential backoff, only where a retry cannot do harm: any request
  on a connect failure or a 429 (the request was not processed), and idempotent requests also
  on read timeouts, dropped connections and 502/503/504;
- `Retry-After` is honoured in place up to `max_retry_after`; a longer one puts the service in
  a cooldown instead of parking a thread: until it ends every call to that service fails at
  once with `UpstreamCoolingDown`, and `/ready`, `/env` and `/metrics` show it. A cooldown
  lasts at most `max_cooldown`, whatever the header says, and a request that succeeds ends it
  early (a readiness probe may pass `ignore_cooldown=True` to find out);
- statuses become typed errors: 5xx and network failures `UpstreamUnavailable`, other 4xx
  `UpstreamRejected` (with `details["status"]`), unless the caller lists the status in `ok`.

Nothing here parses payloads: the client modules turn bodies into dataclasses.
"""

from __future__ import annotations

import email.utils
import html
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3

from . import __version__
from .errors import UpstreamCoolingDown, UpstreamRejected, UpstreamUnavailable
from .metrics import Metrics

log = logging.getLogger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
QUICK_TIMEOUT = urllib3.Timeout(connect=2.0, read=5.0)
# No Retry-After is taken at its word beyond a day: Spotify's longest seen are hours, and a
# 300-digit header must not become a cooldown until the end of time.
RETRY_AFTER_CEILING = 86400.0


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    data: bytes

    def json(self) -> Any:
        """The body as JSON; an empty body is None. A body that is not JSON is UpstreamRejected."""
        if not self.data.strip():
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            raise UpstreamRejected("upstream sent a body that is not JSON", status=self.status) from None


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number `attempt` (1-based): full jitter under a doubling cap."""
    return rand() * min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), at most
    `RETRY_AFTER_CEILING`; None if absent or malformed."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]+", value):
        return min(float(value), RETRY_AFTER_CEILING) if len(value) < 12 else RETRY_AFTER_CEILING
    try:
        when = email.utils.parsedate_to_datetime(value)
        seconds = when.timestamp() - now
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return min(max(0.0, seconds), RETRY_AFTER_CEILING)


def clock_time(until: float, now: float) -> str:
    """`until` as local `HH:MM:SS` (with the date when it is not today), for messages.

    Never fails: a value outside what the platform's time functions take is shown as such.
    """
    if not (0 <= until < 253402300800):  # year 10000: beyond it localtime overflows
        return "an unknown time"
    when, today = time.localtime(until), time.localtime(max(0.0, min(now, 253402300799.0)))
    if when[:3] == today[:3]:
        return time.strftime("%H:%M:%S", when)
    return time.strftime("%Y-%m-%d %H:%M:%S", when)


@dataclass(frozen=True)
class Cooldown:
    started: float
    until: float
    reason: str


class Upstream:
    """Shared by the whole process; thread-safe."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 3,
        max_retry_after: float = 30.0,
        max_cooldown: float = 3600.0,
        quota_cooldown: float = 3600.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.retries = retries
        self.max_retry_after = max_retry_after
        self.max_cooldown = max_cooldown
        self.quota_cooldown = quota_cooldown
        self.clock = clock
        self.sleep = sleep
        self.pool = urllib3.PoolManager(
            num_pools=8,
            maxsize=4,
            headers={"User-Agent": f"Harmony/{__version__} (+self-hosted)"},
            retries=False,
        )
        self._cooldowns: dict[str, Cooldown] = {}
        self._lock = threading.Lock()
        self.m_requests = metrics.upstream_requests
        self.m_latency = metrics.upstream_latency
        self.m_cooldown = metrics.upstream_cooldown
        for service in ("spotify", "slskd", "webhook"):
            self.m_cooldown.labels(service).set(0)

    # --- cooldowns -----------------------------------------------------------------------

    def cooldown(self, service: str) -> tuple[float, str] | None:
        """(until, reason) while `service` is cooling down, else None."""
        with self._lock:
            entry = self._cooldowns.get(service)
            if entry and entry.until <= self.clock():
                self._end_cooldown(service)
                entry = None
        return (entry.until, entry.reason) if entry else None

    def cooldowns(self) -> dict[str, dict[str, Any]]:
        """Every active cooldown, for /env and the status page."""
        return {
            service: {"until": entry[0], "reason": entry[1]}
            for service in list(self._cooldowns)
            if (entry := self.cooldown(service)) is not None
        }

    def start_cooldown(self, service: str, seconds: float, reason: str) -> float:
        """Cool `service` down for `seconds`, at most `max_cooldown`; returns until when.

        A cooldown already running that ends later is kept."""
        now = self.clock()
        seconds = min(max(0.0, seconds), self.max_cooldown)
        until = now + seconds
        with self._lock:
            current = self._cooldowns.get(service)
            if current is None or current.until < until:
                self._cooldowns[service] = Cooldown(now, until, reason)
            until = self._cooldowns[service].until
        self.m_cooldown.labels(service).set(until)
        log.warning(
            "upstream_cooldown", extra={"fields": {"service": service, "seconds": seconds, "reason": reason}}
        )
        return until

    def _end_cooldown(self, service: str, sent_at: float | None = None) -> None:
        """Drop the cooldown (caller holds `_lock`). With `sent_at`, only one that began before
        that request was sent: a success already in flight when the 429 came proves nothing."""
        entry = self._cooldowns.get(service)
        if entry is None or (sent_at is not None and sent_at < entry.started):
            return
        del self._cooldowns[service]
        self.m_cooldown.labels(service).set(0)
        if sent_at is not None:
            log.info("upstream_cooldown_ended", extra={"fields": {"service": service}})

    def _raise_if_cooling(self, service: str) -> None:
        entry = self.cooldown(service)
        if entry is not None:
            self.m_requests.labels(service, "cooldown").inc()
            raise UpstreamCoolingDown(
                f"{service} is cooling down until {clock_time(entry[0], self.clock())}: {entry[1]}",
                service=service,
                until=entry[0],
            )

    # --- requests ------------------------------------------------------------------------

    def request(
        self,
        service: str,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        json_body: Any = None,
        ok: Collection[int] = (),
        idempotent: bool | None = None,
        quick: bool = False,
        retries: int | None = None,
        ignore_cooldown: bool = False,
        timeout: float | None = None,
    ) -> Response:
        """Send one logical request with the policy above; return a 2xx (or `ok`-listed) response.

        `quick` is for health probes: one attempt with short timeouts, so a hung upstream
        holds the caller for seconds, not minutes. `retries` overrides the configured count
        for one call (a caller that must wait out a busy upstream). `ignore_cooldown` sends
        the request even while the service cools down: a probe whose success may end it.
        `timeout` bounds one attempt as a whole (connect and answer), in seconds.
        """
        if not ignore_cooldown:
            self._raise_if_cooling(service)
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        safe_to_repeat = method in IDEMPOTENT if idempotent is None else idempotent
        retries = 0 if quick else self.retries if retries is None else retries
        limit = (
            QUICK_TIMEOUT if quick else self.timeout if timeout is None else urllib3.Timeout(total=timeout)
        )
        attempt = 0
        while True:
            attempt += 1
            sent_at = self.clock()
            started = time.perf_counter()
            try:
                raw = self.pool.request(
                    method, url, headers=headers, body=body, timeout=limit, retries=False, redirect=False
                )
            except urllib3.exceptions.HTTPError as exc:
                self.m_latency.labels(service).observe(time.perf_counter() - started)
                connect_failure = isinstance(exc, urllib3.exceptions.ConnectTimeoutError)
                if attempt <= retries and (connect_failure or safe_to_repeat):
                    self.sleep(backoff(attempt))
                    continue
                self.m_requests.labels(service, "error").inc()
                raise UpstreamUnavailable(
                    f"{service} unreachable: {_describe(exc)}",
                    service=service,
                    url=_redact(url),
                    sent=not connect_failure,  # False: the request never left this host
                ) from None
            self.m_latency.labels(service).observe(time.perf_counter() - started)
            response = Response(raw.status, raw.headers, raw.data)
            status = response.status
            outcome = "ok" if status < 300 else "http_5xx" if status >= 500 else "http_4xx"
            if 200 <= status < 300 or status in ok:
                self.m_requests.labels(service, outcome).inc()
                if outcome == "ok" and service in self._cooldowns:
                    with self._lock:
                        self._end_cooldown(service, sent_at)
                return response
            if status == 429 and _quota_exceeded(response):
                # Spotify's quota refusal is not a rate limit: no Retry-After, and retrying soon
                # only spends more of the quota. Stop asking for a long while.
                self.m_requests.labels(service, "quota").inc()
                until = self.start_cooldown(service, self.quota_cooldown, "quota exceeded (QUOTA_EXCEEDED)")
                raise UpstreamCoolingDown(
                    f"{service} quota exceeded: cooling down until {clock_time(until, self.clock())}",
                    service=service,
                    until=until,
                    kind="quota",
                )
            if status in RETRY_STATUSES:
                wait = parse_retry_after(response.headers.get("Retry-After"), self.clock())
                if status == 429 and wait is not None and wait > self.max_retry_after:
                    self.m_requests.labels(service, "http_4xx").inc()
                    reason = f"rate limited (Retry-After {wait:.0f}s"
                    reason += f", capped at {self.max_cooldown:.0f}s)" if wait > self.max_cooldown else ")"
                    until = self.start_cooldown(service, wait, reason)
                    raise UpstreamCoolingDown(
                        f"{service} rate limit: cooling down until {clock_time(until, self.clock())}",
                        service=service,
                        until=until,
                        kind="rate_limit",
                    )
                if attempt <= retries and (status == 429 or safe_to_repeat):
                    self.sleep(wait if wait is not None else backoff(attempt))
                    continue
            self.m_requests.labels(service, outcome).inc()
            message = f"{service} answered {status}: {_error_text(response)}"
            if status >= 500 or status == 429:
                raise UpstreamUnavailable(message, service=service, status=status)
            raise UpstreamRejected(message, service=service, status=status)

    def close(self) -> None:
        self.pool.clear()


def _describe(exc: Exception) -> str:
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, so test it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "timed out"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "connection dropped"
    return type(exc).__name__


def _redact(url: str) -> str:
    return url.split("?", 1)[0]


_TAG = re.compile(r"<[^>]*>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _quota_exceeded(response: Response) -> bool:
    """Spotify's quota 429: `{"error": {"status": 429, "reason": "QUOTA_EXCEEDED", ...}}`."""
    try:
        body = json.loads(response.data)
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("reason") == "QUOTA_EXCEEDED"


def _error_text(response: Response) -> str:
    """A short message from an error body: Spotify's `error.message`, OAuth's `error_description`,
    slskd's plain or JSON-quoted string, an HTML error page's title (or its text, tags
    stripped, as proxies in front of Spotify send them); never more than 200 characters."""
    try:
        body = json.loads(response.data) if response.data.strip() else None
    except ValueError:
        body = response.data.decode("utf-8", "replace")
        if body.lstrip().startswith("<"):
            title = _TITLE.search(body)
            body = html.unescape(title.group(1) if title else _TAG.sub(" ", body))
            body = " ".join(body.split())
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            body = error.get("message") or error
        else:
            body = body.get("error_description") or error or body
    text = str(body or "").strip() or "(empty body)"
    return text[:200]
