"""Configuration: one declarative option table, five sources, and a source for every value.

This module also owns the `settings` table: the live options changed while running.

To add an option, add one `Option` row to `OPTIONS`. Everything else follows from the table:
the TOML keys (`[section] name`), the environment variables (`HARMONY_<SECTION>_<NAME>`),
the CLI flags (`--section-name`), `harmony config sample`, `/env` and `docs/configuration.md`.

Sources, lowest first: defaults, the TOML file given with `--config`, live settings stored
in the database (options marked `live=True`, changed through the API or the settings page),
the environment, CLI flags. A bad value or an unknown key raises `ConfigError` naming the
option, the value and the source; the CLI turns that into exit code 2 before anything starts.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import math
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from . import naming
from .errors import ConfigError, Conflict, Invalid

if TYPE_CHECKING:
    from .db import Database

log = logging.getLogger(__name__)

# --- converters --------------------------------------------------------------------------
# Each converter turns a raw value (a TOML value or a string from the environment or a flag)
# into the typed value, raising ValueError with a short reason, and renders a typed value
# back into the string form that parses to the same value.


class String:
    kind = "string"

    def __init__(self, *, allow_empty: bool = True) -> None:
        self.allow_empty = allow_empty

    def __call__(self, raw: object) -> str:
        if not isinstance(raw, str):
            raise ValueError("expected a string")
        if "\x00" in raw:
            raise ValueError("must not contain NUL characters")
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid UTF-8 text") from None
        if not raw and not self.allow_empty:
            raise ValueError("must not be empty")
        return raw

    def render(self, value: str) -> str:
        return value


class Address(String):
    """One IP address, or empty."""

    kind = "address"

    def __call__(self, raw: object) -> str:
        value = super().__call__(raw).strip()
        if not value:
            return value
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError("expected one IP address, such as 127.0.0.1 or ::1, or nothing") from None


class Path(String):
    kind = "path"

    def __call__(self, raw: object) -> str:
        value = super().__call__(raw)
        return os.path.expanduser(value) if value else value


class Integer:
    kind = "integer"

    def __init__(self, minimum: int | None = None, maximum: int | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, raw: object) -> int:
        if isinstance(raw, bool):
            raise ValueError("expected an integer")
        if isinstance(raw, str):
            if not re.fullmatch(r"[+-]?[0-9]{1,19}", raw.strip()):
                raise ValueError("expected an integer")
            raw = int(raw.strip())
        if not isinstance(raw, int):
            raise ValueError("expected an integer")
        _check_range(raw, self.minimum, self.maximum)
        return raw

    def render(self, value: int) -> str:
        return str(value)


class Number:
    kind = "number"

    def __init__(self, minimum: float | None = None, maximum: float | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, raw: object) -> float:
        if isinstance(raw, bool):
            raise ValueError("expected a number")
        if isinstance(raw, str):
            if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", raw.strip()):
                raise ValueError("expected a number")
            raw = float(raw.strip())
        if not isinstance(raw, int | float):
            raise ValueError("expected a number")
        value = _finite(raw)
        _check_range(value, self.minimum, self.maximum)
        return value

    def render(self, value: float) -> str:
        return repr(float(value))


class Boolean:
    kind = "boolean"
    WORDS = {
        "true": True,
        "yes": True,
        "on": True,
        "1": True,
        "false": False,
        "no": False,
        "off": False,
        "0": False,
    }

    def __call__(self, raw: object) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in self.WORDS:
            return self.WORDS[raw.strip().lower()]
        raise ValueError("expected true or false")

    def render(self, value: bool) -> str:
        return "true" if value else "false"


class Duration:
    """Seconds, written as a number or with a unit: `500ms`, `90s`, `15m`, `2h`, `7d`."""

    kind = "duration"
    UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

    def __init__(self, minimum: float = 0.0, maximum: float | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, raw: object) -> float:
        if isinstance(raw, bool):
            raise ValueError("expected a duration such as 30s, 15m or 2h")
        if isinstance(raw, int | float):
            seconds = _finite(raw)
        elif isinstance(raw, str):
            match = re.fullmatch(r"\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*(ms|s|m|h|d)?\s*", raw)
            if not match:
                raise ValueError("expected a duration such as 30s, 15m or 2h")
            seconds = float(match.group(1)) * self.UNITS[match.group(2) or "s"]
        else:
            raise ValueError("expected a duration such as 30s, 15m or 2h")
        _check_range(seconds, self.minimum, self.maximum)
        return seconds

    def render(self, value: float) -> str:
        for unit in ("d", "h", "m", "s"):
            count = value / self.UNITS[unit]
            if count >= 1 and count == int(count):
                return f"{int(count)}{unit}"
        return f"{value!r}s" if value else "0s"


class Size:
    """Bytes, written as a number or with a binary unit: `512k`, `256M`, `2G` (also `MB`, `MiB`)."""

    kind = "size"
    UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}

    def __init__(self, minimum: int = 0, maximum: int | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, raw: object) -> int:
        if isinstance(raw, bool):
            raise ValueError("expected a size such as 512M or 2G")
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, str):
            match = re.fullmatch(r"\s*([0-9]{1,19})\s*([kKmMgGtT]?)(?:i?[bB])?\s*", raw)
            if not match:
                raise ValueError("expected a size such as 512M or 2G")
            value = int(match.group(1)) * self.UNITS[match.group(2).lower()]
        else:
            raise ValueError("expected a size such as 512M or 2G")
        _check_range(value, self.minimum, self.maximum)
        return value

    def render(self, value: int) -> str:
        for unit in ("t", "g", "m", "k"):
            if value and value % self.UNITS[unit] == 0:
                return f"{value // self.UNITS[unit]}{unit.upper()}"
        return str(value)


class Choice:
    kind = "choice"

    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def __call__(self, raw: object) -> str:
        if not isinstance(raw, str) or raw.strip().lower() not in self.choices:
            raise ValueError("expected one of " + ", ".join(self.choices))
        return raw.strip().lower()

    def render(self, value: str) -> str:
        return value


class Words:
    """A comma-separated list, each entry checked by `item` (which raises ValueError or returns
    the entry normalised): `flac, mp3` or a TOML array."""

    kind = "list"

    def __init__(self, item: Callable[[str], str], *, allow_empty: bool = False) -> None:
        self.item, self.allow_empty = item, allow_empty

    def __call__(self, raw: object) -> tuple[str, ...]:
        if isinstance(raw, str):
            parts = [part.strip() for part in raw.split(",")]
        elif isinstance(raw, list | tuple) and all(isinstance(part, str) for part in raw):
            parts = [str(part).strip() for part in raw]
        else:
            raise ValueError("expected a comma-separated list")
        parts = [part for part in parts if part]
        if not parts and not self.allow_empty:
            raise ValueError("must not be empty")
        out = []
        for number, part in enumerate(parts, 1):
            try:
                out.append(self.item(part))
            except ValueError as exc:
                raise ValueError(f"{self.label(part, number)}: {exc}") from None
        return tuple(out)

    def label(self, part: str, number: int) -> str:
        """How an error names a bad entry."""
        return repr(part)

    def render(self, value: tuple[str, ...]) -> str:
        return ", ".join(value)


class SecretWords(Words):
    """A list whose entries may hold credentials (webhook URLs carry tokens): an error names a
    bad entry by its place, never by its text."""

    def label(self, part: str, number: int) -> str:
        return f"entry {number}"


class Template(String):
    """A library path template: placeholders from `naming.PLACEHOLDERS` (see that module)."""

    kind = "template"

    def __call__(self, raw: object) -> str:
        value = super().__call__(raw)
        naming.validate_template(value)
        return value


class Mode:
    """File permissions as octal text: `"644"`, `"0644"` or `"0o644"`."""

    kind = "mode"

    def __call__(self, raw: object) -> int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            # A TOML number is decimal: 420 is 0644, but 644 would be a surprise, so only the
            # values a mode can have are taken; the help asks for the quoted octal form.
            if 0 <= raw <= 0o777:
                return raw
            raise ValueError('expected octal permissions as text, such as "0644" (a number reads as decimal)')
        match = re.fullmatch(r"\s*(?:0o|0)?([0-7]{3})\s*", raw.lower()) if isinstance(raw, str) else None
        if not match:
            raise ValueError('expected octal permissions such as "644" or "0755"')
        return int(match.group(1), 8)

    def render(self, value: int) -> str:
        return f"{value:04o}"


class Url:
    """An http(s) URL with a host; a trailing slash is dropped. Empty means "not set"."""

    kind = "url"

    def __call__(self, raw: object) -> str:
        if not isinstance(raw, str):
            raise ValueError("expected a URL")
        value = raw.strip()
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ValueError("the URL has an invalid port") from None
        if any(ch.isspace() or ord(ch) < 32 for ch in value):
            raise ValueError("URLs must not contain whitespace or control characters")
        return value.rstrip("/")

    def render(self, value: str) -> str:
        return value


def _finite(raw: int | float) -> float:
    """`raw` as a finite float: NaN, infinities and integers beyond float range are refused."""
    try:
        value = float(raw)
    except OverflowError:
        raise ValueError("number out of range") from None
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def audio_format(text: str) -> str:
    """A file format as a file name ends: `flac`, `mp3`, `m4a`, `ogg`, `opus`, ..."""
    value = text.strip().lower().lstrip(".")
    if not re.fullmatch(r"[a-z0-9]{2,5}", value):
        raise ValueError("expected a file extension such as flac or mp3")
    return value


def quality_rung(text: str) -> str:
    """A rung of the quality ladder: `flac 24`, `flac 24/96`, `flac`, `mp3 320`, `mp3 v0`."""
    from .ranking import Rung  # the ranking owns what a rung means; imported here only to check one

    return str(Rung.parse(text))


WEBHOOK_FORMATS = ("harmony", "discord", "ntfy", "apprise")


def webhook_url(text: str) -> str:
    """A webhook URL, optionally after its format: `https://...`, `discord+https://...`.

    Returns the entry as `webhooks.Target.parse` reads it (the format lower-cased); ValueError
    saying what is wrong, never quoting the URL (it may hold a token)."""
    text = text.strip()
    fmt, url = "harmony", text
    head, plus, rest = text.partition("+")
    if plus and head.lower() in WEBHOOK_FORMATS:
        fmt, url = head.lower(), rest
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValueError("a webhook URL must not contain whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL, optionally after discord+, ntfy+ or apprise+")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("the URL has an invalid port") from None
    if parts.fragment:
        raise ValueError("a webhook URL has no #fragment")
    if fmt == "ntfy" and not parts.path.strip("/"):
        raise ValueError("an ntfy URL names its topic: ntfy+https://ntfy.sh/<topic>")
    return url if fmt == "harmony" else f"{fmt}+{url}"


def _check_range(value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum:g}")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be at most {maximum:g}")


Converter = String | Integer | Number | Boolean | Duration | Size | Choice | Words | Url | Mode


@dataclass(frozen=True)
class Option:
    section: str
    name: str
    default: Any
    convert: Converter
    help: str
    secret: bool = False
    live: bool = False  # may be changed while running (API and settings page); stored in `settings`

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"HARMONY_{self.section}_{self.name}".upper()

    @property
    def flag(self) -> str:
        return f"--{self.section}-{self.name}".replace("_", "-")

    # A secret may instead be read from a file, named by its companion: `<name>_file` in the
    # TOML file, `HARMONY_<SECTION>_<NAME>_FILE`, `--<section>-<name>-file` (see `read_secret`).
    @property
    def file_key(self) -> str:
        return f"{self.key}{FILE_SUFFIX}"

    @property
    def file_env(self) -> str:
        return f"{self.env}{FILE_SUFFIX.upper()}"

    @property
    def file_flag(self) -> str:
        return f"{self.flag}{FILE_SUFFIX.replace('_', '-')}"


FILE_SUFFIX = "_file"


# --- the table ---------------------------------------------------------------------------

OPTIONS: list[Option] = [
    Option("server", "host", "127.0.0.1", String(allow_empty=False), "Address to listen on."),
    Option("server", "port", 8337, Integer(0, 65535), "TCP port to listen on (0 picks a free port)."),
    Option("server", "threads", 8, Integer(1, 64), "Request-handling threads."),
    Option(
        "server",
        "trusted_proxy",
        "",
        Address(),
        "Address of the reverse proxy in front of Harmony (127.0.0.1 when it runs on this host). "
        "Its X-Forwarded-For and X-Forwarded-Proto are believed: the client's address for the "
        "failed-login throttle and the log, HTTPS for Secure cookies. Empty: no proxy is trusted "
        "and every client's forwarding headers are dropped.",
    ),
    Option(
        "server",
        "idle_timeout",
        15.0,
        Duration(1, 3600),
        "Close a keep-alive connection after it has been idle this long.",
    ),
    Option(
        "server",
        "connection_limit",
        2000,
        Integer(10, 50000),
        "Most client connections held open at once; more wait in the listen backlog.",
    ),
    Option(
        "server", "shutdown_timeout", 10.0, Duration(0, 300), "How long shutdown waits for background work."
    ),
    Option("data", "dir", "./data", Path(allow_empty=False), "Directory for the database and backups."),
    Option(
        "data",
        "min_free",
        256 * 2**20,
        Size(0),
        "Free space on the data directory's filesystem below which writes pause and /ready fails.",
    ),
    Option(
        "backup",
        "dir",
        "",
        Path(),
        "Where periodic backups are written; empty means <data.dir>/backups.",
    ),
    Option(
        "backup",
        "interval",
        86400.0,
        Duration(0, 30 * 86400),
        "How often the database is backed up (online, checked, into backup.dir); 0 turns it off.",
    ),
    Option(
        "backup",
        "keep",
        7,
        Integer(1, 10000),
        "How many periodic backups are kept; older ones in backup.dir are deleted.",
    ),
    Option("library", "dir", "", Path(), "Music library root; empty means <data.dir>/library."),
    Option(
        "library",
        "template",
        naming.DEFAULT_TEMPLATE,
        Template(),
        "Where an imported file goes, relative to library.dir (placeholders below).",
    ),
    Option("library", "file_mode", 0o644, Mode(), "Permissions of imported files and cover images."),
    Option("library", "dir_mode", 0o755, Mode(), "Permissions of folders Harmony creates in the library."),
    Option(
        "library",
        "quarantine_dir",
        "",
        Path(),
        "Where files that fail verification or lose to a better copy go; empty means <data.dir>/quarantine.",
    ),
    Option(
        "library",
        "cover_max",
        4 * 2**20,
        Size(0, 64 * 2**20),
        "The largest cover image fetched and embedded; 0 embeds no cover.",
    ),
    Option("library", "cover_file", True, Boolean(), "Also write cover.jpg into each album folder."),
    Option(
        "library",
        "scan_interval",
        86400.0,
        Duration(0, 30 * 86400),
        "How often the library is rescanned for files added, changed, moved or removed; 0 turns it off.",
        live=True,
    ),
    Option(
        "library",
        "orphans",
        "report",
        Choice("report", "off"),
        "report: list finished downloads no wanted item owns (GET /api/v1/library/orphans); off: never look.",
        live=True,
    ),
    Option(
        "log", "level", "info", Choice("debug", "info", "warning", "error"), "Lowest level logged.", live=True
    ),
    Option("log", "format", "json", Choice("json", "text"), "json: one object a line; text: for a terminal."),
    Option("metrics", "require_key", False, Boolean(), "Require a read API key for /metrics."),
    Option(
        "auth",
        "failure_limit",
        20,
        Integer(1, 100000),
        "Failed authentications a client address may make per minute before it gets 429.",
    ),
    Option(
        "auth",
        "session_idle",
        86400.0,
        Duration(300, 90 * 86400),
        "A web UI session not used for this long ends (log in again with an API key).",
    ),
    Option(
        "auth",
        "session_lifetime",
        30 * 86400.0,
        Duration(300, 365 * 86400),
        "A web UI session ends this long after its login, however much it is used.",
    ),
    Option(
        "auth",
        "open_reads",
        False,
        Boolean(),
        "Let a request with no key or session read: the web UI's pages, /env and the API's GET "
        "routes of the read role, without signing in. Only for a host no one else can reach; "
        "every change still needs a key or a session.",
    ),
    Option(
        "auth",
        "streams_per_client",
        4,
        Integer(1, 64),
        "Event streams one session or API key may hold open at once; more get 429. "
        "Streams in all never hold more than half of server.threads.",
    ),
    Option("spotify", "client_id", "", String(), "Spotify app client id; empty disables Spotify."),
    Option("spotify", "client_secret", "", String(), "Spotify app client secret.", secret=True),
    Option("spotify", "redirect_uri", "", Url(), "OAuth redirect URI registered with the Spotify app."),
    Option("spotify", "api_url", "https://api.spotify.com/v1", Url(), "Spotify Web API base URL."),
    Option("spotify", "accounts_url", "https://accounts.spotify.com", Url(), "Spotify accounts service URL."),
    Option("spotify", "rate", 2.5, Number(0.1, 50), "Spotify requests per second, whole process."),
    Option("spotify", "market", "US", String(allow_empty=False), "Two-letter country of catalogue reads."),
    Option(
        "spotify",
        "extended_quota",
        False,
        Boolean(),
        "The Spotify app has Extended Quota Mode: it may read playlists the user does not own.",
    ),
    Option(
        "watchlist",
        "interval",
        86400.0,
        Duration(60, 30 * 86400),
        "How often each watched artist is scanned for new releases.",
        live=True,
    ),
    Option(
        "watchlist",
        "batch",
        100,
        Integer(1, 10000),
        "Most artist scans (and playlist syncs) queued by one dispatcher run (every minute).",
        live=True,
    ),
    Option(
        "playlists",
        "interval",
        3600.0,
        Duration(60, 7 * 86400),
        "How often each followed playlist is synced (an unchanged one costs one request).",
        live=True,
    ),
    Option(
        "playlists",
        "stale_after",
        172800.0,
        Duration(600, 60 * 86400),
        "A playlist not synced successfully for this long is shown as stale.",
        live=True,
    ),
    Option("slskd", "url", "http://127.0.0.1:5030", Url(), "slskd base URL, including any URL base."),
    Option("slskd", "api_key", "", String(), "slskd API key (web.authentication.api_keys).", secret=True),
    Option("slskd", "downloads_dir", "", Path(), "slskd's download directory as seen from Harmony."),
    Option("upstream", "connect_timeout", 5.0, Duration(0.1, 120), "Connect timeout for Spotify and slskd."),
    Option("upstream", "read_timeout", 30.0, Duration(0.1, 600), "Read timeout for Spotify and slskd."),
    Option("upstream", "retries", 3, Integer(0, 10), "Retries for idempotent requests on transient errors."),
    Option("upstream", "max_retry_after", 30.0, Duration(0, 3600), "Longest Retry-After waited in place."),
    Option("upstream", "max_cooldown", 3600.0, Duration(1, 86400), "Longest cooldown a Retry-After starts."),
    Option(
        "upstream",
        "quota_cooldown",
        3600.0,
        Duration(60, 86400),
        "How long Spotify work stops after a quota refusal (429 QUOTA_EXCEEDED).",
    ),
    Option("health", "probe_interval", 30.0, Duration(1, 3600), "How often upstream probes run for /ready."),
    Option(
        "search",
        "budget",
        34,
        Integer(1, 1000),
        "Soulseek searches allowed per search.window, across everything (more gets accounts banned).",
        live=True,
    ),
    Option(
        "search", "window", 220.0, Duration(10, 86400), "The window the search budget counts over.", live=True
    ),
    Option(
        "search",
        "timeout",
        15.0,
        Duration(5, 300),
        "How long slskd waits after the last response before a search ends (its searchTimeout).",
        live=True,
    ),
    Option(
        "search",
        "formats",
        ("flac", "mp3"),
        Words(audio_format),
        "Formats accepted, in order of preference (from the file name, not what the peer claims).",
        live=True,
    ),
    Option(
        "search",
        "ladder",
        ("flac 24", "flac 16", "mp3 320", "mp3 v0"),
        Words(quality_rung),
        "The quality ladder, best first; a file meets the first rung it can.",
        live=True,
    ),
    Option(
        "search", "min_bitrate", 128, Integer(0, 10000), "Lowest bitrate (kbps) of a lossy file.", live=True
    ),
    Option(
        "search",
        "duration_tolerance",
        5.0,
        Duration(0, 120),
        "How far a file's length may be from the track's.",
        live=True,
    ),
    Option(
        "search",
        "identity_threshold",
        0.75,
        Number(0.3, 1.0),
        "Lowest identity score (title, artist, album, length evidence) a file needs.",
        live=True,
    ),
    Option(
        "search",
        "check_size",
        True,
        Boolean(),
        "Refuse files whose size does not fit their format and bitrate (fake lossless, truncated files).",
        live=True,
    ),
    Option(
        "search",
        "album_min_tracks",
        3,
        Integer(2, 100),
        "Search for the whole album when this many wanted tracks share a release.",
        live=True,
    ),
    Option(
        "transfers",
        "poll_interval",
        5.0,
        Duration(1, 300),
        "How often slskd's transfer list is read (one request, however many transfers).",
    ),
    Option(
        "transfers",
        "requested_timeout",
        60.0,
        Duration(5, 3600),
        "A transfer the peer never queued is given up after this long.",
        live=True,
    ),
    Option(
        "transfers",
        "stall_timeout",
        120.0,
        Duration(10, 3600),
        "A transfer in progress that makes no progress for this long is given up.",
        live=True,
    ),
    Option(
        "transfers",
        "queue_timeout",
        900.0,
        Duration(60, 86400),
        "A transfer queued at the peer whose place does not improve for this long is given up.",
        live=True,
    ),
    Option(
        "transfers",
        "item_ceiling",
        7200.0,
        Duration(300, 7 * 86400),
        "Longest time one file may take from enqueue to done, whatever its progress.",
        live=True,
    ),
    Option(
        "transfers",
        "user_cooldown",
        3600.0,
        Duration(60, 7 * 86400),
        "How long a peer that failed or refused is avoided (doubling with each failure).",
        live=True,
    ),
    Option(
        "transfers",
        "max_bad_peers",
        3,
        Integer(1, 20),
        "After this many peers' files failed verification, an item waits for the operator.",
        live=True,
    ),
    Option(
        "backfill",
        "min_confidence",
        0.9,
        Number(0, 1),
        "A library track is matched to a Spotify track only at this confidence or above (0 to 1).",
        live=True,
    ),
    Option(
        "backfill",
        "write_tags",
        False,
        Boolean(),
        "Also write the matched Spotify ids into the files' tags (default for POST /api/v1/backfill).",
        live=True,
    ),
    Option(
        "webhooks",
        "urls",
        (),
        SecretWords(webhook_url, allow_empty=True),
        "URLs that get a signed JSON POST for each event (item done or failed, a file quarantined, "
        "slskd down and back, Spotify's authorisation ending); discord+, ntfy+ or apprise+ before a "
        "URL sends that service's shape. Write a comma inside a URL as %2C.",
        secret=True,
    ),
    Option(
        "webhooks",
        "secret",
        "",
        String(),
        "Key for the HMAC-SHA256 signature of every webhook request; empty sends them unsigned.",
        secret=True,
    ),
    Option(
        "webhooks",
        "timeout",
        10.0,
        Duration(1, 60),
        "Longest one webhook request may take, connect to answer.",
    ),
    Option(
        "webhooks",
        "attempts",
        6,
        Integer(1, 50),
        "Attempts to deliver one event to one URL (retried with backoff) before it is dead-lettered.",
    ),
    Option("jobs", "workers", 2, Integer(1, 16), "Job worker threads."),
    Option("jobs", "lease", 60.0, Duration(1, 3600), "How long a leased job is hidden before it expires."),
    Option("jobs", "max_attempts", 5, Integer(1, 100), "Attempts before a job is dead-lettered."),
]

BY_KEY = {option.key: option for option in OPTIONS}
SECTIONS = sorted({option.section for option in OPTIONS})
# The secret options by their file companions' keys (`spotify.client_secret_file`).
BY_FILE_KEY = {option.file_key: option for option in OPTIONS if option.secret}
assert not BY_FILE_KEY.keys() & BY_KEY.keys(), "an option is named like a secret's file companion"


class Config:
    """Effective configuration: a typed value and a source string for every option."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str]) -> None:
        self._values = values
        self._sources = sources

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def source(self, key: str) -> str:
        return self._sources[key]

    def replace(self, overrides: Mapping[str, Any], source: str) -> Config:
        """A copy with the options in `overrides` (keys such as `server.port`) set, from `source`."""
        values, sources = dict(self._values), dict(self._sources)
        for key, raw in overrides.items():
            values[key] = _convert(BY_KEY[key], raw, source)
            sources[key] = source
        return Config(values, sources)

    def effective(self) -> list[dict[str, Any]]:
        """Every option with its value and source, secrets masked: what `/env` shows."""
        return [
            {
                "key": option.key,
                "value": shown(option, self._values[option.key]),
                "source": self._sources[option.key],
                "secret": option.secret,
                "live": option.live,
            }
            for option in OPTIONS
        ]

    def with_stored(self, stored: Mapping[str, object]) -> tuple[Config, dict[str, str]]:
        """A copy with the live options stored in the database applied, and the problems found.

        Stored values sit between the file and the environment: they replace defaults and
        file values, never a value from the environment or a flag. A stored key that is no
        longer a live option, or whose value no longer converts, is skipped and reported
        (key -> reason) instead of stopping the start.
        """
        values, sources = dict(self._values), dict(self._sources)
        problems: dict[str, str] = {}
        for key, raw in stored.items():
            option = BY_KEY.get(key)
            if option is None or not option.live:
                problems[key] = "not a live option"
                continue
            if not overridable(self._sources[key]):
                continue
            try:
                values[key] = option.convert(raw)
            except ValueError as exc:
                problems[key] = str(exc)
                continue
            sources[key] = STORED_SOURCE
        return Config(values, sources), problems

    # Paths derived from the table; kept here so every user agrees on them.
    @property
    def database_path(self) -> str:
        return os.path.join(self["data.dir"], "harmony.sqlite3")

    @property
    def backup_dir(self) -> str:
        return str(self["backup.dir"] or os.path.join(self["data.dir"], "backups"))

    @property
    def library_dir(self) -> str:
        return str(self["library.dir"] or os.path.join(self["data.dir"], "library"))

    @property
    def quarantine_dir(self) -> str:
        return str(self["library.quarantine_dir"] or os.path.join(self["data.dir"], "quarantine"))

    @property
    def downloads_dir(self) -> str:
        return str(self["slskd.downloads_dir"] or os.path.join(self["data.dir"], "downloads"))


STORED_SOURCE = "settings (changed while running)"


def overridable(source: str) -> bool:
    """A value from this source may be replaced by a stored setting (not env or a flag)."""
    return source == "default" or source.startswith("file ") or source == STORED_SOURCE


def shown(option: Option, value: Any) -> Any:
    """A value as `/env`, `harmony check` and errors may show it: secrets masked, and the
    user name, password and query of a URL masked too."""
    if option.secret:
        return "********" if value else ""
    if isinstance(option.convert, Url) and value:
        parts = urlsplit(value)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "********@" + netloc.rsplit("@", 1)[1]
        return urlunsplit((parts.scheme, netloc, parts.path, "********" if parts.query else "", ""))
    return value


def _convert(option: Option, raw: object, source: str) -> Any:
    try:
        return option.convert(raw)
    except ValueError as exc:
        visible = _masked_raw(option, raw)
        raise ConfigError(
            f"option {option.key}: invalid value {visible!r} from {source}: {exc}",
            option=option.key,
            value=None if option.secret else _jsonable(visible),
            source=source,
        ) from None


def _masked_raw(option: Option, raw: object) -> object:
    """A raw value as an error message may show it: secrets hidden, URL credentials too."""
    if option.secret:
        return "********"
    if isinstance(option.convert, Url) and isinstance(raw, str):
        return re.sub(r"//[^/?#]*@", "//********@", raw)
    return raw


def _jsonable(raw: object) -> Any:
    try:
        json.dumps(raw)
    except (TypeError, ValueError):
        return repr(raw)
    return raw


def load(
    path: str | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> Config:
    """Build the effective configuration from the four sources; raise ConfigError on any problem.

    `flags` maps option keys (`server.port`) to raw values given on the command line.
    """
    values = {option.key: option.default for option in OPTIONS}
    sources = dict.fromkeys(values, "default")
    env = os.environ if env is None else env
    layers: list[list[Setting]] = []
    if path:
        layers.append([(option, raw, f"file {path}", by_file) for option, raw, by_file in _read_toml(path)])
    prefixes = tuple(f"HARMONY_{section.upper()}_" for section in SECTIONS)
    by_env = {option.env: (option, False) for option in OPTIONS}
    by_env.update({option.file_env: (option, True) for option in BY_FILE_KEY.values()})
    from_env: list[Setting] = []
    for name in sorted(env):
        if not name.startswith(prefixes):
            continue
        if name not in by_env:
            raise ConfigError(f"unknown environment variable {name}: no such option", variable=name)
        option, by_file = by_env[name]
        from_env.append((option, env[name], f"environment variable {name}", by_file))
    layers.append(from_env)
    from_flags: list[Setting] = []
    for key, raw in (flags or {}).items():
        if key in BY_FILE_KEY:
            from_flags.append((BY_FILE_KEY[key], raw, f"flag {BY_FILE_KEY[key].file_flag}", True))
        else:
            from_flags.append((BY_KEY[key], raw, f"flag {BY_KEY[key].flag}", False))
    layers.append(from_flags)
    for layer in layers:
        seen: dict[str, str] = {}
        for option, raw, source, by_file in layer:
            if option.key in seen:
                raise ConfigError(
                    f"option {option.key} is set twice, by {seen[option.key]} and by {source}; keep one",
                    option=option.key,
                )
            seen[option.key] = source
            if by_file:
                raw, source = read_secret(option, raw, source, env)
            values[option.key] = _convert(option, raw, source)
            sources[option.key] = source
    return Config(values, sources)


# One value from one source: the option, the raw value, the source, and whether the raw value
# names a file holding the value (a secret's `_file` companion).
Setting = tuple[Option, object, str, bool]

# A file holding a secret is read up to this size: a bigger one is not the file meant.
SECRET_FILE_MAX = 64 * 1024


def read_secret(option: Option, name: object, source: str, env: Mapping[str, str]) -> tuple[str, str]:
    """The content of the file a secret's companion names, and the value's source (which
    names the file, never its content).

    A relative name is looked up in `$CREDENTIALS_DIRECTORY` when that is set (systemd's
    `LoadCredential=`), else in the working directory. One trailing newline is dropped; for
    a list option (webhooks.urls) each line is one entry. Raises ConfigError naming the
    option, the file and the source when the file cannot be read.
    """
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise ConfigError(
            f"option {option.key}: {source} must name a file holding the value",
            option=option.key,
            source=source,
        )
    credentials = env.get("CREDENTIALS_DIRECTORY", "")
    relative = not os.path.isabs(os.path.expanduser(name))
    path = os.path.join(credentials, name) if relative and credentials else os.path.expanduser(name)

    def fail(reason: str) -> ConfigError:
        hint = ""
        if relative and not credentials:
            hint = " (a relative name is looked up in $CREDENTIALS_DIRECTORY, which is not set)"
        return ConfigError(
            f"option {option.key}: cannot read {path} named by {source}: {reason}{hint}",
            option=option.key,
            file=path,
            source=source,
        )

    try:
        with open(path, "rb") as handle:
            data = handle.read(SECRET_FILE_MAX + 1)
    except OSError as exc:
        raise fail(exc.strerror or type(exc).__name__) from None
    if len(data) > SECRET_FILE_MAX:
        raise fail(f"it is larger than {SECRET_FILE_MAX // 1024} KiB, so not a file holding one secret")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise fail("it is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if isinstance(option.convert, Words):
        text = ",".join(text.splitlines())
    return text, f"{source} ({path})"


def _read_toml(path: str) -> Iterable[tuple[Option, object, bool]]:
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}", file=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}", file=path) from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text", file=path) from None
    for section, table in document.items():
        if not isinstance(table, dict):
            raise ConfigError(f"unknown key {section!r} in {path}: options live in [sections]", file=path)
        for name, raw in table.items():
            key = f"{section}.{name}"
            option = BY_KEY.get(key) or BY_FILE_KEY.get(key)
            if option is None:
                raise ConfigError(f"unknown option {key} in {path}", file=path, key=key)
            yield option, raw, key in BY_FILE_KEY


# --- live settings (the `settings` table) --------------------------------------------------
# One row per live option changed while running: the option key and its value as JSON.

SQL_STORED = "SELECT key, value FROM settings ORDER BY key"
SQL_STORE = """
    INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
"""
SQL_FORGET = "DELETE FROM settings WHERE key = ?"


def stored(db: Database) -> dict[str, object]:
    """The live options stored in the database, key -> raw value."""
    out: dict[str, object] = {}
    for row in db.query(SQL_STORED):
        try:
            out[row["key"]] = json.loads(row["value"])
        except ValueError:
            out[row["key"]] = row["value"]
    return out


def apply_stored(db: Database, base: Config) -> Config:
    """`base` with the stored live options applied; a stored value that no longer applies is
    skipped with a warning, never a failed start."""
    config, problems = base.with_stored(stored(db))
    for key, reason in problems.items():
        log.warning("setting_ignored", extra={"fields": {"option": key, "reason": reason}})
    return config


def change(db: Database, base: Config, current: Config, changes: Mapping[str, object]) -> Config:
    """Store `changes` (option key -> raw value, or None to forget the stored value) and return
    the new configuration. All or nothing: every change is checked first with the option's own
    converter; an unknown or non-live option or a bad value is `Invalid` naming the option, and
    an option fixed by the environment or a flag is a `Conflict` naming its source."""
    for key, raw in changes.items():
        option = BY_KEY.get(key)
        if option is None:
            raise Invalid(f"unknown option {key!r}", option=key[:100])
        if not option.live:
            raise Invalid(
                f"option {key} cannot be changed while running; set it in the config file", option=key
            )
        if not overridable(current.source(key)):
            raise Conflict(
                f"option {key} is set by {current.source(key)}, which overrides settings; change it there",
                option=key,
                source=current.source(key),
            )
        if raw is not None:
            try:
                option.convert(raw)
            except ValueError as exc:
                raise Invalid(f"option {key}: {exc}", option=key) from None
    now = time.time()
    with db.write() as conn:
        for key, raw in changes.items():
            if raw is None:
                conn.execute(SQL_FORGET, (key,))
            else:
                conn.execute(SQL_STORE, (key, json.dumps(raw), now))
        config, _ = base.with_stored(stored(db))
    log.info("settings_changed", extra={"fields": {"options": sorted(changes)}})
    return config


def describe_live(config: Config) -> list[dict[str, Any]]:
    """The live options as the settings API and page show them: value, source, whether it can
    be changed here, and what the converter accepts."""
    out = []
    for option in OPTIONS:
        if not option.live:
            continue
        convert = option.convert
        out.append(
            {
                "key": option.key,
                "value": shown(option, config[option.key]),
                "default": option.default,
                "source": config.source(option.key),
                "editable": overridable(config.source(option.key)),
                "kind": convert.kind,
                "help": option.help,
                "choices": list(convert.choices) if isinstance(convert, Choice) else None,
                "minimum": getattr(convert, "minimum", None),
                "maximum": getattr(convert, "maximum", None),
            }
        )
    return out


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add `--config` and one `--section-name` flag per option to a subcommand's parser."""
    parser.add_argument("--config", metavar="FILE", help="TOML configuration file")
    group = parser.add_argument_group("options (see docs/configuration.md)")
    for option in OPTIONS:
        group.add_argument(
            option.flag, dest=f"opt:{option.key}", metavar=option.convert.kind.upper(), help=option.help
        )
        if option.secret:
            group.add_argument(
                option.file_flag,
                dest=f"opt:{option.file_key}",
                metavar="FILE",
                help=f"Read {option.key} from this file (relative: in $CREDENTIALS_DIRECTORY).",
            )


def from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    flags = {
        name[4:]: value for name, value in vars(args).items() if name.startswith("opt:") and value is not None
    }
    env = os.environ if env is None else env
    return load(args.config or env.get("HARMONY_CONFIG") or None, env, flags)


def toml_literal(option: Option, value: Any) -> str:
    if isinstance(option.convert, Words):
        return "[" + ", ".join(toml_string(part) for part in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and not isinstance(option.convert, Duration | Size | Mode):
        return option.convert.render(value)  # type: ignore[arg-type]
    return toml_string(option.convert.render(value))  # type: ignore[arg-type]


def toml_string(text: str) -> str:
    """A TOML basic string: backslash, quote and every control character (DEL too) escaped."""
    escaped = "".join(
        f"\\u{ord(ch):04x}" if ord(ch) < 32 or ord(ch) == 127 else "\\" + ch if ch in '"\\' else ch
        for ch in text
    )
    return f'"{escaped}"'


def sample() -> str:
    """A commented TOML file with every option at its default."""
    lines = ["# Harmony configuration. Every option is shown at its default, commented out.", ""]
    for section in dict.fromkeys(option.section for option in OPTIONS):
        lines.append(f"[{section}]")
        for option in (o for o in OPTIONS if o.section == section):
            secret = f" (secret; or {option.name}{FILE_SUFFIX}: a file holding it)" if option.secret else ""
            lines.append(f"# {option.help}{secret}")
            lines.append(f"# {option.name} = {toml_literal(option, option.default)}")
        lines.append("")
    return "\n".join(lines)


def reference() -> str:
    """The Markdown reference in docs/configuration.md, generated from the table."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by `harmony config docs` from harmony/config.py; do not edit by hand. -->",
        "",
        "Harmony reads its options from four sources, each overriding the one before: built-in",
        "defaults, a TOML file given with `--config FILE` (or `HARMONY_CONFIG`), environment",
        "variables, and command-line flags. `GET /env` and `harmony check` show each effective",
        "value with its source; secrets are masked. An unknown key or a bad value stops Harmony",
        "with exit code 2 and a message naming the option, the value and its source.",
        "",
        "Durations accept `500ms`, `90s`, `15m`, `2h`, `7d` or a number of seconds; sizes accept",
        "`512K`, `256M`, `2G` or a number of bytes.",
        "",
        "Options marked **live** can also be changed while Harmony runs, from the settings page or",
        "`PATCH /api/v1/settings`. A value changed that way is stored in the database and sits",
        "between the file and the environment: it replaces the default and the file's value, and",
        "an option set by an environment variable or a flag cannot be changed while running.",
        "`harmony config sample` prints a commented TOML file with every option.",
        "",
        "Secrets can be read from files, the way systemd (`LoadCredential=`) and container",
        "runtimes pass them: every secret option `x` has a companion `x_file` (in the TOML file),",
        "`HARMONY_..._FILE` and `--...-file` that names a file holding the value. A relative name",
        "is looked up in `$CREDENTIALS_DIRECTORY` when that is set (systemd sets it for a unit with",
        "credentials), else in the working directory. One trailing newline is dropped; for",
        "`webhooks.urls` each line is one URL. The companion sits in the same source as the option",
        "itself (a file name from the environment overrides a value from the TOML file); giving",
        "both in one source is an error. A missing or unreadable file stops Harmony with exit code",
        "2 and a message naming the option and the file, never its content; `/env` names the file",
        "as the value's source.",
        "",
    ]
    for section in dict.fromkeys(option.section for option in OPTIONS):
        lines += [
            f"## [{section}]",
            "",
            "| option | default | environment / flag | meaning |",
            "|---|---|---|---|",
        ]
        for option in (o for o in OPTIONS if o.section == section):
            default = toml_literal(option, option.default)
            secret = (
                f" Secret: masked in `/env` and logs; or read from a file: `{option.name}{FILE_SUFFIX}`, "
                f"`{option.file_env}`, `{option.file_flag}`."
                if option.secret
                else ""
            )
            live = " **live**" if option.live else ""
            lines.append(
                f"| `{option.name}` ({option.convert.kind}){live} | `{default}` "
                f"| `{option.env}`<br>`{option.flag}` | {option.help}{secret} |"
            )
        lines.append("")
        if section == "library":
            lines += _template_reference()
    return "\n".join(lines)


def _template_reference() -> list[str]:
    lines = [
        "### Placeholders of `library.template`",
        "",
        "Every value is made safe for a file name on Linux, macOS and Windows shares: separators,",
        "control and reserved characters are replaced, Windows device names and trailing dots are",
        "avoided, and each folder or file name is cut to 255 bytes. A template with an unknown",
        "placeholder stops Harmony at start. Literal braces are written `{{` and `}}`.",
        "",
        "| placeholder | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{{{name}}}` | {text} |" for name, text in naming.PLACEHOLDERS.items()]
    return [*lines, ""]
