"""The event stream: new rows of the activity feed (`events`) as server-sent events.

    GET /api/v1/events/stream    ?after=<event id>; or the Last-Event-ID header on a reconnect

Each event is sent as `id: <event id>`, `event: <the kind's first part>` (`item`, `artist`,
`release`, `playlist`, ...) and `data: <the event as JSON>`, oldest first; a comment line every
HEARTBEAT_S keeps proxies from closing an idle stream. Without `after` or `Last-Event-ID` the
stream starts with the next event. A read key or a UI session may open it.

Transfer progress comes in the same stream as `event: transfer` frames without an `id:` (they
are not rows of `events`, so a reconnect does not replay them): one per transfer under way
whose state, bytes, speed or queue place changed since the stream last sent it, and one with
`"active": false` when it finishes. They are read by polling, not stored: `TransferWatch` reads
the transfers under way at most once per POLL_S for all open streams together, so a stream's
tick costs its `events.since` query and, at most, a share of that one read.

A stream holds one of waitress's threads while it is open, so streams are bounded: at most
`auth.streams_per_client` per session or key (429 beyond it), and at most half of
`server.threads` in all. A stream ends when its client goes away (noticed within POLL_S), after
MAX_LIFETIME_S (the browser reconnects and resumes from its Last-Event-ID), and at once when
the server starts to stop (`ctx.stopping`), so a SIGTERM's drain never waits for it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse, request

from . import events
from .errors import BadInput, TooManyRequests
from .web_base import current_key, int_param

if TYPE_CHECKING:
    from .context import Context
    from .transfers import Download

HEARTBEAT_S = 15.0
POLL_S = 0.5
MAX_LIFETIME_S = 900.0
BATCH = 200
RETRY_MS = 3000
ACTIVE_SHOWN = 500  # transfers under way a stream follows (far more than slskd runs at once)


class Streams:
    """Open streams counted per client and in all. Thread-safe."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str, per_client: int, total: int) -> bool:
        with self._lock:
            if self._open.get(client, 0) >= per_client or sum(self._open.values()) >= total:
                return False
            self._open[client] = self._open.get(client, 0) + 1
            return True

    def release(self, client: str) -> None:
        with self._lock:
            left = self._open.get(client, 0) - 1
            if left > 0:
                self._open[client] = left
            else:
                self._open.pop(client, None)

    def count(self) -> int:
        with self._lock:
            return sum(self._open.values())


class _Body:
    """The response body: iterates the stream and releases its slot exactly once on close
    (the server closes it when the stream ends, the client goes away or the server stops)."""

    def __init__(self, chunks: Iterator[bytes], release: Callable[[], None]) -> None:
        self.chunks, self._release = chunks, release
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self.chunks, "close", None)
            if close:
                close()
        finally:
            self._release()


class TransferWatch:
    """The transfers under way, as progress views by id, read at most once per `max_age` seconds
    for every stream together (so many open pages cost one query, not one each). Thread-safe;
    `current()` returns the same dict object until the next read."""

    def __init__(self, read: Callable[[], list[Download]], max_age: float = POLL_S) -> None:
        self.read, self.max_age = read, max_age
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._views: dict[int, dict[str, Any]] = {}

    def current(self) -> dict[int, dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self.max_age:
                self._views = {d.id: progress(d) for d in self.read()}
                self._read_at = now
            return self._views


def progress(download: Download) -> dict[str, Any]:
    """What a `transfer` frame says of a transfer under way."""
    return {
        "id": download.id,
        "item_id": download.item_id,
        "username": download.username,
        "filename": download.filename,
        "state": download.state,
        "bytes": download.bytes,
        "size": download.size,
        "percent": download.percent,
        "speed": download.speed,
        "place": download.place,
        "active": True,
    }


def transfer_frames(before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]]) -> bytes:
    """`transfer` frames for what changed from `before` to `after`: each transfer that is new or
    moved, and each that is no longer under way (`active` false)."""
    changed = [view for number, view in after.items() if before.get(number) != view]
    ended = [
        {"id": number, "item_id": view["item_id"], "active": False}
        for number, view in before.items()
        if number not in after
    ]
    texts = (json.dumps(view, separators=(",", ":"), ensure_ascii=True) for view in [*changed, *ended])
    return b"".join(f"event: transfer\ndata: {text}\n\n".encode() for text in texts)


def frame(event: events.Event) -> bytes:
    """One server-sent event."""
    data = json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=True)
    return f"id: {event.id}\nevent: {event.kind.split('.', 1)[0]}\ndata: {data}\n\n".encode()


def register(app: bottle.Bottle, ctx: Context) -> None:
    db, streams = ctx.db, Streams()
    watch = TransferWatch(lambda: ctx.transfers.list_downloads(active=True, limit=ACTIVE_SHOWN))

    def start_after() -> int:
        header = request.environ.get("HTTP_LAST_EVENT_ID")
        if header is not None:
            if not re.fullmatch(r"[0-9]{1,18}", header.strip()):
                raise BadInput("Last-Event-ID must be an event id", header="Last-Event-ID")
            return int(header.strip())
        after = int_param("after", None, 0)
        return events.last_id(db) if after is None else after

    def stream() -> HTTPResponse:
        after = start_after()
        session = request.environ.get("harmony.session")
        key = current_key() or {}
        client = f"session:{session['id_hash']}" if session else f"key:{key.get('id')}"
        per_client = ctx.config["auth.streams_per_client"]
        total = max(1, ctx.config["server.threads"] // 2)
        if not streams.acquire(client, per_client, total):
            raise TooManyRequests(
                f"too many open event streams (at most {per_client} per session or key, {total} in all); "
                "close one and retry",
                retry_after=5,
            )
        gone: Callable[[], bool] = request.environ.get("waitress.client_disconnected") or (lambda: False)
        stopping = ctx.stopping

        def chunks() -> Iterator[bytes]:
            last = after
            shown = watch.current()  # what the page that opens the stream already shows
            yield f"retry: {RETRY_MS}\n: stream open\n\n".encode()
            started = beat = time.monotonic()
            while True:
                batch = events.since(db, last, limit=BATCH)
                out = b"".join(frame(event) for event in batch)
                if batch:
                    last = batch[-1].id
                moving = watch.current()
                if moving is not shown:
                    out += transfer_frames(shown, moving)
                    shown = moving
                if out:
                    yield out
                    beat = time.monotonic()
                    if len(batch) == BATCH:
                        continue
                elif time.monotonic() - beat >= HEARTBEAT_S:
                    yield b": heartbeat\n\n"
                    beat = time.monotonic()
                if stopping.is_set() or gone() or time.monotonic() - started >= MAX_LIFETIME_S:
                    return
                stopping.wait(POLL_S)

        headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a reverse proxy must pass each event on at once
        }
        return HTTPResponse(_Body(chunks(), lambda: streams.release(client)), 200, **headers)

    app.route("/api/v1/events/stream", "GET", stream, role="read")
