"""Build dist/harmony.pyz: one self-contained zipapp made with shiv.

The zipapp is for the Python version and the CPU architecture of the Python that runs build.py:
APSW is a binary wheel, so build it with the target host's Python, on the target host or on one
like it. Needs nothing but that Python and access to a package index: when shiv (version
SHIV_VERSION) is not installed in it, build.py runs shiv from a throwaway virtualenv.

Builds are reproducible: the same commit gives the same bytes wherever the checkout lies and
whether or not shiv is installed. To that end build.py
- copies the checkout's files into a temporary directory and builds Harmony's wheel there, so
  neither the checkout's path nor what git ignores (build/, *.egg-info, caches) gets in;
- installs the wheel and its dependencies with `pip install --target` and then removes what names
  the build machine: the console scripts in bin/ (their shebangs name the build's Python; the
  zipapp never runs them) and direct_url.json (it names the wheel's temporary path); it sorts
  every RECORD and gives every file mode 644, or 755 when it was executable;
- runs shiv with `--reproducible`: entries sorted, every timestamp SOURCE_DATE_EPOCH (default
  1980-01-01);
- names the build `<commit>-<digest>`: the commit (with `-dirty` when tracked files are changed)
  and a digest of the installed files, so shiv extracts a changed build to a new directory.

The dependencies are the newest releases allowed by setup.cfg at build time: a build made after
a dependency's new release differs (and gets another build id).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
SHIV_VERSION = "1.0.8"  # shiv's bootstrap code and version are part of the zipapp
DEFAULT_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip entry can carry
# Left out of the copy when the checkout is not a git repository.
SKIPPED = {".git", ".venv", "dist", "build", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default=os.path.join(HERE, "dist", "harmony.pyz"))
    parser.add_argument("--python", default="/usr/bin/env python3", help="shebang interpreter")
    parser.add_argument(
        "--build-id",
        help="name of the build, and of the directory shiv extracts it to; must differ between "
        "builds that differ (default: the git commit and a digest of the contents)",
    )
    args = parser.parse_args(argv)
    os.umask(0o022)  # files pip and venv create get the modes they get on any host
    output = os.path.abspath(args.output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory(prefix="harmony-build-") as work:
        source, wheels, site = (os.path.join(work, name) for name in ("source", "wheels", "site"))
        copy_sources(source)
        python = _python_with_shiv(work)
        pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", wheels, source], check=True, env=env)
        (wheel,) = (os.path.join(wheels, name) for name in os.listdir(wheels))
        install = ["install", "--target", site, "--no-compile", wheel]
        subprocess.run([*pip, *install], check=True, env=env)
        _normalise(site)
        build_id = args.build_id or f"{_label()}-{_digest(site)[:10]}"
        command = [
            python,
            "-m",
            "shiv",
            "--reproducible",
            "--compressed",
            # Ship compiled bytecode: a service user often cannot write .pyc files into the
            # extraction cache, and then every start would recompile every module.
            "--compile-pyc",
            "--python",
            args.python,
            "--entry-point",
            "harmony.__main__:main",
            "--site-packages",
            site,
            "--build-id",
            build_id,
            "--output-file",
            output,
        ]
        # shiv warns that a given build id must be unique: this one is, so its output is dropped.
        subprocess.run(command, check=True, env=dict(env, TMPDIR=work), stdout=subprocess.DEVNULL)
    print(f"built {output} (build {build_id})")
    return 0


def copy_sources(target: str) -> None:
    """Copy the files a build reads: in a git checkout the tracked ones and the untracked ones git
    does not ignore, else all but caches and build outputs."""
    for relative in source_files():
        origin = os.path.join(HERE, relative)
        if os.path.isfile(origin):  # a tracked file deleted in the working tree is skipped
            os.makedirs(os.path.join(target, os.path.dirname(relative)), exist_ok=True)
            shutil.copyfile(origin, os.path.join(target, relative))


def source_files() -> list[str]:
    """The files of the checkout that a build reads, relative to it (see `copy_sources`)."""
    try:
        listed = subprocess.run(
            ["git", "-C", HERE, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
        ).stdout.decode()
        return [name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for directory, subdirectories, names in os.walk(HERE):
            subdirectories[:] = sorted(
                name for name in subdirectories if name not in SKIPPED and not name.endswith(".egg-info")
            )
            files += [os.path.relpath(os.path.join(directory, name), HERE) for name in names]
        return files


def _python_with_shiv(work: str) -> str:
    """This Python if it has shiv SHIV_VERSION, else a new virtualenv's Python with it installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("shiv")
    except PackageNotFoundError:
        installed = "none"
    if installed == SHIV_VERSION and _modes_as_usual("shiv"):
        return sys.executable
    print(f"installing shiv {SHIV_VERSION} into a temporary virtualenv (this Python has shiv: {installed})")
    venv = os.path.join(work, "tools")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "install", f"shiv=={SHIV_VERSION}"], check=True)
    return python


def _modes_as_usual(package: str) -> bool:
    """Whether the package's files have mode 644: shiv copies its bootstrap code into the zipapp
    with the modes it was installed with (under a umask of 077 they are 600)."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    places = (spec and spec.submodule_search_locations) or []
    return all(os.stat(path).st_mode & 0o777 == 0o644 for place in places for path in _files(place))


def _normalise(site: str) -> None:
    """Remove what names the build machine from a `pip install --target` directory; sort every
    RECORD; make every file mode 644, or 755 when it was executable."""
    shutil.rmtree(os.path.join(site, "bin"), ignore_errors=True)
    for name in os.listdir(site):
        if name.endswith(".dist-info"):
            direct_url = os.path.join(site, name, "direct_url.json")
            if os.path.exists(direct_url):
                os.remove(direct_url)
            record = os.path.join(site, name, "RECORD")
            with open(record, encoding="utf-8") as file:
                rows = [row for row in file.read().splitlines() if row]
            kept = [row for row in rows if _inside(site, _record_path(row))]
            with open(record, "w", encoding="utf-8", newline="\n") as file:
                file.writelines(f"{row}\n" for row in sorted(kept))
    for path in _files(site):
        os.chmod(path, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)


def _inside(site: str, relative: str) -> bool:
    """Whether a RECORD path names a file that is in `site` (rows such as `../../bin/harmony`
    name files a normal install puts outside site-packages)."""
    path = os.path.normpath(os.path.join(site, relative))
    return path.startswith(site + os.sep) and os.path.isfile(path)


def _record_path(row: str) -> str:
    """The path of a RECORD row (CSV: path,hash,size; a path with a comma is quoted)."""
    if row.startswith('"'):
        return row[1:].split('",', 1)[0].replace('""', '"')
    return row.rsplit(",", 2)[0]


def _files(top: str) -> Iterator[str]:
    for directory, subdirectories, names in os.walk(top):
        subdirectories.sort()
        for name in sorted(names):
            yield os.path.join(directory, name)


def _digest(site: str) -> str:
    """A digest of the installed files: their paths, modes and bytes."""
    digest = hashlib.sha256()
    for path in _files(site):
        digest.update(f"{os.path.relpath(path, site)}\0{os.stat(path).st_mode:o}\0".encode())
        with open(path, "rb") as file:
            digest.update(hashlib.sha256(file.read()).digest())
    return digest.hexdigest()


def _label() -> str:
    """The git commit, with `-dirty` when tracked files differ from it (untracked files, such as
    build outputs or a local harmony.toml, do not count: an untracked file that is built changes
    the digest); the version outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "-C", HERE, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", HERE, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit[:12] + ("-dirty" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        sys.path.insert(0, HERE)
        from harmony import __version__

        return __version__


if __name__ == "__main__":
    sys.exit(main())
