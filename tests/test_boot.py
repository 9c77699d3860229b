"""Real processes: `harmony serve` and `harmony demo` boot, answer, and stop cleanly on SIGTERM."""

from __future__ import annotations

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
        assert "admin API key" in first_line  # the first start prints it once
        key = first_line.rsplit(" ", 1)[1].strip()
        wait_until(f"{base}/live", 200)
        assert get(f"{base}/live") == (200, {"status": "ok"})
        # The wheel probes the upstreams at once; /ready turns 200 as soon as they answer.
        wait_until(f"{base}/ready", 200)
        assert get(f"{base}/api/v1/system/status")[0] == 401
        assert get(f"{base}/api/v1/system/status", key)[1]["key"]["role"] == "admin"
        stop_within(proc, 5)
        logs = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]  # type: ignore[union-attr]
    events = [entry["event"] for entry in logs]
    assert "listening" in events and "stopping" in events and events[-1] == "stopped"
    requests = [entry for entry in logs if entry["event"] == "request"]
    assert {"request_id", "method", "route", "status", "duration_ms"} <= requests[0].keys()


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
