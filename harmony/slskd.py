"""The slskd client: speaks slskd's `/api/v0` and returns small dataclasses.

Raw payloads never leave this module. Parsing tolerates what real slskd does: null properties
are omitted (so every optional field is read with a default), enums are flags strings such as
`"Completed, Succeeded"`, some timestamps have no zone suffix, durations are .NET TimeSpan
strings, and error bodies are plain or JSON-quoted strings.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .errors import UpstreamRejected, UpstreamUnavailable
from .fields import as_int, as_opt_int, as_str
from .upstream import Upstream

SERVICE = "slskd"

# --- parsing helpers ---------------------------------------------------------------------


def parse_flags(value: object) -> frozenset[str]:
    """`"Completed, Succeeded"` → {"Completed", "Succeeded"}; anything else → empty set."""
    if not isinstance(value, str):
        return frozenset()
    return frozenset(part.strip() for part in value.split(",") if part.strip())


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(value: object) -> float | None:
    """An ISO-8601 timestamp, with or without `Z` (untagged times are UTC), to Unix seconds."""
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(lambda m: m.group(1), value.strip().replace("Z", "+00:00"))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)")


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


TERMINAL_FAILURES = frozenset({"Cancelled", "TimedOut", "Errored", "Rejected", "Aborted"})


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

    @property
    def succeeded(self) -> bool:
        return {"Completed", "Succeeded"} <= self.state

    @property
    def failed(self) -> bool:
        return "Completed" in self.state and bool(self.state & TERMINAL_FAILURES)

    @property
    def queued_remotely(self) -> bool:
        return {"Queued", "Remotely"} <= self.state


@dataclass(frozen=True)
class EnqueueResult:
    enqueued: tuple[Transfer, ...] = ()
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Options:
    downloads_dir: str = ""
    incomplete_dir: str = ""


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
    return tuple(_file(item) for item in raw if isinstance(item, dict)) if isinstance(raw, list) else ()


def parse_search(raw: dict[str, Any]) -> Search:
    return Search(
        id=as_str(raw.get("id")),
        text=as_str(raw.get("searchText")),
        state=parse_flags(raw.get("state")),
        response_count=as_int(raw.get("responseCount")),
        file_count=as_int(raw.get("fileCount")),
        started_at=parse_time(raw.get("startedAt")),
        ended_at=parse_time(raw.get("endedAt")),
    )


def parse_response(raw: dict[str, Any]) -> PeerResponse:
    return PeerResponse(
        username=as_str(raw.get("username")),
        has_free_slot=raw.get("hasFreeUploadSlot") is True,
        upload_speed=as_int(raw.get("uploadSpeed")),
        queue_length=as_int(raw.get("queueLength")),
        files=_files(raw.get("files")),
        locked_files=_files(raw.get("lockedFiles")),
    )


def parse_transfer(raw: dict[str, Any]) -> Transfer:
    return Transfer(
        id=as_str(raw.get("id")),
        username=as_str(raw.get("username")),
        filename=as_str(raw.get("filename")),
        size=as_int(raw.get("size")),
        state=parse_flags(raw.get("state")),
        bytes_transferred=as_int(raw.get("bytesTransferred")),
        average_speed=float(raw.get("averageSpeed") or 0.0),
        percent=float(raw.get("percentComplete") or 0.0),
        requested_at=parse_time(raw.get("requestedAt")),
        enqueued_at=parse_time(raw.get("enqueuedAt")),
        started_at=parse_time(raw.get("startedAt")),
        ended_at=parse_time(raw.get("endedAt")),
        place_in_queue=as_opt_int(raw.get("placeInQueue")),
        exception=as_str(raw.get("exception")),
        attempts=as_int(raw.get("attempts")),
        removed=raw.get("removed") is True,
        elapsed=parse_timespan(raw.get("elapsedTime")),
        remaining=parse_timespan(raw.get("remainingTime")),
    )


def _user_transfers(users: object) -> Iterable[Transfer]:
    """Flatten `[UserResponse{username, directories[{files[Transfer]}]}]`."""
    for user in users if isinstance(users, list) else []:
        if not isinstance(user, dict):
            continue
        for directory in user.get("directories") or []:
            for item in (directory or {}).get("files") or []:
                if isinstance(item, dict):
                    yield parse_transfer(item)


def _expect(payload: object, kind: type, what: str) -> Any:
    if not isinstance(payload, kind):
        raise UpstreamRejected(f"slskd sent an unexpected {what} payload", service=SERVICE)
    return payload


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

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kw: Any) -> Any:
        response = self.upstream.request(SERVICE, method, self.api + path, headers=self.headers, ok=ok, **kw)
        if response.status in ok and response.status >= 300:
            return None
        return response.json()

    # application and server

    def state(self, *, quick: bool = False) -> ServerState:
        """Connection and login state of the daemon to the Soulseek network."""
        app = _expect(self._call("GET", "/application", quick=quick), dict, "application")
        server = app.get("server") if isinstance(app.get("server"), dict) else {}
        version = app.get("version") if isinstance(app.get("version"), dict) else {}
        user = app.get("user") if isinstance(app.get("user"), dict) else {}
        flags = parse_flags(server.get("state"))
        return ServerState(
            connected=server.get("isConnected") is True or "Connected" in flags,
            logged_in=server.get("isLoggedIn") is True or "LoggedIn" in flags,
            state=flags,
            version=as_str(version.get("current")),
            username=as_str(user.get("username")),
        )

    def options(self) -> Options:
        raw = _expect(self._call("GET", "/options"), dict, "options")
        directories = raw.get("directories") if isinstance(raw.get("directories"), dict) else {}
        return Options(
            downloads_dir=as_str(directories.get("downloads")),
            incomplete_dir=as_str(directories.get("incomplete")),
        )

    # searches

    def create_search(self, text: str, search_id: str | None = None) -> Search:
        """Start a search. slskd allows one creation at a time: its 429 is retried as a wait."""
        body = {
            "id": search_id or str(uuid.uuid4()),
            "searchText": text,
            "searchTimeout": self.search_timeout_ms,
        }
        # A 429 here means "another creation is in flight": nothing was created, so the
        # upstream policy may repeat this POST; other failures are not repeated.
        with self._create_lock:
            raw = self._call("POST", "/searches", json_body=body, idempotent=False)
        return parse_search(_expect(raw, dict, "search"))

    def search(self, search_id: str) -> Search | None:
        raw = self._call("GET", f"/searches/{quote(search_id, safe='')}", ok=(404,))
        return parse_search(_expect(raw, dict, "search")) if raw is not None else None

    def search_responses(self, search_id: str) -> list[PeerResponse]:
        """Responses of a completed search (slskd stores them only once the search completes)."""
        raw = self._call("GET", f"/searches/{quote(search_id, safe='')}/responses")
        return [parse_response(item) for item in _expect(raw, list, "responses") if isinstance(item, dict)]

    def stop_search(self, search_id: str) -> None:
        self._call("PUT", f"/searches/{quote(search_id, safe='')}", ok=(404,))

    def delete_search(self, search_id: str) -> None:
        self._call("DELETE", f"/searches/{quote(search_id, safe='')}", ok=(404,))

    # transfers

    def enqueue(self, username: str, files: Iterable[File]) -> EnqueueResult:
        """Queue downloads from one user; the filenames and sizes must be exactly as searched."""
        body = [{"filename": f.filename, "size": f.size} for f in files]
        raw = self._call(
            "POST", f"/transfers/downloads/{quote(username, safe='')}", json_body=body, idempotent=False
        )
        if not isinstance(raw, dict):  # slskd <= 0.23 answers 201 with an empty body
            return EnqueueResult()
        enqueued = tuple(parse_transfer(t) for t in raw.get("enqueued") or [] if isinstance(t, dict))
        failed = tuple(
            item if isinstance(item, str) else as_str((item or {}).get("filename"))
            for item in raw.get("failed") or []
        )
        return EnqueueResult(enqueued, failed)

    def downloads(self) -> list[Transfer]:
        """Every download of every user, in one call (the reconciler's single poll)."""
        return list(_user_transfers(self._call("GET", "/transfers/downloads")))

    def transfer(self, username: str, transfer_id: str) -> Transfer | None:
        raw = self._call(
            "GET",
            f"/transfers/downloads/{quote(username, safe='')}/{quote(transfer_id, safe='')}",
            ok=(404,),
        )
        return parse_transfer(raw) if isinstance(raw, dict) else None

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

    def remove_completed(self) -> None:
        self._call("DELETE", "/transfers/downloads/all/completed")

    # health

    def probe(self) -> str:
        """For /ready: raise unless slskd answers and is logged in to Soulseek."""
        state = self.state(quick=True)
        if not state.logged_in:
            raise UpstreamUnavailable(
                f"slskd is not logged in to Soulseek (state: {', '.join(sorted(state.state)) or 'unknown'})"
            )
        return f"logged in as {state.username or '?'} (slskd {state.version or '?'})"
