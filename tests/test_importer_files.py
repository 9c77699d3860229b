"""Import's file-level parts: `place` moves atomically and never overwrites, whatever step a crash
interrupts; `verify` accepts complete audio of the claimed kind and says why it rejects the rest."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmony import importer
from harmony.fakes import audio
from harmony.importer import NO_SIZE_CHECKS, FileOps, Plausibility, TargetExists, Verdict, place, verify

CONTENT = audio.flac(187.0, padding=300_000)  # 300 kB, so a copy has a middle to crash in


class Crash(Exception):
    """Stands for the process dying between two system calls."""


def simulated(*, cross: bool, crash_at: int | None = None, log: list[str] | None = None) -> FileOps:
    """FileOps that fail link and rename between the downloads and library folders with EXDEV (when
    `cross`), and raise `Crash` before step `crash_at` (copy has two steps: its start and its middle)."""
    counter = itertools.count()

    def step(name: str) -> None:
        n = next(counter)
        if log is not None:
            log.append(name)
        if n == crash_at:
            raise Crash(name)

    def across(src: str, dst: str) -> bool:
        return cross and ("downloads" in Path(src).parts) != ("downloads" in Path(dst).parts)

    def link(src: str, dst: str) -> None:
        step("link")
        if across(src, dst):
            raise OSError(errno.EXDEV, "Invalid cross-device link", src)
        os.link(src, dst)

    def rename(src: str, dst: str) -> None:
        step("rename")
        if across(src, dst):
            raise OSError(errno.EXDEV, "Invalid cross-device link", src)
        os.rename(src, dst)

    def unlink(path: str) -> None:
        step("unlink")
        os.unlink(path)

    def fsync(fd: int) -> None:
        step("fsync")
        os.fsync(fd)

    def copy(src: BinaryIO, out: BinaryIO) -> None:
        step("copy")
        out.write(src.read(len(CONTENT) // 2))
        step("copy-middle")
        shutil.copyfileobj(src, out)

    return FileOps(link=link, rename=rename, unlink=unlink, fsync=fsync, copy=copy)


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    downloads, library = tmp_path / "downloads", tmp_path / "library"
    downloads.mkdir()
    library.mkdir()
    yield downloads, library


def download(downloads: Path, data: bytes = CONTENT) -> str:
    path = downloads / "Album (2001)" / "01 - Opening.flac"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return str(path)


def leftovers(library: Path) -> list[str]:
    return [str(p) for p in library.rglob(".harmony-*")]


def complete(path: str) -> bool:
    return os.path.exists(path) and Path(path).read_bytes() == CONTENT


# --- place ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cross", [False, True], ids=["same-fs", "exdev"])
def test_place_moves_and_creates_folders(dirs: tuple[Path, Path], cross: bool) -> None:
    downloads, library = dirs
    source = download(downloads)
    target = str(library / "Artist" / "2001 - Album" / "01 Opening.flac")
    ops = simulated(cross=cross)
    assert place(source, target, file_mode=0o640, dir_mode=0o750, ops=ops) == target
    assert complete(target) and not os.path.exists(source) and not leftovers(library)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(os.path.dirname(target)).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(library / "Artist").st_mode) == 0o750


def test_the_cross_filesystem_move_copies_fsyncs_then_removes_the_source(dirs: tuple[Path, Path]) -> None:
    downloads, library = dirs
    log: list[str] = []
    place(download(downloads), str(library / "a.flac"), ops=simulated(cross=True, log=log))
    # The temporary copy is fsynced before it gets the target's name; the folder is fsynced before
    # the source goes.
    assert log == [
        "unlink",
        "fsync",
        "link",
        "copy",
        "copy-middle",
        "fsync",
        "link",
        "unlink",
        "fsync",
        "unlink",
    ]


@pytest.mark.parametrize("cross", [False, True], ids=["same-fs", "exdev"])
def test_place_never_overwrites(dirs: tuple[Path, Path], cross: bool) -> None:
    downloads, library = dirs
    source = download(downloads)
    target = library / "a.flac"
    target.write_bytes(b"the user's own file")
    with pytest.raises(TargetExists) as caught:
        place(source, str(target), ops=simulated(cross=cross))
    assert caught.value.target == str(target)
    assert target.read_bytes() == b"the user's own file" and complete(source)
    target.write_bytes(CONTENT[:-1] + b"\x01")  # same size, different content
    with pytest.raises(TargetExists):
        place(source, str(target), ops=simulated(cross=cross))
    assert complete(source)


def test_a_file_that_appears_during_the_move_is_not_overwritten(dirs: tuple[Path, Path]) -> None:
    downloads, library = dirs
    source, target = download(downloads), str(library / "a.flac")

    def racing_link(src: str, dst: str) -> None:
        Path(dst).write_bytes(b"written by someone else just now")
        os.link(src, dst)

    with pytest.raises(TargetExists):
        place(source, target, ops=FileOps(link=racing_link))
    assert Path(target).read_bytes() == b"written by someone else just now" and complete(source)


def test_without_hard_links_place_renames_and_still_never_overwrites(dirs: tuple[Path, Path]) -> None:
    downloads, library = dirs

    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted", src)

    source, target = download(downloads), str(library / "a.flac")
    assert place(source, target, ops=FileOps(link=no_links)) == target
    assert complete(target) and not os.path.exists(source)
    other = download(downloads, b"another file")
    with pytest.raises(TargetExists):
        place(other, target, ops=FileOps(link=no_links))
    assert complete(target) and Path(other).read_bytes() == b"another file"


def test_place_is_idempotent(dirs: tuple[Path, Path]) -> None:
    downloads, library = dirs
    target = str(library / "a.flac")
    source = download(downloads)
    shutil.copyfile(source, target)  # a copy finished, the source not yet removed
    assert place(source, target) == target
    assert complete(target) and not os.path.exists(source)
    assert place(source, target) == target  # source gone, target there: done already
    with pytest.raises(FileNotFoundError):
        place(source, str(library / "never.flac"))


def test_place_refuses_what_is_not_a_regular_file(dirs: tuple[Path, Path]) -> None:
    downloads, library = dirs
    real = download(downloads)
    link = downloads / "link.flac"
    link.symlink_to(real)
    for source in (str(link), str(downloads)):
        with pytest.raises(ValueError, match="regular file"):
            place(source, str(library / "a.flac"))
    assert complete(real) and not (library / "a.flac").exists()


def test_placing_a_file_onto_itself_keeps_it(dirs: tuple[Path, Path]) -> None:
    downloads, library = dirs
    source = download(downloads)
    assert place(source, source) == source and complete(source)
    alias = library / "alias"
    alias.symlink_to(Path(source).parent)
    assert place(source, str(alias / Path(source).name)) and complete(source)


def test_a_real_move_between_filesystems(tmp_path: Path) -> None:
    other = "/dev/shm"
    if not os.path.isdir(other) or os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem to move across")
    with tempfile.TemporaryDirectory(dir=other) as downloads:
        source = os.path.join(downloads, "a.flac")
        Path(source).write_bytes(CONTENT)
        target = str(tmp_path / "library" / "a.flac")
        assert place(source, target) == target
        assert complete(target) and not os.path.exists(source) and not leftovers(tmp_path)


def count_steps(cross: bool, tmp: Path) -> int:
    log: list[str] = []
    downloads, library = tmp / "downloads", tmp / "library"
    downloads.mkdir(parents=True)
    library.mkdir()
    place(
        download(downloads),
        str(library / "Artist" / "Album" / "01.flac"),
        ops=simulated(cross=cross, log=log),
    )
    return len(log)


def attempt(source: str, target: str, cross: bool, crash_at: int | None) -> None:
    with contextlib.suppress(Crash):
        place(source, target, file_mode=0o644, ops=simulated(cross=cross, crash_at=crash_at))
    # Whatever step the crash interrupted: a complete copy survives, and no partial file is in the library.
    assert complete(source) or complete(target)
    assert not os.path.exists(target) or complete(target)


@pytest.mark.parametrize("cross", [False, True], ids=["same-fs", "exdev"])
def test_a_crash_at_any_step_leaves_one_complete_file_after_a_retry(tmp_path: Path, cross: bool) -> None:
    steps = count_steps(cross, tmp_path / "count")
    assert steps >= (12 if cross else 7)  # folders, fsyncs, links, copy, unlinks: every one a crash point
    for crash_at in range(steps + 1):
        base = tmp_path / f"crash-{crash_at}"
        downloads, library = base / "downloads", base / "library"
        downloads.mkdir(parents=True)
        library.mkdir()
        source, target = download(downloads), str(library / "Artist" / "Album" / "01.flac")
        attempt(source, target, cross, crash_at)
        assert place(source, target, file_mode=0o644, ops=simulated(cross=cross)) == target
        assert complete(target) and not os.path.exists(source) and not leftovers(library), crash_at


@settings(max_examples=60, deadline=None)
@given(cross=st.booleans(), crashes=st.lists(st.integers(0, 16), max_size=4))
def test_any_run_of_crashes_then_a_clean_run_leaves_exactly_one_file(cross: bool, crashes: list[int]) -> None:
    base = Path(tempfile.mkdtemp(prefix="harmony-place-"))
    try:
        downloads, library = base / "downloads", base / "library"
        downloads.mkdir()
        library.mkdir()
        source, target = download(downloads), str(library / "Artist" / "Album" / "01.flac")
        for crash_at in crashes:
            attempt(source, target, cross, crash_at)
        place(source, target, ops=simulated(cross=cross))
        assert complete(target) and not os.path.exists(source) and not leftovers(library)
        assert [p.name for p in (library / "Artist" / "Album").iterdir()] == ["01.flac"]
    finally:
        shutil.rmtree(base)


def test_library_file_stays_inside_the_root(tmp_path: Path) -> None:
    root = str(tmp_path / "library")
    assert importer.library_file(root, "A/B/01 T.flac") == os.path.join(root, "A", "B", "01 T.flac")
    for bad in ("../x.flac", "A/../../x.flac", "/etc/passwd", "", ".", "A/\x00.flac"):
        with pytest.raises(ValueError):
            importer.library_file(root, bad)


# --- verify ----------------------------------------------------------------------------------

TOLERANCE = 3.0


def check(
    tmp_path: Path,
    data: bytes,
    *,
    claimed: str,
    duration_s: float,
    min_kbps: int = 0,
    size: int | None = None,
    plausibility: Plausibility = NO_SIZE_CHECKS,
) -> Verdict:
    path = tmp_path / "download"
    path.write_bytes(data)
    return verify(
        str(path),
        expected_size=len(data) if size is None else size,
        claimed_format=claimed,
        duration_ms=round(duration_s * 1000),
        tolerance_s=TOLERANCE,
        min_bitrate_kbps=min_kbps,
        plausibility=plausibility,
    )


@pytest.mark.parametrize(
    ("claimed", "data"),
    [
        ("flac", audio.flac(240.0)),
        ("mp3", audio.mp3(240.0, bitrate=320)),
        ("m4a", audio.m4a(240.0)),
        ("ogg", audio.ogg_vorbis(240.0)),
        ("opus", audio.ogg_opus(240.0)),
        ("MP4", audio.m4a(240.0)),
        (".aac", audio.m4a(240.0)),
        ("vorbis", audio.ogg_vorbis(240.0)),
    ],
)
def test_good_files_pass(tmp_path: Path, claimed: str, data: bytes) -> None:
    verdict = check(tmp_path, data, claimed=claimed, duration_s=241.5)
    assert verdict.ok and verdict.code == "ok" and verdict.info is not None
    assert verdict.info.duration == pytest.approx(240.0, abs=0.03)


def test_complete_files_pass_the_size_checks(tmp_path: Path) -> None:
    strict = Plausibility(long_track_s=1.0)
    flac = audio.flac(2.0, complete=True)
    assert check(tmp_path, flac, claimed="flac", duration_s=2.0, plausibility=strict).ok
    mp3 = audio.mp3(2.0, bitrate=320, complete=True)
    assert check(tmp_path, mp3, claimed="mp3", duration_s=2.0, min_kbps=320, plausibility=strict).ok


def test_missing_and_incomplete_files_are_rejected(tmp_path: Path) -> None:
    gone = verify(
        str(tmp_path / "gone.flac"),
        expected_size=10,
        claimed_format="flac",
        duration_ms=1000,
        tolerance_s=1,
        min_bitrate_kbps=0,
    )
    assert (gone.ok, gone.code) == (False, "missing")
    folder = verify(
        str(tmp_path),
        expected_size=10,
        claimed_format="flac",
        duration_ms=1,
        tolerance_s=1,
        min_bitrate_kbps=0,
    )
    assert folder.code == "missing"
    data = audio.flac(240.0, padding=4000)
    truncated = check(tmp_path, data[:-1000], claimed="flac", duration_s=240.0, size=len(data))
    assert (truncated.ok, truncated.code) == (False, "incomplete") and "of" in truncated.reason
    assert (
        check(tmp_path, data + b"\x00", claimed="flac", duration_s=240.0, size=len(data)).code == "oversized"
    )


def test_a_truncated_file_served_whole_is_rejected(tmp_path: Path) -> None:
    # The peer's size matches what it sent, but the file was cut before it shared it.
    cut_header = audio.flac(240.0)[:30]
    assert check(tmp_path, cut_header, claimed="flac", duration_s=240.0).code == "not_audio"
    mp3 = audio.mp3(4.0, bitrate=320, complete=True)
    cut = check(
        tmp_path, mp3[: len(mp3) // 3], claimed="mp3", duration_s=4.0, plausibility=importer.SIZE_CHECKS
    )
    assert (cut.ok, cut.code) == (False, "implausible_bitrate")


@pytest.mark.parametrize(
    ("claimed", "data"),
    [
        ("mp3", audio.flac(240.0)),  # a FLAC sent as an MP3
        ("flac", audio.mp3(240.0)),  # an MP3 named .flac
        ("ogg", audio.ogg_opus(240.0)),  # Opus is not Vorbis
        ("wav", audio.flac(240.0)),  # not a format Harmony files
        ("", audio.flac(240.0)),
    ],
)
def test_the_wrong_format_is_rejected(tmp_path: Path, claimed: str, data: bytes) -> None:
    verdict = check(tmp_path, data, claimed=claimed, duration_s=240.0)
    assert (verdict.ok, verdict.code) == (False, "wrong_format") and verdict.info is not None


def test_what_is_not_audio_is_rejected(tmp_path: Path) -> None:
    verdict = check(tmp_path, b"<html>404 not found</html>", claimed="flac", duration_s=240.0)
    assert (verdict.ok, verdict.code, verdict.info) == (False, "not_audio", None)


@pytest.mark.parametrize(
    ("actual", "ok"), [(240.0, True), (237.1, True), (242.9, True), (236.5, False), (200.0, False)]
)
def test_the_duration_must_be_within_tolerance(tmp_path: Path, actual: float, ok: bool) -> None:
    verdict = check(tmp_path, audio.flac(actual), claimed="flac", duration_s=240.0)
    assert verdict.ok == ok and verdict.code == ("ok" if ok else "duration")
    if not ok:
        assert "wanted 4:00" in verdict.reason


def test_a_bitrate_below_the_requirement_is_rejected(tmp_path: Path) -> None:
    liar = audio.mp3(240.0, bitrate=128)  # advertised as 320 kbps in the search results
    verdict = check(tmp_path, liar, claimed="mp3", duration_s=240.0, min_kbps=320)
    assert (verdict.ok, verdict.code) == (False, "low_bitrate") and "128 kbps" in verdict.reason
    assert check(tmp_path, liar, claimed="mp3", duration_s=240.0, min_kbps=128).ok


def test_implausible_bitrates_are_rejected(tmp_path: Path) -> None:
    checks = importer.SIZE_CHECKS
    # A FLAC of four minutes in a few kilobytes holds no lossless audio.
    hollow = check(tmp_path, audio.flac(240.0), claimed="flac", duration_s=240.0, plausibility=checks)
    assert (hollow.ok, hollow.code) == (False, "implausible_bitrate") and "lossless" in hollow.reason
    # Short tracks are spared the lossless floor (silence and speech compress well).
    assert check(tmp_path, audio.flac(20.0), claimed="flac", duration_s=20.0, plausibility=checks).ok
    # An MP3 whose headers say 320 kbps but whose size carries 128.
    seconds = 5.0
    headers_320 = audio.mp3(seconds, bitrate=320)
    sized_128 = headers_320 + bytes(round(seconds * 128_000 / 8) - len(headers_320))
    liar = check(tmp_path, sized_128, claimed="mp3", duration_s=seconds, min_kbps=320, plausibility=checks)
    assert (liar.ok, liar.code) == (False, "implausible_bitrate") and "sized like 128 kbps" in liar.reason
    # The same checks, turned off, let the fakes' tiny files through.
    assert check(tmp_path, sized_128, claimed="mp3", duration_s=seconds, min_kbps=320).ok


def test_verify_reads_but_never_changes_the_file(tmp_path: Path) -> None:
    data = audio.mp3(240.0)
    check(tmp_path, data, claimed="flac", duration_s=10.0)
    assert (tmp_path / "download").read_bytes() == data


def test_ops_default_to_the_real_system_calls() -> None:
    assert importer.OS.link is os.link and importer.OS.rename is os.rename and importer.OS.fsync is os.fsync
