"""The fake slskd's downloads: `/api/v0/transfers/downloads`, as the selected version runs them.

A transfer's state is computed from the fake clock and its peer's behaviour, one attempt at a
time: `Queued, Locally` (0.5 s), `Requested` until the peer acknowledges (0.5 s), `Queued,
Remotely` for the peer's queue time, `Initializing` (0.5 s), `InProgress`, then an end:

- `Completed, Succeeded` when every byte has arrived;
- `Completed, Errored` "Remote connection closed" (peer `fails`, at 60%);
- `Completed, TimedOut` after 15 s without a byte (peer `stalls`, at 40%), and, from 0.24,
  "Download failed to enqueue remotely after hard time limit of 180 secs" when the peer never
  acknowledges (peer `unresponsive`);
- `Completed, Rejected` "Transfer rejected: <reason>" (peer `rejects`), or the bare
  "File not shared." (file not found);
- `Completed, Aborted` when the size asked for is not the file's.

From 0.26 an Errored or TimedOut attempt is retried (`retry_attempts` in all, back-off
`retry_delay` doubling up to `retry_max_delay`): the failure shows during the back-off, then
the record returns to `Queued, Locally` with `attempts` raised. Cancellation is asynchronous:
the first read after a `DELETE` still shows the old state.

Enqueue: from 0.24 two requests at a time hold a slot while slskd connects to the peer
(`peer_connect_seconds` of the fake clock); a third gets 429. The response is, by version,
an empty 201 (<= 0.23, which waited for the peers and answers 500 if any file fails),
`{enqueued, failed: ["name"]}` (0.24-0.25) or `{enqueued, failed: [{}]}` (0.26).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import bottle

from harmony.fakes import audio
from harmony.fakes import peers as peerlib
from harmony.fakes.peers import SharedFile
from harmony.fakes.slskd_wire import (
    BUSY_MESSAGE,
    body,
    disconnected,
    empty,
    fail,
    guid,
    iso,
    json_response,
    route_value,
    timespan,
)

if TYPE_CHECKING:
    from harmony.fakes.slskd import Profile, SlskdState

# Phases of an attempt, in seconds.
LOCAL_QUEUE = 0.5
REQUESTED = 0.5
INITIALIZING = 0.5
INACTIVITY_MESSAGE = "Inactivity timeout of 15000 milliseconds was exceeded"  # [inferred] wording
ACK_LIMIT_MESSAGE = "Download failed to enqueue remotely after hard time limit of 180 secs"
CANCELLED_MESSAGE = "The operation was canceled."
RETRIED = ("Completed, Errored", "Completed, TimedOut")


@dataclass
class Transfer:
    id: str
    username: str
    filename: str
    size: int
    requested: float
    behaviour: str
    speed: int
    queue_seconds: float
    shared: SharedFile | None
    failure: tuple[str, str] | None = None  # (state, exception) decided at enqueue; never retried
    max_attempts: int = 1  # 1: the version does not retry
    retry_delay: float = 5.0
    retry_max_delay: float = 60.0
    inactivity: float = 15.0
    ack_limit: float | None = 180.0  # None: waits for the peer's acknowledgement forever (<= 0.23)
    cancel_requested: float | None = None
    cancel_reads: int = 0  # reads that still show the state from before the cancellation
    cancelled_at: float | None = None
    removed: bool = False
    written: bool = False
    local_path: str = ""

    def _attempt(self, start: float, number: int, now: float) -> dict[str, Any]:
        """State at `now` of attempt `number` begun at `start`; `ended` is set once it has ended."""
        t = now - start
        acked = start + LOCAL_QUEUE + REQUESTED
        begin = acked + self.queue_seconds + INITIALIZING
        info: dict[str, Any] = {"bytes": 0, "started": None, "ended": None, "exception": None}
        info.update(attempts=number if t >= LOCAL_QUEUE or number > 1 else 0, enqueued=None)
        if t < LOCAL_QUEUE:
            info["state"] = "Queued, Locally"
            return info
        if self.failure is not None and now >= acked:
            info.update(state=self.failure[0], exception=self.failure[1], ended=acked)
            return info
        if self.behaviour == "unresponsive" or now < acked:
            timeout = start + LOCAL_QUEUE + self.ack_limit if self.ack_limit is not None else None
            if timeout is not None and now >= timeout and self.behaviour == "unresponsive":
                info.update(state="Completed, TimedOut", exception=ACK_LIMIT_MESSAGE, ended=timeout)
            else:
                info["state"] = "Requested"
            return info
        info["enqueued"] = acked
        if now < begin - INITIALIZING:
            info["state"] = "Queued, Remotely"
            return info
        if now < begin:
            info["state"] = "Initializing"
            return info
        info["started"] = begin
        full = self.size / max(self.speed, 1)
        limit = {"stalls": 0.4, "fails": 0.6}.get(self.behaviour, 1.0)
        info["bytes"] = min(int((now - begin) * self.speed), int(self.size * limit))
        if self.behaviour == "fails" and now >= begin + full * limit:
            info.update(
                state="Completed, Errored", exception="Remote connection closed", ended=begin + full * limit
            )
        elif self.behaviour == "stalls" and now >= begin + full * limit + self.inactivity:
            info.update(state="Completed, TimedOut", exception=INACTIVITY_MESSAGE)
            info["ended"] = begin + full * limit + self.inactivity
        elif limit == 1.0 and now >= begin + full:
            info.update(state="Completed, Succeeded", bytes=self.size, ended=begin + full)
        else:
            info["state"] = "InProgress"
        return info

    def _attempts(self, now: float) -> dict[str, Any]:
        """State at `now` across attempts; `final` says whether it can still change."""
        start, number = self.requested, 1
        while True:
            info = self._attempt(start, number, now)
            if info["ended"] is None:
                info["final"] = False
                return info
            if info["state"] not in RETRIED or number >= self.max_attempts:
                info["final"] = True
                return info
            retry_at = info["ended"] + min(self.retry_delay * 2 ** (number - 1), self.retry_max_delay)
            if now < retry_at:
                info["final"] = False  # slskd shows the failure until the retry begins
                return info
            start, number = retry_at, number + 1

    def timeline(self, now: float) -> dict[str, Any]:
        """State, timestamps and bytes at time `now`, cancellation included."""
        if self.cancelled_at is None or self.cancelled_at > now:
            return self._attempts(now)
        before = self._attempts(self.cancelled_at)
        if before["final"]:
            return self._attempts(now)  # it had ended before the cancellation took effect
        before.update(state="Completed, Cancelled", exception=CANCELLED_MESSAGE, ended=self.cancelled_at)
        before["final"] = True
        return before

    def done(self, now: float) -> bool:
        """In a state that will not change (the retry back-off of 0.26 does not count)."""
        return bool(self.timeline(now)["final"])

    def cancel(self, now: float) -> None:
        """Ask for cancellation; it shows from the second read on, as the download task only
        notices its cancellation token later."""
        if self.cancel_requested is None and self.cancelled_at is None:
            self.cancel_requested, self.cancel_reads = now, 1

    def read(self, now: float) -> dict[str, Any]:
        """The timeline as a client reads it: a pending cancellation takes effect after one read."""
        if self.cancel_requested is not None and self.cancelled_at is None:
            if self.cancel_reads > 0:
                self.cancel_reads -= 1
                return self.timeline(now)
            self.cancelled_at = max(self.cancel_requested, now - 1e-6)
        return self.timeline(now)

    def view(self, now: float, profile: Profile, *, fresh: bool = False) -> dict[str, Any]:
        """The Transfer object this version of slskd writes (`fresh`: in the enqueue response)."""
        info = self.read(now)
        done_bytes = info["bytes"]
        out: dict[str, Any] = {
            "id": self.id,
            "username": self.username,
            "direction": "Download",
            "filename": self.filename,
            "size": self.size,
        }
        if profile.start_offset:
            out["startOffset"] = 0
        out["state"] = info["state"]
        if profile.state_description:
            out["stateDescription"] = info["state"]
        # A new record is UTC-kind; one read back from slskd's database has no zone.
        out["requestedAt"] = iso(self.requested, utc=fresh)
        out.update(
            bytesTransferred=done_bytes,
            averageSpeed=0.0,
            bytesRemaining=self.size - done_bytes,
            percentComplete=round(100.0 * done_bytes / self.size, 4) if self.size else 0.0,
        )
        if profile.attempts_field:
            out["attempts"] = info["attempts"] if profile.retries else 0
        if profile.removed_field:
            out["removed"] = self.removed
        if info["enqueued"] is not None:
            out["enqueuedAt"] = iso(info["enqueued"], utc=False)
        if info["started"] is not None:
            out["startedAt"] = iso(info["started"], utc=True)
            elapsed = (info["ended"] or now) - info["started"]
            out["elapsedTime"] = timespan(elapsed)
            if elapsed > 0 and done_bytes:
                out["averageSpeed"] = done_bytes / elapsed
                out["remainingTime"] = timespan(out["bytesRemaining"] / out["averageSpeed"])
        if info["ended"] is not None:
            out["endedAt"] = iso(info["ended"], utc=True)
        if info["exception"]:
            out["exception"] = info["exception"]
        return out


def register(app: bottle.Bottle, state: SlskdState, api: str) -> None:
    """Add the download routes to the fake slskd `app`."""

    def user(raw: str) -> str:
        return route_value(raw, decode_slash=state.profile.decodes_slash)

    @app.post(api + "/transfers/downloads/<username>")
    def enqueue(username: str) -> Any:
        files = body(list)
        names = _validate(files)
        limited = state.profile.concurrency_limits
        if limited and not state.enqueue_semaphore.acquire(blocking=False):
            state.stats["enqueue_busy"] += 1
            fail(429, BUSY_MESSAGE)  # DownloadRequestLimiter.Wait(0); no Retry-After
        try:
            state.clock.sleep(state.peer_connect_seconds, state.stopping)  # find and connect to the peer
            with state.lock:
                return _enqueue(state, user(username), files, names, state.clock.now())
        finally:
            if limited:
                state.enqueue_semaphore.release()

    @app.get(api + "/transfers/downloads")
    def all_downloads() -> Any:
        include_removed = bottle.request.query.get("includeRemoved", "false").lower() == "true"
        with state.lock:
            return json_response(_grouped(state, None, include_removed, state.clock.now()))

    @app.get(api + "/transfers/downloads/<username>")
    def user_downloads(username: str) -> Any:
        with state.lock:
            groups = _grouped(state, user(username), False, state.clock.now())
        if not groups:
            return empty(404)
        return json_response(groups[0])

    @app.get(api + "/transfers/downloads/<username>/<transfer_id>")
    def get_download(username: str, transfer_id: str) -> Any:
        with state.lock:
            transfer = state.transfers.get(guid(transfer_id))  # looked up by id alone
            if transfer is None:
                return empty(404)
            return json_response(transfer.view(state.clock.now(), state.profile))

    @app.delete(api + "/transfers/downloads/all/completed")
    def remove_completed() -> Any:
        with state.lock:
            now = state.clock.now()
            for transfer in state.transfers.values():
                if transfer.done(now):
                    transfer.removed = True
        return empty(204)

    @app.delete(api + "/transfers/downloads/<username>/<transfer_id>")
    def cancel_download(username: str, transfer_id: str) -> Any:
        remove = bottle.request.query.get("remove", "false").lower() == "true"
        old = state.profile.remove_before_complete_fails
        with state.lock:
            now = state.clock.now()
            transfer = state.transfers.get(guid(transfer_id))
            if transfer is None:
                return empty(404) if old else empty(204)  # 0.25+: unknown ids are fine
            if not transfer.done(now):
                transfer.cancel(now)
                if remove and old:
                    fail(500, "Invalid attempt to remove a download before it is complete")
            elif remove:
                transfer.removed = True  # only records already complete are removed (0.25+)
        return empty(204)


def _validate(files: list[Any]) -> list[str]:
    if not files:
        fail(400, "At least one file is required")
    names = []
    for item in files:
        if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
            fail(400, "Each file must have a filename")
        if ".." in item["filename"].replace("/", "\\").split("\\"):
            fail(400, "Filenames must not contain path traversal segments")
        names.append(item["filename"])
    return names


def _enqueue(state: SlskdState, username: str, files: list[Any], names: list[str], now: float) -> Any:
    profile = state.profile
    pairs = [(item["filename"], item.get("size")) for item in files]
    if len(set(map(str, pairs))) != len(pairs):  # Distinct() compares (filename, size) pairs
        fail(500, "Duplicate files are not allowed in a single request")
    if not state.logged_in:
        fail(500, disconnected("download"))
    peer = state.peers.get(username)
    if peer is None or peer.behaviour == "offline":
        fail(500, f"User {username} appears to be offline")
    enqueued: list[Transfer] = []
    failed: list[tuple[str, str]] = []
    for item in files:
        filename, size = item["filename"], int(item.get("size") or 0)
        existing = [t for t in state.transfers.values() if t.username == username and t.filename == filename]
        if any(not t.removed and not t.done(now) for t in existing):
            failed.append((filename, "Skipped: Already in progress"))
            continue
        shared = peer.find(filename)
        failure = None
        if shared is None:
            failure = ("Completed, Rejected", "File not shared.")
        elif shared.size != size:
            message = (
                f"Transfer aborted: the remote size of {shared.size} does not match expected size {size}"
            )
            failure = ("Completed, Aborted", message)
        elif peer.behaviour == "rejects":
            failure = ("Completed, Rejected", f"Transfer rejected: {peer.reject_reason}")
        if profile.empty_enqueue_body and failure is not None and failure[0] == "Completed, Rejected":
            failed.append((filename, failure[1]))  # <= 0.23 waited for the peer's answer
            continue
        for old in existing:
            old.removed = True  # AddOrSupersede: the older completed record is replaced
        transfer = Transfer(
            id=str(uuid.uuid4()),
            username=username,
            filename=filename,
            size=size,
            # <= 0.23 answers once the peer has acknowledged: the record is that far along.
            requested=now - (LOCAL_QUEUE + REQUESTED if profile.empty_enqueue_body else 0.0),
            behaviour=peer.behaviour,
            # Files are advertised at a real file's size but stand in for it with a few KB, so the
            # bytes move as fast as the stand-in would: a transfer takes the time it always did.
            speed=_paced(peer.upload_speed, shared),
            queue_seconds=peer.queue_seconds if peer.behaviour == "queued" else 0.0,
            shared=shared,
            failure=failure,
            max_attempts=state.retry_attempts if profile.retries else 1,
            retry_delay=state.retry_delay,
            retry_max_delay=state.retry_max_delay,
            inactivity=state.inactivity_timeout,
            ack_limit=state.enqueue_ack_limit if profile.enqueue_ack_limit else None,
        )
        state.transfers[transfer.id] = transfer
        enqueued.append(transfer)
    if profile.empty_enqueue_body:
        if failed:
            reasons = "; ".join(f"{name}: {reason}" for name, reason in failed)
            fail(500, f"One or more files failed to enqueue: {reasons}")
        return empty(201)
    # 0.26 returns (Filename, Message) value tuples, which System.Text.Json writes as {}.
    failures = [{} if profile.failed_as_objects else name for name, _ in failed]
    return json_response(
        {"enqueued": [t.view(now, profile, fresh=True) for t in enqueued], "failed": failures}, 201
    )


def _grouped(
    state: SlskdState, username: str | None, include_removed: bool, now: float
) -> list[dict[str, Any]]:
    """Transfers as slskd lists them: by user, then by remote directory."""
    users: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for t in state.transfers.values():
        if (username is not None and t.username != username) or (t.removed and not include_removed):
            continue
        directory = t.filename.replace("/", "\\").rsplit("\\", 1)[0] if "\\" in t.filename else ""
        users.setdefault(t.username, {}).setdefault(directory, []).append(t.view(now, state.profile))
    return [
        {
            "username": user,
            "directories": [
                {"directory": d, "fileCount": len(files), "files": files} for d, files in directories.items()
            ],
        }
        for user, directories in users.items()
    ]


def _paced(speed: int, shared: SharedFile | None) -> int:
    if shared is None:
        return speed
    # The stand-in's tag padding is room for the importer's tags, not audio: it takes no time.
    stand_in = len(peerlib.file_bytes(shared)) - audio.TAG_PADDING
    return max(1, round(speed * shared.size / max(stand_in, 1)))
