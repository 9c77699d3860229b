"""Fake Soulseek peers: who shares what, how their shares are laid out, and how they behave.

`build(catalogue, seed)` is deterministic. Shares look like real users' shares (Windows
backslashes, `@@share` roots, "2019 - Album" folders, CD1/CD2 sub-folders, "[FLAC]" tags in folder
names, characters invalid on Windows replaced) and contain the usual traps: live, remix and
instrumental versions, covers by other artists under the same titles, files whose duration is wrong,
an MP3 peer that advertises 320 kbps for 128 kbps files, files with no audio attributes or an empty
extension, and locked files.

Behaviours (`Peer.behaviour`) drive the fake transfers in `slskd_transfers.py`:
`fast`, `slow` (low speed), `queued` (waits in the remote queue for `queue_seconds` first),
`offline` (answered searches, but enqueue fails as for an offline user), `rejects`
(`Completed, Rejected`), `stalls` (bytes stop growing part-way, then the inactivity timeout),
`fails` (`Completed, Errored`), `unresponsive` (never acknowledges an enqueue), and two that
transfer normally but leave a damaged file on disk: `corrupt` (bytes that are not audio) and
`truncates` (the file cut short while slskd reports every byte).

Peers whose usernames real clients get wrong (`/`, `%`, `+`, a space, non-ASCII, emoji), and
peers with unusual search answers (FLAC with a bitrate, VBR MP3s, a peer answering twice, one
whose files are all locked) are built from their own random stream, so adding them changes no
other peer's share. File contents come from `audio.py` on demand (`file_bytes`).
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from harmony.fakes import audio
from harmony.fakes.catalogue import Album, Catalogue, Track

BEHAVIOURS = (
    "fast",
    "slow",
    "queued",
    "offline",
    "rejects",
    "stalls",
    "fails",
    "unresponsive",
    "corrupt",
    "truncates",
)
# Usernames Soulseek allows and URLs must encode; each shares a little, answers searches and serves.
ODD_USERNAMES = ("Lo/Fi fan", "100% vinyl", "a+b=flac", "space cadet", "Søren Ødegård", "🎧 night owl")
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class SharedFile:
    """One file in a peer's share. `duration` and `bitrate` are the truth; `claimed_bitrate` is what
    the peer advertises (None: no attributes are sent). `variant` names the trap, "original" if none."""

    path: str
    fmt: str
    duration: float
    bitrate: int = 0
    claimed_bitrate: int | None = None
    attributes: bool = True
    extension: str | None = None  # None: the real extension; "" for peers that send none
    track_id: str | None = None
    variant: str = "original"
    vbr: bool = False  # an MP3 encoded with a variable bitrate (`bitrate` is then its average)
    title: str = ""
    artist: str = ""
    album: str = ""
    track_number: int = 0

    @property
    def size(self) -> int:
        """What the peer advertises and serves: the size a real file of this format, bitrate and
        length has. The content is the tiny real file, zero-padded to it (sparse on disk)."""
        return nominal_size(self)

    def words(self) -> frozenset[str]:
        return _words(self.path)


@dataclass
class Peer:
    username: str
    behaviour: str
    upload_speed: int  # bytes per second, both advertised and used for transfers
    free_slot: bool = True
    queue_length: int = 0
    queue_seconds: float = 0.0
    response_delay: float = 1.0  # seconds after a search starts that this peer answers
    reject_reason: str = "Too many megabytes"
    flac_bitrate: bool = False  # sends a `bitRate` attribute for lossless files too
    answers: int = 1  # responses it sends to one search (some clients answer twice)
    files: list[SharedFile] = field(default_factory=list)
    locked: list[SharedFile] = field(default_factory=list)

    def find(self, filename: str) -> SharedFile | None:
        """The unlocked shared file with exactly this remote path."""
        return self._index().get(filename)

    def _index(self) -> dict[str, SharedFile]:
        if not hasattr(self, "_by_path"):
            self._by_path = {f.path: f for f in self.files}
        return self._by_path


@lru_cache(maxsize=2048)
def file_bytes(f: SharedFile) -> bytes:
    """The file's content: real (tiny) audio with tags, deterministic for the SharedFile."""
    tags = {"title": f.title, "artist": f.artist, "album": f.album, "tracknumber": str(f.track_number)}
    return audio.render(f.fmt, f.duration, bitrate=f.bitrate or 320, tags=tags)


FLAC_KBPS = 880  # what a 16-bit CD rip averages


@lru_cache(maxsize=65536)
def nominal_size(f: SharedFile) -> int:
    """Header and tags, plus the audio's bytes at the file's true bitrate (a "320" that is really
    128 is sized as 128, as a transcode is)."""
    kbps = FLAC_KBPS if f.fmt == "flac" else (f.bitrate or 320)
    return len(file_bytes(f)) + int(f.duration * kbps * 125)


@lru_cache(maxsize=65536)
def _words(path: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD.findall(path.replace("_", " ")))


def query_words(text: str) -> tuple[list[str], list[str]]:
    """(include, exclude) words of a search, as Soulseek sees them: single characters are dropped."""
    include: list[str] = []
    exclude: list[str] = []
    for term in text.split():
        target = exclude if term.startswith("-") else include
        target.extend(w.lower() for w in _WORD.findall(term.lstrip("-").replace("_", " ")) if len(w) > 1)
    return include, exclude


def matches(f: SharedFile, include: list[str], exclude: list[str]) -> bool:
    words = f.words()
    return all(w in words for w in include) and not any(w in words for w in exclude)


# -- building -------------------------------------------------------------------------------------


def build(catalogue: Catalogue, seed: int = 1) -> dict[str, Peer]:
    """All peers by username, deterministic for (catalogue, seed)."""
    rng = random.Random(seed * 7919 + 17)
    releases = [
        a
        for a in catalogue.albums.values()
        if a.album_type != "compilation"
        and a.artist_ids[0] in set(catalogue.main_artist_ids)
        and a.duplicate_of is None  # a market duplicate is the same release
    ]
    past = [a for a in releases if not a.future]
    b = _ShareBuilder(catalogue)
    peers = [
        Peer("vinylvault", "fast", 1_800_000, response_delay=0.6),
        Peer("mp3mike", "fast", 900_000, response_delay=0.9),
        Peer("slowpoke", "slow", 20, response_delay=1.2),
        Peer("queue_queen", "queued", 1_200_000, free_slot=False, queue_length=37, queue_seconds=900),
        Peer("ghost_peer", "offline", 1_000_000, response_delay=0.4),
        Peer("grumpy", "rejects", 700_000, response_delay=0.8),
        Peer("staller", "stalls", 25, response_delay=0.5),
        Peer("flaky", "fails", 30, response_delay=0.7),
        Peer("bootlegger", "fast", 600_000, response_delay=1.5),
        Peer("karaoke_kings", "fast", 800_000, response_delay=1.1),
        Peer("radio_edits", "fast", 750_000, response_delay=1.3),
        Peer("bitrate_liar", "fast", 1_100_000, response_delay=0.3),
        Peer("lockbox", "fast", 900_000, response_delay=1.0),
        Peer("linux_larry", "fast", 1_300_000, response_delay=1.6),
    ]
    by_name = {p.username: p for p in peers}
    # vinylvault has everything, including releases that are not out yet on Spotify.
    for album in releases:
        by_name["vinylvault"].files += b.album(album, "flac", style="year_dash", share="@@vinyl")
    for name, fmt, style, share in (
        ("mp3mike", "mp3", "artist_album", "@@mike"),
        ("slowpoke", "flac", "year_dash", "@@slow"),
        ("queue_queen", "flac", "tagged", "@@qq"),
        ("ghost_peer", "flac", "year_dash", "@@ghost"),
        ("grumpy", "flac", "artist_album", "@@grump"),
        ("staller", "flac", "year_dash", "@@stall"),
        ("flaky", "mp3", "artist_album", "@@flaky"),
        ("lockbox", "flac", "year_dash", "@@lock"),
        ("linux_larry", "flac", "linux", "@@larry"),
    ):
        for album in rng.sample(past, len(past) // 2):
            by_name[name].files += b.album(album, fmt, style=style, share=share)
    # Traps: for half the albums, versions that must never be taken for the original.
    traps = (
        ("bootlegger", "flac", "year_dash", "@@boot", "live"),
        ("bootlegger", "mp3", "artist_album", "@@boot", "remix"),
        ("bootlegger", "flac", "artist_album", "@@boot", "instrumental"),
        ("karaoke_kings", "mp3", "artist_album", "@@kk", "cover"),
        ("radio_edits", "flac", "year_dash", "@@edits", "short"),
        ("bitrate_liar", "mp3", "tagged", "@@liar", "mislabelled"),
    )
    for album in rng.sample(past, len(past) // 2):
        for name, fmt, style, share, variant in traps:
            by_name[name].files += b.album(album, fmt, style=style, share=share, variant=variant)
    lockbox = by_name["lockbox"]
    lockbox.locked, lockbox.files = lockbox.files[::2], lockbox.files[1::2]
    larry = by_name["linux_larry"]
    larry.files = [
        _replace(f, attributes=False) if i % 3 == 0 else _replace(f, extension="") if i % 3 == 1 else f
        for i, f in enumerate(larry.files)
    ]
    # A few ordinary peers with random shares and speeds.
    for n in range(1, 7):
        peer = Peer(
            f"listener{n:02d}",
            "fast" if n % 3 else "slow",
            rng.choice((150_000, 400_000, 2_500_000)) if n % 3 else 60,
            free_slot=rng.random() < 0.7,
            queue_length=rng.randrange(0, 12),
            response_delay=round(rng.uniform(0.3, 3.0), 2),
        )
        fmt = "flac" if n % 2 else "mp3"
        for album in rng.sample(past, 6):
            peer.files += b.album(album, fmt, style=rng.choice(_STYLES), share=f"@@share{n}")
        by_name[peer.username] = peer
    by_name.update((p.username, p) for p in _unusual_peers(b, past, seed))
    by_name.update((p.username, p) for p in _damaging_peers(b, catalogue, past))
    return by_name


def _unusual_peers(b: _ShareBuilder, past: list[Album], seed: int) -> list[Peer]:
    """Peers for the edges of the protocol, from their own random stream (see the module doc)."""
    rng = random.Random(seed * 104729 + 3)
    peers = [
        Peer(name, "fast", 700_000, response_delay=round(2.0 + n * 0.1, 2), free_slot=n % 2 == 0)
        for n, name in enumerate(ODD_USERNAMES)
    ]
    for n, peer in enumerate(peers):
        for album in rng.sample(past, 2):
            peer.files += b.album(album, "flac" if n % 2 else "mp3", style="year_dash", share=f"@@odd{n}")
    vbr = Peer("vbr_vince", "fast", 500_000, response_delay=2.7)
    hifi = Peer("hifi_hanna", "fast", 1_500_000, response_delay=2.8, flac_bitrate=True)
    echo = Peer("echo_echo", "fast", 400_000, response_delay=2.9, answers=2)
    vault = Peer("locked_vault", "fast", 900_000, response_delay=3.0)
    for album in rng.sample(past, 4):
        vbr.files += [
            _replace(f, vbr=True, bitrate=256, claimed_bitrate=245)
            for f in b.album(album, "mp3", style="tagged", share="@@vbr")
        ]
        hifi.files += b.album(album, "flac", style="year_dash", share="@@hifi")
        echo.files += b.album(album, "flac", style="year_dash", share="@@echo")
        vault.locked += b.album(album, "flac", style="year_dash", share="@@vault")
    return [*peers, vbr, hifi, echo, vault]


# Whose recent singles the damaging peers share: artists the demo follows, so the demo shows a
# bad file set aside and the item completed from another peer; no other share is touched.
DAMAGED_ARTISTS = {"bitrot": ("Aurora Vale", "Mørkeskog"), "truncator": ("Sigrún Hólm",)}


def _damaging_peers(b: _ShareBuilder, catalogue: Catalogue, past: list[Album]) -> list[Peer]:
    """Fast peers with a free slot (so they rank first) whose files pass every search-time check
    but fail verification on disk: `bitrot` serves bytes that are not audio, `truncator` a file
    cut short while slskd reports it complete."""
    out = []
    for username, behaviour in (("bitrot", "corrupt"), ("truncator", "truncates")):
        peer = Peer(username, behaviour, 5_000_000, response_delay=0.2)
        for album in past:
            artist = catalogue.artists[album.artist_ids[0]].name
            if artist in DAMAGED_ARTISTS[username] and album.album_type == "single":
                peer.files += b.album(album, "flac", style="year_dash", share=f"@@{username}")
        out.append(peer)
    return out


def _replace(f: SharedFile, **changes: object) -> SharedFile:
    from dataclasses import replace

    return replace(f, **changes)  # type: ignore[arg-type]


_STYLES = ("year_dash", "artist_album", "tagged", "linux")
_VARIANT_SUFFIX = {"live": " (Live)", "remix": " (Club Remix)", "instrumental": " (Instrumental)"}
_VARIANT_DELTA = {"live": 14.0, "remix": 71.0, "instrumental": 0.5, "cover": 4.0, "short": -38.0}


class _ShareBuilder:
    def __init__(self, catalogue: Catalogue) -> None:
        self.cat = catalogue

    def album(
        self, album: Album, fmt: str, *, style: str, share: str, variant: str = "original"
    ) -> list[SharedFile]:
        """The files of one release laid out in `style` under `share`."""
        cat = self.cat
        tracks = cat.album_tracks(album)
        artist = "Karaoke Kings" if variant == "cover" else cat.artists[album.artist_ids[0]].name
        windows = style != "linux"
        year = album.released_on.year
        album_name = album.name + (" (Live)" if variant == "live" else "")
        fmt_tag = "FLAC" if fmt == "flac" else "MP3 320" if variant != "mislabelled" else "MP3 320kbps"
        folder = {
            "year_dash": f"Music\\{_clean(artist, windows)}\\{year} - {_clean(album_name, windows)}",
            "artist_album": f"{_clean(artist, windows)} - {_clean(album_name, windows)} ({year})",
            "tagged": f"Downloads\\{_clean(album_name, windows)} [{fmt_tag}]",
            "linux": f"media\\music\\{_clean(artist, windows)}\\{_clean(album_name, windows)}",
        }[style]
        multi_disc = len({t.disc_number for t in tracks}) > 1
        out = []
        for track in tracks:
            title = track.name + _VARIANT_SUFFIX.get(variant, "")
            name = f"{track.track_number:02d} - {_clean(title, windows)}"
            if style == "artist_album":
                name = f"{track.track_number:02d}. {_clean(artist, windows)} - {_clean(title, windows)}"
            directory = folder
            if multi_disc:
                if style == "artist_album":
                    name = f"{track.disc_number}-{name}"
                else:
                    directory = f"{folder}\\CD{track.disc_number}"
            out.append(
                self._file(track, variant, fmt, f"{share}\\{directory}\\{name}.{fmt}", title, artist, album)
            )
        return out

    def _file(
        self, track: Track, variant: str, fmt: str, path: str, title: str, artist: str, album: Album
    ) -> SharedFile:
        duration = max(30.0, track.duration_ms / 1000 + _VARIANT_DELTA.get(variant, 0.0))
        bitrate = 128 if variant == "mislabelled" else 320 if fmt == "mp3" else 0
        claimed = 320 if fmt == "mp3" else None
        return SharedFile(
            path=path,
            fmt=fmt,
            duration=round(duration, 3),
            bitrate=bitrate,
            claimed_bitrate=claimed,
            track_id=track.id,
            variant=variant,
            title=title,
            artist=artist,
            album=album.name,
            track_number=track.track_number,
        )


def _clean(name: str, windows: bool) -> str:
    """What a peer's file system allows: "/" never; on Windows no ':*?"<>|' either."""
    name = name.replace("/", "_")
    if windows:
        name = name.replace(":", " -").translate(str.maketrans("", "", '*?"<>|'))
    return unicodedata.normalize("NFC", name).strip()
