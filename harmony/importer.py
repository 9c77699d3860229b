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
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from . import events, library, naming, ranking, search, wanted
from .config import Config
from .db import Database, Row
from .downloads import Locator
from .errors import Conflict, Invalid, NotFound
from .jobs import GiveUp, Job, Later
from .metrics import Metrics
from .tags import (
    JPEG,
    AudioInfo,
    BadCover,
    Cover,
    NotAudio,
    Tags,
    audio_info,
    cover_art,
    read_tags,
    write_tags,
)
from .transfers import Download, Transfers

log = logging.getLogger(__name__)

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


# --- the import job ----------------------------------------------------------------------------

JOB = "import"
LOCATE_GRACE_S = 120.0  # slskd moves a finished file out of `incomplete` within moments
COVER_FILE = "cover.jpg"


@dataclass(frozen=True)
class Outcome:
    """What one import did: `imported`, `replaced` (a worse copy went to quarantine),
    `duplicate` (the library's copy was as good; this one went to quarantine) or `refused`."""

    outcome: str
    path: str | None = None
    reason: str = ""


class Importer:
    """The import job: a finished download becomes a verified, tagged file in the library, or a
    quarantined one with the reason and its item back on its next candidate. Owns `quarantine`.

    Every step can be repeated after a crash: the file is found by its transfer, the library
    path is chosen and stored before the move, the quarantine path is a function of the transfer,
    and `place` finishes an interrupted move; so a `kill -9` at any point leaves one complete
    file and an index that agrees with it."""

    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        live: Callable[[], Config],
        *,
        locator: Locator,
        transfers: Transfers,
        cover: Callable[[str], bytes | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db, self.metrics, self.live = db, metrics, live
        self.locator, self.transfers, self.cover = locator, transfers, cover
        self.clock = clock

    # --- the job -------------------------------------------------------------------------------

    def run(self, job: Job) -> None:
        transfer_id = job.payload.get("transfer_id")
        if not isinstance(transfer_id, int):
            raise GiveUp("import job without a transfer id")
        try:
            download = self.transfers.get(transfer_id)
            item = wanted.get(self.db, download.item_id) if download.item_id is not None else None
        except NotFound:
            return  # the item was forgotten: its file stays, and the orphan report lists it
        if item is None:
            return
        if item.state == "downloaded":
            with self.db.write() as conn:
                item = wanted.transition(
                    conn,
                    item.id,
                    "importing",
                    "importing",
                    f"verifying {_leaf(download.filename)}",
                    next_action="tag and file it in the library",
                    data={"transfer_id": download.id},
                )
        elif item.state != "importing":
            return  # imported already, or the item moved on (marked wrong, retried)
        held = self.db.query_one("SELECT * FROM quarantine WHERE transfer_id = ?", (download.id,))
        if held is None:
            self._import(download, item)
        elif held["code"] == "duplicate":  # a crash came after the file was set aside: finish
            self._duplicate(download, item, held["origin"], held["reason"])
        else:
            self._refuse(download, held["origin"], held["code"], held["reason"])

    def _import(self, download: Download, item: wanted.Item) -> Outcome:
        config = self.live()
        source = download.local_path
        if download.library_path is None:
            source = source or self.locator.locate(download.slskd_id, download.filename, download.size)
            if source is None:
                if self.clock() - (download.finished_at or self.clock()) < LOCATE_GRACE_S:
                    raise Later(10.0, "the file is not in slskd's download directory yet")
                return self._refuse(
                    download, None, "missing", "the finished file is not in slskd's download directory"
                )
            if source != download.local_path:
                with self.db.write() as conn:
                    conn.execute("UPDATE transfers SET local_path = ? WHERE id = ?", (source, download.id))
            verdict = self._verify(source, item, _extension(download.filename), download.size, config)
            if not verdict.ok or verdict.info is None:
                return self._refuse(download, source, verdict.code, verdict.reason)
            relative, kept = self._make_room(item, verdict.info, config, download=download, source=source)
            if kept is not None:
                return kept
            with self.db.write() as conn:
                conn.execute("UPDATE transfers SET library_path = ? WHERE id = ?", (relative, download.id))
        else:
            relative = download.library_path
        assert source is not None
        return self._file(item, source, relative, config, transfer_id=download.id)

    # --- verifying ---------------------------------------------------------------------------------

    def _verify(self, path: str, item: wanted.Item, fmt: str, size: int, config: Config) -> Verdict:
        return verify(
            path,
            expected_size=size,
            claimed_format=fmt,
            duration_ms=item.duration_ms,
            tolerance_s=float(config["search.duration_tolerance"]),
            min_bitrate_kbps=int(config["search.min_bitrate"]),
            plausibility=SIZE_CHECKS if config["search.check_size"] else NO_SIZE_CHECKS,
        )

    # --- collisions --------------------------------------------------------------------------------

    def _make_room(
        self,
        item: wanted.Item,
        info: AudioInfo,
        config: Config,
        *,
        download: Download | None = None,
        source: str,
    ) -> tuple[str, Outcome | None]:
        """The library path for the new file, after the collision rule: every copy of the same
        recording (and a file at the path) is compared by the quality ladder; when one is as good,
        the new file goes to quarantine and the item is done with the library's copy; else the
        worse copies go to quarantine. A different recording at the path gets the name " (2)"."""
        root = self.library_root(config)
        relative = naming.library_path(_name_fields(item, info.format), config["library.template"])
        prefs = search.preferences(config)
        new = ranking.quality_key(info.format, info.bit_depth, info.sample_rate, info.bitrate_kbps, prefs)
        with self.db.write() as conn:
            copies = library.same_recording(
                conn,
                spotify_id=item.spotify_id,
                isrc=item.isrc,
                identity=item.identity,
                duration_ms=item.duration_ms,
            )
            at_path = next(
                iter(conn.execute("SELECT * FROM library_tracks WHERE path = ?", (relative,))), None
            )
        rows = {row["id"]: row for row in copies}
        if at_path is not None and at_path["id"] not in rows and at_path["identity"] != item.identity:
            relative = self._free_name(root, relative)
        elif at_path is not None:
            rows[at_path["id"]] = at_path
        present = [row for row in rows.values() if os.path.isfile(library_file(root, row["path"]))]
        gone = [row for row in rows.values() if row not in present]
        if gone:
            with self.db.write() as conn:
                for row in gone:
                    library.forget(conn, row["path"])
        better = [
            row
            for row in present
            if ranking.quality_key(row["format"], row["bit_depth"], row["sample_rate"], row["bitrate"], prefs)
            <= new
        ]
        if better:
            why = f"the library already has {better[0]['path']}, as good or better"
            if download is not None:
                return relative, self._duplicate(download, item, source, why)
            raise Conflict(why, path=better[0]["path"])
        for row in present:
            self._set_aside_library(
                row, "replaced", f"a better copy was imported for item {item.id}", item.id
            )
        target = library_file(root, relative)
        if os.path.lexists(target) and not any(row["path"] == relative for row in present):
            relative = self._free_name(root, relative)  # a file the index does not know: never replaced
        return relative, None

    def _free_name(self, root: str, relative: str) -> str:
        stem, ext = os.path.splitext(relative)
        for n in range(2, 100):
            candidate = f"{stem} ({n}){ext}"
            if not os.path.lexists(library_file(root, candidate)):
                return candidate
        raise Conflict(f"no free name next to {relative}")

    def _duplicate(self, download: Download, item: wanted.Item, source: str, why: str) -> Outcome:
        """The library's copy stays; this download goes to quarantine and the item is done."""
        held = self._hold(source, "duplicate", why, download)
        with self.db.write() as conn:
            wanted.transition(
                conn,
                item.id,
                "done",
                "already_owned",
                f"{why}; the download was set aside",
                data={"quarantine": held, "transfer_id": download.id},
            )
        self.metrics.imports.labels("duplicate").inc()
        return Outcome("duplicate", None, why)

    # --- filing ----------------------------------------------------------------------------------------

    def _file(
        self, item: wanted.Item, source: str, relative: str, config: Config, *, transfer_id: int | None
    ) -> Outcome:
        root = self.library_root(config)
        target = library_file(root, relative)
        if os.path.lexists(source):
            cover = self._cover(item, config)
            try:
                write_tags(source, _tags(item, cover))
                audio_info(source)  # the file is still audio after its tags were rewritten
            except NotAudio as exc:
                return self._refused_by_tagging(transfer_id, item, source, exc.reason)
            try:
                place(
                    source, target, file_mode=config["library.file_mode"], dir_mode=config["library.dir_mode"]
                )
            except TargetExists:  # appeared since the path was chosen: never replaced
                relative = self._free_name(root, relative)
                target = library_file(root, relative)
                place(
                    source, target, file_mode=config["library.file_mode"], dir_mode=config["library.dir_mode"]
                )
            if cover is not None and config["library.cover_file"]:
                self._cover_file(os.path.dirname(target), cover, config)
            self._tidy(os.path.dirname(source))
        elif not os.path.isfile(target):
            raise GiveUp(f"neither {source} nor {target} exists")
        st = os.stat(target)
        entry = library.Entry.of(
            relative, read_tags(target, cover=False), audio_info(target), st.st_size, st.st_mtime, item.id
        )
        now = self.clock()
        with self.db.write() as conn:
            library.record(conn, entry, now)
            if transfer_id is not None:
                conn.execute("UPDATE transfers SET library_path = ? WHERE id = ?", (relative, transfer_id))
            wanted.transition(
                conn,
                item.id,
                "done",
                "imported",
                f"filed as {relative}",
                data={"path": relative, "transfer_id": transfer_id},
                now=now,
            )
        self.metrics.imports.labels("imported").inc()
        self.metrics.wanted_to_library.observe(max(0.0, now - item.created_at))
        return Outcome("imported", relative)

    def _cover(self, item: wanted.Item, config: Config) -> Cover | None:
        if not item.cover_url or config["library.cover_max"] <= 0:
            return None
        data = self.cover(item.cover_url)
        if not data:
            return None
        try:
            return cover_art(data, max_bytes=config["library.cover_max"])
        except BadCover as exc:
            log.info("cover_refused", extra={"fields": {"item": item.id, "why": str(exc)}})
            return None

    def _tidy(self, folder: str) -> None:
        """Remove the download's folder once the last file left it (slskd leaves it behind)."""
        if self.locator.inside_dir(folder):
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only ever an empty folder

    def _cover_file(self, folder: str, cover: Cover, config: Config) -> None:
        """cover.jpg in the album folder, once: a file already there (the user's) stays."""
        if cover.mime != JPEG or os.path.lexists(os.path.join(folder, COVER_FILE)):
            return
        temp = os.path.join(folder, f".harmony-{os.getpid()}-{COVER_FILE}.part")
        with open(temp, "wb") as handle:
            handle.write(cover.data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, config["library.file_mode"])
        try:
            place(temp, os.path.join(folder, COVER_FILE))
        except TargetExists:
            os.unlink(temp)

    # --- refusing ------------------------------------------------------------------------------------

    def _refuse(self, download: Download, source: str | None, code: str, why: str) -> Outcome:
        """The download is not the audio it should be: set the file aside, then move the item on."""
        if source is not None:
            self._hold(source, code, why, download)
        with self.db.write() as conn:
            self.transfers.file_rejected(conn, download, code, why)
        self.metrics.imports.labels("refused").inc()
        return Outcome("refused", None, why)

    def _refused_by_tagging(
        self, transfer_id: int | None, item: wanted.Item, source: str, why: str
    ) -> Outcome:
        if transfer_id is None:
            raise Invalid(f"the file cannot be tagged: {why}")
        return self._refuse(self.transfers.get(transfer_id), source, "not_audio", f"cannot be tagged: {why}")

    # --- quarantine ------------------------------------------------------------------------------------

    def _hold(self, source: str, code: str, why: str, download: Download) -> str:
        """Move a downloaded file to quarantine and record why; returns its quarantine path. The
        path is a function of the transfer, so a repeat after a crash finds the same one."""
        relative = f"transfer-{download.id}/{naming.safe_name(_leaf(download.filename), 'file')}"
        return self._move_to_quarantine(
            source,
            relative,
            code,
            why,
            item_id=download.item_id,
            transfer_id=download.id,
            username=download.username,
            filename=download.filename,
        )

    def _set_aside_library(self, row: Row, code: str, why: str, item_id: int | None) -> str:
        """Move a library file to quarantine and drop it from the index."""
        root = self.library_root(self.live())
        relative = f"library-{row['id']}/{naming.safe_name(os.path.basename(row['path']), 'file')}"
        held = self._move_to_quarantine(library_file(root, row["path"]), relative, code, why, item_id=item_id)
        with self.db.write() as conn:
            library.forget(conn, row["path"])
        return held

    def _move_to_quarantine(
        self,
        source: str,
        relative: str,
        code: str,
        why: str,
        *,
        item_id: int | None,
        transfer_id: int | None = None,
        username: str | None = None,
        filename: str | None = None,
    ) -> str:
        config = self.live()
        target = library_file(config.quarantine_dir, relative)
        size = os.path.getsize(source) if os.path.isfile(source) else 0
        with self.db.write() as conn:
            conn.execute(
                SQL_HOLD,
                (
                    item_id,
                    transfer_id,
                    relative,
                    source,
                    username,
                    filename,
                    code,
                    why[:500],
                    size,
                    self.clock(),
                ),
            )
            if conn.changes():  # a repeat after a crash finds its row and records nothing twice
                held_id = conn.last_insert_rowid()
                events.record(
                    conn,
                    "quarantine.added",
                    item_id=item_id,
                    code=code,
                    message=why,
                    data={"path": relative, "quarantine_id": held_id},
                    now=self.clock(),
                )
        if os.path.lexists(source) or not os.path.lexists(target):
            place(source, target, dir_mode=0o700)
        self.metrics.quarantined.labels(code).inc()
        log.info("quarantined", extra={"fields": {"path": relative, "code": code, "why": why}})
        return relative

    def quarantined(self, *, after: tuple[Any, ...] | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """One page of the quarantine, newest first."""
        where, args = ("WHERE id < ?", (after[0],)) if after else ("", ())
        rows = self.db.query(f"SELECT * FROM quarantine {where} ORDER BY id DESC LIMIT ?", (*args, limit))
        return [_held_view(row, self.live().quarantine_dir) for row in rows]

    def held(self, quarantine_id: int) -> dict[str, Any]:
        row = self.db.query_one("SELECT * FROM quarantine WHERE id = ?", (quarantine_id,))
        if row is None:
            raise NotFound(f"no quarantined file {quarantine_id}", id=quarantine_id)
        return _held_view(row, self.live().quarantine_dir)

    def delete(self, quarantine_id: int) -> None:
        """Delete a quarantined file and its record."""
        held = self.held(quarantine_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(library_file(self.live().quarantine_dir, held["path"]))
        with self.db.write() as conn:
            conn.execute("DELETE FROM quarantine WHERE id = ?", (quarantine_id,))
            events.record(
                conn,
                "quarantine.deleted",
                item_id=held["item_id"],
                code=held["code"],
                message=held["path"][:300],
            )

    def retry(self, quarantine_id: int) -> Outcome:
        """Import a quarantined file for its item after all (the operator judges it right, or
        changed an option): it is verified again against the item, then tagged and filed.
        Invalid with the reason when it still fails; Conflict when its item is done or has a
        download under way."""
        held = self.held(quarantine_id)
        if held["item_id"] is None:
            raise Conflict("the file belongs to no wanted item; move it into the library by hand")
        item = wanted.get(self.db, held["item_id"])
        if item.state not in ("wanted", "found", "not_found", "failed", "paused"):
            raise Conflict(
                f"item {item.id} is {item.state}; retry when it is not being acquired", state=item.state
            )
        config = self.live()
        path = library_file(config.quarantine_dir, held["path"])
        if not os.path.isfile(path):
            raise Conflict(f"the quarantined file {held['path']} is gone")
        fmt = os.path.splitext(path)[1].lstrip(".").lower()
        # A download must still be the size its transfer promised; a library file, as it is.
        transfer = self.transfers.get(held["transfer_id"]) if held["transfer_id"] is not None else None
        size = transfer.size if transfer is not None else os.path.getsize(path)
        verdict = self._verify(path, item, fmt, size, config)
        if not verdict.ok or verdict.info is None:
            raise Invalid(f"the file still fails verification: {verdict.reason}", check=verdict.code)
        relative, _ = self._make_room(item, verdict.info, config, source=path)
        with self.db.write() as conn:
            wanted.transition(
                conn, item.id, "importing", "retry_quarantined", f"importing quarantined {held['path']}"
            )
            conn.execute("DELETE FROM quarantine WHERE id = ?", (quarantine_id,))
            if held["username"] and held["filename"]:
                conn.execute(
                    "DELETE FROM bad_files WHERE username = ? AND filename = ?",
                    (held["username"], held["filename"]),
                )
        return self._file(
            wanted.get(self.db, item.id), path, relative, config, transfer_id=held["transfer_id"]
        )

    def wrong(self, item_id: int) -> wanted.Item:
        """The item's file is not the recording: out of the library into quarantine, and the
        item is wanted anew (see `Transfers.wrong`)."""
        filed = self.db.query_one(
            "SELECT * FROM library_tracks WHERE item_id = ? ORDER BY id DESC LIMIT 1", (item_id,)
        )
        with self.db.write() as conn:
            self.transfers.wrong(conn, item_id)
        if filed is not None:
            self._set_aside_library(filed, "wrong", "marked wrong by the operator", item_id)
        return wanted.get(self.db, item_id)

    def library_root(self, config: Config) -> str:
        return config.library_dir


SQL_HOLD = """
    INSERT INTO quarantine (item_id, transfer_id, path, origin, username, filename, code, reason, size, at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (path) DO NOTHING
"""


def _held_view(row: Row, root: str) -> dict[str, Any]:
    view = dict(row)
    view["present"] = os.path.isfile(os.path.join(root, row["path"]))
    return view


def _leaf(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _extension(filename: str) -> str:
    return os.path.splitext(_leaf(filename))[1].lstrip(".").lower()


def _name_fields(item: wanted.Item, fmt: str) -> dict[str, object]:
    return {
        "album_artist": item.album_artist or (item.artists[0] if item.artists else ""),
        "artist": list(item.artists),
        "album": item.album,
        "title": item.title,
        "year": item.release_date[:4],
        "track_number": item.track_number,
        "disc_number": item.disc_number,
        "total_discs": item.disc_total,
        "ext": fmt,
    }


def _number(value: int | None) -> int | None:
    return value if value is not None and 1 <= value <= 0xFFFF else None


def _tags(item: wanted.Item, cover: Cover | None) -> Tags:
    track, disc = _number(item.track_number), _number(item.disc_number)
    return Tags(
        title=item.title,
        artists=tuple(item.artists),
        album=item.album,
        album_artist=item.album_artist or (item.artists[0] if item.artists else ""),
        track_number=track,
        track_total=_number(item.track_total) if track else None,
        disc_number=disc,
        disc_total=_number(item.disc_total) if disc else None,
        date=item.release_date,
        isrc=item.isrc or "",
        spotify_track_id=item.spotify_id or "",
        spotify_album_id=item.spotify_album_id or "",
        spotify_artist_ids=tuple(item.spotify_artist_ids),
        cover=cover,
    )
