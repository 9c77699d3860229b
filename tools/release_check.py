"""The release gate: every check a release needs, in order, with its log in reports/release-check.md.

Run: .venv/bin/python tools/release_check.py [--skip STEP ...] [--only STEP ...] [--out PATH]
(`make release-check` runs it with the development dependencies installed.)

Steps, each a command run from the repository root with this interpreter:

| step | what |
|---|---|
| format | `ruff format --check` over harmony, tests, tools and build.py |
| lint | `ruff check` over the same |
| types | `mypy harmony` |
| tests | the whole test suite (`pytest`) |
| docs | `make docs-verify`: tools/docs_reference_guard.py and tests/test_docs.py |
| packaging | tools/package_check.py: pip install, pip wheel, python -m build, the wheel's contents |
| zipapp | build.py builds dist/harmony.pyz |
| smoke | tools/smoke_zipapp.py on it: `version`, start, `/live`, `/ready`, SIGTERM, exit 0 |
| bench | tools/bench/run.py --quick: every benchmark's short run, reports in reports/bench/quick/ |

Every step runs even after one fails, so one run shows everything that is wrong. Each is timed;
the report lists every step with its result and duration, and the last lines of a failing step's
output. Exit status: 0 when every step passed, 1 otherwise. The smoke step needs the zipapp
step's dist/harmony.pyz; skipped or failed, the smoke test fails too.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
SOURCES = ["harmony", "tests", "tools", "build.py"]
TAIL_LINES = 40


@dataclass
class Step:
    name: str
    what: str
    command: list[str]
    result: str = "not run"
    seconds: float = 0.0
    tail: str = ""


def steps(scratch: str = "") -> list[Step]:
    """The gate's steps; pytest's temporary files go under `scratch` (its own `--basetemp`, so
    another pytest run on the same host, which prunes the shared `/tmp/pytest-of-<user>`, cannot
    delete them mid-run)."""
    base = os.path.join(scratch or tempfile.gettempdir(), "harmony-release-check")
    return [
        Step("format", "ruff format --check", [PY, "-m", "ruff", "format", "--check", *SOURCES]),
        Step("lint", "ruff check", [PY, "-m", "ruff", "check", *SOURCES]),
        Step("types", "mypy on harmony/", [PY, "-m", "mypy", "harmony"]),
        Step(
            "tests",
            "the whole test suite",
            [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={base}-tests"],
        ),
        Step(
            "docs",
            "docs-verify: the docs reference guard and tests/test_docs.py",
            [
                "sh",
                "-c",
                f"'{PY}' tools/docs_reference_guard.py && "
                f"'{PY}' -m pytest -q -p no:cacheprovider --basetemp='{base}-docs' tests/test_docs.py",
            ],
        ),
        Step("packaging", "tools/package_check.py", [PY, "tools/package_check.py"]),
        Step("zipapp", "build.py builds dist/harmony.pyz", [PY, "build.py"]),
        Step(
            "smoke",
            "tools/smoke_zipapp.py: version, start, /live, /ready, SIGTERM, exit 0",
            [PY, "tools/smoke_zipapp.py", "dist/harmony.pyz"],
        ),
        Step(
            "bench",
            "tools/bench/run.py --quick: every benchmark, short",
            [PY, "tools/bench/run.py", "--quick"],
        ),
    ]


def run(step: Step) -> None:
    if step.name == "packaging" and not os.path.exists(os.path.join(ROOT, "tools", "package_check.py")):
        step.result, step.tail = "FAIL", "tools/package_check.py does not exist"
        return
    print(f"== {step.name}: {' '.join(os.path.relpath(c, ROOT) if c == PY else c for c in step.command)}")
    started = time.monotonic()
    done = subprocess.run(
        step.command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    step.seconds = time.monotonic() - started
    step.result = "pass" if done.returncode == 0 else f"FAIL (exit {done.returncode})"
    lines = done.stdout.rstrip().splitlines()
    step.tail = "\n".join(lines[-TAIL_LINES:])
    print("\n".join(lines[-5:]))
    print(f"== {step.name}: {step.result} in {step.seconds:.1f} s", flush=True)


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "?"


def report(ran: list[Step], total: float) -> str:
    from harmony import __version__

    failed = [step for step in ran if step.result != "pass"]
    dirty = git("status", "--porcelain", "--untracked-files=no")
    lines = [
        "# Release check",
        "",
        f"Written by `tools/release_check.py` (`make release-check`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: Harmony {__version__}, commit "
        f"{git('rev-parse', '--short', 'HEAD')}{' with uncommitted changes' if dirty else ''}, "
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs. "
        "What each step does: [docs/operations/release.md](../docs/operations/release.md).",
        "",
        f"**{'PASS' if not failed else 'FAIL'}**: {len(ran) - len(failed)} of {len(ran)} steps passed "
        f"in {total / 60:.1f} min.",
        "",
        "| step | what | result | seconds |",
        "|---|---|---|---:|",
    ]
    for step in ran:
        result = "pass" if step.result == "pass" else f"**{step.result}**"
        lines.append(f"| {step.name} | {step.what} | {result} | {step.seconds:.1f} |")
    for step in failed:
        lines += ["", f"## {step.name}: last lines of its output", "", "```", step.tail, "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    names = [step.name for step in steps()]
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--skip", nargs="+", choices=names, default=[], help="leave these steps out")
    parser.add_argument("--only", nargs="+", choices=names, help="run only these steps")
    parser.add_argument("--out", default=os.path.join(ROOT, "reports", "release-check.md"))
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    scratch = tempfile.mkdtemp(prefix="harmony-release-check-")
    try:
        chosen = [
            s for s in steps(scratch) if s.name not in args.skip and (not args.only or s.name in args.only)
        ]
        started = time.monotonic()
        for step in chosen:
            run(step)
        total = time.monotonic() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text = report(chosen, total)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(text)
    failed = [step.name for step in chosen if step.result != "pass"]
    print(
        f"wrote {os.path.relpath(args.out, ROOT)}: " + (f"FAILED {', '.join(failed)}" if failed else "PASS")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
