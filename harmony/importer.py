"""Import, file by file: verifying a downloaded file and placing it in the library.

`verify(path, ...)` decides whether a completed download is the audio it should be and returns a
`Verdict` (a reason code and text when it is not). `place(source, target)` moves a file to its
library path atomically and never overwrites: a crash at any point leaves the old file or the new
one complete, and calling `place` again finishes the move. `library_file(root, relative)` joins a
`naming.library_path` to the library root and refuses anything outside it. These hold no state and
touch no table; the import job builds on them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from .tags import AudioInfo, NotAudio, audio_info

_CHUNK = 1024 * 1024
# link() fails with these where the filesystem (FAT, exFAT, some network mounts) or the kernel's
# protected_hardlinks setting refuses hard links; `place` then renames after checking the target.
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EACCES, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}
)
_FORMAT_ALIASES = {
    "flac": "flac",
    "mp3": "mp3",
    "m4a": "m4a",
    "mp4": "m4a",
    "aac": "m4a",
    "alac": "m4a",
    "ogg": "ogg",
    "oga": "ogg",
    "vorbis": "ogg",
    "opus": "opus",
}


class TargetExists(Exception):
    """`place` found a different file at the target. Nothing was moved; the caller decides which
    copy to keep."""

    def __init__(self, source: str, target: str) -> None:
        super().__init__(f"{target} already exists and differs from {source}")
        self.source = source
        self.target = target


@dataclass(frozen=True)
class FileOps:
    """The system calls `place` makes that change or flush the filesystem. Tests pass their own to
    simulate a move between filesystems (`EXDEV`) and a crash after any step."""

    link: Callable[[str, str], None] = os.link
    rename: Callable[[str, str], None] = os.rename
    unlink: Callable[[str], None] = os.unlink
    fsync: Callable[[int], None] = os.fsync
    copy: Callable[[BinaryIO, BinaryIO], None] = shutil.copyfileobj


OS = FileOps()


def place(
    source: str,
    target: str,
    *,
    file_mode: int | None = None,
    dir_mode: int | None = None,
    ops: FileOps = OS,
) -> str:
    """Move the regular file `source` to `target` and return `target`.

    On one filesystem the move is a hard link then an unlink of the source (a rename would silently
    replace a file that appeared at the target). Across filesystems (`EXDEV`) the source is copied to
    a hidden temporary name in the target's folder, fsynced, linked to the target, the folder fsynced,
    and only then is the source removed. Missing folders are created (with `dir_mode`) and made
    durable; the target gets `file_mode` if given.

    Never overwrites: a different file at the target raises `TargetExists`. Safe to call again after
    a crash at any point: if the target already holds the source's content the source is removed, a
    stale temporary copy is removed, and a missing source with the target present counts as done.
    Raises FileNotFoundError when neither exists, ValueError when the source is not a regular file."""
    temp = _temp_name(target)
    if not os.path.lexists(source):
        if os.path.lexists(target):
            _discard(temp, ops)
            return target
        raise FileNotFoundError(errno.ENOENT, "no file to place", source)
    if not stat.S_ISREG(os.lstat(source).st_mode):
        raise ValueError(f"not a regular file: {source}")
    if os.path.realpath(source) == os.path.realpath(target):
        return target
    if os.path.lexists(target):
        return _settle(source, target, temp, file_mode, ops)
    directory = os.path.dirname(target) or "."
    _makedirs(directory, dir_mode, ops)
    _discard(temp, ops)  # a partial copy from an interrupted call
    try:
        _fsync_file(source, ops)  # the data must be durable before a second name points at it
        _publish(source, target, ops)
    except FileExistsError:
        return _settle(source, target, temp, file_mode, ops)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        _copy(source, temp, file_mode, ops)
        try:
            _publish(temp, target, ops)
        except FileExistsError:
            return _settle(source, target, temp, file_mode, ops)
        _discard(temp, ops)
    if file_mode is not None:
        os.chmod(target, file_mode)
    _fsync_dir(directory, ops)
    _discard(source, ops)
    return target


def library_file(root: str, relative: str) -> str:
    """`relative` (a `naming.library_path`) joined to the library `root`. Raises ValueError if the
    result would not lie inside `root`: the last check before anything is written."""
    if os.path.isabs(relative) or "\x00" in relative:
        raise ValueError(f"not a relative library path: {relative!r}")
    root = os.path.normpath(os.path.abspath(root))
    path = os.path.normpath(os.path.join(root, relative))
    if os.path.commonpath([root, path]) != root or path == root:
        raise ValueError(f"{relative!r} leaves the library root")
    return path


# --- the steps of a move --------------------------------------------------------------------


def _temp_name(target: str) -> str:
    # One fixed name per target, so a later call finds a copy an interrupted one left; hidden, so
    # players and scanners skip it; hashed, so it fits in 255 bytes whatever the target's length.
    digest = hashlib.sha256(os.path.basename(target).encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return os.path.join(os.path.dirname(target), f".harmony-{digest}.part")


def _publish(source: str, target: str, ops: FileOps) -> None:
    """Give `source`'s file the name `target` on the same filesystem, failing with FileExistsError
    rather than replacing a file there."""
    try:
        ops.link(source, target)
    except OSError as e:
        if e.errno not in _NO_HARD_LINKS:
            raise
        # No hard links here: rename, after a check. Only a file created in the instant between the
        # two could be replaced, which a library written by one importer does not see.
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "target exists", target) from None
        ops.rename(source, target)


def _copy(source: str, temp: str, file_mode: int | None, ops: FileOps) -> None:
    # O_EXCL: never write through a file or link someone else put at the temporary name.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with open(fd, "wb") as out, open(source, "rb") as src:
        ops.copy(src, out)
        out.flush()
        os.fchmod(fd, file_mode if file_mode is not None else stat.S_IMODE(os.fstat(src.fileno()).st_mode))
        ops.fsync(fd)


def _settle(source: str, target: str, temp: str, file_mode: int | None, ops: FileOps) -> str:
    """The target exists: the move is finished if it holds the source's content, else a collision."""
    _discard(temp, ops)
    if not (stat.S_ISREG(os.lstat(target).st_mode) and _same_content(source, target)):
        raise TargetExists(source, target)
    if file_mode is not None:
        os.chmod(target, file_mode)
    _fsync_dir(os.path.dirname(target) or ".", ops)  # the target's name is durable before the source goes
    _discard(source, ops)
    return target


def _same_content(a: str, b: str) -> bool:
    if os.path.samefile(a, b):
        return True
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            chunk = fa.read(_CHUNK)
            if chunk != fb.read(_CHUNK):
                return False
            if not chunk:
                return True


def _makedirs(directory: str, mode: int | None, ops: FileOps) -> None:
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
        if mode is not None:
            os.chmod(path, mode)  # mkdir's mode is filtered by the umask
        _fsync_dir(os.path.dirname(path) or ".", ops)  # a new folder's name must be durable too


def _fsync_file(path: str, ops: FileOps) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        ops.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str, ops: FileOps) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        ops.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise  # some network filesystems cannot fsync a folder; nothing more can be done there
    finally:
        os.close(fd)


def _discard(path: str, ops: FileOps) -> None:
    with contextlib.suppress(FileNotFoundError):
        ops.unlink(path)


# --- verification ------------------------------------------------------------------------


@dataclass(frozen=True)
class Plausibility:
    """Size checks on top of what the headers say. `lossless_floor_kbps`: a lossless file of at least
    `long_track_s` seconds averaging less than this (by its size) is not what it claims. `mp3_size_ratio`:
    an MP3 whose size carries less than this share of the bitrate its headers declare is rejected. Zero
    turns a check off; the fakes' tiny files, which declare minutes in kilobytes, need `NO_SIZE_CHECKS`."""

    lossless_floor_kbps: int = 300
    long_track_s: float = 60.0
    mp3_size_ratio: float = 0.8


SIZE_CHECKS = Plausibility()
NO_SIZE_CHECKS = Plausibility(lossless_floor_kbps=0, mp3_size_ratio=0.0)


@dataclass(frozen=True)
class Verdict:
    """`ok`, or why not: `code` is one of ok, missing, incomplete, oversized, not_audio, wrong_format,
    duration, low_bitrate, implausible_bitrate; `reason` says it for a person. `info` is the parsed
    stream when the file could be read."""

    ok: bool
    code: str
    reason: str
    info: AudioInfo | None = None


def verify(
    path: str,
    *,
    expected_size: int,
    claimed_format: str,
    duration_ms: int,
    tolerance_s: float,
    min_bitrate_kbps: int,
    plausibility: Plausibility = SIZE_CHECKS,
) -> Verdict:
    """Whether the file at `path` is the complete audio a transfer promised: a regular file of
    `expected_size` bytes (as the transfer reported), audio that mutagen reads as `claimed_format`
    (flac, mp3, m4a, ogg or opus; mp4, aac, oga and vorbis are accepted aliases), lasting `duration_ms`
    within `tolerance_s`, at no less than `min_bitrate_kbps` by its headers, and of a size that
    fits its format (see `Plausibility`). Reads the file; never changes it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Verdict(False, "missing", f"no file at {path}")
    if not stat.S_ISREG(st.st_mode):
        return Verdict(False, "missing", f"{path} is not a regular file")
    if st.st_size < expected_size:
        return Verdict(False, "incomplete", f"{st.st_size} of {expected_size} bytes")
    if st.st_size > expected_size:
        return Verdict(False, "oversized", f"{st.st_size} bytes where the transfer reported {expected_size}")
    try:
        info = audio_info(path)
    except NotAudio as e:
        return Verdict(False, "not_audio", e.reason)
    return _check_stream(
        info, st.st_size, claimed_format, duration_ms, tolerance_s, min_bitrate_kbps, plausibility
    )


def _check_stream(
    info: AudioInfo,
    size: int,
    claimed_format: str,
    duration_ms: int,
    tolerance_s: float,
    min_bitrate_kbps: int,
    plausibility: Plausibility,
) -> Verdict:
    claimed = _FORMAT_ALIASES.get(claimed_format.strip().lower().lstrip("."))
    if claimed != info.format:
        return Verdict(
            False, "wrong_format", f"claimed {claimed_format or 'no format'}, is {info.format}", info
        )
    wanted = duration_ms / 1000
    if abs(info.duration - wanted) > tolerance_s:
        text = f"lasts {_clock(info.duration)}, wanted {_clock(wanted)} ± {tolerance_s:g} s"
        return Verdict(False, "duration", text, info)
    if info.bitrate_kbps < min_bitrate_kbps:
        text = f"{info.bitrate_kbps} kbps, below the {min_bitrate_kbps} kbps required"
        return Verdict(False, "low_bitrate", text, info)
    carried = size * 8 / info.duration / 1000  # kbps the file's size can hold, tags included
    floor = plausibility.lossless_floor_kbps
    if info.lossless and info.duration >= plausibility.long_track_s and carried < floor:
        text = f"lossless at {carried:.0f} kbps over {_clock(info.duration)}, under the {floor} kbps floor"
        return Verdict(False, "implausible_bitrate", text, info)
    if info.format == "mp3" and carried < plausibility.mp3_size_ratio * info.bitrate_kbps:
        text = f"declares {info.bitrate_kbps} kbps but is sized like {carried:.0f} kbps"
        return Verdict(False, "implausible_bitrate", text, info)
    return Verdict(True, "ok", f"{info.format}, {_clock(info.duration)}, {info.bitrate_kbps} kbps", info)


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
