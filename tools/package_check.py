"""Packaging check: `python tools/package_check.py` (exit 0 when every check passes, else 1).

In a temporary directory, from a copy of the checkout's files (as build.py copies them, so
nothing in the checkout is written):
1. `pip wheel .` builds a wheel;
2. `python -m build` builds an sdist and, from it, a wheel (skipped, and said so, when the
   `build` package is not installed; it is in the dev extras);
3. each wheel must hold every file of the package in the copy (the modules, harmony/fakes,
   templates/*.tpl, static/*, openapi.json), nothing outside harmony/ and its .dist-info, and
   the `harmony` console script;
4. a new virtualenv (no system site-packages) gets `pip install .` (with the dependencies from
   the package index or pip's cache), then the wheel of step 2 (or 1) over it, and runs
   `harmony --help`, `harmony version`, `harmony config docs` and reads the packaged openapi.json.

Prints one line a check and a summary. Needs the package index, or the dependencies in pip's
cache.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the wheel must hold at least one of, beyond "every file of the package in the checkout".
REQUIRED = ("harmony/templates/*.tpl", "harmony/static/*", "harmony/openapi.json", "harmony/fakes/*.py")


class CheckFailed(Exception):
    pass


def run(argv: list[str], **kwargs: object) -> str:
    """Run a command; its output, or CheckFailed with the end of it."""
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()[-8:]
        raise CheckFailed(f"`{' '.join(argv[-3:])}` exited {done.returncode}: " + " | ".join(output))
    return str(done.stdout)


def built(directory: str, suffix: str) -> str:
    (name,) = (name for name in os.listdir(directory) if name.endswith(suffix))
    return os.path.join(directory, name)


def check_wheel(wheel: str, source: str) -> str:
    """The wheel holds every file of the package in `source`, and only the package."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    package = {
        os.path.relpath(os.path.join(directory, name), source)
        for directory, _, files in os.walk(os.path.join(source, "harmony"))
        for name in files
        if "__pycache__" not in directory
    }
    missing = sorted(package - names)
    if missing:
        raise CheckFailed(f"{os.path.basename(wheel)} lacks {len(missing)} files: {', '.join(missing[:8])}")
    for pattern in REQUIRED:
        if not fnmatch.filter(names, pattern):
            raise CheckFailed(f"{os.path.basename(wheel)} holds nothing like {pattern}")
    dist_info = {name.split("/")[0] for name in names if ".dist-info/" in name}
    strays = sorted(name for name in names if name not in package and name.split("/")[0] not in dist_info)
    if strays:
        raise CheckFailed(f"{os.path.basename(wheel)} holds files outside harmony/: {', '.join(strays[:8])}")
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(f"{dist_info.pop()}/entry_points.txt").decode()
    if "harmony = harmony.__main__:main" not in entry_points:
        raise CheckFailed(f"{os.path.basename(wheel)} has no `harmony` console script")
    return f"{os.path.basename(wheel)}: {len(names)} files, {os.path.getsize(wheel) // 1024} KiB"


def check_sdist(sdist: str) -> str:
    import tarfile

    with tarfile.open(sdist) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    for pattern in (*REQUIRED, "setup.cfg", "pyproject.toml", "README.md"):
        if not fnmatch.filter(names, pattern):
            raise CheckFailed(f"{os.path.basename(sdist)} holds nothing like {pattern}")
    return f"{os.path.basename(sdist)}: {len(names)} files, {os.path.getsize(sdist) // 1024} KiB"


def pip_wheel(work: str, source: str) -> str:
    out = os.path.join(work, "pip-wheel")
    run([sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "--no-deps", "-w", out, source])
    return check_wheel(built(out, ".whl"), source)


def python_build(work: str, source: str) -> str:
    if importlib.util.find_spec("build") is None:
        return "skipped: the `build` package is not installed (pip install build)"
    out = os.path.join(work, "build")
    run([sys.executable, "-m", "build", "--outdir", out, source], cwd=work)
    return f"{check_sdist(built(out, '.tar.gz'))}; {check_wheel(built(out, '.whl'), source)}"


def pip_install(work: str, source: str) -> str:
    """`pip install .` into a new virtualenv, then the wheel `python -m build` made (else `pip
    wheel`'s) over it; the installed command and package data work."""
    venv = os.path.join(work, "venv")
    wheel = built(
        os.path.join(work, "build" if os.path.isdir(os.path.join(work, "build")) else "pip-wheel"), ".whl"
    )
    python, harmony = (os.path.join(venv, "bin", name) for name in ("python", "harmony"))
    run([sys.executable, "-m", "venv", venv])
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run([*pip, "install", "."], cwd=source)
    run([*pip, "install", "--force-reinstall", "--no-deps", wheel])
    if "serve" not in run([harmony, "--help"]):
        raise CheckFailed("`harmony --help` does not list `serve`")
    version = run([harmony, "version"]).strip()
    if "## " not in run([harmony, "config", "docs"]):
        raise CheckFailed("`harmony config docs` printed no reference")
    read = "from importlib.resources import files; import json, harmony.fakes; "
    read += "print(json.loads(files('harmony').joinpath('openapi.json').read_text())['openapi'])"
    run([python, "-c", read], cwd=venv)  # not from the checkout: the installed package
    return f"{version} from {os.path.basename(wheel)}: --help, version, config docs and openapi.json work"


CHECKS: tuple[tuple[str, Callable[[str, str], str]], ...] = (
    ("pip wheel .", pip_wheel),
    ("python -m build", python_build),
    ("pip install", pip_install),
)


def main() -> int:
    started = time.monotonic()
    spec = importlib.util.spec_from_file_location("harmony_build", os.path.join(ROOT, "build.py"))
    assert spec and spec.loader
    build_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_py)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="harmony-package-") as work:
        source = os.path.join(work, "source")
        build_py.copy_sources(source)
        for name, check in CHECKS:
            try:
                print(f"package: ok: {name}: {check(work, source)}", flush=True)
            except (CheckFailed, subprocess.SubprocessError, OSError, ValueError) as exc:
                failures += 1
                print(f"package: FAIL: {name}: {exc}", flush=True)
    passed = len(CHECKS) - failures
    verdict = "FAIL" if failures else "ok"
    print(f"package: {verdict}: {passed} of {len(CHECKS)} checks passed in {time.monotonic() - started:.0f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
