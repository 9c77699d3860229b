"""The slskd client: speaks slskd's `/api/v0` and returns small dataclasses.

Raw payloads never leave this module. Parsing tolerates what real slskd does: null properties
are omitted (so every optional field is read with a default), enums are flags strings such as
`"Completed, Succeeded"`, some timestamps have no zone suffix, durations are .NET TimeSpan
strings, and error bodies are plain or JSON-quoted strings. Every field is read through
`fields.py`, so a malformed payload is `UpstreamRejected`, never a `TypeError`.

Versions 0.23 to 0.26 differ in ways the client absorbs: the enqueue response (an empty body,
`failed` as names, `failed` as empty objects), the Transfer keys, and 0.26's retries, which
make a `Completed, Errored` transfer transient while attempts remain (`Transfer.retrying`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .errors import UpstreamUnavailable
from .fields import as_bool, as_dict, as_float, as_int, as_opt_int, as_str, dicts, expect
from .upstream import Upstream

SERVICE = "slskd"
# slskd allows two enqueue requests at a time and answers 429, with no Retry-After, to a third
# (0.24+). That is a wait, not a failure: this many jittered retries span about a minute.
ENQUEUE_BUSY_RETRIES = 10

# --- parsing helpers ---------------------------------------------------------------------


def parse_flags(value: object) -> frozenset[str]:
    """`"Completed, Succeeded"` → {"Completed", "Succeeded"}; anything else → empty set."""
    if not isinstance(value, str):
        return frozenset()
    return frozenset(part.strip() for part in value.split(",") if part.strip())


_FRACTION = re.compile(r"(\.[0-9]{1,6})[0-9]*")


def parse_time(value: object) -> float | None:
    """An ISO-8601 timestamp, with or without `Z` (untagged times are UTC), to Unix seconds."""
    if not isinstance(value, str) or not value or not value.isascii():
        return None
    text = _FRACTION.sub(lambda m: m.group(1), value.strip().replace("Z", "+00:00"))
    try:
        when = dt.datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


_TIMESPAN = re.compile(r"(?:([0-9]{1,8})\.)?([0-9]{1,2}):([0-9]{2}):([0-9]{2}(?:\.[0-9]+)?)")


def parse_timespan(value: object) -> float | None:
    """A .NET TimeSpan string `[d.]hh:mm:ss[.fffffff]` to seconds."""
    if not isinstance(value, str):
        return None
    match = _TIMESPAN.fullmatch(value.strip())
    if not match:
        return None
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


# --- dataclasses -------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerState:
    connected: bool
    logged_in: bool
    state: frozenset[str]
    version: str = ""
    username: str = ""


@dataclass(frozen=True)
class File:
    filename: str  # full remote path, backslashes, exactly as enqueued
    size: int
    extension: str = ""
    bit_rate: int | None = None
    bit_depth: int | None = None
    sample_rate: int | None = None
    length: int | None = None
    vbr: bool | None = None


@dataclass(frozen=True)
class PeerResponse:
    username: str
    has_free_slot: bool
    upload_speed: int
    queue_length: int
    files: tuple[File, ...]
    locked_files: tuple[File, ...] = ()


@dataclass(frozen=True)
class Search:
    id: str
    text: str
    state: frozenset[str]
    response_count: int = 0
    file_count: int = 0
    started_at: float | None = None
    ended_at: float | None = None

    @property
    def complete(self) -> bool:
        return "Completed" in self.state

    @property
    def queued(self) -> bool:
        """Waiting for one of the daemon's network search slots (its timeout has not started)."""
        return "Queued" in self.state and not self.complete


TERMINAL_FAILURES = frozenset({"Cancelled", "TimedOut", "Errored", "Rejected", "Aborted"})
# The failures slskd 0.26 retries; rejections, cancellations and size mismatches are final.
RETRIED_FAILURES = frozenset({"TimedOut", "Errored"})


@dataclass(frozen=True)
class Transfer:
    id: str
    username: str
    filename: str
    size: int
    state: frozenset[str]
    bytes_transferred: int = 0
    average_speed: float = 0.0
    percent: float = 0.0
    requested_at: float | None = None
    enqueued_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    place_in_queue: int | None = None
    exception: str = ""
    attempts: int = 0
    removed: bool = False
    elapsed: float | None = None
    remaining: float | None = None
    max_attempts: int = 0  # slskd's transfers.download.retry.attempts; 0: it does not retry

    @property
    def succeeded(self) -> bool:
        return {"Completed", "Succeeded"} <= self.state

    @property
    def retrying(self) -> bool:
        """Failed for now, but slskd (0.26+) will try again: attempts remain for this failure."""
        return (
            "Completed" in self.state
            and bool(self.state & RETRIED_FAILURES)
            and self.attempts < self.max_attempts
        )

    @property
    def failed(self) -> bool:
        """Failed for good: a failure state that slskd will not retry."""
        return "Completed" in self.state and bool(self.state & TERMINAL_FAILURES) and not self.retrying

    @property
    def queued_remotely(self) -> bool:
        return {"Queued", "Remotely"} <= self.state


@dataclass(frozen=True)
class EnqueueResult:
    """What slskd did with an enqueue. `failed` names the requested files it did not queue.

    slskd <= 0.23 answers an empty body (and 500 if any file fails): everything was queued, but
    `enqueued` is empty, so the transfers are found by listing them."""

    enqueued: tuple[Transfer, ...] = ()
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Options:
    downloads_dir: str = ""
    incomplete_dir: str = ""
    retry_attempts: int = 0  # attempts per download (0.26+); 0 when slskd does not retry


def _file(raw: dict[str, Any]) -> File:
    vbr = raw.get("isVariableBitRate")
    return File(
        filename=as_str(raw.get("filename")),
        size=as_int(raw.get("size")),
        extension=as_str(raw.get("extension")),
        bit_rate=as_opt_int(raw.get("bitRate")),
        bit_depth=as_opt_int(raw.get("bitDepth")),
        sample_rate=as_opt_int(raw.get("sampleRate")),
        length=as_opt_int(raw.get("length")),
        vbr=vbr if isinstance(vbr, bool) else None,
    )


def _files(raw: object) -> tuple[File, ...]:
    return tuple(_file(item) for item in dicts(raw))


def parse_search(payload: object) -> Search:
    raw = expect(payload, dict, "search", SERVICE)
    return Search(
        id=as_str(raw.get("id")),
        text=as_str(raw.get("searchText")),
        state=parse_flags(raw.get("state")),
        response_count=as_int(raw.get("responseCount")),
        file_count=as_int(raw.get("fileCount")),
        started_at=parse_time(raw.get("startedAt")),
        ended_at=parse_time(raw.get("endedAt")),
    )


def parse_response(payload: object) -> PeerResponse:
    raw = expect(payload, dict, "search response", SERVICE)
    return PeerResponse(
        username=as_str(raw.get("username")),
        has_free_slot=as_bool(raw.get("hasFreeUploadSlot")),
        upload_speed=as_int(raw.get("uploadSpeed")),
        queue_length=as_int(raw.get("queueLength")),
        files=_files(raw.get("files")),
        locked_files=_files(raw.get("lockedFiles")),
    )


def parse_transfer(payload: object, max_attempts: int = 0) -> Transfer:
    """A Transfer; `max_attempts` is slskd's retry setting (see `Transfer.retrying`)."""
    raw = expect(payload, dict, "transfer", SERVICE)
    return Transfer(
        id=as_str(raw.get("id")),
        username=as_str(raw.get("username")),
        filename=as_str(raw.get("filename")),
        size=as_int(raw.get("size")),
        state=parse_flags(raw.get("state")),
        bytes_transferred=as_int(raw.get("bytesTransferred")),
        average_speed=as_float(raw.get("averageSpeed")),
        percent=as_float(raw.get("percentComplete")),
        requested_at=parse_time(raw.get("requestedAt")),
        enqueued_at=parse_time(raw.get("enqueuedAt")),
        started_at=parse_time(raw.get("startedAt")),
        ended_at=parse_time(raw.get("endedAt")),
        place_in_queue=as_opt_int(raw.get("placeInQueue")),
        exception=as_str(raw.get("exception")),
        attempts=as_int(raw.get("attempts")),
        removed=as_bool(raw.get("removed")),
        elapsed=parse_timespan(raw.get("elapsedTime")),
        remaining=parse_timespan(raw.get("remainingTime")),
        max_attempts=max_attempts,
    )


def parse_transfers(payload: object, max_attempts: int = 0) -> list[Transfer]:
    """Flatten `[UserResponse{username, directories[{files[Transfer]}]}]`."""
    users = expect(payload, list, "transfer list", SERVICE)
    return [
        parse_transfer(item, max_attempts)
        for user in dicts(users)
        for directory in dicts(user.get("directories"))
        for item in dicts(directory.get("files"))
    ]


def parse_enqueue(payload: object, requested: Iterable[str], max_attempts: int = 0) -> EnqueueResult:
    """The enqueue response of any slskd version; failed = requested minus enqueued names.

    The `failed` list itself is not read: 0.24-0.25 send file names, 0.26 sends one `{}` per
    failure (a serialised value tuple), so only the names in `enqueued` can be trusted."""
    if payload is None:  # slskd <= 0.23: 201 with an empty body, every file queued
        return EnqueueResult()
    raw = expect(payload, dict, "enqueue", SERVICE)
    enqueued = tuple(parse_transfer(item, max_attempts) for item in dicts(raw.get("enqueued")))
    names = {t.filename for t in enqueued}
    failed = tuple(dict.fromkeys(name for name in requested if name not in names))
    return EnqueueResult(enqueued, failed)


def parse_application(payload: object) -> ServerState:
    """`GET /application`: the Soulseek connection, the daemon's version and user."""
    app = expect(payload, dict, "application", SERVICE)
    server = as_dict(app.get("server"))
    flags = parse_flags(server.get("state"))
    return ServerState(
        connected=as_bool(server.get("isConnected")) or "Connected" in flags,
        logged_in=as_bool(server.get("isLoggedIn")) or "LoggedIn" in flags,
        state=flags,
        version=as_str(as_dict(app.get("version")).get("current")),
        username=as_str(as_dict(app.get("user")).get("username")),
    )


def parse_options(payload: object) -> Options:
    """`GET /options`: the directories, and the download retry setting of 0.26+."""
    raw = expect(payload, dict, "options", SERVICE)
    directories = as_dict(raw.get("directories"))
    retry = as_dict(as_dict(as_dict(raw.get("transfers")).get("download")).get("retry"))
    return Options(
        downloads_dir=as_str(directories.get("downloads")),
        incomplete_dir=as_str(directories.get("incomplete")),
        retry_attempts=max(0, as_int(retry.get("attempts"))),
    )


def parse_completed_file(event: dict[str, Any]) -> tuple[str, str] | None:
    """A `DownloadFileComplete` event's transfer id and local path, or None. Its `data` is a JSON
    string (contract §A.7), parsed here so a malformed one is skipped, not raised."""
    if event.get("type") != "DownloadFileComplete" or not isinstance(event.get("data"), str):
        return None
    try:
        data = json.loads(event["data"])
    except ValueError:
        return None
    data = as_dict(data)
    transfer_id = as_str(as_dict(data.get("transfer")).get("id"))
    local = as_str(data.get("localFilename"))
    return (transfer_id, local) if transfer_id and local else None


# --- the client --------------------------------------------------------------------------


class Slskd:
    """One slskd daemon. `base_url` may include a URL base (`http://host:5030/slskd`)."""

    def __init__(
        self, upstream: Upstream, base_url: str, api_key: str, *, search_timeout_ms: int = 15000
    ) -> None:
        self.upstream = upstream
        self.api = base_url.rstrip("/") + "/api/v0"
        self.headers = {"X-API-Key": api_key, "Accept": "application/json"}
        self.search_timeout_ms = search_timeout_ms
        # slskd starts one search at a time and answers 429 to an overlapping creation; our own
        # threads queue here instead of provoking it.
        self._create_lock = threading.Lock()
        # Enqueues hold one of slskd's two enqueue slots while it connects to the peer (seconds);
        # ours go one at a time, leaving the other slot to the web UI and other tools.
        self._enqueue_lock = threading.Lock()
        self._retry_attempts: int | None = None  # slskd's retry setting, read from /options

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kw: Any) -> Any:
        response = self.upstream.request(SERVICE, method, self.api + path, headers=self.headers, ok=ok, **kw)
        if response.status in ok and response.status >= 300:
            return None
        return response.json()

    # application and server

    def state(self, *, quick: bool = False, probe: bool = False) -> ServerState:
        """Connection and login state of the daemon to the Soulseek network."""
        return parse_application(self._call("GET", "/application", quick=quick, ignore_cooldown=probe))

    def options(self, *, quick: bool = False, probe: bool = False) -> Options:
        """The daemon's options; also refreshes the retry setting `Transfer.retrying` uses."""
        options = parse_options(self._call("GET", "/options", quick=quick, ignore_cooldown=probe))
        self._retry_attempts = options.retry_attempts
        return options

    def _max_attempts(self) -> int:
        """slskd's retry setting: read once, then refreshed by every probe."""
        if self._retry_attempts is None:
            self.options()
        return self._retry_attempts or 0

    # searches

    def create_search(
        self, text: str, search_id: str | None = None, *, timeout_s: float | None = None
    ) -> Search:
        """Start a search. slskd allows one creation at a time: its 429 is retried as a wait.
        `timeout_s` is slskd's inactivity timeout (the search ends that long after the last
        response)."""
        body = {
            "id": search_id or str(uuid.uuid4()),
            "searchText": text,
            "searchTimeout": round(timeout_s * 1000) if timeout_s else self.search_timeout_ms,
        }
        # A 429 here means "another creation is in flight": nothing was created, so the
        # upstream policy may repeat this POST; other failures are not repeated.
        with self._create_lock:
            raw = self._call("POST", "/searches", json_body=body, idempotent=False)
        return parse_search(raw)

    def searches(self) -> list[Search]:
        """Every search the daemon holds, without responses: one request, however many run."""
        raw = self._call("GET", "/searches")
        return [parse_search(item) for item in dicts(expect(raw, list, "searches", SERVICE))]

    def search(self, search_id: str) -> Search | None:
        raw = self._call("GET", f"/searches/{quote(search_id, safe='')}", ok=(404,))
        return parse_search(raw) if raw is not None else None

    def search_responses(self, search_id: str) -> list[PeerResponse]:
        """Responses of a completed search (slskd stores them only once the search completes)."""
        raw = self._call("GET", f"/searches/{quote(search_id, safe='')}/responses")
        return [parse_response(item) for item in dicts(expect(raw, list, "responses", SERVICE))]

    def stop_search(self, search_id: str) -> None:
        self._call("PUT", f"/searches/{quote(search_id, safe='')}", ok=(404,))

    def delete_search(self, search_id: str) -> None:
        self._call("DELETE", f"/searches/{quote(search_id, safe='')}", ok=(404,))

    # transfers

    def enqueue(self, username: str, files: Iterable[File]) -> EnqueueResult:
        """Queue downloads from one user; the filenames and sizes must be exactly as searched.

        slskd's 429 to a busy enqueue means nothing was queued, so it is waited out (about a
        minute at most) and the POST repeated; any other failure is not repeated."""
        wanted = list(files)
        body = [{"filename": f.filename, "size": f.size} for f in wanted]
        max_attempts = self._max_attempts()
        with self._enqueue_lock:
            raw = self._call(
                "POST",
                f"/transfers/downloads/{quote(username, safe='')}",
                json_body=body,
                idempotent=False,
                retries=ENQUEUE_BUSY_RETRIES,
            )
        return parse_enqueue(raw, [f.filename for f in wanted], max_attempts)

    def downloads(self) -> list[Transfer]:
        """Every download of every user, in one call (the reconciler's single poll)."""
        return parse_transfers(self._call("GET", "/transfers/downloads"), self._max_attempts())

    def transfer(self, username: str, transfer_id: str) -> Transfer | None:
        raw = self._call(
            "GET",
            f"/transfers/downloads/{quote(username, safe='')}/{quote(transfer_id, safe='')}",
            ok=(404,),
        )
        return parse_transfer(raw, self._max_attempts()) if raw is not None else None

    def cancel(self, username: str, transfer_id: str, *, remove: bool = False) -> None:
        """Cancel (and optionally remove) a download. Unknown ids are fine (older slskd: 404)."""
        path = f"/transfers/downloads/{quote(username, safe='')}/{quote(transfer_id, safe='')}"
        try:
            self._call("DELETE", path + ("?remove=true" if remove else ""), ok=(404,))
        except UpstreamUnavailable as exc:
            # slskd <= 0.24 answers 500 when removing a transfer that has not completed.
            if exc.details.get("status") != 500 or not remove:
                raise
            self._call("DELETE", path, ok=(404,))

    def completed_files(self, *, offset: int = 0, limit: int = 100) -> list[tuple[str, str]]:
        """One page of slskd's event log (newest first) as `(transfer id, local path)` for each
        `DownloadFileComplete`: the authoritative path of a finished download (contract §A.7).
        Other events and malformed ones are skipped."""
        raw = self._call("GET", f"/events?offset={offset}&limit={limit}")
        return [pair for pair in map(parse_completed_file, dicts(raw)) if pair is not None]

    def remove_completed(self) -> None:
        self._call("DELETE", "/transfers/downloads/all/completed")

    # health

    def probe(self) -> str:
        """For /ready: raise unless slskd answers and is logged in to Soulseek.

        Asks slskd even while it cools down after a long Retry-After, so a healthy daemon
        ends the cooldown within one probe interval; refreshes the retry setting too."""
        state = self.state(quick=True, probe=True)
        self.options(quick=True, probe=True)
        if not state.logged_in:
            raise UpstreamUnavailable(
                f"slskd is not logged in to Soulseek (state: {', '.join(sorted(state.state)) or 'unknown'})"
            )
        return f"logged in as {state.username or '?'} (slskd {state.version or '?'})"
