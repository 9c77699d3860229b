"""Outbound webhooks: signed JSON events to the URLs in `webhooks.urls`. Owns `webhook_state`.

What is sent. `item.done` and `item.failed` (a wanted item reached either state), and
`quarantine.added` (a file set aside), as the activity feed records them; `service.down` and
`service.up` (slskd's readiness check failing for `DOWN_AFTER` seconds, then passing again; the
service is named in the event); `authorization.expiring` (within `spotify.REFRESH_WARNING` of
the six-month end of the user's Spotify authorisation) and `authorization.expired` (ended, or
refused by Spotify). The watcher records those four in the feed too, so the feed is the one
source of every event.

Where events come from. The activity feed is the outbox: `dispatch` (a timer task) reads the
events after its cursor and, in one transaction with the cursor's move, enqueues one `webhook`
job per event and URL (key `webhook:<event id>:<url id>`). An event is therefore handed out
exactly once, and only once its own transaction (the item's state change, the quarantine) has
committed. Events recorded before the webhooks existed are history and are never sent.

How it is sent. A job is one POST through the one outbound policy (`upstream`, service
`webhook`), never following a redirect, bounded by `webhooks.timeout`. A 2xx is delivered; a
5xx, 408, 429 or a network failure is retried by the queue with its backoff until
`webhooks.attempts` are spent, then dead-lettered; any other answer (4xx, a redirect) is
dead-lettered at once, since sending the same request again cannot help. A URL taken out of
`webhooks.urls` drops its pending deliveries.

Signing. With `webhooks.secret` set, each request carries `X-Harmony-Timestamp` (Unix
seconds) and `X-Harmony-Signature: sha256=<hex>`, the HMAC-SHA256 of `<timestamp>.<raw body>`
under the secret; `verify` is the receiver's side (and docs/operations.md shows it).

Formats. A URL is sent Harmony's JSON unless it starts with a format and `+`:
`discord+https://...` sends `{"content": ...}`, `ntfy+https://host/topic` publishes JSON to
the ntfy server with the topic in the body, `apprise+https://host/notify/key` sends Apprise
API's `{"title", "body", "type"}`. Harmony's own JSON carries `title` and `message`, which is
what Gotify reads.

To add an event: record it in the feed where it happens, add its kind to `SQL_NOTICES` and
its words to `summary`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import events, wanted
from .config import WEBHOOK_FORMATS as FORMATS
from .config import Config, webhook_url
from .db import Database
from .errors import NotConfigured, NotFound, UpstreamCoolingDown, UpstreamRejected, UpstreamUnavailable
from .events import Event
from .health import Health
from .jobs import GiveUp, Job, Later, Queue
from .metrics import Metrics
from .spotify import REFRESH_WARNING, Spotify
from .upstream import Upstream

log = logging.getLogger(__name__)

JOB = "webhook"
SERVICE = "webhook"  # the upstream label: its own metrics and cooldown
PRIORITY = 1  # low: the pipeline's own jobs first; library scans and backfill (-10) after
BATCH = 200  # events handed out per dispatch at most
DOWN_AFTER = 60.0  # slskd's check must fail this long before `service.down` goes out
TOLERANCE = 300.0  # how old a signed timestamp `verify` accepts
JSON_TYPE = "application/json"

# The events to hand out after the cursor, oldest first, below the newest id seen.
SQL_NOTICES = """
    SELECT * FROM events
    WHERE id > ? AND id <= ?
        AND ((kind = 'item.state' AND to_state IN ('done', 'failed'))
            OR kind IN ('quarantine.added', 'service.down', 'service.up',
                'authorization.expiring', 'authorization.expired'))
    ORDER BY id
    LIMIT ?
"""
SQL_STATE = "SELECT value FROM webhook_state WHERE name = ?"
SQL_SET_STATE = """
    INSERT INTO webhook_state (name, value, updated_at) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
"""


# --- targets and signatures --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One entry of `webhooks.urls`: where to POST and in which shape."""

    url: str
    format: str = "harmony"

    @classmethod
    def parse(cls, text: str) -> Target:
        """`https://...` or `<format>+https://...`; ValueError saying what is wrong."""
        entry = webhook_url(text)
        head, plus, rest = entry.partition("+")
        return cls(rest, head) if plus and head in FORMATS else cls(entry)

    @property
    def entry(self) -> str:
        return self.url if self.format == "harmony" else f"{self.format}+{self.url}"

    @property
    def id(self) -> str:
        """A short stable name for the URL that reveals nothing of it (jobs, logs, results)."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]

    @property
    def shown(self) -> str:
        """The URL as logs and results show it: scheme and host only. Paths and queries often
        hold the receiver's token (Discord's, an ntfy topic, a Gotify app token)."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
        hidden = "/…" if parts.path.strip("/") or parts.query else ""
        return f"{parts.scheme}://{host}{port}{hidden}"


def targets(config: Config) -> list[Target]:
    """The configured webhook URLs (the option's converter has checked each one)."""
    return [Target.parse(entry) for entry in config["webhooks.urls"]]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Harmony-Signature` value: `sha256=` and the hex HMAC-SHA256 of
    `<timestamp>.<body>` under the secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE,
) -> bool:
    """What a receiver checks: the signature matches (compared in constant time) and the
    timestamp is within `tolerance` seconds of now, so a captured request cannot be replayed
    later."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


# --- what is sent --------------------------------------------------------------------------------


def webhook_name(event: Event) -> str | None:
    """The webhook event an activity-feed event is, or None when it is not one."""
    if event.kind == "item.state":
        return {"done": "item.done", "failed": "item.failed"}.get(event.to_state or "")
    if event.kind in ("quarantine.added", "service.down", "service.up") or event.kind.startswith(
        "authorization."
    ):
        return event.kind
    return None


def summary(body: dict[str, Any]) -> tuple[str, str]:
    """A title and a message for people (what Gotify, ntfy, Apprise and Discord show)."""
    name = body["event"]
    item = body.get("item") or {}
    track = " – ".join(filter(None, [", ".join(item.get("artists") or []), item.get("title")]))
    track = track or f"item {item.get('id')}"
    reason = (item.get("reason") or {}).get("message") or ""
    if name == "item.done":
        return f"Harmony: got {item.get('title') or track}", f"{track} is in the library. {reason}".strip()
    if name == "item.failed":
        return (
            f"Harmony: could not get {item.get('title') or track}",
            f"{track}: {reason}" if reason else track,
        )
    if name == "quarantine.added":
        held = body.get("quarantine") or {}
        about = f" ({track})" if item else ""
        return "Harmony: a file was set aside", f"{held.get('path')}{about}: {held.get('reason')}"
    if name.startswith("service."):
        check = body.get("check") or {}
        service, detail = check.get("name") or "a service", check.get("detail") or ""
        return f"Harmony: {service} is {'back' if check.get('ok') else 'down'}", detail
    if name.startswith("authorization."):
        title = "expires soon" if name.endswith("expiring") else "has ended"
        return f"Harmony: Spotify authorisation {title}", (body.get("spotify") or {}).get("reason") or ""
    return "Harmony: test notification", "If you can read this, Harmony's webhooks reach you."


# ntfy tags (emoji) and Apprise types by event.
NTFY_TAGS = {"item.done": "white_check_mark", "item.failed": "x", "service.up": "white_check_mark"}
APPRISE_TYPES = {"item.done": "success", "service.up": "success", "item.failed": "failure"}
APPRISE_TYPES |= {"service.down": "failure", "authorization.expired": "failure", "test": "info"}


def render(target: Target, body: dict[str, Any]) -> tuple[str, bytes]:
    """The URL to POST to and the JSON body, in the target's format."""
    name, title, message = body["event"], body["title"], body["message"]
    if target.format == "discord":
        # No mentions: an artist called "@everyone" must not ping a server.
        shaped: dict[str, Any] = {
            "content": f"**{title}**\n{message}"[:2000],
            "allowed_mentions": {"parse": []},
        }
        return target.url, _encode(shaped)
    if target.format == "ntfy":
        # ntfy takes JSON at its root URL with the topic in the body (its "publish as JSON").
        parts = urlsplit(target.url)
        base, _, topic = parts.path.rstrip("/").rpartition("/")
        root = urlunsplit((parts.scheme, parts.netloc, base + "/", parts.query, ""))
        shaped = {
            "topic": topic,
            "title": title,
            "message": message,
            "tags": [NTFY_TAGS.get(name, "warning")],
        }
        return root, _encode(shaped)
    if target.format == "apprise":
        shaped = {"title": title, "body": message, "type": APPRISE_TYPES.get(name, "warning")}
        return target.url, _encode(shaped)
    return target.url, _encode(body)


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Outcome:
    """What one POST came to."""

    ok: bool
    status: int | None = None
    error: str | None = None
    permanent: bool = False  # retrying the same request cannot help
    later: float | None = None  # the webhook service cools down for this long: not an attempt

    @property
    def outcome(self) -> str:
        return "delivered" if self.ok else "failed"


class DeliveryFailed(Exception):
    """A delivery attempt failed; the queue retries it."""


# --- the notifier ------------------------------------------------------------------------------------


class Webhooks:
    """Hands events to the webhooks (`dispatch`, a timer task), delivers them (`deliver`, the
    job handler) and sends test events (`test`). Reads `webhooks.*` once a cycle from `live`."""

    def __init__(
        self,
        db: Database,
        queue: Queue,
        upstream: Upstream,
        spotify: Spotify,
        health: Health,
        metrics: Metrics,
        live: Callable[[], Config],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db, self.queue, self.upstream = db, queue, upstream
        self.spotify, self.health, self.metrics = spotify, health, metrics
        self.live, self.clock = live, clock
        self._failing_since: float | None = None  # when slskd's check began to fail

    # --- state ---------------------------------------------------------------------------------

    def state(self, name: str) -> str | None:
        row = self.db.query_one(SQL_STATE, (name,))
        return None if row is None else str(row["value"])

    @staticmethod
    def _set(conn: Any, name: str, value: object, now: float) -> None:
        conn.execute(SQL_SET_STATE, (name, str(value), now))

    # --- handing events out --------------------------------------------------------------------

    def dispatch(self, now: float | None = None) -> int:
        """Enqueue a delivery of each new event to each URL, moving the cursor in the same
        transaction; then look at slskd and Spotify (what that records goes out next time).
        Returns the deliveries enqueued."""
        now = self.clock() if now is None else now
        config = self.live()
        urls = targets(config)
        enqueued = 0
        # Look before taking the write lock: most runs find nothing new.
        if events.last_id(self.db) > int(self.state("cursor") or 0):
            with self.db.write() as conn:
                cursor = int(self.state("cursor") or 0)  # again, inside the transaction
                top = max(cursor, events.last_id(self.db))
                rows = self.db.query(SQL_NOTICES, (cursor, top, BATCH)) if urls else []
                for row in rows:
                    event = Event.from_row(row)
                    body = self.payload(event)
                    for target in urls:
                        self.queue.enqueue(
                            JOB,
                            {"url": target.id, "delivery": f"{event.id}-{target.id}", "event": body},
                            key=f"{JOB}:{event.id}:{target.id}",
                            priority=PRIORITY,
                            max_attempts=config["webhooks.attempts"],
                        )
                        enqueued += 1
                self._set(conn, "cursor", rows[-1]["id"] if len(rows) == BATCH else top, now)
        self.watch(now)
        return enqueued

    def payload(self, event: Event) -> dict[str, Any]:
        """Harmony's JSON for a feed event: `event`, `id`, `at`, the subject, `title`, `message`."""
        name = webhook_name(event)
        body: dict[str, Any] = {"event": name, "id": event.id, "at": event.at}
        if event.item_id is not None:
            body["item"] = self._item(event)
        if event.kind == "quarantine.added":
            body["quarantine"] = {"path": event.data.get("path"), "code": event.code, "reason": event.message}
        elif event.kind.startswith("service."):
            service = event.data.get("service") or "slskd"
            body["check"] = {"name": service, "ok": event.kind == "service.up", "detail": event.message}
        elif event.kind.startswith("authorization."):
            body["spotify"] = {
                "user_id": event.data.get("user_id"),
                "expires_at": event.data.get("expires_at"),
                "reason": event.message,
            }
        body["title"], body["message"] = summary(body)
        return body

    def _item(self, event: Event) -> dict[str, Any]:
        try:
            item = wanted.get(self.db, event.item_id or 0)
        except NotFound:
            return {"id": event.item_id}
        own = event.kind == "item.state"  # the state and reason are the event's own
        return {
            "id": item.id,
            "title": item.title,
            "artists": list(item.artists),
            "album": item.album,
            "spotify_id": item.spotify_id,
            "state": event.to_state if own else item.state,
            "reason": {
                "code": event.code if own else item.reason_code,
                "message": event.message if own else item.reason,
            },
        }

    # --- watching slskd and Spotify ------------------------------------------------------------

    def watch(self, now: float) -> None:
        """Record slskd going down and coming back, and Spotify's authorisation ending, once each."""
        self._watch_slskd(now)
        self._watch_spotify(now)

    def _watch_slskd(self, now: float) -> None:
        result = self.health.result("slskd")
        if result is None or result.checked_at is None:
            return  # not probed yet
        announced = self.state("slskd") or "up"
        if result.ok:
            self._failing_since = None
            if announced == "down":
                text = f"slskd answers again: {result.detail}"
                self._announce("slskd", "up", "service.up", "up", text, now, {"service": "slskd"})
            return
        if self._failing_since is None:
            self._failing_since = now
        if announced == "up" and now - self._failing_since >= DOWN_AFTER:
            self._announce("slskd", "down", "service.down", "down", result.detail, now, {"service": "slskd"})

    def _watch_spotify(self, now: float) -> None:
        grant = self.spotify.authorization()
        if grant is None:
            return
        ends = grant["refresh_expires_at"]
        day = time.strftime("%Y-%m-%d", time.gmtime(ends))
        if grant["revoked_reason"]:
            stage, text = (
                "expired",
                f"Spotify refused the authorisation ({grant['revoked_reason']}); connect again",
            )
        elif ends <= now:
            stage, text = "expired", f"the authorisation ended on {day}; connect Spotify again"
        elif ends - now <= REFRESH_WARNING:
            days = max(1, round((ends - now) / 86400))
            stage = "expiring"
            text = f"the authorisation ends on {day} (in {days} days); connect Spotify again before then"
        else:
            return
        mark = f"{grant['authorized_at']}:{stage}"
        announced = self.state("spotify")
        if announced == mark or (stage == "expiring" and announced == f"{grant['authorized_at']}:expired"):
            return
        data = {"user_id": grant["user_id"], "expires_at": ends}
        self._announce("spotify", mark, f"authorization.{stage}", stage, text, now, data)

    def _announce(
        self,
        name: str,
        value: str,
        kind: str,
        code: str,
        message: str,
        now: float,
        data: dict[str, Any] | None = None,
    ) -> None:
        with self.db.write() as conn:
            events.record(conn, kind, code=code, message=message[:300], data=data, now=now)
            self._set(conn, name, value, now)
        log.info("webhook_notice", extra={"fields": {"kind": kind}})

    # --- sending -------------------------------------------------------------------------------

    def send(
        self, target: Target, body: dict[str, Any], delivery: str, config: Config, now: float | None = None
    ) -> Outcome:
        """POST one event to one target, signed; never raises for what the receiver does."""
        now = self.clock() if now is None else now
        url, data = render(target, body)
        stamp = str(int(now))
        headers = {
            "Content-Type": JSON_TYPE,
            "X-Harmony-Event": str(body["event"]),
            "X-Harmony-Delivery": delivery,
            "X-Harmony-Timestamp": stamp,
        }
        if config["webhooks.secret"]:
            headers["X-Harmony-Signature"] = sign(config["webhooks.secret"], stamp, data)
        try:
            response = self.upstream.request(
                SERVICE,
                "POST",
                url,
                headers=headers,
                body=data,
                idempotent=False,
                retries=0,
                timeout=config["webhooks.timeout"],
            )
        except UpstreamCoolingDown as exc:
            wait = float(exc.details.get("until") or now) - now
            return Outcome(False, None, exc.message, later=max(1.0, wait))
        except UpstreamRejected as exc:
            status = exc.details.get("status")
            if isinstance(status, int) and 300 <= status < 400:
                error = (
                    f"answered {status}, a redirect: Harmony does not follow redirects; give the final URL"
                )
                return Outcome(False, status, error, permanent=True)
            return Outcome(False, status, exc.message, permanent=status not in (408, 425))
        except UpstreamUnavailable as exc:
            return Outcome(False, exc.details.get("status"), exc.message)
        self.metrics.webhook_deliveries.labels("delivered").inc()
        return Outcome(True, response.status)

    def deliver(self, job: Job) -> None:
        """The job handler: one event to one URL. Raises to have the queue retry (or GiveUp to
        dead-letter at once); returns when delivered or when the URL is no longer configured."""
        config = self.live()
        target = next((t for t in targets(config) if t.id == job.payload.get("url")), None)
        fields = {
            "job": job.id,
            "url": job.payload.get("url"),
            "event": job.payload.get("event", {}).get("event"),
        }
        if target is None:
            self.metrics.webhook_deliveries.labels("dropped").inc()
            log.info("webhook_dropped", extra={"fields": {**fields, "reason": "no longer in webhooks.urls"}})
            return
        outcome = self.send(target, job.payload["event"], str(job.payload.get("delivery")), config)
        if outcome.ok:
            log.info("webhook_delivered", extra={"fields": {**fields, "status": outcome.status}})
            return
        if outcome.later is not None:
            raise Later(outcome.later, outcome.error or "")
        dead = outcome.permanent or job.attempts >= job.max_attempts
        self.metrics.webhook_deliveries.labels("dead" if dead else "failed").inc()
        message = f"{target.shown}: {outcome.error}"
        if outcome.permanent:
            raise GiveUp(message)
        raise DeliveryFailed(message)

    def test(self) -> list[dict[str, Any]]:
        """Send a `test` event to every URL now; each URL's result. NotConfigured without URLs."""
        config = self.live()
        urls = targets(config)
        if not urls:
            raise NotConfigured("no webhooks are configured; set webhooks.urls")
        now = self.clock()
        body: dict[str, Any] = {"event": "test", "id": None, "at": now}
        body["title"], body["message"] = summary(body)
        results = []
        for target in urls:
            started = time.perf_counter()
            outcome = self.send(target, body, f"test-{secrets.token_hex(6)}", config, now)
            if not outcome.ok:
                self.metrics.webhook_deliveries.labels("failed").inc()
            results.append(
                {
                    "url": target.shown,
                    "id": target.id,
                    "format": target.format,
                    "ok": outcome.ok,
                    "status": outcome.status,
                    "error": outcome.error,
                    "seconds": round(time.perf_counter() - started, 3),
                }
            )
        delivered = sum(1 for result in results if result["ok"])
        log.info("webhook_test", extra={"fields": {"urls": len(urls), "delivered": delivered}})
        return results
