"""Candidate ranking: the hard gates, one lexicographic order and the reasons for both; album folders.

Pure: no I/O. It reads slskd's search responses as `slskd.PeerResponse` values (`rank_json` parses
the raw JSON with `slskd.parse_response`) and the per-user standing as plain values (`UserContext`).

`rank()` turns every file of every response into a `Candidate`. A file is rejected when any gate
fails, and all failing gates are given as reasons:

1. the path is safe (no `..` segment, no control or bidirectional-override characters);
2. its format, taken from the file name (never the `extension` field), is allowed;
3. it is not locked; its user is not blocked or cooling down; (user, file) was not marked wrong;
4. a lossy file reaches the bitrate floor (reported, or estimated from size and length);
5. its length is within tolerance of the wanted length (estimated from size and bitrate when the
   peer sent none; a missing length passes);
6. its size is plausible for its format, bitrate and length (a "FLAC" of MP3 size is a transcode);
7. identity (`matching.identity`): title and artist evidence, no other artist credited, no
   unrequested version marker in the file name or the nearest folders, every requested one present,
   and a score of at least `Preferences.identity_threshold`.

Accepted candidates are ordered by, each stage only breaking the ties of the one before:
identity bucket (tenths, 0.9 and above one bucket), quality ladder rung, then format preference,
free upload slot, queue length bucket, speed bucket, the user's history with Harmony, then exact
queue length and speed, then username and filename. The order is total and does not depend on the
order of the responses. Rejected candidates follow, by identity score, username and filename.

`pick_album()` chooses one folder of one user for a release and returns only the wanted tracks'
files; `album_folders()` judges every folder, with the reasons, and is where to look when it
returns None.
`rank_json()` is the `harmony rank` contract. To add a gate, add a check to `_gates`; to add an
ordering stage, add a term to `_order` at its place.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import matching
from .slskd import File, PeerResponse, parse_response

LOSSLESS = frozenset({"flac", "alac", "ape", "wv", "wav", "aiff", "aif"})
LOSSY = frozenset({"mp3", "ogg", "opus", "m4a", "aac", "wma", "mpc"})
# Tags and embedded artwork: bytes a file may carry beyond its audio.
TAG_BYTES = 3_000_000
# A compressed lossless file below this many kbps at 16/44.1 is lossy audio in a lossless container.
LOSSLESS_FLOOR_KBPS = 350
# Above this, a FLAC whose peer sent no bit depth is taken as 24-bit (16/44.1 stays well below).
HIRES_PROOF_KBPS = 1450


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """The track to find, as the wanted list knows it (Spotify's metadata)."""

    artist: str
    title: str
    artists: tuple[str, ...] = ()
    album: str = ""
    album_artist: str = ""
    track_number: int | None = None
    disc_number: int | None = None
    total_discs: int | None = None
    duration_ms: int | None = None
    isrc: str | None = None
    release_year: int | None = None


@dataclass(frozen=True)
class Rung:
    """One step of the quality ladder: a format and the minimum bit depth, sample rate or bitrate
    it needs; `vbr` asks for a variable bitrate ("mp3 v0"). An attribute the peer did not send
    meets no minimum, except a bit depth proven by the file's size."""

    format: str
    bit_depth: int | None = None
    sample_rate: int | None = None
    bitrate: int | None = None
    vbr: bool = False

    @classmethod
    def parse(cls, text: str) -> Rung:
        """A rung from "flac 24", "flac 24/96", "flac", "mp3 320" or "mp3 v0"; ValueError otherwise."""
        words = text.lower().split()
        if not words or len(words) > 2 or not words[0].isalnum():
            raise ValueError(f"not a quality rung: {text!r}")
        fmt = words[0]
        if len(words) == 1:
            return cls(fmt)
        spec = words[1]
        if spec == "v0":
            return cls(fmt, bitrate=220, vbr=True)
        depth, _, rate = spec.partition("/")
        if fmt in LOSSLESS and depth.isdigit() and (not rate or rate.replace(".", "", 1).isdigit()):
            return cls(fmt, bit_depth=int(depth), sample_rate=round(float(rate) * 1000) if rate else None)
        if spec.isdigit() and not rate:
            return cls(fmt, bitrate=int(spec))
        raise ValueError(f"not a quality rung: {text!r}")

    def __str__(self) -> str:
        if self.vbr:
            return f"{self.format} v0"
        if self.bit_depth:
            rate = f"/{self.sample_rate / 1000:g}" if self.sample_rate else ""
            return f"{self.format} {self.bit_depth}{rate}"
        return f"{self.format} {self.bitrate}" if self.bitrate else self.format

    def admits(self, fmt: str, file: File, kbps: float | None) -> bool:
        if fmt != self.format or (self.vbr and file.vbr is not True):
            return False
        if self.bitrate and (file.bit_rate or 0) < self.bitrate:
            return False
        if self.sample_rate and (file.sample_rate or 0) < self.sample_rate:
            return False
        if self.bit_depth and file.bit_depth is None:
            return self.bit_depth <= 16 or (kbps or 0) >= HIRES_PROOF_KBPS
        return not self.bit_depth or (file.bit_depth or 0) >= self.bit_depth


LADDER = (
    Rung("flac", bit_depth=24),
    Rung("flac", bit_depth=16),
    Rung("mp3", bitrate=320),
    Rung.parse("mp3 v0"),
)


@dataclass(frozen=True)
class Preferences:
    """What the user accepts and prefers. `formats` is the allow-list, in order of preference; a
    format allowed but on no rung of `ladder` ranks below every rung. `check_size` turns off the
    size plausibility gate (for peers that serve stand-in files, as the demo's do)."""

    formats: tuple[str, ...] = ("flac", "mp3")
    min_bitrate_kbps: int = 128
    ladder: tuple[Rung, ...] = LADDER
    duration_tolerance_s: float = 5.0
    identity_threshold: float = 0.75
    check_size: bool = True


@dataclass(frozen=True)
class UserContext:
    """Per-user standing: blocked users, users cooling down after failures, (user, filename) pairs
    marked wrong before, and each user's history with Harmony as (successes, failures)."""

    blocked: frozenset[str] = frozenset()
    cooling: frozenset[str] = frozenset()
    wrong: frozenset[tuple[str, str]] = frozenset()
    history: Mapping[str, tuple[int, int]] = field(default_factory=dict)


# --- outputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One file of one peer, judged. `rank` is 1-based among the accepted, None when rejected."""

    username: str
    filename: str
    size: int
    file: File
    accepted: bool
    rank: int | None
    reasons: tuple[str, ...]
    identity: float = 0.0
    quality: str = ""


@dataclass(frozen=True)
class _Judged:
    candidate: Candidate
    found: matching.Identity
    order: tuple[Any, ...]


# --- gates ----------------------------------------------------------------------------------------


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _length(file: File, fmt: str) -> tuple[float | None, bool]:
    """The file's length in seconds and whether it is estimated (from size and bitrate)."""
    if file.length and file.length > 0:
        return float(file.length), False
    if fmt in LOSSY and file.bit_rate and file.bit_rate > 0 and file.size > 0:
        return file.size * 8 / (file.bit_rate * 1000), True
    return None, False


def _kbps(file: File, seconds: float | None) -> float | None:
    return file.size * 8 / seconds / 1000 if seconds and seconds > 0 and file.size > 0 else None


def _pcm_kbps(file: File) -> float | None:
    if file.bit_depth and file.sample_rate:
        return file.bit_depth * file.sample_rate * 2 / 1000
    return None


def _length_gate(wanted: Wanted, file: File, fmt: str, tolerance: float) -> str:
    if not wanted.duration_ms:
        return ""
    target = wanted.duration_ms / 1000
    seconds, estimated = _length(file, fmt)
    if seconds is None:
        return ""
    if not estimated:
        if abs(seconds - target) <= tolerance:
            return ""
        return f"length {matching.clock(seconds)} vs {matching.clock(target)} (tolerance {tolerance:g} s)"
    # Size includes tags, so an estimate runs long, and a VBR estimate is rough either way.
    bitrate = file.bit_rate or 1
    slack = (0.15 * target if file.vbr is not False else 0) + TAG_BYTES * 8 / (bitrate * 1000)
    low = target - tolerance - (0.15 * target if file.vbr is not False else 0)
    if low <= seconds <= target + tolerance + slack:
        return ""
    return f"length about {matching.clock(seconds)} from size and bitrate, wanted {matching.clock(target)}"


def _size_gate(wanted: Wanted, file: File, fmt: str) -> str:
    """Is the size plausible for the format, the claimed bitrate and the length?"""
    seconds, estimated = _length(file, fmt)
    if seconds is None or estimated:
        seconds = wanted.duration_ms / 1000 if wanted.duration_ms else None
    kbps = _kbps(file, seconds)
    if kbps is None or seconds is None:
        return "" if file.size > 0 else "empty file"
    extra = TAG_BYTES * 8 / seconds / 1000
    low, high = 32.0, 1600 + extra
    pcm = _pcm_kbps(file)
    if fmt in ("wav", "aiff", "aif"):
        low, high = (0.9 * pcm if pcm else 700), (pcm or 9216) * 1.05 + extra
    elif fmt in LOSSLESS:
        low = LOSSLESS_FLOOR_KBPS * min(1.0, (pcm or 1411.2) / 1411.2)
        high = (pcm or 9216) * 1.05 + extra
    elif fmt == "mp3":
        claimed = file.bit_rate
        low = (0.8 if file.vbr is False else 0.6) * claimed if claimed else 32
        high = (claimed * (1.1 if file.vbr is False else 1.5) if claimed else 330) + extra
    if low <= kbps <= high:
        return ""
    claim = f"{file.bit_rate} kbps {fmt}" if fmt in LOSSY and file.bit_rate else fmt
    return f"size {_mb(file.size)} is {kbps:.0f} kbps over {matching.clock(seconds)}: implausible for {claim}"


def _bitrate_gate(file: File, fmt: str, floor: int, wanted: Wanted) -> str:
    if fmt in LOSSLESS or floor <= 0:
        return ""
    if file.bit_rate:
        return f"bitrate {file.bit_rate} kbps below {floor}" if file.bit_rate < floor else ""
    seconds, _ = _length(file, fmt)
    kbps = _kbps(file, seconds or (wanted.duration_ms / 1000 if wanted.duration_ms else None))
    if kbps is not None and kbps < 0.9 * floor:
        return f"bitrate about {kbps:.0f} kbps from size, below {floor}"
    return ""


def _gates(
    wanted: Wanted,
    peer: PeerResponse,
    file: File,
    locked: bool,
    fmt: str,
    found: matching.Identity,
    prefs: Preferences,
    context: UserContext,
) -> list[str]:
    """Why the file may not be downloaded; empty when it may."""
    failed = [p for p in found.problems if p.startswith("unsafe path")]
    if fmt not in prefs.formats:
        allowed = ", ".join(prefs.formats)
        failed.append(f"format {fmt!r} not allowed ({allowed})" if fmt else "no extension in the file name")
    if locked:
        failed.append("locked by the peer")
    if peer.username in context.blocked:
        failed.append(f"user {peer.username} is blocked")
    if peer.username in context.cooling:
        failed.append(f"user {peer.username} is cooling down")
    if (peer.username, file.filename) in context.wrong:
        failed.append("this file from this user was marked wrong before")
    failed.append(_bitrate_gate(file, fmt, prefs.min_bitrate_kbps, wanted))
    failed.append(_length_gate(wanted, file, fmt, prefs.duration_tolerance_s))
    failed.append(_size_gate(wanted, file, fmt) if prefs.check_size else "")
    failed.extend(p for p in found.problems if not p.startswith("unsafe path"))
    if found.score < prefs.identity_threshold:
        failed.append(f"identity {found.score:.2f} below {prefs.identity_threshold:g}")
    return [f for f in failed if f]


# --- order ----------------------------------------------------------------------------------------


def quality_key(
    fmt: str, bit_depth: int | None, sample_rate: int | None, bitrate_kbps: int | None, prefs: Preferences
) -> tuple[int, ...]:
    """How good a file on disk is, lower is better: its rung on the ladder, then its format's
    place in the preferences, then bit depth, sample rate and bitrate. The import keeps the better
    of two copies of one recording by this."""
    file = File("", 0, fmt, bitrate_kbps, bit_depth, sample_rate, None, None)
    tier = next(
        (n for n, r in enumerate(prefs.ladder) if r.admits(fmt, file, bitrate_kbps)), len(prefs.ladder)
    )
    preference = prefs.formats.index(fmt) if fmt in prefs.formats else len(prefs.formats)
    # A lossless file's bitrate says how well it compressed, not how good it is.
    lossy_rate = 0 if fmt in LOSSLESS else -(bitrate_kbps or 0)
    return (tier, preference, -(bit_depth or 0), -(sample_rate or 0), lossy_rate)


def _quality(file: File, fmt: str, prefs: Preferences, wanted: Wanted) -> tuple[int, str]:
    seconds, estimated = _length(file, fmt)
    kbps = _kbps(file, seconds if not estimated else None) or _kbps(
        file, wanted.duration_ms / 1000 if wanted.duration_ms else None
    )
    tier = next((n for n, rung in enumerate(prefs.ladder) if rung.admits(fmt, file, kbps)), len(prefs.ladder))
    if fmt in LOSSLESS:
        depth = f" {file.bit_depth}-bit" if file.bit_depth else ""
        rate = f" {file.sample_rate / 1000:g} kHz" if file.sample_rate else ""
        label = f"{fmt}{depth}{rate}"
    else:
        mode = {True: " VBR", False: " CBR", None: ""}[file.vbr]
        label = f"{fmt} {file.bit_rate} kbps{mode}" if file.bit_rate else f"{fmt}, bitrate unknown"
    place = f"ladder {tier + 1} of {len(prefs.ladder)}" if tier < len(prefs.ladder) else "below the ladder"
    return tier, f"quality {label} ({place})"


def _queue_bucket(queue: int) -> int:
    return sum(queue >= edge for edge in (1, 5, 20, 50))


def _speed_bucket(speed: int) -> int:
    return sum(speed >= edge for edge in (50_000, 250_000, 1_000_000, 4_000_000))


def _history(context: UserContext, username: str) -> tuple[int, str]:
    ok, failed = context.history.get(username, (0, 0))
    if not ok and not failed:
        return 0, ""
    return min(ok, 3) - 2 * min(failed, 3), f"history {ok} ok, {failed} failed"


def _speed(speed: int) -> str:
    return f"{speed / 1_000_000:.1f} MB/s" if speed >= 1_000_000 else f"{speed / 1000:.0f} kB/s"


def _order(
    found: matching.Identity,
    tier: int,
    fmt: str,
    peer: PeerResponse,
    file: File,
    prefs: Preferences,
    history: int,
) -> tuple[Any, ...]:
    bucket = min(math.floor(found.score * 10 + 1e-9), 9)
    preference = prefs.formats.index(fmt) if fmt in prefs.formats else len(prefs.formats)
    return (-bucket, tier, preference, *_order_peer(peer, history), peer.username, file.filename)


# --- ranking --------------------------------------------------------------------------------------


def _judge(
    wanted: Wanted, peer: PeerResponse, file: File, locked: bool, prefs: Preferences, context: UserContext
) -> _Judged:
    parsed = matching.parse_path(file.filename)
    fmt = parsed.extension
    seconds, estimated = _length(file, fmt)
    found = matching.identity(
        file.filename, wanted, None if estimated else seconds, max(prefs.duration_tolerance_s, 2.0)
    )
    failed = _gates(wanted, peer, file, locked, fmt, found, prefs, context)
    summary = f"identity {found.score:.2f}: " + "; ".join(found.reasons)
    if estimated and seconds is not None:
        summary += f"; length about {matching.clock(seconds)} from size and bitrate"
    tier, quality = _quality(file, fmt, prefs, wanted)
    history, history_text = _history(context, peer.username)
    if failed:
        reasons = (*(f"rejected: {f}" for f in failed), summary)
        order: tuple[Any, ...] = (-found.score, peer.username, file.filename)
    else:
        reasons = tuple(r for r in (summary, quality, _availability(peer), history_text) if r)
        order = _order(found, tier, fmt, peer, file, prefs, history)
    candidate = Candidate(
        peer.username, file.filename, file.size, file, not failed, None, reasons, found.score, quality
    )
    return _Judged(candidate, found, order)


def _entries(responses: Iterable[PeerResponse]) -> list[tuple[PeerResponse, File, bool]]:
    """Every (peer, file, locked) once per (username, filename), in that order; a file listed twice
    keeps one listing, chosen by content, so nothing here depends on the order of the responses."""
    best: dict[tuple[str, str], tuple[tuple[Any, ...], PeerResponse, File, bool]] = {}
    for peer in responses:
        for files, locked in ((peer.files, False), (peer.locked_files, True)):
            for file in files:
                key = (peer.username, file.filename)
                preference = (
                    locked,
                    not peer.has_free_slot,
                    peer.queue_length,
                    -peer.upload_speed,
                    repr(file),
                )
                if key not in best or preference < best[key][0]:
                    best[key] = (preference, peer, file, locked)
    return [(peer, file, locked) for _, (_, peer, file, locked) in sorted(best.items(), key=lambda kv: kv[0])]


def _ranked(judged: list[_Judged]) -> list[Candidate]:
    accepted = sorted((j for j in judged if j.candidate.accepted), key=lambda j: j.order)
    rejected = sorted((j for j in judged if not j.candidate.accepted), key=lambda j: j.order)
    ranked = [replace(j.candidate, rank=n) for n, j in enumerate(accepted, 1)]
    return ranked + [j.candidate for j in rejected]


def rank(
    wanted: Wanted,
    responses: Iterable[PeerResponse],
    prefs: Preferences | None = None,
    context: UserContext | None = None,
) -> list[Candidate]:
    """Every file of every response, judged: the accepted first, best first (rank 1, 2, ...), then
    the rejected. Deterministic, and independent of the order of `responses`."""
    prefs, context = prefs or Preferences(), context or UserContext()
    judged = [
        _judge(wanted, peer, file, locked, prefs, context) for peer, file, locked in _entries(responses)
    ]
    return _ranked(judged)


def pick(candidates: Sequence[Candidate]) -> Candidate | None:
    """The candidate ranked first, if any was accepted."""
    return next((c for c in candidates if c.rank == 1), None)


# --- album mode -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackPick:
    """One wanted track of a release and the file chosen for it."""

    index: int
    candidate: Candidate


@dataclass(frozen=True)
class FolderVerdict:
    """One (user, folder, format) judged as a source for a release. `tracks` maps every release
    track the folder holds (not only the wanted ones); `rank` is 1-based among the accepted."""

    username: str
    folder: str
    format: str
    accepted: bool
    rank: int | None
    reasons: tuple[str, ...]
    tracks: tuple[TrackPick, ...]


@dataclass(frozen=True)
class AlbumPick:
    """The folder chosen for a release: only the wanted tracks, all from one user, in release order."""

    username: str
    folder: str
    tracks: tuple[TrackPick, ...]
    reasons: tuple[str, ...]

    @property
    def files(self) -> tuple[File, ...]:
        return tuple(t.candidate.file for t in self.tracks)


def _folders(
    responses: Iterable[PeerResponse], prefs: Preferences
) -> dict[tuple[str, str, str], list[tuple[PeerResponse, File, bool]]]:
    """Audio files by (user, album folder, format); CD1/Disc 2/artwork folders join their album."""
    groups: dict[tuple[str, str, str], list[tuple[PeerResponse, File, bool]]] = {}
    for peer, file, locked in _entries(responses):
        path = matching.parse_path(file.filename)
        if path.extension in prefs.formats:
            groups.setdefault((peer.username, path.directory, path.extension), []).append(
                (peer, file, locked)
            )
    return groups


def _map_tracks(
    release: Sequence[Wanted],
    files: list[tuple[PeerResponse, File, bool]],
    prefs: Preferences,
    context: UserContext,
) -> tuple[dict[int, _Judged], dict[int, list[str]]]:
    """Release tracks to files one to one: every accepted (track, file) pair, best identity first;
    for a track with no accepted file, the reasons of its closest file."""
    pairs: list[tuple[tuple[Any, ...], int, _Judged]] = []
    closest: dict[int, tuple[float, list[str]]] = {}
    for index, track in enumerate(release):
        core = matching.title_spec(track.title).core
        for peer, file, locked in files:
            stem = matching.tokens(matching.parse_path(file.filename).stem)
            if matching.find(core, stem) is None and matching.fuzzy(core, stem, 0.86) is None:
                continue  # not this track's file: spare the full judgement
            judged = _judge(track, peer, file, locked, prefs, context)
            if judged.candidate.accepted:
                pairs.append(((-judged.candidate.identity, index, file.filename), index, judged))
            elif judged.candidate.identity > closest.get(index, (-1.0, []))[0]:
                closest[index] = (judged.candidate.identity, list(judged.candidate.reasons))
    mapped: dict[int, _Judged] = {}
    used: set[str] = set()
    for _, index, judged in sorted(pairs, key=lambda p: p[0]):
        if index not in mapped and judged.candidate.filename not in used:
            mapped[index] = judged
            used.add(judged.candidate.filename)
    return mapped, {i: reasons for i, (_, reasons) in closest.items()}


def _folder_problems(
    release: Sequence[Wanted],
    wanted: Collection[int],
    mapped: dict[int, _Judged],
    closest: dict[int, list[str]],
) -> list[str]:
    problems = []
    for index in sorted(set(wanted) - set(mapped)):
        why = next(
            (r for r in closest.get(index, []) if r.startswith("rejected: ")),
            "rejected: no file has its title",
        )
        problems.append(
            f"wanted track {index + 1} '{release[index].title}' missing ({why.removeprefix('rejected: ')})"
        )
    if mapped and len(mapped) * 2 < len(release):
        problems.append(f"only {len(mapped)} of {len(release)} release tracks")
    if any(j.found.album < 0.8 for i, j in mapped.items() if i in wanted):
        problems.append("the album's name is not in the folder")
    if not wanted:
        problems.append("no track is wanted")
    return problems


def _judge_folder(
    key: tuple[str, str, str],
    files: list[tuple[PeerResponse, File, bool]],
    release: Sequence[Wanted],
    wanted: Collection[int],
    prefs: Preferences,
    context: UserContext,
) -> tuple[FolderVerdict, tuple[Any, ...]]:
    """One folder's verdict and its place in the order: weakest identity bucket of its files, their
    lowest quality rung, a whole release before part of one, then the peer as in `rank`."""
    username, folder, fmt = key
    mapped, closest = _map_tracks(release, files, prefs, context)
    tracks = tuple(TrackPick(i, replace(j.candidate, rank=1)) for i, j in sorted(mapped.items()))
    coverage = f"{len(mapped)} of {len(release)} release tracks, {len(files)} {fmt} files"
    problems = _folder_problems(release, wanted, mapped, closest)
    if problems:
        reasons = (*(f"rejected: {p}" for p in problems), coverage)
        return FolderVerdict(username, folder, fmt, False, None, reasons, tracks), (-len(mapped), *key)
    peer = files[0][0]
    weakest = max(mapped.values(), key=lambda j: (j.order[0], j.order[1], j.candidate.filename))
    lowest = max(mapped.values(), key=lambda j: (j.order[1], j.candidate.filename))
    history, history_text = _history(context, username)
    order = (weakest.order[0], lowest.order[1], len(mapped) < len(release), *_order_peer(peer, history), *key)
    reasons = (coverage, lowest.candidate.quality, _availability(peer), history_text)
    return FolderVerdict(username, folder, fmt, True, None, tuple(r for r in reasons if r), tracks), order


def _availability(peer: PeerResponse) -> str:
    slot = "free upload slot" if peer.has_free_slot else "no free upload slot"
    return f"{slot}, queue {peer.queue_length}, speed {_speed(peer.upload_speed)}"


def _order_peer(peer: PeerResponse, history: int) -> tuple[Any, ...]:
    return (
        not peer.has_free_slot,
        _queue_bucket(peer.queue_length),
        -_speed_bucket(peer.upload_speed),
        -history,
        peer.queue_length,
        -peer.upload_speed,
    )


def album_folders(
    release_tracks: Sequence[Wanted],
    wanted: Collection[int],
    responses: Iterable[PeerResponse],
    prefs: Preferences | None = None,
    context: UserContext | None = None,
) -> list[FolderVerdict]:
    """Every (user, folder, format) judged for a release, accepted ones first and best first.

    `wanted` holds the indexes into `release_tracks` of the tracks actually wanted (ValueError if
    one is outside it). A folder is accepted when each wanted track maps one to one onto a file of
    it by title and length (disc and track numbers break ties; bonus tracks may be extra), every
    such file passes `rank`'s gates for its track, the album's name is in the folder, and it holds
    at least half of the release. Each format of a folder that mixes formats is judged apart.
    """
    prefs, context = prefs or Preferences(), context or UserContext()
    if any(not 0 <= index < len(release_tracks) for index in wanted):
        raise ValueError(f"wanted: track indexes must be within the release's {len(release_tracks)} tracks")
    judged = [
        _judge_folder(key, files, release_tracks, wanted, prefs, context)
        for key, files in _folders(responses, prefs).items()
    ]
    accepted = sorted((j for j in judged if j[0].accepted), key=lambda j: j[1])
    rejected = sorted((j for j in judged if not j[0].accepted), key=lambda j: j[1])
    return [replace(v, rank=n) for n, (v, _) in enumerate(accepted, 1)] + [v for v, _ in rejected]


def pick_album(
    release_tracks: Sequence[Wanted],
    wanted: Collection[int],
    responses: Iterable[PeerResponse],
    prefs: Preferences | None = None,
    context: UserContext | None = None,
) -> AlbumPick | None:
    """The best folder of `album_folders` as the wanted tracks' files, or None when no folder holds
    them all (then `album_folders` says why for each folder). Never an empty file list."""
    for verdict in album_folders(release_tracks, wanted, responses, prefs, context):
        tracks = tuple(t for t in verdict.tracks if t.index in wanted)
        if verdict.accepted and tracks:
            reasons = (f"folder {verdict.folder} from {verdict.username}", *verdict.reasons)
            return AlbumPick(verdict.username, verdict.folder, tracks, reasons)
    return None


# --- the `harmony rank` contract ------------------------------------------------------------------


_KIND_NAMES: dict[type, str] = {str: "a string", list: "a list", bool: "true or false", dict: "an object"}


def _get(raw: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """`raw[key]` if present, not null and of `kind` (never a bool for a number); else ValueError."""
    value = raw.get(key)
    if value is None:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = "a number" if float in kinds else _KIND_NAMES.get(kinds[0], kinds[0].__name__)
        raise ValueError(f"{where}{key}: expected {names}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}{key}: expected a finite number")
    return value


def _count(raw: Mapping[str, Any], key: str, where: str) -> int | None:
    value = _get(raw, key, (int, float), where)
    if value is not None and (value < 0 or value != int(value)):
        raise ValueError(f"{where}{key}: expected a whole number of at least 0")
    return None if value is None else int(value)


def _strings(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    value = _get(raw, key, list, where)
    if value is None:
        return None
    for n, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{where}{key}[{n}]: expected a non-empty string")
    return tuple(value)


def wanted_from_json(raw: object) -> Wanted:
    """A `Wanted` from the contract's `wanted` object; ValueError naming the field otherwise."""
    if not isinstance(raw, dict):
        raise ValueError("wanted: expected an object")
    title = _get(raw, "title", str, "wanted.")
    if not title or not title.strip():
        raise ValueError("wanted.title: expected a non-empty string")
    artists = _strings(raw, "artists", "wanted.") or ()
    artist = _get(raw, "artist", str, "wanted.") or (artists[0] if artists else "")
    if not artist.strip():
        raise ValueError("wanted.artist: expected a non-empty string (or wanted.artists)")
    return Wanted(
        artist=artist,
        title=title,
        artists=artists or (artist,),
        album=_get(raw, "album", str, "wanted.") or "",
        album_artist=_get(raw, "album_artist", str, "wanted.") or "",
        track_number=_count(raw, "track_number", "wanted."),
        disc_number=_count(raw, "disc_number", "wanted."),
        total_discs=_count(raw, "total_discs", "wanted."),
        duration_ms=_count(raw, "duration_ms", "wanted."),
        isrc=_get(raw, "isrc", str, "wanted."),
        release_year=_count(raw, "release_year", "wanted."),
    )


def preferences_from_json(raw: object, defaults: Preferences) -> Preferences:
    """`defaults` with the fields the contract's `preferences` object sets; ValueError naming the field."""
    if raw is None:
        return defaults
    if not isinstance(raw, dict):
        raise ValueError("preferences: expected an object")
    where = "preferences."
    formats = _strings(raw, "formats", where)
    ladder = _strings(raw, "ladder", where)
    rungs: tuple[Rung, ...] | None = None
    if ladder is not None:
        try:
            rungs = tuple(Rung.parse(text) for text in ladder)
        except ValueError as exc:
            raise ValueError(f"preferences.ladder: {exc}") from None
    tolerance = _get(raw, "duration_tolerance_s", (int, float), where)
    threshold = _get(raw, "identity_threshold", (int, float), where)
    if tolerance is not None and tolerance < 0:
        raise ValueError("preferences.duration_tolerance_s: expected a number of at least 0")
    if threshold is not None and not 0 <= threshold <= 1:
        raise ValueError("preferences.identity_threshold: expected a number from 0 to 1")
    min_bitrate = _count(raw, "min_bitrate_kbps", where)
    check_size = _get(raw, "check_size", bool, where)
    return Preferences(
        formats=tuple(f.strip().lower().lstrip(".") for f in formats) if formats else defaults.formats,
        min_bitrate_kbps=defaults.min_bitrate_kbps if min_bitrate is None else min_bitrate,
        ladder=defaults.ladder if rungs is None else rungs,
        duration_tolerance_s=defaults.duration_tolerance_s if tolerance is None else float(tolerance),
        identity_threshold=defaults.identity_threshold if threshold is None else float(threshold),
        check_size=defaults.check_size if check_size is None else check_size,
    )


_FILE_FIELDS = {"size": int, "bitRate": int, "bitDepth": int, "sampleRate": int, "length": int}


def _check_file(raw: object, where: str) -> None:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    filename = _get(raw, "filename", str, where + ".")
    if not filename:
        raise ValueError(f"{where}.filename: expected a non-empty string")
    for key in _FILE_FIELDS:
        _count(raw, key, where + ".")
    _get(raw, "extension", str, where + ".")
    _get(raw, "isVariableBitRate", bool, where + ".")


def responses_from_json(raw: object) -> list[PeerResponse]:
    """The body of slskd's `GET /api/v0/searches/{id}/responses`, checked field by field."""
    if not isinstance(raw, list):
        raise ValueError("responses: expected a list (the body of GET /api/v0/searches/{id}/responses)")
    parsed = []
    for n, item in enumerate(raw):
        where = f"responses[{n}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object")
        username = _get(item, "username", str, where + ".")
        if not username:
            raise ValueError(f"{where}.username: expected a non-empty string")
        _get(item, "hasFreeUploadSlot", bool, where + ".")
        _count(item, "uploadSpeed", where + ".")
        _count(item, "queueLength", where + ".")
        for key in ("files", "lockedFiles"):
            for m, file in enumerate(_get(item, key, list, where + ".") or []):
                _check_file(file, f"{where}.{key}[{m}]")
        parsed.append(parse_response(item))
    return parsed


def rank_json(
    document: object, defaults: Preferences | None = None, context: UserContext | None = None
) -> dict[str, Any]:
    """`harmony rank`: `{"wanted", "preferences"?, "responses"}` in (unknown keys ignored; absent
    preferences are `defaults`), `{"pick": {"username", "filename"} | null, "candidates": [...]}` out.
    Malformed input raises ValueError naming the field."""
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object with wanted and responses")
    wanted = wanted_from_json(document.get("wanted"))
    prefs = preferences_from_json(document.get("preferences"), defaults or Preferences())
    if "responses" not in document:
        raise ValueError("responses: required (the body of GET /api/v0/searches/{id}/responses)")
    candidates = rank(wanted, responses_from_json(document["responses"]), prefs, context)
    best = pick(candidates)
    return {
        "pick": {"username": best.username, "filename": best.filename} if best else None,
        "candidates": [
            {
                "username": c.username,
                "filename": c.filename,
                "accepted": c.accepted,
                "rank": c.rank,
                "reasons": list(c.reasons),
            }
            for c in candidates
        ],
    }
