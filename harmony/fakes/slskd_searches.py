"""The fake slskd's searches: `/api/v0/searches`, with Soulseek.NET's two network search slots.

A search goes `Queued` until one of `SlskdState.search_slots` (2, as slskd configures
Soulseek.NET) is free, then `InProgress`; its inactivity timeout and its peers' answers count
from that moment, so a search that waited ends later than `searchTimeout` after `startedAt`.
Nothing runs in the background: `schedule` works out, from the fake clock, which queued
searches have taken a slot by now, and every request settles it first.

Creation follows slskd's order: the request is validated, the record saved, then the network
search started; a failure at that point (disconnected: 409, no usable search term: 400) leaves
the record as `Completed, Errored` and its id used up (posting it again: 500). From 0.24 slskd
starts one creation at a time and answers 429 to an overlapping one. Every creation that gets as
far as a record is also written to `SlskdState.search_log`, which deleting the search leaves alone.
"""

from __future__ import annotations

import itertools
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import bottle

from harmony.fakes import peers as peerlib
from harmony.fakes.peers import SharedFile
from harmony.fakes.slskd_wire import BUSY_MESSAGE, body, disconnected, empty, fail, iso, json_response

if TYPE_CHECKING:
    from harmony.fakes.slskd import SlskdState

_SEQUENCE = itertools.count()


@dataclass
class Search:
    id: str
    text: str
    token: int
    created: float  # `startedAt`: when the record was saved
    timeout: float  # inactivity timeout, seconds
    plan: list[tuple[float, dict[str, Any]]]  # (arrival after InProgress, response), in arrival order
    response_limit: int
    file_limit: int
    run_start: float | None = None  # when a network slot took it (InProgress)
    cancelled_at: float | None = None
    errored: bool = False  # the network search failed to start; the record stays
    seq: int = field(default_factory=lambda: next(_SEQUENCE))

    def end(self) -> tuple[float, str]:
        """(seconds after InProgress at which the search ends on its own, its final state)."""
        files = 0
        for n, (delay, response) in enumerate(self.plan, 1):
            files += response["fileCount"]
            if n >= self.response_limit:
                return delay, "Completed, ResponseLimitReached"
            if files >= self.file_limit:
                return delay, "Completed, FileLimitReached"
        last = self.plan[-1][0] if self.plan else 0.0
        return last + self.timeout, "Completed, TimedOut"

    def finished_at(self) -> float | None:
        """When it ends (or ended), if it has a slot; None while queued."""
        if self.run_start is None:
            return self.cancelled_at if self.errored else None
        ends = self.run_start + self.end()[0]
        return min(ends, self.cancelled_at) if self.cancelled_at is not None else ends

    def view(self, now: float, *, with_responses: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "searchText": self.text,
            "token": self.token,
            "startedAt": iso(self.created, utc=True),
            "responses": [],
        }
        received: list[dict[str, Any]] = []
        ended: float | None
        if self.errored:
            state, ended = "Completed, Errored", self.created
        elif self.run_start is None:
            cancelled = self.cancelled_at is not None and self.cancelled_at <= now
            state, ended = ("Completed, Cancelled", self.cancelled_at) if cancelled else ("Queued", None)
        else:
            offset, final = self.end()
            if self.cancelled_at is not None and self.cancelled_at - self.run_start < offset:
                offset, final = self.cancelled_at - self.run_start, "Completed, Cancelled"
            elapsed = now - self.run_start
            done = elapsed >= offset
            received = [r for delay, r in self.plan if delay <= min(elapsed, offset)]
            state, ended = (final, self.run_start + offset) if done else ("InProgress", None)
        complete = ended is not None
        out.update(
            state=state,
            isComplete=complete,
            responseCount=len(received),
            fileCount=sum(r["fileCount"] for r in received),
            lockedFileCount=sum(r["lockedFileCount"] for r in received),
        )
        # Responses are stored only when the search completes (SearchService.StartAsync).
        if complete and with_responses:
            out["responses"] = received
        if ended is not None:
            out["endedAt"] = iso(ended, utc=True)
        return out

    def responses(self, now: float) -> list[dict[str, Any]]:
        view = self.view(now, with_responses=True)
        return view["responses"] if view["isComplete"] else []


def schedule(state: SlskdState, now: float) -> None:
    """Give free network slots to queued searches, first come first served, at the moment each
    slot freed (which may lie between two requests). Caller holds `state.lock`."""
    holding = [s for s in [*state.searches.values(), *state.retired_searches] if s.run_start is not None]
    waiting = sorted(
        (
            s
            for s in state.searches.values()
            if s.run_start is None and not s.errored and s.cancelled_at is None
        ),
        key=lambda s: (s.created, s.seq),
    )
    for search in waiting:
        spans = [(s.run_start, s.finished_at()) for s in holding]
        times = sorted(
            {search.created} | {end for _, end in spans if end is not None and end > search.created}
        )
        start = next(
            (
                t
                for t in times
                if t <= now
                and sum(
                    1 for begin, end in spans if begin is not None and begin <= t and (end is None or t < end)
                )
                < state.search_slots
            ),
            None,
        )
        if start is None:
            return  # it waits, and so does everything created after it
        search.run_start = start
        holding.append(search)
    state.retired_searches.clear()  # nothing waits: the slots of deleted searches no longer matter


def register(app: bottle.Bottle, state: SlskdState, api: str) -> None:
    """Add the search routes to the fake slskd `app`."""

    @app.post(api + "/searches")
    def create_search() -> Any:
        data = body(dict)
        limited = state.profile.concurrency_limits
        if limited and not state.search_semaphore.acquire(blocking=False):
            state.stats["search_busy"] += 1
            fail(429, BUSY_MESSAGE)
        try:
            with state.lock:
                if state.search_busy > 0:
                    state.search_busy -= 1
                    fail(429, BUSY_MESSAGE)
            state.clock.sleep(state.search_create_seconds, state.stopping)
            return json_response(_start_search(state, data, state.clock.now()))
        finally:
            if limited:
                state.search_semaphore.release()

    @app.get(api + "/searches")
    def list_searches() -> Any:
        with state.lock:
            now = state.clock.now()
            return json_response([s.view(now) for s in state.searches.values()])

    @app.get(api + "/searches/<search_id>")
    def get_search(search_id: str) -> Any:
        include = bottle.request.query.get("includeResponses", "false").lower() == "true"
        with state.lock:
            return json_response(_search(state, search_id).view(state.clock.now(), with_responses=include))

    @app.get(api + "/searches/<search_id>/responses")
    def search_responses(search_id: str) -> Any:
        with state.lock:
            return json_response(_search(state, search_id).responses(state.clock.now()))

    @app.put(api + "/searches/<search_id>")
    def stop_search(search_id: str) -> Any:
        with state.lock:
            now = state.clock.now()
            search = _search(state, search_id)
            if not search.view(now)["isComplete"]:
                search.cancelled_at = now
        return empty(200)

    @app.delete(api + "/searches/<search_id>")
    def delete_search(search_id: str) -> Any:
        with state.lock:
            now = state.clock.now()
            search = _search(state, search_id)
            del state.searches[search_id]
            if search.run_start is not None:
                if not search.view(now)["isComplete"]:
                    search.cancelled_at = now  # its slot is free from now on
                # Its span still holds a slot in the past: a search waiting for that slot started
                # when it ended, not before.
                state.retired_searches.append(search)
        return empty(204)


def _search(state: SlskdState, search_id: str) -> Search:
    search = state.searches.get(search_id)
    if search is None:
        raise bottle.HTTPResponse(b"", 404)  # a non-GUID id binds as Guid.Empty: also 404
    return search


def _start_search(state: SlskdState, data: dict[str, Any], now: float) -> dict[str, Any]:
    text = data.get("searchText")
    if not isinstance(text, str) or not text.strip():
        fail(400, "SearchText may not be null or whitespace")

    def number(key: str, default: int) -> int:
        value = data.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            fail(400, f"{key} must be a non-negative integer")
        return value

    timeout_ms = number("searchTimeout", 15000)
    if timeout_ms < 5:
        fail(400, "SearchTimeout must be greater than or equal to 5")
    search_id = str(data.get("id") or uuid.uuid4())
    try:
        uuid.UUID(search_id)
    except ValueError:
        fail(400, f"The value '{search_id}' is not valid.")
    include, exclude = peerlib.query_words(text)
    with state.lock:
        if search_id in state.searches:
            fail(500, f"A search with id {search_id} already exists")
        search = Search(
            id=search_id,
            text=text,
            token=next(state.tokens),
            created=now,
            timeout=timeout_ms / 1000,
            plan=_plan(state, include, exclude, data, number) if include else [],
            response_limit=max(1, number("responseLimit", 250)),
            file_limit=max(1, number("fileLimit", 25000)),
        )
        state.searches[search_id] = search  # saved before the network search starts
        errored = not state.logged_in or not include
        state.search_log.append(
            {"id": search_id, "text": text, "at": now, "wall": time.time(), "errored": errored}
        )
        # Soulseek.NET refuses synchronously, after the record exists: the id stays used up.
        if errored:
            search.errored, search.cancelled_at = True, now
            if not state.logged_in:
                fail(409, disconnected("search"))
            fail(400, "Search query must contain at least one non-exclusion term of two or more characters")
        schedule(state, now)
        view = search.view(now)
    view.update(state="Requested" if search.run_start is not None else "Queued", isComplete=False)
    view.update(responseCount=0, fileCount=0, lockedFileCount=0)
    view.pop("endedAt", None)
    return view


def _plan(
    state: SlskdState, include: list[str], exclude: list[str], data: dict[str, Any], number: Any
) -> list[tuple[float, dict[str, Any]]]:
    """Which peers answer, when, and with which files (Soulseek matches words of the full path).

    A peer that answers twice (`Peer.answers`) sends a second response a little later."""
    filtering = data.get("filterResponses", True) is not False
    min_files = number("minimumResponseFileCount", 1)
    max_queue = number("maximumPeerQueueLength", 2147483647)
    min_speed = number("minimumPeerUploadSpeed", 0)
    plan = []
    for peer in state.peers.values():
        files = [f for f in peer.files if peerlib.matches(f, include, exclude)]
        locked = [f for f in peer.locked if peerlib.matches(f, include, exclude)]
        if not files and not locked:
            continue
        if filtering and (
            len(files) < min_files or peer.queue_length > max_queue or peer.upload_speed < min_speed
        ):
            continue
        response = {
            "username": peer.username,
            "token": zlib.crc32(peer.username.encode()) % 100000,
            "hasFreeUploadSlot": peer.free_slot,
            "uploadSpeed": peer.upload_speed,
            "queueLength": peer.queue_length,
            "fileCount": len(files),
            "lockedFileCount": len(locked),
            "files": [_file_view(f, peer.flac_bitrate) for f in files],
            "lockedFiles": [_file_view(f, peer.flac_bitrate) for f in locked],
        }
        for n in range(peer.answers):
            plan.append((peer.response_delay + 0.7 * n, response))
    plan.sort(key=lambda pair: (pair[0], pair[1]["username"]))
    return plan


def _file_view(f: SharedFile, flac_bitrate: bool) -> dict[str, Any]:
    ext = f.fmt if f.extension is None else f.extension
    out: dict[str, Any] = {"filename": f.path, "size": f.size, "code": 1, "extension": ext}
    if f.attributes:
        if f.fmt == "flac":
            out.update(bitDepth=16, sampleRate=44100, length=round(f.duration))
            if flac_bitrate:  # some clients send the average bitrate of lossless files too
                out["bitRate"] = 800 + zlib.crc32(f.path.encode()) % 400  # what a CD rip averages
        else:
            out.update(
                bitRate=f.claimed_bitrate or f.bitrate,
                length=round(f.duration),
                isVariableBitRate=f.vbr,
            )
    out["isLocked"] = False  # never set by slskd; locked files are only told apart by the list they are in
    return out
