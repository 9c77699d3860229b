"""A small threaded HTTP server for the fakes, with fault injection below the WSGI app.

Built on the stdlib (`socketserver.ThreadingMixIn` + `wsgiref`) rather than waitress because a
fault must be able to close a connection without writing a single byte, which needs the socket.

Connections are HTTP/1.1 and kept alive, as Kestrel (slskd) and Spotify's front ends keep them,
so clients reuse pooled connections. A connection idle for `idle_timeout` seconds of the fake
clock is closed by the server; when a test advances the clock, the idle ones are closed before
`advance` returns, so a client's next request finds the connection already closed and opens a
new one (a request racing a close is what the `drop` fault is for). `stop()` closes every
connection at once, so a stopped fake refuses its clients straight away.
"""

from __future__ import annotations

import contextlib
import io
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from harmony.fakes.clock import FakeClock
from harmony.fakes.faults import FaultTable

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Kestrel's default keep-alive timeout.
DEFAULT_IDLE_TIMEOUT = 130.0
_POLL = 0.05  # how often an idle connection looks at the clock and the stop flag
_SETTLE = 0.05  # how long a clock advance waits for answers in flight to finish
MAX_BODY = 16 << 20


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    faults: FaultTable | None = None
    clock: FakeClock | None = None
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    stopping: threading.Event
    connections: set[_Handler]
    connections_lock: threading.Lock
    finished: threading.Condition  # on connections_lock: a handler went back to idle

    def now(self) -> float:
        return self.clock.now() if self.clock is not None else time.time()

    def close_idle(self, now: float) -> None:
        """Close the connections idle for `idle_timeout` by `now` (none with a request waiting).

        A handler that has just sent its answer may not have marked itself idle yet: wait a
        moment for those, so a client's next request never races this close."""
        deadline = time.monotonic() + _SETTLE
        with self.connections_lock:
            while any(h.busy for h in self.connections) and (left := deadline - time.monotonic()) > 0:
                self.finished.wait(left)
            for handler in list(self.connections):
                expired = now - handler.idle_since >= self.idle_timeout
                if (
                    expired
                    and not handler.busy
                    and not handler.closed
                    and not _request_waiting(handler.connection)
                ):
                    handler.close_socket()

    def close_all(self) -> None:
        with self.connections_lock:
            for handler in list(self.connections):
                handler.close_socket()


class _ServerHandler(ServerHandler):
    """wsgiref's handler speaking HTTP/1.1; records whether the response carried its length."""

    http_version = "1.1"
    delimited = False

    def send_headers(self) -> None:
        headers = getattr(self, "headers", None)  # set by start_response
        self.delimited = headers is not None and "Content-Length" in headers
        super().send_headers()


def _request_waiting(sock: socket.socket) -> bool:
    """Bytes of a request have arrived (not just the client's own close)."""
    if not _readable(sock, 0):
        return False
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except OSError:
        return False


def _readable(sock: socket.socket, timeout: float) -> bool:
    try:
        return bool(select.select([sock], [], [], timeout)[0])
    except (OSError, ValueError):
        return True  # closed: let the reader find out


class _Handler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"
    # A client that stops halfway through sending a request may hold a thread for at most this long.
    timeout = 10

    busy = False
    closed = False
    idle_since = 0.0
    request_started = 0.0

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm holds the
        # body back until the client's delayed ACK, 40 ms a response on a kept-alive connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = self._server
        self.idle_since = server.now()
        with server.connections_lock:
            server.connections.add(self)

    def finish(self) -> None:
        server = self._server
        with server.connections_lock:
            server.connections.discard(self)
        with contextlib.suppress(OSError):
            super().finish()

    @property
    def _server(self) -> _Server:
        server: _Server = self.server  # type: ignore[assignment]
        return server

    def close_socket(self) -> None:
        """Close the connection now (the caller holds the connections lock)."""
        self.closed = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def handle(self) -> None:
        while self._next_request():
            try:
                self._handle_one()
            except (ConnectionError, TimeoutError, OSError):
                return
            finally:
                with self._server.connections_lock:
                    # Idle from the request's start: the clock may have been advanced since the
                    # client got its answer, and that time counts as idle.
                    self.busy, self.idle_since = False, self.request_started
                    self._server.finished.notify_all()
            if self.close_connection or self.closed:
                return

    def _next_request(self) -> bool:
        """Wait for the next request on this connection; False to close it (idle, stopping)."""
        server = self._server
        while True:
            if server.stopping.is_set() or self.closed:
                return False
            if _readable(self.connection, _POLL):
                with server.connections_lock:
                    if self.closed:
                        return False
                    self.busy, self.request_started = True, server.now()
                return True
            if server.now() - self.idle_since >= server.idle_timeout:
                with server.connections_lock:
                    if not self.busy and not _request_waiting(self.connection):
                        self.close_socket()
                        return False

    def _handle_one(self) -> None:
        self.close_connection = True
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            return
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        server = self._server
        app = server.get_app()
        rule = server.faults.take(self.command, unquote(urlsplit(self.path).path)) if server.faults else None
        if rule is not None and server.faults is not None:
            if rule.kind == "drop":
                self._read_body()
                self.close_connection = True
                return  # the socket is closed: the client sees EOF and no status line
            if rule.kind == "delay":
                server.stopping.wait(rule.seconds)
            else:
                app = _fixed_response(*server.faults.response(rule))
        body = self._read_body()
        environ = self.get_environ()
        environ["RAW_URI"] = self.path  # the request target as sent, before any decoding
        environ["CONTENT_LENGTH"] = str(len(body))
        handler = _ServerHandler(
            io.BytesIO(body),
            self.wfile,  # type: ignore[arg-type]
            self.get_stderr(),
            environ,
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(app)  # type: ignore[arg-type]
        if not handler.delimited:
            self.close_connection = True  # no other way to delimit the body

    def _read_body(self) -> bytes:
        """The whole request body, so the next request on the connection starts clean."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # chunked uploads: not spoken here
            return b""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _fixed_response(status: int, headers: list[tuple[str, str]], body: bytes) -> WSGIApp:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return app


class FakeServer:
    """Serves one WSGI app on `host:port` in a daemon thread.

    `port=0` picks a free port at the first `start()`; later starts reuse that port, so a test can
    stop the server (clients then fail to connect) and start it again at the same address.
    `faults`, when given, is consulted for every request before the app sees it. `clock` is the
    fake clock that idle connections are timed on (real time without one).
    """

    def __init__(
        self,
        app: WSGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        faults: FaultTable | None = None,
        clock: FakeClock | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.faults = faults
        self.clock = clock
        self.idle_timeout = idle_timeout
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._unlisten: Callable[[], None] | None = None

    @property
    def url(self) -> str:
        """`http://host:port`, without a trailing slash. Valid once started."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def connections(self, *, idle: bool = False) -> int:
        """Connections open now: kept alive between requests, or serving one (only the former
        with `idle`)."""
        server = self._server
        if server is None:
            return 0
        with server.connections_lock:
            return sum(1 for h in server.connections if not h.closed and not (idle and h.busy))

    def start(self) -> None:
        """Bind and serve in the background; returns once the socket is listening."""
        if self._server is not None:
            return
        server = _Server((self.host, self.port), _Handler)
        server.set_app(self.app)  # type: ignore[arg-type]
        server.faults = self.faults
        server.clock = self.clock
        server.idle_timeout = self.idle_timeout
        server.stopping = threading.Event()
        server.connections = set()
        server.connections_lock = threading.Lock()
        server.finished = threading.Condition(server.connections_lock)
        self.port = server.server_port
        self._server = server
        if self.clock is not None:
            self._unlisten = self.clock.on_advance(server.close_idle)
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-http-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, wake delayed requests, join the thread (at
        most `timeout` s)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_all()
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> FakeServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
