"""A fake slskd: the `/api/v0` subset Harmony uses, as slskd 0.23, 0.25 or 0.26 answers it.

Contract (`spec/api-contracts.md` Part A, `spec/fakes-audit.md`): API key in `X-API-Key` (401
with an empty body otherwise), optional URL base, trailing slashes tolerated, camelCase JSON
with null properties left out, flags enums such as "Completed, Succeeded", timestamps with and
without `Z`, TimeSpan strings, bare 400/404s with empty bodies, error messages as JSON strings,
415 for a POST whose Content-Type is not JSON, usernames routed from the raw request target (so
`/`, `%`, `+`, spaces and emoji work as the `[UrlEncoded]` binder lets them).

The version (`SlskdState.version`: `0.23`, `0.25` or `0.26`, default `0.26`) selects a
`Profile`: the enqueue response, the Transfer keys, retries, the concurrency limits and how
old versions fail a remove. Searches are in `slskd_searches.py`, downloads in
`slskd_transfers.py`, the wire format in `slskd_wire.py`.

Nothing runs in the background: searches and transfers are computed from the fake clock
whenever they are read, and every request first settles what is due (`SlskdState.tick`): which
queued searches got a slot, and which downloads succeeded, whose files are then written into
`downloads_dir/<last remote folder>/<name>`.

Control API (no auth): `/_fake/faults`, `/_fake/clock` (see `faults.py`), `POST /_fake/slskd/logout`
and `/login`, `POST /_fake/slskd/search-busy` (`{"times": n}`: the next n search creations get 429),
`GET /_fake/slskd/search-log` (every search creation slskd accepted, see `SlskdState.search_log`),
`GET /_fake/slskd/settings` and `POST /_fake/slskd/settings` (`{"version"?, "peer_connect_seconds"?,
"search_create_seconds"?, "search_slots"?, "retry_attempts"?, "retry_delay"?, "retry_max_delay"?,
"inactivity_timeout"?, "enqueue_ack_limit"?}`), `GET /_fake/slskd/peers`, `POST /_fake/slskd/peers`
(`{"username", "behaviour"?, "upload_speed"?, "queue_length"?, "queue_seconds"?, "free_slot"?}`
changes one peer).
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import bottle

from harmony.fakes import faults as faultlib
from harmony.fakes import peers as peerlib
from harmony.fakes import slskd_searches, slskd_transfers
from harmony.fakes.clock import FakeClock
from harmony.fakes.peers import Peer
from harmony.fakes.slskd_searches import Search
from harmony.fakes.slskd_transfers import Transfer
from harmony.fakes.slskd_wire import disconnected, empty, error_body, fail, iso, json_response, route_value

_TICKS_AT_EPOCH = 621_355_968_000_000_000  # .NET ticks (100 ns since 0001-01-01) at 1970-01-01
API = "/api/v0"


@dataclass(frozen=True)
class Profile:
    """What differs between the slskd versions the fake imitates (sources in the audit, S1-S12)."""

    name: str
    version: str
    empty_enqueue_body: bool  # <= 0.23: 201 with no body once the peers answered; 500 if any file failed
    failed_as_objects: bool  # 0.26: each `failed` item is a (Filename, Message) value tuple, written {}
    start_offset: bool  # <= 0.25: Transfer.startOffset
    state_description: bool  # 0.24-0.25: Transfer.stateDescription
    attempts_field: bool  # 0.25+: Transfer.attempts (only 0.26 counts retries in it)
    removed_field: bool  # 0.26+: Transfer.removed is serialised
    retries: bool  # 0.26+: transfers.download.retry
    concurrency_limits: bool  # 0.24+: two enqueue requests at a time, one search creation at a time
    remove_before_complete_fails: bool  # <= 0.24: remove=true before completion is a 500, unknown id 404
    decodes_slash: bool  # 0.25+: [UrlEncoded] route values (a %2F in a username becomes "/")
    enqueue_ack_limit: bool  # 0.24+: an enqueue the peer never acknowledges fails after 180 s


PROFILES = {
    "0.23": Profile(
        "0.23", "0.23.2", True, False, True, False, False, False, False, False, True, False, False
    ),
    "0.25": Profile("0.25", "0.25.1", False, False, True, True, True, False, False, True, False, True, True),
    "0.26": Profile("0.26", "0.26.0", False, True, False, False, True, True, True, True, False, True, True),
}
DEFAULT_VERSION = "0.26"
# Control-API settings: name -> type.
SETTINGS = {
    "version": str,
    "peer_connect_seconds": float,
    "search_create_seconds": float,
    "search_slots": int,
    "retry_attempts": int,
    "retry_delay": float,
    "retry_max_delay": float,
    "inactivity_timeout": float,
    "enqueue_ack_limit": float,
}


@dataclass
class SlskdState:
    """Everything the fake slskd knows. All access goes through `lock`."""

    clock: FakeClock
    downloads_dir: str
    peers: dict[str, Peer]
    api_key: str = "harmony-fake-slskd-api-key"
    url_base: str = ""
    username: str = "harmony_fake"
    version: str = DEFAULT_VERSION
    logged_in: bool = True
    search_busy: int = 0  # forced 429s left for search creation
    search_create_seconds: float = 0.02  # fake-clock time a creation holds the one-at-a-time semaphore
    search_slots: int = 2  # Soulseek.NET's maximumConcurrentSearches, as slskd sets it
    peer_connect_seconds: float = 0.02  # fake-clock time an enqueue holds its slot (endpoint + connect)
    retry_attempts: int = 3  # transfers.download.retry.attempts (0.26)
    retry_delay: float = 5.0  # transfers.download.retry.delay, doubled per attempt
    retry_max_delay: float = 60.0  # transfers.download.retry.maxDelay
    inactivity_timeout: float = 15.0  # soulseek.connection.timeout.inactivity
    enqueue_ack_limit: float = 180.0  # DownloadService.maxTimeToWaitForEnqueueRequestAck (0.24+)
    searches: dict[str, Search] = field(default_factory=dict)
    # Every search creation that got as far as a record, in order, kept when the search is deleted:
    # {"id", "text", "at" (this fake's clock), "wall" (the host's clock), "errored"}. An errored one
    # never reached the network (disconnected, no usable term). `wall` is there because a test
    # that advances the fake clock still runs its client on the host's clock, so a budget the
    # client keeps is checked against `wall`.
    search_log: list[dict[str, Any]] = field(default_factory=list)
    retired_searches: list[Search] = field(default_factory=list)  # deleted while holding a slot
    transfers: dict[str, Transfer] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=lambda: {"enqueue_busy": 0, "search_busy": 0})  # 429s sent
    lock: threading.RLock = field(default_factory=threading.RLock)
    stopping: threading.Event = field(default_factory=threading.Event)
    faults: faultlib.FaultTable = field(init=False)

    def __post_init__(self) -> None:
        self.url_base = "/" + self.url_base.strip("/") if self.url_base.strip("/") else ""
        self.faults = faultlib.FaultTable(error_body, strip_prefix=self.url_base)
        self.search_semaphore = threading.Semaphore(1)
        self.enqueue_semaphore = threading.Semaphore(2)
        self.tokens = itertools.count(1001)
        if self.version not in PROFILES:
            raise ValueError(f"unknown slskd version {self.version!r}; expected one of {', '.join(PROFILES)}")

    @property
    def profile(self) -> Profile:
        return PROFILES[self.version]

    def tick(self) -> None:
        """Settle what is due by now: search slots, and the files of downloads that succeeded."""
        now = self.clock.now()
        with self.lock:
            slskd_searches.schedule(self, now)
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
            if transfer.behaviour != "corrupt":
                fh.write(peerlib.file_bytes(transfer.shared))
            fh.truncate(transfer.shared.size)  # the advertised size, as zeros: sparse, so it costs no disk
            if transfer.behaviour == "truncates":
                fh.truncate(transfer.shared.size * 3 // 5)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        transfer.written, transfer.local_path = True, target
        view = transfer.view(now, self.profile)
        data = {"localFilename": target, "remoteFilename": transfer.filename, "transfer": view}
        self.events.append(
            {
                "id": str(uuid.uuid4()),
                "timestamp": iso(now, utc=True),
                "type": "DownloadFileComplete",
                "data": json.dumps(data),
            }
        )

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SETTINGS}

    def change(self, data: dict[str, Any]) -> dict[str, Any]:
        """Apply control-API settings; ValueError on an unknown key or a bad value."""
        unknown = set(data) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        if "version" in data and str(data["version"]) not in PROFILES:
            raise ValueError(f"version must be one of {', '.join(PROFILES)}")
        with self.lock:
            for name, value in data.items():
                setattr(self, name, SETTINGS[name](value))
        return self.settings()


class _App(bottle.Bottle):
    """Bottle, except that an empty error response carries no Content-Type, as ASP.NET's
    bare `NotFound()`, `BadRequest()` and 401s do (Bottle would add `text/html`)."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status[:1] in "45" and ("Content-Length", "0") in headers:
                headers = [(k, v) for k, v in headers if k != "Content-Type"]
            return start_response(status, headers, exc_info)

        return super().__call__(environ, start)


def make_app(state: SlskdState) -> bottle.Bottle:
    """The fake slskd WSGI app for `state`."""
    app = _App()

    @app.hook("before_request")
    def normalise() -> None:
        environ = bottle.request.environ
        # Route on the raw target, as Kestrel does: a %2F in a username stays inside its segment.
        path = environ.get("RAW_URI", "").split("?", 1)[0] or environ["PATH_INFO"]
        if state.url_base and (path == state.url_base or path.startswith(state.url_base + "/")):
            path = path[len(state.url_base) :] or "/"
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/")  # ASP.NET routing matches with or without the trailing slash
        environ["PATH_INFO"] = path
        if path.startswith(API + "/"):
            if bottle.request.headers.get("X-API-Key") != state.api_key:
                raise bottle.HTTPResponse(b"", 401)
            ctype = bottle.request.content_type.split(";")[0].strip().lower()
            if bottle.request.method == "POST" and ctype and not ctype.endswith(("/json", "+json")):
                raise bottle.HTTPResponse(b"", 415)  # [Consumes("application/json")]
            state.tick()

    for status in (404, 405):
        app.error(status)(_bare_error)

    # -- application, server, options ---------------------------------------------------------------

    @app.get(API + "/application")
    def application() -> Any:
        with state.lock:
            return json_response(_application_state(state))

    @app.get(API + "/application/version")
    def version() -> Any:
        return json_response(state.profile.version)

    @app.get(API + "/server")
    def server() -> Any:
        return json_response(_server_state(state.logged_in))

    @app.put(API + "/server")
    def connect() -> Any:
        with state.lock:
            already = state.logged_in
            state.logged_in = True
        return empty(205 if already else 200)

    @app.delete(API + "/server")
    def disconnect() -> Any:
        with state.lock:
            state.logged_in = False
        return empty(204)

    @app.get(API + "/options")
    @app.get(API + "/options/startup")
    def options() -> Any:
        return json_response(_options(state))

    slskd_searches.register(app, state, API)
    slskd_transfers.register(app, state, API)

    # -- users, events ------------------------------------------------------------------------------

    @app.get(API + "/users/<username>/status")
    def user_status(username: str) -> Any:
        if not state.logged_in:
            fail(500, disconnected("user status lookup"))
        name = route_value(username, decode_slash=state.profile.decodes_slash)
        peer = state.peers.get(name)
        if peer is None:
            fail(404, f"User {name} appears to be offline")
        online = peer.behaviour != "offline"
        return json_response({"presence": "Online" if online else "Offline", "isPrivileged": False})

    @app.get(API + "/events")
    def events() -> Any:
        try:
            offset = int(bottle.request.query.get("offset", 0))
            limit = int(bottle.request.query.get("limit", 100))
        except ValueError:
            fail(400, "offset and limit must be integers")
        if offset < 0 or limit <= 0:
            fail(400, "Offset must be greater than or equal to zero, and limit must be greater than zero")
        with state.lock:
            newest_first = state.events[::-1]
        response = json_response(newest_first[offset : offset + limit])
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

    @app.get("/_fake/slskd/search-log")
    def fake_search_log() -> dict[str, Any]:
        with state.lock:
            return {"searches": [dict(entry) for entry in state.search_log]}

    @app.get("/_fake/slskd/settings")
    def fake_settings() -> dict[str, Any]:
        return state.settings()

    @app.post("/_fake/slskd/settings")
    def fake_change_settings() -> dict[str, Any]:
        try:
            return state.change(faultlib.json_body())
        except (TypeError, ValueError) as exc:
            faultlib.control_error(400, str(exc))

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


@contextmanager
def version(state: SlskdState, name: str) -> Iterator[None]:
    """Run a block against another slskd version, then put the old one back."""
    before = state.version
    state.change({"version": name})
    try:
        yield
    finally:
        state.change({"version": before})


# -- helpers -----------------------------------------------------------------------------------------


def _bare_error(err: bottle.HTTPError) -> str:
    """404 and 405 as ASP.NET sends them: no body (and so no content type, see `_App`)."""
    return ""


def _options(state: SlskdState) -> dict[str, Any]:
    incomplete = os.path.join(os.path.dirname(state.downloads_dir.rstrip("/")), "incomplete")
    out: dict[str, Any] = {
        "directories": {"downloads": state.downloads_dir, "incomplete": incomplete},
        "web": {"port": 5030, "urlBase": state.url_base or "/", "authentication": {"disabled": False}},
        "soulseek": {
            "address": "vps.slsknet.org",
            "port": 2271,
            "username": state.username,
            "connection": {
                "timeout": {"connect": 10000, "inactivity": round(state.inactivity_timeout * 1000)}
            },
        },
        "global": {"upload": {"slots": 10}, "download": {"slots": 500}},
        "retention": {"search": 10080},
    }
    if state.profile.retries:
        out["transfers"] = {
            "download": {
                "destination": {"subdirectory": "${SOURCE_DIRECTORY}", "exists": "rename"},
                "retry": {
                    "attempts": state.retry_attempts,
                    "delay": round(state.retry_delay * 1000),
                    "maxDelay": round(state.retry_max_delay * 1000),
                    "partial": "resume",
                },
            }
        }
    return out


def _local_name(name: str) -> str:
    """A remote path segment as a local file name (characters invalid locally are replaced)."""
    cleaned = name.replace("/", "_").replace("\0", "_").strip()
    return cleaned if cleaned not in ("", ".", "..") else "_"


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
    release = state.profile.version
    return {
        "version": {
            "full": f"{release}.0 ({release}+fake)",
            "current": release,
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
