"""The zipapp Harmony runs from, if it runs from one, and shiv's extractions of it.

A zipapp built by build.py (with shiv) unpacks its site-packages once per build, on its first
start, to `<root>/<name>_<build id>/`: root is `$SHIV_ROOT`, or `~/.shiv`; name is the zipapp's
file name. shiv holds `<root>/.<name>_<build id>_lock` while it extracts, into
`<name>_<build id>.tmp` first. Each upgrade leaves the previous build's extraction behind, about
20 MB; `start` removes them.

A running Harmony holds a shared lock on its own extraction directory, and `start` removes only
extractions nobody holds, so a second Harmony of another build on the same root (a `harmony.pyz
backup` during an upgrade) keeps its files.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass

log = logging.getLogger("harmony.zipapp")

_held: list[int] = []  # descriptors of the extraction directories this process holds


@dataclass(frozen=True)
class Extraction:
    """Where shiv unpacked the running zipapp."""

    root: str
    name: str
    build_id: str

    @property
    def path(self) -> str:
        return os.path.join(self.root, f"{self.name}_{self.build_id}")


def start(prune: bool) -> Extraction | None:
    """When Harmony runs from a zipapp: hold its extraction, and with `prune` remove the other
    builds' extractions of the same file name. Never raises: a failure is logged, and Harmony
    starts all the same."""
    try:
        extraction = running()
        if extraction is not None:
            hold(extraction)
            if prune:
                remove_others(extraction)
        return extraction
    except Exception as exc:
        log.warning("zipapp_prune_failed", extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}})
        return None


def running(archive: str | None = None, package_dir: str | None = None) -> Extraction | None:
    """The extraction Harmony runs from, or None when it does not run from a shiv zipapp.

    `archive` is the zipapp (`sys.argv[0]`, as shiv has it) and `package_dir` the directory
    Harmony is imported from, which must be `<extraction>/site-packages/harmony`."""
    archive = sys.argv[0] if archive is None else archive
    package_dir = os.path.dirname(os.path.abspath(__file__)) if package_dir is None else package_dir
    if not archive or not zipfile.is_zipfile(archive):
        return None
    with zipfile.ZipFile(archive) as zipped:
        try:
            build_id = json.loads(zipped.read("environment.json"))["build_id"]
        except (KeyError, ValueError):
            return None  # a zip file, but not one made by shiv
    site_packages = os.path.dirname(os.path.abspath(package_dir))
    path = os.path.dirname(site_packages)
    extraction = Extraction(os.path.dirname(path), os.path.basename(os.path.realpath(archive)), build_id)
    if os.path.basename(site_packages) != "site-packages" or path != extraction.path:
        return None
    return extraction


def hold(extraction: Extraction) -> None:
    """Take a shared lock on the extraction directory for the life of the process."""
    fd = os.open(extraction.path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    _held.append(fd)


def remove_others(extraction: Extraction) -> list[str]:
    """Remove the extractions of other builds of this zipapp (same file name, same root) that no
    process holds and shiv is not writing; return the names removed. Each failure is logged."""
    removed = []
    prefix = f"{extraction.name}_"
    for entry in sorted(os.listdir(extraction.root)):
        path = os.path.join(extraction.root, entry)
        build_id = entry[len(prefix) :].removesuffix(".tmp")
        if not entry.startswith(prefix) or build_id == extraction.build_id or not os.path.isdir(path):
            continue
        try:
            if _remove(path, os.path.join(extraction.root, f".{prefix}{build_id}_lock")):
                removed.append(entry)
                log.info("zipapp_extraction_removed", extra={"fields": {"path": path}})
            else:
                log.info("zipapp_extraction_in_use", extra={"fields": {"path": path}})
        except OSError as exc:
            log.warning("zipapp_prune_failed", extra={"fields": {"path": path, "error": str(exc)}})
    return removed


def _remove(path: str, lock_path: str) -> bool:
    """Remove an extraction (and shiv's lock file once no `.tmp` sibling needs it) unless a
    process holds it or shiv's lock; False when it is held."""
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    directory = None
    try:
        directory = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(directory, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        shutil.rmtree(path)
        final = path.removesuffix(".tmp")
        if not os.path.exists(final) and not os.path.exists(final + ".tmp"):
            os.unlink(lock_path)
        return True
    finally:
        if directory is not None:
            os.close(directory)
        os.close(lock)
