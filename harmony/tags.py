"""Audio tags and stream facts: the one module that reads and writes audio files with mutagen.

`audio_info(path)` says what a file is (format, duration, bitrate, bit depth, sample rate,
channels), decided by its content, never by its name. `write_tags(path, tags)` replaces whatever
tags a file carries with a `Tags` value; `read_tags(path)` reads one back. The formats are FLAC
(Vorbis comments and PICTURE blocks), MP3 (ID3v2.4), M4A (iTunes atoms) and Ogg Vorbis and Ogg
Opus (Vorbis comments, cover art as METADATA_BLOCK_PICTURE). Format names double as the file
extensions the library uses.

To tag one more field, add it to `Tags`, then to each format's `_write_*` and `_read_*` pair; the
round-trip test in `tests/test_tags.py` covers every field of `Tags` in every format.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

import mutagen
import mutagen.apev2
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, TALB, TDRC, TIT2, TPE1, TPE2, TPOS, TRCK, TSRC, TXXX, PictureType
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

FORMATS = ("flac", "mp3", "m4a", "ogg", "opus")
LOSSLESS_CODECS = frozenset({"flac", "alac"})
MAX_COVER_BYTES = 10 * 1024 * 1024  # the default limit for embedded cover art
JPEG, PNG = "image/jpeg", "image/png"

# Spotify ids have no standard tag; these are the names Harmony writes (TXXX, Vorbis, MP4 freeform).
SPOTIFY_TRACK_ID = "SPOTIFY_TRACK_ID"
SPOTIFY_ALBUM_ID = "SPOTIFY_ALBUM_ID"
SPOTIFY_ARTIST_ID = "SPOTIFY_ARTIST_ID"

_SURROGATE = re.compile("[\ud800-\udfff]")
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_MAX_NUMBER = 0xFFFF  # MP4 stores track and disc numbers in 16 bits


class NotAudio(Exception):
    """The file is not audio in one of `FORMATS` that mutagen can read. `reason` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class BadCover(ValueError):
    """Cover art that is empty, too large, or neither JPEG nor PNG."""


@dataclass(frozen=True)
class Cover:
    """Embedded cover art: the image bytes and their MIME type."""

    data: bytes
    mime: str

    def __repr__(self) -> str:  # the bytes would drown a log line
        return f"Cover({self.mime}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class Tags:
    """The tags Harmony writes. Text fields hold no NUL (ID3 uses it to separate values) and no lone
    surrogates (they cannot be encoded): both are cleaned here, so what is written reads back equal.
    `date` is "YYYY", "YYYY-MM" or "YYYY-MM-DD"; anything else (Spotify's "0000" included) becomes "".
    Numbers are 1..65535 or None, and a total needs its number: anything else raises ValueError."""

    title: str = ""
    artists: tuple[str, ...] = ()
    album: str = ""
    album_artist: str = ""
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    disc_total: int | None = None
    date: str = ""
    isrc: str = ""
    spotify_track_id: str = ""
    spotify_album_id: str = ""
    spotify_artist_ids: tuple[str, ...] = ()
    cover: Cover | None = None

    def __post_init__(self) -> None:
        for name in ("title", "album", "album_artist", "isrc", "spotify_track_id", "spotify_album_id"):
            object.__setattr__(self, name, _clean(getattr(self, name)))
        for name in ("artists", "spotify_artist_ids"):
            object.__setattr__(self, name, _clean_all(getattr(self, name)))
        date = _clean(self.date).strip()
        object.__setattr__(self, "date", date if _DATE.fullmatch(date) and date[:4] != "0000" else "")
        for number, total in ((self.track_number, self.track_total), (self.disc_number, self.disc_total)):
            for value in (number, total):
                if value is not None and not 1 <= value <= _MAX_NUMBER:
                    raise ValueError(f"track and disc numbers must be 1..{_MAX_NUMBER}, not {value}")
            if total is not None and number is None:
                raise ValueError("a track or disc total needs its number")


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, as mutagen parses it. `format` is one of `FORMATS`; `codec` is "flac",
    "mp3", "aac", "alac", "vorbis" or "opus"; `bit_depth` is None for lossy codecs."""

    format: str
    codec: str
    duration: float  # seconds
    bitrate_kbps: int
    sample_rate: int
    channels: int
    bit_depth: int | None

    @property
    def lossless(self) -> bool:
        return self.codec in LOSSLESS_CODECS


def cover_art(data: bytes, *, max_bytes: int = MAX_COVER_BYTES) -> Cover:
    """`data` as cover art, its type sniffed from its first bytes (a server's content type is not
    trusted). Raises `BadCover` for empty data, more than `max_bytes`, or anything but JPEG or PNG."""
    if not data:
        raise BadCover("cover art is empty")
    if len(data) > max_bytes:
        raise BadCover(f"cover art is {len(data)} bytes, over the limit of {max_bytes}")
    mime = sniff_image(data)
    if mime is None:
        raise BadCover("cover art is neither JPEG nor PNG")
    return Cover(data, mime)


def sniff_image(data: bytes) -> str | None:
    """The MIME type from the magic bytes: "image/jpeg", "image/png", or None for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return PNG
    return None


def audio_info(path: str) -> AudioInfo:
    """The stream facts of the file at `path`. Raises `NotAudio` when mutagen cannot read it as audio
    in one of `FORMATS` (or it has no duration), and OSError when it cannot be opened."""
    with open(path, "rb") as fh:
        parsed = _parse(path, fh)
    info = parsed.info
    fmt = _FORMAT_OF[type(parsed)]
    codec = _codec(fmt, info)
    depth = getattr(info, "bits_per_sample", 0) if codec in LOSSLESS_CODECS else 0
    return AudioInfo(
        format=fmt,
        codec=codec,
        duration=float(info.length),
        bitrate_kbps=round((info.bitrate or 0) / 1000),
        # Opus always decodes at 48 kHz; its header's input rate is only a hint.
        sample_rate=48000 if fmt == "opus" else int(info.sample_rate),
        channels=int(info.channels),
        bit_depth=int(depth) or None,
    )


def write_tags(path: str, tags: Tags) -> None:
    """Replace every tag in the file at `path` with `tags`: what a peer wrote (other fields, other
    pictures, ID3v1 and APEv2 tags on MP3, ID3 on FLAC) is removed, not merged. Empty fields are not
    written. The file is rewritten in place, so a crash part-way can damage it: tag a copy that can be
    fetched again, and verify it again after a crash. Raises `NotAudio` for a file it cannot read."""
    with open(path, "rb") as fh:
        kind = type(_parse(path, fh))
    try:
        _WRITERS[kind](path, tags)
    except mutagen.MutagenError as e:
        raise NotAudio(path, f"cannot write tags: {e}") from e


def write_spotify_ids(path: str, track_id: str, album_id: str, artist_ids: tuple[str, ...]) -> None:
    """Set only the Spotify id fields of the file at `path` (as `write_tags` names them), keeping
    every other tag, picture and frame as it is: for files the user tagged (the backfill). The file
    is rewritten in place, like `write_tags`. Raises `NotAudio` for a file it cannot read."""
    values = {
        SPOTIFY_TRACK_ID: [v for v in (_clean(track_id),) if v],
        SPOTIFY_ALBUM_ID: [v for v in (_clean(album_id),) if v],
        SPOTIFY_ARTIST_ID: list(_clean_all(artist_ids)),
    }
    with open(path, "rb") as fh:
        kind = type(_parse(path, fh))
    try:
        if kind is MP3:
            audio: Any = ID3(path) if _has_id3(path) else ID3()
            for name, texts in values.items():
                audio.delall(f"TXXX:{name}")
                if texts:
                    audio.add(TXXX(encoding=3, desc=name, text=texts))
            audio.save(path, v2_version=4)
            return
        audio = kind(path)
        if audio.tags is None:
            audio.add_tags()
        for name, texts in values.items():
            key = _FREEFORM + name if kind is MP4 else name
            if texts:
                audio.tags[key] = [MP4FreeForm(v.encode()) for v in texts] if kind is MP4 else texts
            elif key in audio.tags:
                del audio.tags[key]
        audio.save()
    except mutagen.MutagenError as e:
        raise NotAudio(path, f"cannot write tags: {e}") from e


def _has_id3(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(3) == b"ID3"


def read_tags(path: str, *, cover: bool = True) -> Tags:
    """The tags of the file at `path`, read the way `write_tags` writes them (plus the common variants
    other taggers write, such as "3/12" track numbers). `cover=False` skips the picture, for scans.
    Values that break the `Tags` rules (a track number of 0, a malformed date) are read as absent."""
    with open(path, "rb") as fh:
        parsed = _parse(path, fh)
    if parsed.tags is None:
        return Tags()
    return _READERS[type(parsed)](parsed, cover)


# --- reading the stream -------------------------------------------------------------------


def _parse(path: str, fh: BinaryIO) -> Any:
    kind = _sniff(fh)
    if kind is None:
        raise NotAudio(path, "not a FLAC, MP3, M4A, Ogg Vorbis or Ogg Opus file")
    fh.seek(0)
    try:
        parsed = kind(fh)
    except (mutagen.MutagenError, struct.error, ValueError, IndexError, EOFError, OverflowError) as e:
        raise NotAudio(path, f"unreadable {_FORMAT_OF[kind]}: {e}") from e
    if not parsed.info.length or parsed.info.length <= 0:
        raise NotAudio(path, f"{_FORMAT_OF[kind]} with no duration")
    if kind is MP4 and not str(parsed.info.codec).startswith(("mp4a", "alac")):
        # No sound track (mutagen then reads the movie's length), or AC-3, Opus, FLAC in MP4.
        raise NotAudio(path, f"MP4 without an AAC or ALAC sound track ({parsed.info.codec or 'none'})")
    return parsed


def _sniff(fh: BinaryIO) -> type | None:
    """The mutagen type for the content, by magic bytes only; a file's name plays no part."""
    head = fh.read(10)
    offset = 0
    if head[:3] == b"ID3" and len(head) == 10:
        # Skip an ID3v2 tag: MP3s start with one, and some taggers put one in front of FLAC too.
        offset = 10 + _syncsafe(head[6:10]) + (10 if head[5] & 0x10 else 0)
    fh.seek(offset)
    head = fh.read(128)
    if head[:4] == b"fLaC":
        return FLAC
    if head[:4] == b"OggS":
        if b"\x01vorbis" in head:
            return OggVorbis
        return OggOpus if b"OpusHead" in head else None
    if head[4:8] == b"ftyp":
        return MP4
    if offset or (len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0):
        return MP3
    return None


def _syncsafe(data: bytes) -> int:
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def _codec(fmt: str, info: Any) -> str:
    if fmt == "m4a":
        return "alac" if str(info.codec).startswith("alac") else "aac"  # `_parse` allows only these two
    return {"flac": "flac", "mp3": "mp3", "ogg": "vorbis", "opus": "opus"}[fmt]


# --- text helpers ------------------------------------------------------------------------


def _clean(text: str) -> str:
    text = text.replace("\x00", "")
    # Spotify's JSON may carry a lone surrogate escape; it cannot be encoded, so replace it.
    return _SURROGATE.sub("\ufffd", text)


def _clean_all(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(v for v in (_clean(value) for value in values) if v)


def _number(text: object) -> int | None:
    match = re.match(r"\s*(\d+)", str(text))
    if match is None:
        return None
    value = int(match.group(1))
    return value if 1 <= value <= _MAX_NUMBER else None


def _pair(text: str) -> tuple[int | None, int | None]:
    """ "3/12" → (3, 12); "3" → (3, None); a total without a number is dropped."""
    number, _, total = text.partition("/")
    n = _number(number)
    return (n, _number(total) if total and n is not None else None)


def _with_total(number: int | None, total: int | None) -> tuple[int | None, int | None]:
    return (number, total if number is not None else None)


def _date(text: str) -> str:
    text = text.strip()
    return text if _DATE.fullmatch(text) else ""


def _sniffed_cover(data: bytes, mime: str) -> Cover | None:
    if not data:
        return None
    return Cover(bytes(data), sniff_image(data) or mime or "application/octet-stream")


# --- Vorbis comments: FLAC, Ogg Vorbis, Ogg Opus ---------------------------------------------


def _vorbis_fields(tags: Tags) -> dict[str, list[str]]:
    fields = {
        "TITLE": [tags.title],
        "ARTIST": list(tags.artists),
        "ALBUM": [tags.album],
        "ALBUMARTIST": [tags.album_artist],
        "TRACKNUMBER": [_text(tags.track_number)],
        "TRACKTOTAL": [_text(tags.track_total)],
        "DISCNUMBER": [_text(tags.disc_number)],
        "DISCTOTAL": [_text(tags.disc_total)],
        "DATE": [tags.date],
        "ISRC": [tags.isrc],
        SPOTIFY_TRACK_ID: [tags.spotify_track_id],
        SPOTIFY_ALBUM_ID: [tags.spotify_album_id],
        SPOTIFY_ARTIST_ID: list(tags.spotify_artist_ids),
    }
    return {key: [v for v in values if v] for key, values in fields.items() if any(values)}


def _text(number: int | None) -> str:
    return "" if number is None else str(number)


def _flac_picture(cover: Cover) -> Picture:
    picture = Picture()
    picture.type = PictureType.COVER_FRONT
    picture.mime = cover.mime
    picture.desc = ""
    picture.data = cover.data
    return picture


def _write_flac(path: str, tags: Tags) -> None:
    audio: Any = FLAC(path)
    audio.clear_pictures()
    if audio.tags is None:
        audio.add_tags()
    audio.tags.clear()
    for key, values in _vorbis_fields(tags).items():
        audio.tags[key] = values
    if tags.cover is not None:
        audio.add_picture(_flac_picture(tags.cover))
    audio.save(deleteid3=True)


def _write_ogg(path: str, tags: Tags, kind: Callable[[str], Any]) -> None:
    audio: Any = kind(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.clear()
    for key, values in _vorbis_fields(tags).items():
        audio.tags[key] = values
    if tags.cover is not None:
        encoded = base64.b64encode(_flac_picture(tags.cover).write()).decode("ascii")
        audio.tags["METADATA_BLOCK_PICTURE"] = [encoded]
    audio.save()


def _read_vorbis(audio: Any, with_cover: bool) -> Tags:
    comments = audio.tags

    def first(*keys: str) -> str:
        for key in keys:
            values = comments.get(key)
            if values:
                return str(values[0])
        return ""

    track, track_total = _pair(first("TRACKNUMBER"))
    disc, disc_total = _pair(first("DISCNUMBER"))
    track_total = _number(first("TRACKTOTAL", "TOTALTRACKS")) or track_total
    disc_total = _number(first("DISCTOTAL", "TOTALDISCS")) or disc_total
    return Tags(
        title=first("TITLE"),
        artists=tuple(comments.get("ARTIST", [])),
        album=first("ALBUM"),
        album_artist=first("ALBUMARTIST", "ALBUM ARTIST"),
        track_number=track,
        track_total=_with_total(track, track_total)[1],
        disc_number=disc,
        disc_total=_with_total(disc, disc_total)[1],
        date=_date(first("DATE")),
        isrc=first("ISRC"),
        spotify_track_id=first(SPOTIFY_TRACK_ID),
        spotify_album_id=first(SPOTIFY_ALBUM_ID),
        spotify_artist_ids=tuple(comments.get(SPOTIFY_ARTIST_ID, [])),
        cover=_vorbis_cover(audio) if with_cover else None,
    )


def _vorbis_cover(audio: Any) -> Cover | None:
    pictures = list(getattr(audio, "pictures", []))
    for encoded in audio.tags.get("METADATA_BLOCK_PICTURE", []):
        try:
            pictures.append(Picture(base64.b64decode(encoded)))
        except (ValueError, mutagen.MutagenError, struct.error):
            continue  # a peer's broken picture is no picture
    if not pictures:
        return None
    front = next((p for p in pictures if p.type == PictureType.COVER_FRONT), pictures[0])
    return _sniffed_cover(front.data, front.mime)


# --- ID3: MP3 -------------------------------------------------------------------------------


def _write_mp3(path: str, tags: Tags) -> None:
    # APEv2 tags are a second, separate tag some peers' MP3s carry at the end of the file.
    mutagen.apev2.delete(path)
    frames = ID3()
    text = (
        (TIT2, tags.title),
        (TALB, tags.album),
        (TPE2, tags.album_artist),
        (TDRC, tags.date),
        (TSRC, tags.isrc),
        (TRCK, _slash(tags.track_number, tags.track_total)),
        (TPOS, _slash(tags.disc_number, tags.disc_total)),
    )
    for frame, value in text:
        if value:
            frames.add(frame(encoding=3, text=[value]))
    if tags.artists:
        frames.add(TPE1(encoding=3, text=list(tags.artists)))
    spotify = (
        (SPOTIFY_TRACK_ID, [tags.spotify_track_id]),
        (SPOTIFY_ALBUM_ID, [tags.spotify_album_id]),
        (SPOTIFY_ARTIST_ID, list(tags.spotify_artist_ids)),
    )
    for desc, values in spotify:
        if any(values):
            frames.add(TXXX(encoding=3, desc=desc, text=values))
    if tags.cover is not None:
        frames.add(
            APIC(
                encoding=3, mime=tags.cover.mime, type=PictureType.COVER_FRONT, desc="", data=tags.cover.data
            )
        )
    # Saving a new ID3 object replaces the old ID3v2 tag whole; v1=0 removes an ID3v1 tag.
    frames.save(path, v1=0, v2_version=4)


def _slash(number: int | None, total: int | None) -> str:
    if number is None:
        return ""
    return f"{number}/{total}" if total is not None else str(number)


def _read_mp3(audio: Any, with_cover: bool) -> Tags:
    frames = audio.tags

    def text(key: str) -> list[str]:
        frame = frames.get(key)
        return [str(v) for v in frame.text] if frame is not None else []

    def first(key: str) -> str:
        values = text(key)
        return values[0] if values else ""

    track, track_total = _pair(first("TRCK"))
    disc, disc_total = _pair(first("TPOS"))
    cover = None
    if with_cover:
        pictures = frames.getall("APIC")
        front = next(
            (p for p in pictures if p.type == PictureType.COVER_FRONT), pictures[0] if pictures else None
        )
        cover = _sniffed_cover(front.data, front.mime) if front is not None else None
    return Tags(
        title=first("TIT2"),
        artists=tuple(text("TPE1")),
        album=first("TALB"),
        album_artist=first("TPE2"),
        track_number=track,
        track_total=track_total,
        disc_number=disc,
        disc_total=disc_total,
        date=_date(first("TDRC")),
        isrc=first("TSRC"),
        spotify_track_id=first(f"TXXX:{SPOTIFY_TRACK_ID}"),
        spotify_album_id=first(f"TXXX:{SPOTIFY_ALBUM_ID}"),
        spotify_artist_ids=tuple(text(f"TXXX:{SPOTIFY_ARTIST_ID}")),
        cover=cover,
    )


# --- iTunes atoms: M4A ------------------------------------------------------------------------

_FREEFORM = "----:com.apple.iTunes:"
_MP4_TEXT = {"title": "\xa9nam", "album": "\xa9alb", "album_artist": "aART", "date": "\xa9day"}


def _write_m4a(path: str, tags: Tags) -> None:
    audio: Any = MP4(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.clear()
    for name, atom in _MP4_TEXT.items():
        value = getattr(tags, name)
        if value:
            audio.tags[atom] = [value]
    if tags.artists:
        audio.tags["\xa9ART"] = list(tags.artists)
    if tags.track_number is not None:
        audio.tags["trkn"] = [(tags.track_number, tags.track_total or 0)]
    if tags.disc_number is not None:
        audio.tags["disk"] = [(tags.disc_number, tags.disc_total or 0)]
    freeform = (
        ("ISRC", [tags.isrc]),
        (SPOTIFY_TRACK_ID, [tags.spotify_track_id]),
        (SPOTIFY_ALBUM_ID, [tags.spotify_album_id]),
        (SPOTIFY_ARTIST_ID, list(tags.spotify_artist_ids)),
    )
    for name, values in freeform:
        if any(values):
            audio.tags[_FREEFORM + name] = [MP4FreeForm(v.encode()) for v in values]
    if tags.cover is not None:
        kind = MP4Cover.FORMAT_PNG if tags.cover.mime == PNG else MP4Cover.FORMAT_JPEG
        audio.tags["covr"] = [MP4Cover(tags.cover.data, imageformat=kind)]
    audio.save()


def _read_m4a(audio: Any, with_cover: bool) -> Tags:
    atoms = audio.tags

    def texts(key: str) -> list[str]:
        return [_decoded(v) for v in atoms.get(key, [])]

    def first(key: str) -> str:
        values = texts(key)
        return values[0] if values else ""

    track, track_total = _mp4_pair(atoms.get("trkn"))
    disc, disc_total = _mp4_pair(atoms.get("disk"))
    cover = None
    if with_cover and atoms.get("covr"):
        art = atoms["covr"][0]
        cover = _sniffed_cover(bytes(art), PNG if art.imageformat == MP4Cover.FORMAT_PNG else JPEG)
    return Tags(
        title=first("\xa9nam"),
        artists=tuple(texts("\xa9ART")),
        album=first("\xa9alb"),
        album_artist=first("aART"),
        track_number=track,
        track_total=track_total,
        disc_number=disc,
        disc_total=disc_total,
        date=_date(first("\xa9day")),
        isrc=first(_FREEFORM + "ISRC"),
        spotify_track_id=first(_FREEFORM + SPOTIFY_TRACK_ID),
        spotify_album_id=first(_FREEFORM + SPOTIFY_ALBUM_ID),
        spotify_artist_ids=tuple(texts(_FREEFORM + SPOTIFY_ARTIST_ID)),
        cover=cover,
    )


def _decoded(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _mp4_pair(values: list[tuple[int, int]] | None) -> tuple[int | None, int | None]:
    if not values:
        return (None, None)
    number, total = (*values[0], 0, 0)[:2]
    n = number if 1 <= number <= _MAX_NUMBER else None
    return (n, total if n is not None and 1 <= total <= _MAX_NUMBER else None)


# --- dispatch ------------------------------------------------------------------------------

_FORMAT_OF: dict[type, str] = {FLAC: "flac", MP3: "mp3", MP4: "m4a", OggVorbis: "ogg", OggOpus: "opus"}
_WRITERS: dict[type, Callable[[str, Tags], None]] = {
    FLAC: _write_flac,
    MP3: _write_mp3,
    MP4: _write_m4a,
    OggVorbis: lambda path, tags: _write_ogg(path, tags, OggVorbis),
    OggOpus: lambda path, tags: _write_ogg(path, tags, OggOpus),
}
_READERS: dict[type, Callable[[Any, bool], Tags]] = {
    FLAC: _read_vorbis,
    MP3: _read_mp3,
    MP4: _read_m4a,
    OggVorbis: _read_vorbis,
    OggOpus: _read_vorbis,
}
