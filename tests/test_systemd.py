"""Harmony under systemd: the unit verifies and scores as documented, and a real process tells
the service manager it is ready, pings the watchdog while healthy and says when it stops."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import fake_options
from test_boot import free_port, harmony, wait_until

from harmony import config, systemd
from harmony.__main__ import _parser

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "docs" / "operations" / "harmony.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed on this machine")


def directives() -> dict[str, list[str]]:
    """The unit's `Name=value` lines, each name with every value it is given."""
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            name, value = line.split("=", 1)
            out.setdefault(name, []).append(value)
    return out


def test_the_unit_runs_the_real_command_and_outlasts_harmonys_own_shutdown() -> None:
    unit = directives()
    binary, *argv = unit["ExecStart"][0].split()
    assert binary == "/usr/local/bin/harmony.pyz"
    args = _parser().parse_args(argv)
    assert (args.command, args.config) == ("serve", "/etc/harmony/harmony.toml")
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"] and unit["WatchdogSec"]
    assert unit["User"] == ["harmony"] and unit["StateDirectory"] == ["harmony"]
    assert "SHIV_ROOT=/var/lib/harmony/shiv" in unit["Environment"]
    # The stop drains requests, then background work, each for up to server.shutdown_timeout.
    shutdown = config.Duration()(unit["TimeoutStopSec"][0])
    assert shutdown > 2 * config.BY_KEY["server.shutdown_timeout"].default + 5


def test_every_credential_the_unit_loads_is_read_through_an_options_file_companion() -> None:
    unit = directives()
    loaded = {entry.split(":", 1)[0] for entry in unit["LoadCredential"]}
    named = {}
    for entry in unit["Environment"]:
        variable, value = entry.split("=", 1)
        if variable.endswith("_FILE"):
            assert any(option.file_env == variable for option in config.BY_FILE_KEY.values()), variable
            named[variable] = value
    assert loaded and set(named.values()) == loaded


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at a stand-in in the temp dir.
    stand_in = tmp_path / "harmony.pyz"
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "harmony.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/harmony.pyz", str(stand_in)))
    result = subprocess.run(
        [ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and "harmony.service" not in result.stderr, result.stderr


@needs_analyze
def test_the_security_score_is_no_worse_than_documented() -> None:
    result = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for harmony.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    documented = re.search(r"exposure level of ([0-9.]+)", (ROOT / "docs" / "operations.md").read_text())
    assert documented, "docs/operations.md states the unit's exposure level"
    assert float(match.group(1)) <= float(documented.group(1))
    assert f"scores this unit {documented.group(1)}" in UNIT.read_text()


# --- the notification protocol ------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing for systemd's, on a short path (AF_UNIX paths are limited)."""
    directory = tempfile.mkdtemp(prefix="hmy", dir="/tmp")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(directory)


def test_notify_sends_one_datagram_and_does_nothing_without_the_socket(listener: Any) -> None:
    sock, path = listener
    assert systemd.notify("READY=1\nSTATUS=up", {"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=up"
    assert not systemd.notify("READY=1", {})
    assert not systemd.notify("READY=1", {"NOTIFY_SOCKET": path + "-gone"})  # logged, never raised


def test_notify_reaches_an_abstract_socket() -> None:
    name = f"harmony-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert systemd.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_the_watchdog_interval_is_for_this_process_only() -> None:
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert systemd.watchdog_interval({}) is None and systemd.watchdog_interval({"WATCHDOG_USEC": "x"}) is None


def test_the_watchdog_pings_at_half_the_interval_only_while_healthy() -> None:
    now = [0.0]
    sent: list[str] = []
    problem: list[str] = []

    def healthy() -> None:
        if problem:
            raise RuntimeError(problem[0])

    dog = systemd.Watchdog(healthy, 10.0, "Listening", send=sent.append, clock=lambda: now[0])
    for step in range(21):  # 0 to 10 s in half seconds
        now[0] = step / 2
        dog.tick()
    assert sent == ["WATCHDOG=1"] * 3  # at 0, 5 and 10 s
    sent.clear()
    problem.append("background threads stopped: Wheel")
    for step in range(21, 61):
        now[0] = step / 2
        dog.tick()
    assert sent == ["STATUS=Unhealthy, watchdog pings withheld: background threads stopped: Wheel"]
    sent.clear()
    problem.clear()
    now[0] = 35.0
    dog.tick()
    assert sent == ["STATUS=Listening", "WATCHDOG=1"]
    assert systemd.Watchdog(healthy, None, send=sent.append).tick() is None and len(sent) == 2


def test_the_watchdog_stops_pinging_when_the_timer_wheel_dies(ctx: Any) -> None:
    sent: list[str] = []
    now = [0.0]
    dog = systemd.Watchdog(ctx.background_alive, 2.0, send=sent.append, clock=lambda: now[0])
    ctx.start_background()
    try:
        dog.tick()
        assert sent == ["WATCHDOG=1"]
        ctx.wheel.stop(2.0)  # the wheel's thread ends as if it had died
        now[0] = 5.0
        dog.tick()
        assert sent[1:] == ["STATUS=Unhealthy, watchdog pings withheld: background threads stopped: Wheel"]
    finally:
        ctx.stop_background()


def test_a_real_process_is_ready_pings_and_says_it_stops(listener: Any, tmp_path: Path, fakes: Any) -> None:
    sock, path = listener
    port = free_port()
    env = {config.BY_KEY[key].env: value for key, value in fake_options(fakes).items()}
    env |= {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}  # a ping every half second
    with harmony("serve", "--data-dir", str(tmp_path), "--server-port", str(port), env=env) as proc:
        ready = sock.recv(4096).decode()
        assert ready.startswith("READY=1\n") and f"STATUS=Listening on http://127.0.0.1:{port}" in ready
        wait_until(f"http://127.0.0.1:{port}/live", 200)  # ready means listening
        started = time.monotonic()
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert time.monotonic() - started < 2
        proc.send_signal(signal.SIGTERM)
        while (message := sock.recv(4096)) == b"WATCHDOG=1":
            pass
        assert message.startswith(b"STOPPING=1\n")
        assert proc.wait(timeout=30) == 0


# --- the zipapp under the unit, in a real systemd ---------------------------------------------


def _why_no_trial() -> str | None:
    if os.geteuid() != 0:
        return "booting a systemd in its own namespaces (tools/systemd_trial.sh) needs root"
    missing = [tool for tool in ("unshare", "nsenter", "useradd") if shutil.which(tool) is None]
    if missing or not os.path.exists("/lib/systemd/systemd"):
        return f"systemd or util-linux tools are missing: {', '.join(missing) or '/lib/systemd/systemd'}"
    # A container may run as root without the right to make namespaces and mounts.
    probe = ["unshare", "--pid", "--fork", "--mount", "--cgroup", "--uts", "--mount-proc"]
    probe += ["sh", "-c", "mount --make-rprivate / && mount -t tmpfs tmpfs /mnt"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"namespaces cannot be made here: {exc}"
    if done.returncode != 0:
        return f"namespaces and mounts are not allowed here: {done.stderr.strip()[:200]}"
    return None


class Trial:
    """A systemd booted by tools/systemd_trial.sh, driven with nsenter."""

    def __init__(self, launcher: subprocess.Popen[bytes]) -> None:
        self.launcher = launcher
        self.pid = 0
        deadline = time.monotonic() + 30
        while not self.pid:
            if launcher.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"tools/systemd_trial.sh did not boot systemd (exit {launcher.poll()})")
            children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
            for child in children:
                if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                    self.pid = int(child)
            time.sleep(0.1)

    def run(self, *argv: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", "-t", str(self.pid), "-a", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def show(self, unit: str, *names: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, *(f"--property={name}" for name in names)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_for(self, check: Any, seconds: float, what: str) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if value := check():
                return value
            time.sleep(0.2)
        journal = self.run("journalctl", "--no-pager", "-n", "40").stdout
        pytest.fail(f"{what} within {seconds} s; journal:\n{journal}")

    def close(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)  # PID 1 of the namespace: everything in it ends
        self.launcher.wait(timeout=30)


@pytest.mark.skipif(_why_no_trial() is not None, reason=str(_why_no_trial()))
def test_the_zipapp_runs_under_the_unit_in_a_real_systemd(tmp_path: Path) -> None:
    import json
    import urllib.request

    pyz = tmp_path / "harmony.pyz"
    build = [sys.executable, str(ROOT / "build.py"), "--output", str(pyz)]
    subprocess.run(build, cwd=ROOT, check=True, capture_output=True, timeout=600)
    port = free_port()
    argv = ["unshare", "--pid", "--fork", "--mount", "--cgroup", "--uts", "--mount-proc"]
    argv += [str(ROOT / "tools" / "systemd_trial.sh"), str(pyz), str(UNIT), str(port), "10s"]
    with open(tmp_path / "trial.log", "wb") as log:
        launcher = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    trial = Trial(launcher)
    try:
        trial.wait_for(lambda: trial.run("systemctl", "is-system-running").stdout.strip(), 30, "systemd up")
        trial.run("systemctl", "start", "systemd-journald.service")
        trial.run("systemctl", "log-target", "journal")
        started = trial.run("systemctl", "start", "harmony.service")  # returns once READY=1 came
        assert started.returncode == 0, (
            started.stderr + trial.run("journalctl", "--no-pager", "-n", "30").stdout
        )
        state = trial.show("harmony", "ActiveState", "StatusText", "MainPID")
        assert state["ActiveState"] == "active"
        assert state["StatusText"] == f"Listening on http://127.0.0.1:{port}"

        # The first admin key: in a 0600 file of the service's user, never in the journal.
        key = trial.run("cat", "/var/lib/harmony/admin-key").stdout.strip()
        assert key.startswith("hmy_")
        assert trial.run("stat", "-c", "%a %U", "/var/lib/harmony/admin-key").stdout.split() == [
            "600",
            "harmony",
        ]
        journal = trial.run("journalctl", "-u", "harmony", "--no-pager", "-o", "cat").stdout
        assert "/var/lib/harmony/admin-key" in journal and key not in journal

        # Both secrets came from the credentials directory; neither is shown.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/env", headers={"X-API-Key": key})
        with urllib.request.urlopen(request, timeout=10) as resp:
            options = {row["key"]: row for row in json.loads(resp.read())["options"]}
        for key_name, credential in (
            ("slskd.api_key", "slskd_api_key"),
            ("spotify.client_secret", "spotify_client_secret"),
        ):
            assert options[key_name]["value"] == "********"
            assert options[key_name]["source"].endswith(f"(/run/credentials/harmony.service/{credential})")

        # Frozen, it misses its watchdog pings: systemd kills it and starts it again.
        trial.run("kill", "-STOP", state["MainPID"])

        def restarted() -> bool:
            now = trial.show("harmony", "ActiveState", "MainPID", "NRestarts")
            return (
                now["NRestarts"] == "1"
                and now["ActiveState"] == "active"
                and now["MainPID"] != state["MainPID"]
            )

        trial.wait_for(restarted, 40, "a restart after the watchdog timeout")
        log = trial.run("journalctl", "-u", "harmony", "--no-pager", "-o", "cat").stdout
        assert "Failed with result 'watchdog'" in log

        stopped = trial.run("systemctl", "stop", "harmony.service")
        assert stopped.returncode == 0
        final = trial.show("harmony", "ActiveState", "Result", "ExecMainStatus")
        assert (final["ActiveState"], final["Result"], final["ExecMainStatus"]) == (
            "inactive",
            "success",
            "0",
        )
    finally:
        trial.close()
