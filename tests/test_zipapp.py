"""harmony.zipapp: finding the running zipapp's extraction and removing other builds' ones, on a
fake shiv root laid out as shiv's bootstrap lays it out."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import zipfile
from collections.abc import Iterator

import pytest

from harmony import zipapp


def make_archive(path: str, build_id: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("environment.json", json.dumps({"build_id": build_id, "shiv_version": "1.0.8"}))
        archive.writestr("__main__.py", "")
    return path


def extract(root: str, name: str, build_id: str, lock: bool = True) -> str:
    """An extraction as shiv leaves it: site-packages with Harmony in it, and the lock file."""
    path = os.path.join(root, f"{name}_{build_id}")
    os.makedirs(os.path.join(path, "site-packages", "harmony"))
    with open(os.path.join(path, "site-packages", "harmony", "__init__.py"), "w") as handle:
        handle.write("")
    if lock:
        open(
            os.path.join(root, f".{name.removesuffix('.tmp')}_{build_id.removesuffix('.tmp')}_lock"), "w"
        ).close()
    return path


@pytest.fixture
def held() -> Iterator[list[int]]:
    """Descriptors locked by the test (another process's locks, as flock sees them)."""
    fds: list[int] = []
    yield fds
    for fd in fds:
        os.close(fd)


def lock(path: str, how: int, fds: list[int]) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if os.path.isdir(path) else 0))
    fcntl.flock(fd, how | fcntl.LOCK_NB)
    fds.append(fd)


def test_running_finds_the_extraction_harmony_is_imported_from(tmp_path) -> None:
    root = str(tmp_path / "shiv")
    archive = make_archive(str(tmp_path / "bin" / "harmony.pyz"), "abc123-0f0f")
    package = os.path.join(extract(root, "harmony.pyz", "abc123-0f0f"), "site-packages", "harmony")

    found = zipapp.running(archive, package)

    assert found == zipapp.Extraction(root, "harmony.pyz", "abc123-0f0f")
    assert found is not None and found.path == os.path.join(root, "harmony.pyz_abc123-0f0f")


def test_running_is_none_outside_a_shiv_zipapp(tmp_path) -> None:
    root = str(tmp_path / "shiv")
    package = os.path.join(extract(root, "harmony.pyz", "new"), "site-packages", "harmony")
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("__main__.py", "")

    assert zipapp.running(str(tmp_path / "missing.pyz"), package) is None
    assert zipapp.running(__file__, package) is None  # a checkout: argv[0] is no zip
    assert zipapp.running(str(plain), package) is None  # a zip, not from shiv
    # A zipapp whose build id does not name the directory Harmony was imported from.
    assert zipapp.running(make_archive(str(tmp_path / "harmony.pyz"), "other"), package) is None
    assert zipapp.running(make_archive(str(tmp_path / "harmony.pyz"), "new"), str(tmp_path)) is None


def test_other_builds_are_removed_and_the_rest_kept(tmp_path, held, caplog) -> None:
    root = str(tmp_path / "shiv")
    current = zipapp.Extraction(root, "harmony.pyz", "new")
    extract(root, "harmony.pyz", "new")
    extract(root, "harmony.pyz", "old")
    extract(root, "harmony.pyz", "older", lock=False)
    extract(root, "harmony.pyz", "crashed.tmp")  # an extraction cut short
    extract(root, "harmony.pyz", "new.tmp")  # the current build's: never touched
    busy = extract(root, "harmony.pyz", "busy")  # another Harmony runs from it
    lock(busy, fcntl.LOCK_SH, held)
    extract(root, "harmony.pyz", "writing.tmp")  # shiv extracts it right now
    lock(os.path.join(root, ".harmony.pyz_writing_lock"), fcntl.LOCK_EX, held)
    extract(root, "other.pyz", "old")  # another application's
    open(os.path.join(root, "harmony.pyz_stray"), "w").close()  # not a directory

    with caplog.at_level(logging.INFO, logger="harmony.zipapp"):
        removed = zipapp.remove_others(current)

    assert removed == ["harmony.pyz_crashed.tmp", "harmony.pyz_old", "harmony.pyz_older"]
    assert sorted(os.listdir(root)) == [
        ".harmony.pyz_busy_lock",
        ".harmony.pyz_new_lock",
        ".harmony.pyz_writing_lock",
        ".other.pyz_old_lock",
        "harmony.pyz_busy",
        "harmony.pyz_new",
        "harmony.pyz_new.tmp",
        "harmony.pyz_stray",
        "harmony.pyz_writing.tmp",
        "other.pyz_old",
    ]
    events = [(record.getMessage(), os.path.basename(record.fields["path"])) for record in caplog.records]  # type: ignore[attr-defined]
    assert ("zipapp_extraction_in_use", "harmony.pyz_busy") in events
    assert ("zipapp_extraction_removed", "harmony.pyz_old") in events


def test_a_held_extraction_is_not_removed_by_another_build(tmp_path) -> None:
    root = str(tmp_path / "shiv")
    first = zipapp.Extraction(root, "harmony.pyz", "first")
    extract(root, "harmony.pyz", "first")
    extract(root, "harmony.pyz", "second")
    zipapp.hold(first)
    try:
        assert zipapp.remove_others(zipapp.Extraction(root, "harmony.pyz", "second")) == []
        assert os.path.isdir(first.path)
    finally:
        os.close(zipapp._held.pop())
    assert zipapp.remove_others(zipapp.Extraction(root, "harmony.pyz", "second")) == ["harmony.pyz_first"]


def test_start_prunes_from_a_zipapp_and_never_fails(tmp_path, monkeypatch, caplog) -> None:
    root = str(tmp_path / "shiv")
    archive = make_archive(str(tmp_path / "harmony.pyz"), "new")
    package = os.path.join(extract(root, "harmony.pyz", "new"), "site-packages", "harmony")
    extract(root, "harmony.pyz", "old")
    monkeypatch.setattr(zipapp, "__file__", os.path.join(package, "zipapp.py"))
    monkeypatch.setattr("sys.argv", [archive, "serve"])
    count = len(zipapp._held)

    assert zipapp.start(prune=False) == zipapp.Extraction(root, "harmony.pyz", "new")
    assert os.path.isdir(os.path.join(root, "harmony.pyz_old"))
    assert zipapp.start(prune=True) is not None
    assert not os.path.exists(os.path.join(root, "harmony.pyz_old"))
    for fd in zipapp._held[count:]:
        os.close(fd)
    del zipapp._held[count:]

    def broken(*args: object) -> None:
        raise PermissionError(13, "Permission denied", root)

    monkeypatch.setattr(zipapp, "running", broken)
    with caplog.at_level(logging.WARNING, logger="harmony.zipapp"):
        assert zipapp.start(prune=True) is None
    assert [record.getMessage() for record in caplog.records] == ["zipapp_prune_failed"]


def test_an_unremovable_extraction_is_logged_and_skipped(tmp_path, monkeypatch, caplog) -> None:
    root = str(tmp_path / "shiv")
    extract(root, "harmony.pyz", "new")
    extract(root, "harmony.pyz", "a")
    extract(root, "harmony.pyz", "b")

    def rmtree(path: str) -> None:
        if path.endswith("_a"):
            raise PermissionError(13, "Permission denied", path)
        real_rmtree(path)

    real_rmtree = zipapp.shutil.rmtree
    monkeypatch.setattr(zipapp.shutil, "rmtree", rmtree)
    with caplog.at_level(logging.WARNING, logger="harmony.zipapp"):
        assert zipapp.remove_others(zipapp.Extraction(root, "harmony.pyz", "new")) == ["harmony.pyz_b"]
    assert [record.getMessage() for record in caplog.records] == ["zipapp_prune_failed"]
