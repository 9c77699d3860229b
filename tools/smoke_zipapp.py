"""Smoke test of a built zipapp: `python tools/smoke_zipapp.py dist/harmony.pyz`.

Runs `PATH version`, then starts `PATH demo` (Harmony with the built-in fake Spotify and slskd)
on a free port with its data in a temporary directory, waits until `/live` and `/ready` answer
200 (20 s at most), fetches `/api/v1/openapi.json` with the admin key the demo prints (package
data: a zipapp that left it out would fail here), sends SIGTERM and requires exit code 0 within
10 s. Prints one line; exits non-zero on any failure. Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


class SmokeFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_of(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def command(pyz: str) -> list[str]:
    # Run through this interpreter so the zipapp's shebang does not matter.
    return [sys.executable, pyz]


def check_version(pyz: str) -> str:
    done = subprocess.run([*command(pyz), "version"], capture_output=True, text=True, timeout=60)
    out = done.stdout.strip()
    if done.returncode != 0 or not out.startswith("harmony "):
        raise SmokeFailed(f"`version` exited {done.returncode}: {(out or done.stderr.strip())[:300]}")
    return out


def check_demo(pyz: str, data_dir: str) -> float:
    """Start the demo, wait for /live and /ready, stop it; return the seconds until ready."""
    port = free_port()
    log_path = os.path.join(data_dir, "demo.log")
    argv = [*command(pyz), "demo", "--data-dir", data_dir, "--server-port", str(port), "--log-format", "text"]
    with open(log_path, "wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            pending = ["/live", "/ready"]
            while pending:
                if proc.poll() is not None:
                    raise SmokeFailed(f"demo exited early with code {proc.returncode}: {tail(log_path)}")
                if time.monotonic() - started > START_TIMEOUT:
                    raise SmokeFailed(f"{pending[0]} not 200 within {START_TIMEOUT:.0f}s: {tail(log_path)}")
                if status_of(base + pending[0]) == 200:
                    pending.pop(0)
                else:
                    time.sleep(0.2)
            ready_after = time.monotonic() - started
            check_openapi(base, log_path)
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                message = f"no exit within {STOP_TIMEOUT:.0f}s of SIGTERM: {tail(log_path)}"
                raise SmokeFailed(message) from None
            if code != 0:
                raise SmokeFailed(f"exit code {code} after SIGTERM: {tail(log_path)}")
            return ready_after
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def check_openapi(base: str, log_path: str) -> None:
    """The served API description: the packaged copy of docs/openapi.json."""
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        found = re.search(r"Admin API key: (hmy_\S+)", handle.read())
    if not found:
        raise SmokeFailed(f"the demo printed no admin key: {tail(log_path)}")
    request = urllib.request.Request(base + "/api/v1/openapi.json", headers={"X-API-Key": found.group(1)})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            spec = json.load(response)
    except (OSError, ValueError) as exc:
        raise SmokeFailed(f"GET /api/v1/openapi.json failed: {exc}") from None
    spec = spec if isinstance(spec, dict) else {}
    version, paths = str(spec.get("openapi", "")), spec.get("paths", {})
    if not version.startswith("3.1") or "/api/v1/openapi.json" not in paths:
        raise SmokeFailed("GET /api/v1/openapi.json did not answer this API's OpenAPI 3.1 document")


def tail(path: str, lines: int = 5) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return " | ".join(line.strip() for line in handle.readlines()[-lines:])


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: smoke_zipapp.py PATH/TO/harmony.pyz", file=sys.stderr)
        return 2
    pyz = argv[0]
    if not os.path.isfile(pyz):
        print(f"smoke: FAIL: no such file {pyz}", file=sys.stderr)
        return 1
    try:
        version = check_version(pyz)
        with tempfile.TemporaryDirectory(prefix="harmony-smoke-") as data_dir:
            ready_after = check_demo(pyz, data_dir)
    except (SmokeFailed, subprocess.TimeoutExpired) as exc:
        print(f"smoke: FAIL: {pyz}: {exc}", file=sys.stderr)
        return 1
    print(f"smoke: ok: {pyz} ({version}) ready in {ready_after:.1f}s, stopped cleanly on SIGTERM")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
