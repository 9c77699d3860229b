"""The music library on disk: the readiness checks of the directories Harmony reads and writes.

Harmony writes only below the library root, reads completed downloads from slskd's download
directory, and moves files from the one to the other; these checks say, by exact path and
with the user and group Harmony runs as, which of that cannot be done.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile


def _who() -> str:
    return f"uid {os.getuid()}, gid {os.getgid()}"


def writable(path: str, what: str = "library") -> str:
    """For /ready: `path` exists (created if missing) and Harmony's user can write into it."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise PermissionError(
            f"{what} {path} cannot be created ({exc.strerror}; Harmony runs as {_who()})"
        ) from None
    if not os.path.isdir(path):
        raise NotADirectoryError(f"{what} {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {path} is not writable by Harmony's user ({_who()})")
    return path


def readable(path: str) -> str:
    """For /ready: slskd's download directory is visible here (shared or bind-mounted) and
    readable, so completed downloads can be found."""
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"slskd download directory {path} does not exist here (set slskd.downloads_dir)"
        )
    if not os.access(path, os.R_OK | os.X_OK):
        raise PermissionError(f"slskd download directory {path} is not readable by Harmony's user ({_who()})")
    return path


def move_possible(downloads: str, library: str) -> str:
    """For /ready: a file can be moved from `downloads` into `library`.

    Probes with a real file: created in the download directory, renamed into the library.
    Across filesystems the rename fails with EXDEV; imports then copy, fsync and rename, which
    works but costs the copy, so that is reported, not failed.
    """
    os.makedirs(library, exist_ok=True)
    try:
        handle, source = tempfile.mkstemp(dir=downloads, prefix=".harmony-probe-")
    except OSError as exc:
        raise PermissionError(
            f"cannot create a file in {downloads} ({exc.strerror}; Harmony runs as {_who()})"
        ) from None
    os.close(handle)
    target = os.path.join(library, os.path.basename(source))
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise PermissionError(f"cannot move {source} into {library}: {exc.strerror}") from None
        return "different filesystems: imports copy, then rename"
    finally:
        for leftover in (source, target):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    return "same filesystem: imports are atomic renames"
