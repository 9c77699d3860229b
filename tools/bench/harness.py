"""What the benchmarks share: the rows of their summary tables (`tools/bench/run.py` reads them
back from the reports, so one shape serves all), a free loopback port and a process's memory.

The scripts run as `python tools/bench/<name>.py`, so this folder is on their import path.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass
class Row:
    """One figure of a summary table."""

    figure: str
    value: str
    target: str = "no target"
    met: bool | None = None

    def cells(self) -> str:
        verdict = "" if self.met is None else ("**met**" if self.met else "**not met**")
        return f"| {self.figure} | {self.value} | {self.target} | {verdict} |"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon, RssFile (MB) and Threads from /proc/<pid>/status."""
    wanted = {"VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"}
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            if name in wanted:
                number = float(rest.split()[0])
                values[name] = number if name == "Threads" else number / 1024
    return values
