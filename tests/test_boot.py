"""Real processes: `harmony serve` and `harmony demo` boot, answer, and stop cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import fake_options

from harmony import config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, key: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until(url: str, status: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if get(url)[0] == status:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer {status} within {seconds} s")
        time.sleep(0.05)


@contextmanager
def harmony(*argv: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """A `python -m harmony ...` child with pipes; always killed at the end."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HARMONY_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harmony", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base, **(env or {})},
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def admin_key(data_dir: Any, seconds: float = 20) -> str:
    """The first admin key, from the 0600 file `serve` writes it to on its first start."""
    path = os.path.join(data_dir, "admin-key")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError), open(path) as handle:
            text = handle.read()
            if text.endswith("\n"):
                return text.strip()
        time.sleep(0.05)
    pytest.fail(f"no admin key in {path} within {seconds} s")


def stop_within(proc: subprocess.Popen[str], seconds: float) -> None:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=seconds) == 0
    assert time.monotonic() - started < seconds


def test_serve_boots_answers_and_stops_on_sigterm(tmp_path, fakes) -> None:
    port = free_port()
    env = {config.BY_KEY[key].env: value for key, value in fake_options(fakes).items()}
    base = f"http://127.0.0.1:{port}"
    with harmony("serve", "--data-dir", str(tmp_path), "--server-port", str(port), env=env) as proc:
        first_line = proc.stdout.readline()  # type: ignore[union-attr]
        # Not a terminal: the first start says where the key is, never the key itself.
        key = admin_key(tmp_path)
        assert "admin API key" in first_line and str(tmp_path / "admin-key") in first_line
        assert key not in first_line
        assert (os.stat(tmp_path / "admin-key").st_mode & 0o777) == 0o600
        wait_until(f"{base}/live", 200)
        assert get(f"{base}/live") == (200, {"status": "ok"})
        # The wheel probes the upstreams at once; /ready turns 200 as soon as they answer.
        wait_until(f"{base}/ready", 200)
        assert get(f"{base}/api/v1/system/status")[0] == 401
        assert get(f"{base}/api/v1/system/status", key)[1]["key"]["role"] == "admin"
        stop_within(proc, 5)
        output = proc.stdout.read() + proc.stderr.read()  # type: ignore[union-attr]
        logs = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert key not in output  # nothing the journal would keep holds the key
    events = [entry["event"] for entry in logs]
    assert "listening" in events and "stopping" in events and events[-1] == "stopped"
    requests = [entry for entry in logs if entry["event"] == "request"]
    assert {"request_id", "method", "route", "status", "duration_ms"} <= requests[0].keys()


def test_the_first_admin_key_is_shown_on_a_terminal_and_kept_in_a_0600_file(tmp_path) -> None:
    import pty
    import select

    controller, terminal = pty.openpty()
    base = {k: v for k, v in os.environ.items() if not k.startswith("HARMONY_")}
    argv = [sys.executable, "-m", "harmony", "serve", "--data-dir", str(tmp_path), "--server-port", "0"]
    proc = subprocess.Popen(argv, stdout=terminal, stderr=subprocess.DEVNULL, env=base)
    os.close(terminal)
    try:
        key = admin_key(tmp_path)
        shown = b""
        deadline = time.monotonic() + 20
        while b"listening on" not in shown and time.monotonic() < deadline:
            if select.select([controller], [], [], 0.5)[0]:
                shown += os.read(controller, 4096)
        assert key.encode() in shown and str(tmp_path / "admin-key").encode() in shown
        assert (os.stat(tmp_path / "admin-key").st_mode & 0o777) == 0o600
        stop_within(proc, 10)  # type: ignore[arg-type]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(controller)
    # `apikey create` points at the first key's file.
    result = subprocess.run(
        [sys.executable, "-m", "harmony", "apikey", "create", "--name", "x", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=base,
        check=True,
    )
    assert str(tmp_path / "admin-key") in result.stdout


def test_demo_is_ready_at_once_and_restarts_on_its_data(tmp_path) -> None:
    keys = []
    for _ in range(2):  # the second run finds the first run's data and keys
        port = free_port()
        with harmony("demo", "--data-dir", str(tmp_path), "--server-port", str(port)) as proc:
            for line in proc.stdout:  # type: ignore[union-attr]
                if line.startswith("Admin API key:"):
                    keys.append(line.split(":", 1)[1].strip())
                    break
            wait_until(f"http://127.0.0.1:{port}/ready", 200)
            assert get(f"http://127.0.0.1:{port}/api/v1/system/status", keys[-1])[0] == 200
            stop_within(proc, 5)
    assert len(set(keys)) == 2
    with harmony("apikey", "list", "--data-dir", str(tmp_path)) as proc:
        listing = proc.communicate(timeout=10)[0]
    assert listing.count("revoked") == 1 and listing.count("active") == 1


# --- the server under hostile clients (hostile findings D1, D2, D15, D20) -----------------------


@contextmanager
def serving(tmp_path: Any, fakes: Any, *extra: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    env = {config.BY_KEY[key].env: value for key, value in fake_options(fakes).items()}
    with harmony("serve", "--data-dir", str(tmp_path), "--server-port", str(port), *extra, env=env) as proc:
        wait_until(f"http://127.0.0.1:{port}/live", 200)
        yield proc, port


def raw_request(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_d1_a_thousand_idle_connections_do_not_starve_live(tmp_path, fakes) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    with serving(tmp_path, fakes) as (_, port):
        idle = []
        try:
            for _ in range(1000):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
                idle.append(sock)
            time.sleep(0.5)
            started = time.monotonic()
            status, _ = get(f"http://127.0.0.1:{port}/live")
            assert status == 200 and time.monotonic() - started < 1.0
        finally:
            for sock in idle:
                sock.close()


def test_d1_idle_keep_alive_connections_are_closed(tmp_path, fakes) -> None:
    with (
        serving(tmp_path, fakes, "--server-idle-timeout", "1s") as (_, port),
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
    ):
        sock.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b'{"status": "ok"}'):
            answer += sock.recv(4096)
        assert b"200 OK" in answer
        started = time.monotonic()
        assert sock.recv(4096) == b""  # the server closed the idle connection
        assert time.monotonic() - started < 5


def test_d2_an_oversized_body_is_refused_before_it_is_read(tmp_path, fakes) -> None:
    with (
        serving(tmp_path, fakes) as (_, port),
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        size = 300 << 20
        sock.sendall(b"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        sock.sendall(b" " * 65536)
        answer = sock.recv(65536)
        while b"\r\n\r\n" in answer and not answer.rstrip().endswith(b"}"):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "too_large"


def test_d20_errors_inside_the_http_layer_use_the_one_shape(tmp_path, fakes) -> None:
    with serving(tmp_path, fakes) as (_, port):
        answer = raw_request(port, b"GET /live HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"400" and b"application/json" in head
        assert json.loads(body)["error"]["code"] == "bad_input"


def test_d15_sigterm_lets_queued_requests_finish(tmp_path, fakes) -> None:
    import concurrent.futures

    with serving(tmp_path, fakes, "--server-threads", "1") as (proc, port):
        wait_until(f"http://127.0.0.1:{port}/ready", 200)

        def ask() -> int:
            return get(f"http://127.0.0.1:{port}/ready")[0]

        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            futures = [pool.submit(ask) for _ in range(24)]
            time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            statuses = [future.result(timeout=15) for future in futures]
        assert proc.wait(timeout=15) == 0
    assert statuses == [200] * 24


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT])
def test_d15_sighup_and_sigquit_stop_gracefully(tmp_path, fakes, sig: signal.Signals) -> None:
    with serving(tmp_path, fakes) as (proc, _):
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        lines = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]  # type: ignore[union-attr]
    assert lines[-1]["event"] == "stopped"
    assert not os.path.exists(tmp_path / "harmony.sqlite3-wal")  # checkpointed and closed


# --- clear start-up failures: one line, the cause and the fix, exit 1 or 2 ----------------------


def fails_with(argv: list[str], code: int, fragment: str, **popen: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harmony", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if not k.startswith("HARMONY_")},
        **popen,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert fragment in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        fails_with(["serve", "--data-dir", str(tmp_path), "--server-port", str(port)], 1, "already in use")


def test_an_unknown_host_is_a_configuration_error(tmp_path) -> None:
    fails_with(
        ["serve", "--data-dir", str(tmp_path), "--server-host", "no.such.host.invalid"], 2, "server.host"
    )


def test_a_data_dir_that_cannot_be_used_is_one_line(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    fails_with(["serve", "--data-dir", str(blocker / "data")], 1, "data.dir")
    fails_with(["serve", "--data-dir", str(blocker)], 1, "not a directory")


def test_an_unwritable_data_dir_is_one_line(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() != 0:
        data.chmod(0o500)
    elif not os.access("/proc/sys", os.W_OK):  # root writes anywhere but on a read-only mount
        data = "/proc/sys"  # type: ignore[assignment]
    else:
        pytest.skip("running as root, and no read-only mount to stand for an unwritable directory")
    fails_with(["migrate", "--data-dir", str(data)], 1, "not writable")


def test_a_second_harmony_on_the_same_data_dir_is_refused(tmp_path, fakes) -> None:
    with serving(tmp_path, fakes) as (proc, _):
        fails_with(["serve", "--data-dir", str(tmp_path), "--server-port", "0"], 1, f"pid {proc.pid}")


# --- kill -9 in the middle of a download ------------------------------------------------------------


def api(port: int, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"X-API-Key": key, **({"Content-Type": "application/json"} if data else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"{what} within {seconds} s")


def test_kill_9_mid_transfer_reattaches_within_one_poll(tmp_path, fakes) -> None:
    from acquire_world import track_shared_by

    port = free_port()
    env = {config.BY_KEY[key].env: value for key, value in fake_options(fakes).items()}
    argv = (
        "serve",
        "--data-dir",
        str(tmp_path),
        "--server-port",
        str(port),
        "--transfers-poll-interval",
        "1s",
        "--search-timeout",
        "5s",
    )
    track = track_shared_by(fakes, "slowpoke")
    with harmony(*argv, env=env) as proc:
        key = admin_key(tmp_path)
        wait_until(f"http://127.0.0.1:{port}/live", 200)
        for name in fakes.slskd_state.peers:  # only the slow peer may serve: the download takes minutes
            if name != "slowpoke":
                assert api(port, key, "POST", "/api/v1/users/blocked", {"username": name})[0] == 201
        status, body = api(port, key, "POST", "/api/v1/wanted", {"spotify": f"spotify:track:{track}"})
        assert status == 201
        item_id = body["items"][0]["id"]

        def under_way() -> Any:
            fakes.clock.advance(1)  # the fakes' search ends on their clock
            rows = api(port, key, "GET", f"/api/v1/downloads?item={item_id}")[1]["items"]
            return rows[0] if rows and rows[0]["bytes"] > 0 else None

        before = wait_for(under_way, 60, "a download under way")
        proc.kill()
        proc.wait()
    restarted_at = time.time()
    with harmony(*argv, env=env):
        wait_until(f"http://127.0.0.1:{port}/live", 200)

        def reattached() -> Any:
            rows = api(port, key, "GET", f"/api/v1/downloads?item={item_id}")[1]["items"]
            return rows if rows[0]["seen_at"] and rows[0]["seen_at"] > restarted_at else None

        rows = wait_for(reattached, 5, "the transfer re-attached")
        assert len(rows) == 1 and rows[0]["id"] == before["id"] and rows[0]["slskd_id"] == before["slskd_id"]
        assert rows[0]["state"] == "in_progress" and rows[0]["bytes"] >= before["bytes"]
        assert api(port, key, "GET", f"/api/v1/wanted/{item_id}")[1]["state"] == "downloading"
        fakes.clock.advance(3600)  # the slow peer finishes

        def filed() -> Any:
            return api(port, key, "GET", f"/api/v1/wanted/{item_id}")[1]["state"] == "done"

        wait_for(filed, 10, "the item downloaded and imported")
        rows = api(port, key, "GET", f"/api/v1/downloads?item={item_id}")[1]["items"]
        assert [row["outcome"] for row in rows] == ["succeeded"]
        assert os.path.isfile(os.path.join(tmp_path, "library", rows[0]["library_path"]))


def test_kill_9_during_imports_leaves_one_complete_file_per_item(tmp_path, fakes) -> None:
    """Killed at random moments while an album's tracks are downloaded and imported, Harmony
    ends with each track filed once, complete and tagged, and an index that agrees with the disk."""
    import random

    from harmony import tags

    cat = fakes.catalogue
    vinyl = {f.track_id for f in fakes.slskd_state.peers["vinylvault"].files if f.track_id}
    album = next(
        a
        for a in sorted(cat.albums.values(), key=lambda a: a.id)
        if a.album_type == "album"
        and not a.future
        and a.duplicate_of is None
        and len(cat.album_tracks(a)) >= 8
        and {t.id for t in cat.album_tracks(a)} <= vinyl
    )
    port = free_port()
    env = {config.BY_KEY[key].env: value for key, value in fake_options(fakes).items()}
    argv = ("serve", "--data-dir", str(tmp_path), "--server-port", str(port))
    argv += ("--transfers-poll-interval", "1s", "--search-timeout", "5s", "--jobs-workers", "2")
    rng = random.Random(7)
    with harmony(*argv, env=env) as proc:
        key = admin_key(tmp_path)
        wait_until(f"http://127.0.0.1:{port}/live", 200)
        for name in fakes.slskd_state.peers:
            if name != "vinylvault":
                api(port, key, "POST", "/api/v1/users/blocked", {"username": name})
        body = api(port, key, "POST", "/api/v1/wanted", {"spotify": f"spotify:album:{album.id}"})[1]
        items = [row["id"] for row in body["items"]]

    def states() -> list[str]:
        fakes.clock.advance(2)
        try:
            page = api(port, key, "GET", "/api/v1/wanted?limit=100")
        except OSError:  # a slow answer on a loaded machine: ask again
            return []
        return [row["state"] for row in (page[1]["items"] if page[0] == 200 else []) if row["id"] in items]

    for _ in range(3):  # killed as soon as imports are happening, and a little later
        with harmony(*argv, env=env) as proc:
            wait_until(f"http://127.0.0.1:{port}/live", 200)
            wait_for(lambda: {"downloaded", "importing", "done"} & set(states()), 60, "imports")
            time.sleep(rng.uniform(0.0, 0.4))
            proc.kill()
            proc.wait()
    with harmony(*argv, env=env):
        wait_until(f"http://127.0.0.1:{port}/live", 200)
        wait_for(lambda: set(states()) == {"done"}, 90, "every track filed")
        rows = api(port, key, "GET", "/api/v1/library/tracks?limit=100")[1]["items"]
        downloads = api(port, key, "GET", "/api/v1/downloads?limit=100")[1]["items"]
    library = os.path.join(tmp_path, "library")
    on_disk = sorted(
        os.path.relpath(os.path.join(folder, name), library)
        for folder, _, names in os.walk(library)
        for name in names
        if name != "cover.jpg"
    )
    assert on_disk == sorted(row["path"] for row in rows), "the index agrees with the disk"
    assert len(on_disk) == len(items) == len(cat.album_tracks(album)), "one file per track"
    for path in on_disk:
        info = tags.audio_info(os.path.join(library, path))
        assert info.format == "flac" and tags.read_tags(os.path.join(library, path)).spotify_track_id
    moved = [
        row["local_path"] for row in downloads if row["item_id"] in items and row["outcome"] == "succeeded"
    ]
    assert len(moved) == len(items) and not [path for path in moved if os.path.exists(path)], (
        "moved, not copied"
    )


def test_a_real_process_files_a_track_past_a_truncated_download_and_knows_it_owns_it(tmp_path, fakes) -> None:
    from acquire_world import track_shared_by

    from harmony import tags

    track = track_shared_by(fakes, "truncator", "vinylvault", album_type="single")
    port = free_port()
    env = {config.BY_KEY[key].env: value for key, value in fake_options(fakes).items()}
    argv = ("serve", "--data-dir", str(tmp_path), "--server-port", str(port))
    with harmony(*argv, "--transfers-poll-interval", "1s", "--search-timeout", "5s", env=env) as proc:
        key = admin_key(tmp_path)
        wait_until(f"http://127.0.0.1:{port}/live", 200)
        for name in fakes.slskd_state.peers:
            if name not in ("truncator", "vinylvault"):
                api(port, key, "POST", "/api/v1/users/blocked", {"username": name})
        status, body = api(port, key, "POST", "/api/v1/wanted", {"spotify": f"spotify:track:{track}"})
        assert status == 201
        item_id = body["items"][0]["id"]

        def done() -> Any:
            fakes.clock.advance(2)
            return api(port, key, "GET", f"/api/v1/wanted/{item_id}")[1]["state"] == "done"

        wait_for(done, 60, "the track filed")
        [held] = api(port, key, "GET", "/api/v1/quarantine")[1]["items"]
        assert (held["code"], held["username"], held["item_id"]) == ("incomplete", "truncator", item_id)
        [filed] = api(port, key, "GET", "/api/v1/library/tracks")[1]["items"]
        written = tags.read_tags(os.path.join(tmp_path, "library", filed["path"]))
        assert written.spotify_track_id == track and written.cover is not None
        # Wanted again (the first item forgotten): the library has it, so nothing is downloaded.
        assert api(port, key, "DELETE", f"/api/v1/wanted/{item_id}")[0] == 204
        status, body = api(port, key, "POST", "/api/v1/wanted", {"spotify": f"spotify:track:{track}"})
        again = body["items"][0]
        assert (status, again["outcome"], again["state"]) == (201, "owned", "done")
        assert api(port, key, "GET", f"/api/v1/downloads?item={again['id']}")[1]["items"] == []
        stop_within(proc, 10)
