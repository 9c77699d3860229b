"""A fake slskd: the `/api/v0` subset Harmony uses, as slskd 0.25.x answers it.

Contract (`spec/api-contracts.md` Part A): API key in `X-API-Key` (401 with an empty body
otherwise), optional URL base, trailing slashes tolerated, camelCase JSON with null properties left
out, flags enums such as "Completed, Succeeded", timestamps with and without `Z`, TimeSpan strings,
bare 404s with empty bodies, error messages as JSON strings.

Nothing runs in the background: searches and transfers are computed from the fake clock whenever
they are read, and every request first settles what is due (`SlskdState.tick`), which is when a
successful download's file is written into `downloads_dir/<last remote folder>/<name>`.

Control API (no auth): `/_fake/faults`, `/_fake/clock` (see `faults.py`), `POST /_fake/slskd/logout`
and `/login`, `POST /_fake/slskd/search-busy` (`{"times": n}`: the next n search creations get 429),
`GET /_fake/slskd/peers`, `POST /_fake/slskd/peers` (`{"username", "behaviour"?, "upload_speed"?,
"queue_length"?, "queue_seconds"?, "free_slot"?}` changes one peer).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import tempfile
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any, NoReturn

import bottle

from harmony.fakes import faults as faultlib
from harmony.fakes import peers as peerlib
from harmony.fakes.clock import FakeClock
from harmony.fakes.peers import Peer, SharedFile

VERSION = "0.25.1"
BUSY_MESSAGE = "Only one concurrent operation is permitted. Wait until the previous request completes"
_TICKS_AT_EPOCH = 621_355_968_000_000_000  # .NET ticks (100 ns since 0001-01-01) at 1970-01-01


def error_body(status: int, message: str) -> tuple[bytes, str]:
    """slskd's error shape: a JSON string, or an empty body for bare 401/403/404."""
    if not message and status in (401, 403, 404):
        return b"", "application/json"
    return json.dumps(message or "An unexpected error occurred").encode(), "application/json"


@dataclass
class Search:
    id: str
    text: str
    token: int
    started: float
    timeout: float  # inactivity timeout, seconds
    plan: list[tuple[float, dict[str, Any]]]  # (arrival delay, response), in arrival order
    response_limit: int
    file_limit: int
    cancelled_at: float | None = None

    def end(self) -> tuple[float, str]:
        """(seconds after start at which the search ends on its own, its final state)."""
        files = 0
        for n, (delay, response) in enumerate(self.plan, 1):
            files += response["fileCount"]
            if n >= self.response_limit:
                return delay, "Completed, ResponseLimitReached"
            if files >= self.file_limit:
                return delay, "Completed, FileLimitReached"
        last = self.plan[-1][0] if self.plan else 0.0
        return last + self.timeout, "Completed, TimedOut"

    def view(self, now: float, *, with_responses: bool = False) -> dict[str, Any]:
        elapsed = now - self.started
        end, final = self.end()
        if self.cancelled_at is not None and self.cancelled_at - self.started < end:
            end, final = self.cancelled_at - self.started, "Completed, Cancelled"
        done = elapsed >= end
        received = [r for delay, r in self.plan if delay <= min(elapsed, end)]
        out: dict[str, Any] = {
            "id": self.id,
            "searchText": self.text,
            "token": self.token,
            "state": final if done else "InProgress",
            "isComplete": done,
            "startedAt": iso(self.started, utc=True),
            "responseCount": len(received),
            "fileCount": sum(r["fileCount"] for r in received),
            "lockedFileCount": sum(r["lockedFileCount"] for r in received),
            # Responses are stored only when the search completes (SearchService.StartAsync).
            "responses": received if (done and with_responses) else [],
        }
        if done:
            out["endedAt"] = iso(self.started + end, utc=True)
        return out

    def responses(self, now: float) -> list[dict[str, Any]]:
        view = self.view(now, with_responses=True)
        return view["responses"] if view["isComplete"] else []


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
    failure: tuple[str, str] | None = None  # (state, exception) decided at enqueue
    cancelled_at: float | None = None
    removed: bool = False
    written: bool = False
    local_path: str = ""
    attempts: int = 1

    def timeline(self, now: float) -> dict[str, Any]:
        """State, timestamps and bytes at time `now`, from the peer's behaviour."""
        t = now - self.requested
        enqueued = self.requested + 1.0
        start = enqueued + self.queue_seconds + 0.5  # Initializing lasts 0.5 s
        info: dict[str, Any] = {"bytes": 0, "started": None, "ended": None, "exception": None}
        if self.failure is not None and t >= 1.0:
            info.update(state=self.failure[0], exception=self.failure[1], ended=self.requested + 1.0)
        elif t < 0.5:
            info["state"] = "Queued, Locally"
        elif t < 1.0:
            info["state"] = "Requested"
        elif now < start - 0.5:
            info["state"] = "Queued, Remotely"
        elif now < start:
            info["state"] = "Initializing"
        else:
            info["started"] = start
            full = self.size / max(self.speed, 1)
            limit = {"stalls": 0.4, "fails": 0.6}.get(self.behaviour, 1.0)
            info["bytes"] = min(int((now - start) * self.speed), int(self.size * limit))
            if self.behaviour == "fails" and now >= start + full * limit:
                info.update(state="Completed, Errored", exception="Remote connection closed")
                info["ended"] = start + full * limit
            elif limit == 1.0 and now >= start + full:
                info.update(state="Completed, Succeeded", bytes=self.size, ended=start + full)
            else:
                info["state"] = "InProgress"
        if self.cancelled_at is not None and (info["ended"] is None or info["ended"] > self.cancelled_at):
            frozen = self.timeline(self.cancelled_at) if self.cancelled_at < now else info
            info = {**frozen, "state": "Completed, Cancelled", "exception": "Transfer cancelled"}
            info["ended"] = self.cancelled_at
        info["enqueued"] = enqueued if t >= 1.0 and self.failure is None else None
        return info

    def view(self, now: float) -> dict[str, Any]:
        info = self.timeline(now)
        done_bytes = info["bytes"]
        out: dict[str, Any] = {
            "id": self.id,
            "username": self.username,
            "direction": "Download",
            "filename": self.filename,
            "size": self.size,
            "startOffset": 0,
            "state": info["state"],
            "stateDescription": info["state"],
            "requestedAt": iso(self.requested, utc=False),
            "bytesTransferred": done_bytes,
            "averageSpeed": 0.0,
            "bytesRemaining": self.size - done_bytes,
            "percentComplete": round(100.0 * done_bytes / self.size, 4) if self.size else 0.0,
            "attempts": self.attempts,
        }
        if info["enqueued"] is not None:
            out["enqueuedAt"] = iso(info["enqueued"], utc=False)
        if info["started"] is not None:
            out["startedAt"] = iso(info["started"], utc=True)
            elapsed = (info["ended"] or now) - info["started"]
            out["elapsedTime"] = timespan(elapsed)
            if elapsed > 0 and done_bytes:
                out["averageSpeed"] = done_bytes / elapsed
                if out["bytesRemaining"] and info["ended"] is None:
                    out["remainingTime"] = timespan(out["bytesRemaining"] / out["averageSpeed"])
        if info["ended"] is not None:
            out["endedAt"] = iso(info["ended"], utc=True)
        if info["exception"]:
            out["exception"] = info["exception"]
        return out


@dataclass
class SlskdState:
    """Everything the fake slskd knows. All access goes through `lock`."""

    clock: FakeClock
    downloads_dir: str
    peers: dict[str, Peer]
    api_key: str = "harmony-fake-slskd-api-key"
    url_base: str = ""
    username: str = "harmony_fake"
    logged_in: bool = True
    search_busy: int = 0  # forced 429s left for search creation
    search_create_seconds: float = 0.02  # real time a creation holds the one-at-a-time semaphore
    searches: dict[str, Search] = field(default_factory=dict)
    transfers: dict[str, Transfer] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    faults: faultlib.FaultTable = field(init=False)

    def __post_init__(self) -> None:
        self.url_base = "/" + self.url_base.strip("/") if self.url_base.strip("/") else ""
        self.faults = faultlib.FaultTable(error_body, strip_prefix=self.url_base)
        self._search_semaphore = threading.Semaphore(1)
        self._tokens = itertools.count(1001)

    def tick(self) -> None:
        """Write the files of downloads that have succeeded by now (idempotent)."""
        now = self.clock.now()
        with self.lock:
            for transfer in self.transfers.values():
                if not transfer.written and transfer.timeline(now)["state"] == "Completed, Succeeded":
                    self._write(transfer, now)

    def _write(self, transfer: Transfer, now: float) -> None:
        """Place the file where slskd would (contract §A.8), atomically, and record the event."""
        assert transfer.shared is not None
        parts = transfer.filename.replace("/", "\\").split("\\")
        folder = _local_name(parts[-2]) if len(parts) > 1 else ""
        directory = os.path.join(self.downloads_dir, folder)
        os.makedirs(directory, exist_ok=True)
        name = _local_name(parts[-1])
        target = os.path.join(directory, name)
        if os.path.exists(target):
            stem, ext = os.path.splitext(name)
            ticks = _TICKS_AT_EPOCH + int(now * 10_000_000)
            target = os.path.join(directory, f"{stem}_{ticks}{ext}")
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(peerlib.file_bytes(transfer.shared))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        transfer.written, transfer.local_path = True, target
        data = {"localFilename": target, "remoteFilename": transfer.filename, "transfer": transfer.view(now)}
        self.events.append(
            {
                "id": str(uuid.uuid4()),
                "timestamp": iso(now, utc=True),
                "type": "DownloadFileComplete",
                "data": json.dumps(data),
            }
        )


def make_app(state: SlskdState) -> bottle.Bottle:
    """The fake slskd WSGI app for `state`."""
    app = bottle.Bottle()
    api = "/api/v0"

    @app.hook("before_request")
    def normalise() -> None:
        environ = bottle.request.environ
        path = environ["PATH_INFO"]
        if state.url_base and (path == state.url_base or path.startswith(state.url_base + "/")):
            path = path[len(state.url_base) :] or "/"
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")  # ASP.NET routing matches with or without the trailing slash
        environ["PATH_INFO"] = path
        if path.startswith(api + "/"):
            if bottle.request.headers.get("X-API-Key") != state.api_key:
                raise bottle.HTTPResponse("", 401)
            state.tick()

    for status in (404, 405):
        app.error(status)(lambda err: "")

    def now() -> float:
        return state.clock.now()

    # -- application, server, options ---------------------------------------------------------------

    @app.get(api + "/application")
    def application() -> Any:
        with state.lock:
            return _json(_application_state(state))

    @app.get(api + "/application/version")
    def version() -> Any:
        return _json(VERSION)

    @app.get(api + "/server")
    def server() -> Any:
        return _json(_server_state(state.logged_in))

    @app.put(api + "/server")
    def connect() -> Any:
        with state.lock:
            already = state.logged_in
            state.logged_in = True
        return bottle.HTTPResponse("", 205 if already else 200)

    @app.delete(api + "/server")
    def disconnect() -> Any:
        with state.lock:
            state.logged_in = False
        return bottle.HTTPResponse("", 204)

    @app.get(api + "/options")
    @app.get(api + "/options/startup")
    def options() -> Any:
        incomplete = os.path.join(os.path.dirname(state.downloads_dir.rstrip("/")), "incomplete")
        return _json(
            {
                "directories": {"downloads": state.downloads_dir, "incomplete": incomplete},
                "web": {
                    "port": 5030,
                    "urlBase": state.url_base or "/",
                    "authentication": {"disabled": False},
                },
                "soulseek": {"address": "vps.slsknet.org", "port": 2271, "username": state.username},
                "global": {"upload": {"slots": 10}, "download": {"slots": 500}},
                "retention": {"search": 10080},
            }
        )

    # -- searches -----------------------------------------------------------------------------------

    @app.post(api + "/searches")
    def create_search() -> Any:
        body = _body(dict)
        if not state._search_semaphore.acquire(blocking=False):
            _fail(429, BUSY_MESSAGE)
        try:
            with state.lock:
                if state.search_busy > 0:
                    state.search_busy -= 1
                    _fail(429, BUSY_MESSAGE)
            time.sleep(state.search_create_seconds)
            return _json(_start_search(state, body, now()))
        finally:
            state._search_semaphore.release()

    @app.get(api + "/searches")
    def list_searches() -> Any:
        with state.lock:
            return _json([s.view(now()) for s in state.searches.values()])

    @app.get(api + "/searches/<search_id>")
    def get_search(search_id: str) -> Any:
        include = bottle.request.query.get("includeResponses", "false").lower() == "true"
        with state.lock:
            return _json(_search(state, search_id).view(now(), with_responses=include))

    @app.get(api + "/searches/<search_id>/responses")
    def search_responses(search_id: str) -> Any:
        with state.lock:
            return _json(_search(state, search_id).responses(now()))

    @app.put(api + "/searches/<search_id>")
    def stop_search(search_id: str) -> Any:
        with state.lock:
            search = _search(state, search_id)
            if not search.view(now())["isComplete"]:
                search.cancelled_at = now()
        return bottle.HTTPResponse("", 200)

    @app.delete(api + "/searches/<search_id>")
    def delete_search(search_id: str) -> Any:
        with state.lock:
            _search(state, search_id)
            del state.searches[search_id]
        return bottle.HTTPResponse("", 204)

    # -- transfers ----------------------------------------------------------------------------------

    @app.post(api + "/transfers/downloads/<username>")
    def enqueue(username: str) -> Any:
        files = _body(list)
        with state.lock:
            return _json(_enqueue(state, username, files, now()), 201)

    @app.get(api + "/transfers/downloads")
    def all_downloads() -> Any:
        include_removed = bottle.request.query.get("includeRemoved", "false").lower() == "true"
        with state.lock:
            return _json(_grouped(state, None, include_removed, now()))

    @app.get(api + "/transfers/downloads/<username>")
    def user_downloads(username: str) -> Any:
        with state.lock:
            groups = _grouped(state, username, False, now())
        if not groups:
            raise bottle.HTTPResponse("", 404)
        return _json(groups[0])

    @app.get(api + "/transfers/downloads/<username>/<transfer_id>")
    def get_download(username: str, transfer_id: str) -> Any:
        with state.lock:
            return _json(_transfer(state, transfer_id).view(now()))

    @app.delete(api + "/transfers/downloads/all/completed")
    def remove_completed() -> Any:
        with state.lock:
            for transfer in state.transfers.values():
                if transfer.timeline(now())["state"].startswith("Completed"):
                    transfer.removed = True
        return bottle.HTTPResponse("", 204)

    @app.delete(api + "/transfers/downloads/<username>/<transfer_id>")
    def cancel_download(username: str, transfer_id: str) -> Any:
        remove = bottle.request.query.get("remove", "false").lower() == "true"
        _guid(transfer_id)
        with state.lock:
            transfer = state.transfers.get(transfer_id)
            if transfer is not None:  # unknown ids also answer 204 (0.25+)
                was_complete = transfer.timeline(now())["state"].startswith("Completed")
                if not was_complete:
                    transfer.cancelled_at = now()
                # Cancellation is asynchronous: only records already complete are removed now.
                if remove and was_complete:
                    transfer.removed = True
        return bottle.HTTPResponse("", 204)

    # -- users, events ------------------------------------------------------------------------------

    @app.get(api + "/users/<username>/status")
    def user_status(username: str) -> Any:
        if not state.logged_in:
            _fail(500, _disconnected("user status lookup"))
        peer = state.peers.get(username)
        if peer is None:
            _fail(404, f"User {username} appears to be offline")
        online = peer.behaviour != "offline"
        return _json({"presence": "Online" if online else "Offline", "isPrivileged": False})

    @app.get(api + "/events")
    def events() -> Any:
        try:
            offset = int(bottle.request.query.get("offset", 0))
            limit = int(bottle.request.query.get("limit", 100))
        except ValueError:
            _fail(400, "offset and limit must be integers")
        if offset < 0 or limit <= 0:
            _fail(400, "Offset must be greater than or equal to zero, and limit must be greater than zero")
        with state.lock:
            newest_first = state.events[::-1]
        response = _json(newest_first[offset : offset + limit])
        response.set_header("X-Total-Count", str(len(newest_first)))
        return response

    @app.get("/health")
    def health() -> Any:
        return bottle.HTTPResponse("Healthy", 200, headers={"Content-Type": "text/plain"})

    # -- control ------------------------------------------------------------------------------------

    faultlib.register(app, state.faults, state.clock)

    @app.post("/_fake/slskd/logout")
    def fake_logout() -> dict[str, Any]:
        with state.lock:
            state.logged_in = False
        return _server_state(False)

    @app.post("/_fake/slskd/login")
    def fake_login() -> dict[str, Any]:
        with state.lock:
            state.logged_in = True
        return _server_state(True)

    @app.post("/_fake/slskd/search-busy")
    def fake_search_busy() -> dict[str, Any]:
        data = faultlib.json_body()
        with state.lock:
            state.search_busy = int(data.get("times", 1))
            return {"times": state.search_busy}

    @app.get("/_fake/slskd/peers")
    def fake_peers() -> dict[str, Any]:
        return {"peers": [_peer_summary(p) for p in state.peers.values()]}

    @app.post("/_fake/slskd/peers")
    def fake_update_peer() -> dict[str, Any]:
        data = faultlib.json_body()
        with state.lock:
            peer = state.peers.get(str(data.get("username")))
            if peer is None:
                faultlib.control_error(404, "no such peer")
            if data.get("behaviour", peer.behaviour) not in peerlib.BEHAVIOURS:
                faultlib.control_error(400, f"behaviour must be one of {', '.join(peerlib.BEHAVIOURS)}")
            for key in ("behaviour", "upload_speed", "queue_length", "queue_seconds", "free_slot"):
                if key in data:
                    setattr(peer, key, type(getattr(peer, key))(data[key]))
            return _peer_summary(peer)

    return app


# -- helpers -----------------------------------------------------------------------------------------


def iso(ts: float, *, utc: bool) -> str:
    """ISO-8601 as slskd writes it: 7 fractional digits and `Z` when tagged UTC, else 6 and no zone."""
    moment = dt.datetime.fromtimestamp(ts, dt.UTC).replace(tzinfo=None)
    text = moment.isoformat(timespec="microseconds")
    return text + "0Z" if utc else text


def timespan(seconds: float) -> str:
    """.NET TimeSpan constant format: `[d.]hh:mm:ss[.fffffff]`."""
    ticks = max(0, round(seconds * 10_000_000))
    total, fraction = divmod(ticks, 10_000_000)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{days}." if days else ""
    text += f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return text + (f".{fraction:07d}" if fraction else "")


def _json(data: Any, status: int = 200) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(
        json.dumps(data, ensure_ascii=False).encode(), status, headers={"Content-Type": "application/json"}
    )


def _fail(status: int, message: str = "") -> NoReturn:
    body, ctype = error_body(status, message)
    raise bottle.HTTPResponse(body, status, headers={"Content-Type": ctype} if body else {})


def _body(kind: type) -> Any:
    try:
        data = json.loads(bottle.request.body.read() or b"null")
    except ValueError:
        _fail(400, "The request body is not valid JSON")
    if not isinstance(data, kind):
        _fail(400, f"The request body must be a JSON {'array' if kind is list else 'object'}")
    return data


def _guid(value: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        _fail(400, f"The value '{value}' is not valid.")


def _disconnected(action: str) -> str:
    return (
        f"The server connection must be connected and logged in to perform a {action} "
        "(currently: Disconnected)"
    )


def _local_name(name: str) -> str:
    """A remote path segment as a local file name (characters invalid locally are replaced)."""
    cleaned = name.replace("/", "_").replace("\0", "_").strip()
    return cleaned if cleaned not in ("", ".", "..") else "_"


def _search(state: SlskdState, search_id: str) -> Search:
    search = state.searches.get(search_id)
    if search is None:
        raise bottle.HTTPResponse("", 404)
    return search


def _transfer(state: SlskdState, transfer_id: str) -> Transfer:
    _guid(transfer_id)
    transfer = state.transfers.get(transfer_id)
    if transfer is None:
        raise bottle.HTTPResponse("", 404)
    return transfer


def _start_search(state: SlskdState, body: dict[str, Any], now: float) -> dict[str, Any]:
    text = body.get("searchText")
    if not isinstance(text, str) or not text.strip():
        _fail(400, "SearchText may not be null or whitespace")
    include, exclude = peerlib.query_words(text)
    if not include:
        _fail(400, "Search query must contain at least one non-exclusion term")

    def number(key: str, default: int) -> int:
        value = body.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            _fail(400, f"{key} must be a non-negative integer")
        return value

    timeout_ms = number("searchTimeout", 15000)
    if timeout_ms < 5:
        _fail(400, "SearchTimeout must be greater than or equal to 5")
    search_id = str(body.get("id") or uuid.uuid4())
    _guid(search_id)
    with state.lock:
        if not state.logged_in:
            _fail(409, _disconnected("search"))
        if search_id in state.searches:
            _fail(500, f"A search with id {search_id} already exists")
        plan = _plan(state, include, exclude, body, number)
        search = Search(
            id=search_id,
            text=text,
            token=next(state._tokens),
            started=now,
            timeout=timeout_ms / 1000,
            plan=plan,
            response_limit=max(1, number("responseLimit", 250)),
            file_limit=max(1, number("fileLimit", 25000)),
        )
        state.searches[search_id] = search
        view = search.view(now)
    view.update(state="Requested", isComplete=False, responseCount=0, fileCount=0, lockedFileCount=0)
    view.pop("endedAt", None)
    return view


def _plan(
    state: SlskdState, include: list[str], exclude: list[str], body: dict[str, Any], number: Any
) -> list[tuple[float, dict[str, Any]]]:
    """Which peers answer this query, when, and with which files (Soulseek matches words of the full path)."""
    filtering = body.get("filterResponses", True) is not False
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
            "files": [_file_view(f) for f in files],
            "lockedFiles": [_file_view(f) for f in locked],
        }
        plan.append((peer.response_delay, response))
    plan.sort(key=lambda pair: (pair[0], pair[1]["username"]))
    return plan


def _file_view(f: SharedFile) -> dict[str, Any]:
    ext = f.fmt if f.extension is None else f.extension
    out: dict[str, Any] = {"filename": f.path, "size": f.size, "code": 1, "extension": ext}
    if f.attributes:
        if f.fmt == "flac":
            out.update(bitDepth=16, sampleRate=44100, length=round(f.duration))
        else:
            out.update(
                bitRate=f.claimed_bitrate or f.bitrate, length=round(f.duration), isVariableBitRate=False
            )
    out["isLocked"] = False  # never set by slskd; locked files are only told apart by the list they are in
    return out


def _enqueue(state: SlskdState, username: str, files: list[Any], now: float) -> dict[str, Any]:
    if not files:
        _fail(400, "At least one file is required")
    names = []
    for item in files:
        if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
            _fail(400, "Each file must have a filename")
        if ".." in item["filename"].replace("/", "\\").split("\\"):
            _fail(400, "Filenames must not contain path traversal segments")
        names.append(item["filename"])
    if len(set(names)) != len(names):
        _fail(500, "Duplicate filenames are not allowed in a single request")
    if not state.logged_in:
        _fail(500, _disconnected("download"))
    peer = state.peers.get(username)
    if peer is None or peer.behaviour == "offline":
        _fail(500, f"User {username} appears to be offline")
    enqueued, failed = [], []
    for item in files:
        filename, size = item["filename"], int(item.get("size") or 0)
        existing = [t for t in state.transfers.values() if t.username == username and t.filename == filename]
        if any(not t.timeline(now)["state"].startswith("Completed") for t in existing):
            failed.append(filename)
            continue
        for old in existing:
            old.removed = True  # AddOrSupersede: the older completed record is replaced
        shared = peer.find(filename)
        failure = None
        if shared is None:
            failure = ("Completed, Rejected", "File not shared.")
        elif shared.size != size:
            failure = ("Completed, Aborted", f"Expected size {size} does not match remote size {shared.size}")
        elif peer.behaviour == "rejects":
            failure = ("Completed, Rejected", peer.reject_reason)
        transfer = Transfer(
            id=str(uuid.uuid4()),
            username=username,
            filename=filename,
            size=size,
            requested=now,
            behaviour=peer.behaviour,
            speed=peer.upload_speed,
            queue_seconds=peer.queue_seconds if peer.behaviour == "queued" else 0.0,
            shared=shared,
            failure=failure,
        )
        state.transfers[transfer.id] = transfer
        enqueued.append(transfer.view(now))
    return {"enqueued": enqueued, "failed": failed}


def _grouped(
    state: SlskdState, username: str | None, include_removed: bool, now: float
) -> list[dict[str, Any]]:
    """Transfers as slskd lists them: by user, then by remote directory."""
    users: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for t in state.transfers.values():
        if (username is not None and t.username != username) or (t.removed and not include_removed):
            continue
        directory = t.filename.replace("/", "\\").rsplit("\\", 1)[0] if "\\" in t.filename else ""
        users.setdefault(t.username, {}).setdefault(directory, []).append(t.view(now))
    return [
        {
            "username": user,
            "directories": [
                {"directory": d, "fileCount": len(files), "files": files} for d, files in directories.items()
            ],
        }
        for user, directories in users.items()
    ]


def _server_state(logged_in: bool) -> dict[str, Any]:
    if not logged_in:
        return {
            "state": "Disconnected",
            "isConnected": False,
            "isConnecting": False,
            "isLoggedIn": False,
            "isLoggingIn": False,
            "isTransitioning": False,
        }
    return {
        "address": "vps.slsknet.org",
        "ipEndPoint": "203.0.113.7:2271",
        "state": "Connected, LoggedIn",
        "isConnected": True,
        "isConnecting": False,
        "isLoggedIn": True,
        "isLoggingIn": False,
        "isTransitioning": False,
    }


def _application_state(state: SlskdState) -> dict[str, Any]:
    return {
        "version": {
            "full": f"{VERSION}.0 ({VERSION}+fake)",
            "current": VERSION,
            "isCanary": False,
            "isDevelopment": False,
        },
        "pendingReconnect": False,
        "pendingRestart": False,
        "server": _server_state(state.logged_in),
        "connectionWatchdog": {"isEnabled": True, "isAttemptingConnection": False, "isAwaitingVpn": False},
        "relay": {"mode": "Disabled", "controller": {"state": "Disconnected"}, "agents": []},
        "user": {
            "username": state.username,
            "privileges": {"isPrivileged": False, "privilegesRemaining": 0},
            "statistics": {"averageSpeed": 0, "directoryCount": 0, "fileCount": 0, "uploadCount": 0},
        },
        "shares": {
            "scanPending": False,
            "scanning": False,
            "ready": True,
            "faulted": False,
            "cancelled": False,
            "scanProgress": 1.0,
            "hosts": [],
            "directories": 0,
            "files": 0,
        },
        "rooms": [],
        "users": [],
    }


def _peer_summary(peer: Peer) -> dict[str, Any]:
    return {
        "username": peer.username,
        "behaviour": peer.behaviour,
        "upload_speed": peer.upload_speed,
        "free_slot": peer.free_slot,
        "queue_length": peer.queue_length,
        "queue_seconds": peer.queue_seconds,
        "files": len(peer.files),
        "locked_files": len(peer.locked),
    }
