"""A small threaded HTTP server for the fakes, with fault injection below the WSGI app.

Built on the stdlib (`socketserver.ThreadingMixIn` + `wsgiref`) rather than waitress because a
fault must be able to close a connection without writing a single byte, which needs the socket.
Every response is HTTP/1.0 and closes its connection, so no idle keep-alive thread outlives a
request and `stop()` is quick.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from harmony.fakes.faults import FaultTable

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    faults: FaultTable | None = None
    stopping: threading.Event


class _Handler(WSGIRequestHandler):
    # An idle or slow client may hold a handler thread for at most this long.
    timeout = 10

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        server: _Server = self.server  # type: ignore[assignment]
        app = server.get_app()
        rule = server.faults.take(self.command, unquote(urlsplit(self.path).path)) if server.faults else None
        if rule is not None and server.faults is not None:
            if rule.kind == "drop":
                self._drain_body()
                self.close_connection = True
                return  # socketserver closes the socket: the client sees EOF and no status line
            if rule.kind == "delay":
                server.stopping.wait(rule.seconds)
            else:
                app = _fixed_response(*server.faults.response(rule))
        handler = ServerHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(app)  # type: ignore[arg-type]

    def _drain_body(self) -> None:
        # Reading the body first makes the close a clean FIN rather than a reset.
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(min(length, 1 << 20))

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
    `faults`, when given, is consulted for every request before the app sees it.
    """

    def __init__(
        self, app: WSGIApp, host: str = "127.0.0.1", port: int = 0, *, faults: FaultTable | None = None
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.faults = faults
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://host:port`, without a trailing slash. Valid once started."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Bind and serve in the background; returns once the socket is listening."""
        if self._server is not None:
            return
        server = _Server((self.host, self.port), _Handler)
        server.set_app(self.app)  # type: ignore[arg-type]
        server.faults = self.faults
        server.stopping = threading.Event()
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-http-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, wake delayed requests, close the socket, join the thread (at most `timeout` s)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> FakeServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
