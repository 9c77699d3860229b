"""The one real-process test: `harmony serve` boots, answers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import fake_options

from harmony import config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, key: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"X-API-Key": key} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_boots_answers_and_stops_on_sigterm(tmp_path, fakes) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMONY_")}
    env.update({config.BY_KEY[key].env: value for key, value in fake_options(fakes).items()})
    proc = subprocess.Popen(
        [sys.executable, "-m", "harmony", "serve", "--data-dir", str(tmp_path), "--server-port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        first_line = proc.stdout.readline()  # the first start prints the admin key once
        assert "admin API key" in first_line
        key = first_line.rsplit(" ", 1)[1].strip()
        deadline = time.monotonic() + 10
        while True:
            try:
                status, body = get(f"http://127.0.0.1:{port}/live")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("harmony serve did not answer /live within 10 s")
                time.sleep(0.05)
        assert (status, body) == (200, {"status": "ok"})
        # The wheel probes the upstreams at once; /ready turns 200 as soon as they answer.
        while get(f"http://127.0.0.1:{port}/ready")[0] != 200:
            if time.monotonic() > deadline:
                pytest.fail("harmony serve did not become ready within 10 s")
            time.sleep(0.05)
        assert get(f"http://127.0.0.1:{port}/api/v1/system/status")[0] == 401
        assert get(f"http://127.0.0.1:{port}/api/v1/system/status", key)[1]["key"]["role"] == "admin"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 5
        logs = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]
        events = [entry["event"] for entry in logs]
        assert "listening" in events and "stopping" in events and events[-1] == "stopped"
        requests = [entry for entry in logs if entry["event"] == "request"]
        assert {"request_id", "method", "route", "status", "duration_ms"} <= requests[0].keys()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
