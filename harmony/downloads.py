"""slskd's download directory: finding the file a finished transfer left there, safely.

slskd writes a finished download to `<downloads>/<remote parent folder>/<name>` (0.26's default
subdirectory template keeps that layout) and, when that name is taken, to
`<name>_<ticks><ext>`; it records the final path in a `DownloadFileComplete` event (contract
§A.7, §A.8). So a name is not an identity: the event, found by the transfer's id, is the
authority, and the layout is the fallback when the event log has no such event. Either way the
path must be a regular file inside Harmony's view of the download directory: a remote name never
becomes a path outside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable, Collection

from .errors import UpstreamCoolingDown, UpstreamRejected, UpstreamUnavailable
from .slskd import Slskd

EVENT_PAGES = 5  # pages of slskd's event log read for one transfer (newest first)
EVENT_PAGE = 100
_TICKS = re.compile(r"_\d{15,20}$")  # slskd's collision suffix: .NET ticks


class Locator:
    """Finds finished downloads. `root` is slskd's download directory as Harmony sees it (the
    `slskd.downloads_dir` option); slskd may see it under another path (a container's mount),
    which `/options` gives and events use."""

    def __init__(self, slskd: Slskd, root: str, *, claimed: Callable[[], Collection[str]] = tuple) -> None:
        self.slskd = slskd
        self.root = root
        # Local paths other transfers already own: the layout fallback never picks one twice.
        self.claimed = claimed

    def locate(self, transfer_id: str | None, remote: str, size: int) -> str | None:
        """The path of the transfer's file, or None when it is not (yet) there."""
        if transfer_id:
            found = self._from_events(transfer_id)
            if found is not None:
                return found
        return self._from_layout(remote, size)

    def inside(self, path: str) -> str | None:
        """`path` when it is a regular file (not a link) inside the download directory, else None."""
        root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if os.path.commonpath([root, real]) != root or real == root:
            return None
        try:
            return real if stat.S_ISREG(os.lstat(real).st_mode) else None
        except OSError:
            return None

    def inside_dir(self, path: str) -> bool:
        """Whether `path` is a folder inside (not at) the download directory."""
        root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        return real != root and os.path.commonpath([root, real]) == root and os.path.isdir(real)

    # --- the event log -----------------------------------------------------------------------

    def _from_events(self, transfer_id: str) -> str | None:
        try:
            slskd_root = self.slskd.options().downloads_dir
            for page in range(EVENT_PAGES):
                events = self.slskd.completed_files(offset=page * EVENT_PAGE, limit=EVENT_PAGE)
                for event_id, local in events:
                    if event_id == transfer_id:
                        return self.inside(self._mapped(local, slskd_root))
                if len(events) < EVENT_PAGE:
                    break
        except (UpstreamUnavailable, UpstreamCoolingDown, UpstreamRejected):
            pass  # an slskd without events, or not answering now: the layout decides
        return None

    def _mapped(self, local: str, slskd_root: str) -> str:
        """slskd's path for a file as a path here: the same file relative to the download root."""
        if slskd_root and not local.startswith(self.root.rstrip("/") + "/"):
            base = slskd_root.rstrip("/\\")
            if local.startswith(base + "/") or local.startswith(base + "\\"):
                relative = local[len(base) + 1 :].replace("\\", "/")
                return os.path.join(self.root, relative)
        return local

    # --- the layout ------------------------------------------------------------------------------

    def _from_layout(self, remote: str, size: int) -> str | None:
        parts = [part for part in remote.replace("/", "\\").split("\\") if part]
        if not parts:
            return None
        name = _local_name(parts[-1])
        folder = _local_name(parts[-2]) if len(parts) > 1 else ""
        if name in ("", ".", "..") or folder in (".", ".."):
            return None
        directory = os.path.join(self.root, folder)
        stem, ext = os.path.splitext(name)
        names = [name]
        with contextlib.suppress(OSError):
            names += sorted(
                entry
                for entry in os.listdir(directory)
                if entry.startswith(stem + "_")
                and entry.endswith(ext)
                and _TICKS.search(entry[: len(entry) - len(ext)] if ext else entry)
            )
        claimed = set(self.claimed())
        found = [path for path in (self.inside(os.path.join(directory, n)) for n in names) if path]
        found = [path for path in found if path not in claimed]
        # The file of the right size; else the only candidate, for verification to judge.
        exact = [path for path in found if os.path.getsize(path) == size]
        return exact[0] if exact else found[0] if len(found) == 1 else None


def _local_name(segment: str) -> str:
    """A remote path segment as slskd names it locally: separators and NUL replaced."""
    return segment.replace("/", "_").replace("\0", "_").strip()
