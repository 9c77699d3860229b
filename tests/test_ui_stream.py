"""The event stream against the real server: events arrive as they happen, a client that goes
away frees its place at once, and SIGTERM ends every open stream so the drain is not held up."""

from __future__ import annotations

import http.client
import time
from typing import Any

from conftest import fake_options
from test_boot import admin_key, free_port, harmony, wait_until

from harmony import config


def open_stream(port: int, key: str, after: int = 0) -> tuple[http.client.HTTPConnection, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/api/v1/events/stream?after={after}", headers={"X-API-Key": key})
    return conn, conn.getresponse()


def test_streams_deliver_free_their_place_and_end_on_sigterm(tmp_path: Any, fakes: Any) -> None:
    port = free_port()
    env = {config.BY_KEY[key].env: value for key, value in fake_options(fakes).items()}
    env["HARMONY_AUTH_STREAMS_PER_CLIENT"] = "2"
    args = ("serve", "--data-dir", str(tmp_path), "--server-port", str(port))
    with harmony(*args, env=env) as proc:
        key = admin_key(tmp_path)
        wait_until(f"http://127.0.0.1:{port}/live", 200)
        first, resp = open_stream(port, key)
        assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/event-stream")
        assert resp.readline().startswith(b"retry: ")
        second, resp2 = open_stream(port, key)
        assert resp2.status == 200
        third, refused = open_stream(port, key)
        assert refused.status == 429 and refused.getheader("Retry-After")
        refused.close()
        third.close()

        # An event recorded now arrives on the open stream at once.
        api = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        artist = fakes.catalogue.artist_by_name("Kite Theory").id
        api.request(
            "POST",
            "/api/v1/artists",
            body=f'{{"spotify": "{artist}"}}'.encode(),
            headers={"X-API-Key": key, "Content-Type": "application/json"},
        )
        assert api.getresponse().status == 201
        api.close()
        started = time.monotonic()
        lines = []
        while b"event: artist\n" not in lines:
            lines.append(resp.readline())
        assert time.monotonic() - started < 3
        data = resp.readline()
        assert data.startswith(b"data: {") and b'"kind":"artist.added"' in data

        # Closing a stream frees its place within a moment (the server notices the client left).
        resp2.close()  # the response holds the socket open too
        second.close()
        deadline = time.monotonic() + 5
        while True:
            again, resp3 = open_stream(port, key)
            if resp3.status == 200:
                break
            resp3.close()
            again.close()
            assert time.monotonic() < deadline, "a closed stream kept its place"
            time.sleep(0.2)

        # SIGTERM: both open streams end and the process exits well within the drain timeout.
        started = time.monotonic()
        proc.terminate()
        assert proc.wait(timeout=8) == 0
        assert time.monotonic() - started < 5
        first.close()
        again.close()
