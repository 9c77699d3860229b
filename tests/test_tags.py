"""Tags and stream facts: what Harmony writes reads back equal in every format, a peer's tags are
gone after writing, and a file's format comes from its content."""

from __future__ import annotations

import base64
import dataclasses
import struct
from pathlib import Path

import mutagen
import mutagen.apev2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3

from harmony import tags
from harmony.fakes import audio
from harmony.tags import (
    AudioInfo,
    BadCover,
    Cover,
    NotAudio,
    Tags,
    audio_info,
    read_tags,
    write_spotify_ids,
    write_tags,
)

JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + bytes(17) + b"IEND"

PEER_TAGS = {"title": "Track 01", "artist": "VA", "album": "ripped by someone", "tracknumber": "1"}
MAKERS = {
    "flac": lambda: audio.flac(
        245.0, tags={**PEER_TAGS, "comment": "EAC rip", "replaygain_track_gain": "-7 dB"}
    ),
    "mp3": lambda: audio.mp3(245.0, tags=PEER_TAGS),
    "m4a": lambda: audio.m4a(245.0, tags=PEER_TAGS),
    "ogg": lambda: audio.ogg_vorbis(245.0, tags={**PEER_TAGS, "comment": "from a torrent"}),
    "opus": lambda: audio.ogg_opus(245.0, tags={**PEER_TAGS, "encoder": "opusenc"}),
}
FORMATS = list(MAKERS)


def make(tmp_path: Path, fmt: str, name: str | None = None) -> str:
    path = tmp_path / (name or f"track.{fmt}")
    path.write_bytes(MAKERS[fmt]())
    return str(path)


text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=24)
numbers = st.integers(1, 65535)
base62 = st.text("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=22, max_size=22)
dates = st.one_of(
    st.just(""),
    st.integers(1, 9999).map(lambda y: f"{y:04d}"),
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.isoformat()[:7]),
)
covers = st.one_of(
    st.none(),
    st.binary(max_size=64).map(lambda b: Cover(JPEG_BYTES + b, "image/jpeg")),
    st.binary(max_size=64).map(lambda b: Cover(PNG_BYTES + b, "image/png")),
)


@st.composite
def tag_values(draw: st.DrawFn) -> Tags:
    track = draw(st.none() | numbers)
    disc = draw(st.none() | numbers)
    return Tags(
        title=draw(text),
        artists=tuple(draw(st.lists(text, max_size=3))),
        album=draw(text),
        album_artist=draw(text),
        track_number=track,
        track_total=draw(st.none() | numbers) if track is not None else None,
        disc_number=disc,
        disc_total=draw(st.none() | numbers) if disc is not None else None,
        date=draw(dates),
        isrc=draw(st.just("") | st.from_regex(r"[A-Z]{2}[A-Z0-9]{3}[0-9]{7}", fullmatch=True)),
        spotify_track_id=draw(st.just("") | base62),
        spotify_album_id=draw(st.just("") | base62),
        spotify_artist_ids=tuple(draw(st.lists(base62, max_size=3))),
        cover=draw(covers),
    )


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=tag_values())
def test_tags_read_back_equal(tmp_path: Path, fmt: str, value: Tags) -> None:
    path = make(tmp_path, fmt)
    write_tags(path, value)
    assert read_tags(path) == value
    assert audio_info(path).duration == pytest.approx(245.0, abs=0.03)  # the stream is untouched
    write_tags(path, value)  # writing twice changes nothing
    assert read_tags(path) == value


def test_a_full_set_reads_back_in_every_format(tmp_path: Path) -> None:
    value = Tags(
        title="Hyperballad",
        artists=("Björk", "Ørjan Ørn"),
        album="Post",
        album_artist="Björk",
        track_number=5,
        track_total=11,
        disc_number=1,
        disc_total=1,
        date="1995-06-13",
        isrc="GBAHT9503050",
        spotify_track_id="4kRKGNSuJXnhvqlKKd4t4a",
        spotify_album_id="2ZvA2ey8BMwfpDYWkPVvgE",
        spotify_artist_ids=("7w29UYBi0qsHi5RTcv3lmA",),
        cover=Cover(JPEG_BYTES, "image/jpeg"),
    )
    for fmt in FORMATS:
        path = make(tmp_path, fmt)
        write_tags(path, value)
        assert read_tags(path) == value, fmt
        assert read_tags(path, cover=False) == Tags(**{**value.__dict__, "cover": None})


def test_mp3_uses_id3v24_frames(tmp_path: Path) -> None:
    path = make(tmp_path, "mp3")
    value = Tags(title="T", artists=("A", "B"), track_number=3, track_total=12, disc_number=1, disc_total=2)
    write_tags(
        path, Tags(**{**value.__dict__, "spotify_track_id": "x", "cover": Cover(PNG_BYTES, "image/png")})
    )
    id3 = ID3(path)
    assert id3.version == (2, 4, 0)
    assert id3["TPE1"].text == ["A", "B"] and id3["TRCK"].text == ["3/12"] and id3["TPOS"].text == ["1/2"]
    assert id3["TXXX:SPOTIFY_TRACK_ID"].text == ["x"]
    assert id3.getall("APIC")[0].mime == "image/png" and id3.getall("APIC")[0].type == 3


def add_peer_extras(path: str, fmt: str) -> None:
    """What peers' files carry besides plain tags: pictures, ID3v1 and APEv2 on MP3, ID3 before FLAC."""
    picture = Picture()
    picture.type, picture.mime, picture.data = 0, "image/gif", b"GIF89a peer art"
    if fmt == "flac":
        parsed = FLAC(path)
        parsed.add_picture(picture)
        parsed.save()
        data = Path(path).read_bytes()
        Path(path).write_bytes(audio._id3({"title": "an ID3 tag in front of FLAC"}) + data)
    elif fmt == "mp3":
        ape = mutagen.apev2.APEv2()
        ape["Title"] = "APE title"
        ape.save(path)
        with open(path, "ab") as out:
            out.write(b"TAG" + b"ID3v1 title".ljust(30, b"\x00") + bytes(95))
    elif fmt == "m4a":
        parsed = mutagen.File(path)
        parsed.tags["\xa9cmt"] = ["peer comment"]
        parsed.tags["----:com.apple.iTunes:iTunSMPB"] = [b"peer gapless data"]
        parsed.save()
    else:
        parsed = mutagen.File(path)
        parsed.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(picture.write()).decode()]
        parsed.save()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_peers_tags_are_replaced_not_merged(tmp_path: Path, fmt: str) -> None:
    path = make(tmp_path, fmt)
    add_peer_extras(path, fmt)
    write_tags(path, Tags(title="Ours"))
    assert read_tags(path) == Tags(title="Ours")
    raw = mutagen.File(path)
    keys = set(map(str.lower, raw.tags.keys()))  # Vorbis comments iterate as pairs, so ask for keys
    assert keys == {"title" if fmt not in ("mp3", "m4a") else {"mp3": "tit2", "m4a": "\xa9nam"}[fmt]}
    data = Path(path).read_bytes()
    if fmt == "flac":
        assert not raw.pictures and data.startswith(b"fLaC")
    if fmt == "mp3":
        assert b"APETAGEX" not in data and data[-128:-125] != b"TAG"
        with pytest.raises(mutagen.apev2.APENoHeaderError):
            mutagen.apev2.APEv2(path)
    assert b"peer" not in data and b"ripped" not in data


@pytest.mark.parametrize(
    ("fmt", "data", "expected"),
    [
        (
            "flac",
            audio.flac(200.0, sample_rate=96000, bits_per_sample=24),
            ("flac", "flac", 200.0, 0, 96000, 2, 24),
        ),
        ("mp3", audio.mp3(200.0, bitrate=192), ("mp3", "mp3", 200.0, 192, 44100, 2, None)),
        ("m4a", audio.m4a(200.0, bitrate=256, channels=1), ("m4a", "aac", 200.0, 256, 44100, 1, None)),
        (
            "ogg",
            audio.ogg_vorbis(200.0, bitrate=160, sample_rate=48000),
            ("ogg", "vorbis", 200.0, 160, 48000, 2, None),
        ),
        ("opus", audio.ogg_opus(200.0, channels=1), ("opus", "opus", 200.0, 0, 48000, 1, None)),
    ],
)
def test_audio_info(tmp_path: Path, fmt: str, data: bytes, expected: tuple[object, ...]) -> None:
    path = tmp_path / f"track.{fmt}"
    path.write_bytes(data)
    info = audio_info(str(path))
    fmt_, codec, duration, kbps, rate, channels, depth = expected
    assert (info.format, info.codec, info.bitrate_kbps, info.sample_rate, info.channels, info.bit_depth) == (
        fmt_,
        codec,
        kbps,
        rate,
        channels,
        depth,
    )
    assert info.duration == pytest.approx(duration, abs=0.03)
    assert info.lossless == (fmt == "flac")


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_format_comes_from_the_content_not_the_name(tmp_path: Path, fmt: str) -> None:
    for name in ("song.mp3", "song.flac", "song.m4a", "song", "song.ogg.txt"):
        path = make(tmp_path, fmt, name)
        assert audio_info(path).format == fmt, name
        write_tags(path, Tags(title=name))
        assert read_tags(path).title == name


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is not audio\n" * 20,
        b"fLaC\x00\x00",  # truncated metadata
        audio.flac(10.0)[:20],
        b"OggS" + bytes(200),  # an Ogg page of no known codec
        b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100),  # WAV: audio, but not a format Harmony files
        b"\x00\x00\x00\x18ftypisom" + bytes(16),  # MP4 with no moov
        audio.m4a(60.0).replace(b"soun", b"vide"),  # an MP4 whose only track is not sound
        b"ID3\x04\x00\x00\x00\x00\x00\x05hello",  # an ID3 tag in front of nothing
    ],
    ids=[
        "empty",
        "text",
        "flac-header",
        "flac-cut",
        "ogg-unknown",
        "wav",
        "mp4-no-moov",
        "mp4-video",
        "id3-only",
    ],
)
def test_what_is_not_audio_raises_not_audio(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "download.flac"
    path.write_bytes(data)
    with pytest.raises(NotAudio) as caught:
        audio_info(str(path))
    assert caught.value.path == str(path) and caught.value.reason
    with pytest.raises(NotAudio):
        read_tags(str(path))
    with pytest.raises(NotAudio):
        write_tags(str(path), Tags(title="x"))
    assert path.read_bytes() == data  # untouched


def test_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        audio_info(str(tmp_path / "gone.flac"))


def test_cover_art_is_sniffed_and_limited() -> None:
    assert tags.cover_art(JPEG_BYTES) == Cover(JPEG_BYTES, "image/jpeg")
    assert tags.cover_art(PNG_BYTES).mime == "image/png"
    assert tags.cover_art(JPEG_BYTES, max_bytes=len(JPEG_BYTES)).data == JPEG_BYTES
    with pytest.raises(BadCover, match="over the limit"):
        tags.cover_art(JPEG_BYTES, max_bytes=len(JPEG_BYTES) - 1)
    for data in (b"", b"GIF89a....", b"<html>not an image</html>", b"\x89PNG\r\n\x1a\n"):
        with pytest.raises(BadCover):
            tags.cover_art(data)
    assert "bytes" in repr(Cover(JPEG_BYTES, "image/jpeg"))


def test_tags_clean_what_cannot_be_stored() -> None:
    value = Tags(title="A\x00B", artists=("", "X\x00", "\ud800Y"), date="0000", isrc="\x00")
    assert value.title == "AB" and value.artists == ("X", "\ufffdY") and value.date == "" and value.isrc == ""
    assert Tags(date=" 2019-03 ").date == "2019-03" and Tags(date="March 2019").date == ""
    for bad in (
        {"track_number": 0},
        {"track_number": 70000},
        {"track_total": 12},
        {"disc_number": 1, "disc_total": -1},
        {"disc_total": 2},
    ):
        with pytest.raises(ValueError):
            Tags(**bad)  # type: ignore[arg-type]


def test_other_taggers_variants_are_read(tmp_path: Path) -> None:
    path = tmp_path / "other.flac"
    path.write_bytes(audio.flac(100.0, tags={"tracknumber": "3/12", "totaldiscs": "2", "discnumber": "2"}))
    assert (read_tags(str(path)).track_number, read_tags(str(path)).track_total) == (3, 12)
    assert (read_tags(str(path)).disc_number, read_tags(str(path)).disc_total) == (2, 2)
    path.write_bytes(audio.flac(100.0, tags={"tracknumber": "0", "tracktotal": "9", "date": "someday"}))
    assert read_tags(str(path)) == Tags()  # a track number of 0 is no number, and its total goes with it
    mp3 = tmp_path / "other.mp3"
    mp3.write_bytes(audio.mp3(100.0, tags={"tracknumber": "7"}))
    assert read_tags(str(mp3)).track_number == 7 and read_tags(str(mp3)).track_total is None
    bare = tmp_path / "bare.opus"
    bare.write_bytes(audio.ogg_opus(100.0))
    assert read_tags(str(bare)) == Tags()


def test_audio_info_is_a_frozen_value() -> None:
    info = AudioInfo("flac", "flac", 1.0, 900, 44100, 2, 16)
    with pytest.raises(AttributeError):
        info.format = "mp3"  # type: ignore[misc]
    assert info.lossless and not AudioInfo("m4a", "aac", 1.0, 256, 44100, 2, None).lossless


@pytest.mark.parametrize("fmt", FORMATS)
def test_setting_the_spotify_ids_keeps_every_other_tag(tmp_path: Path, fmt: str) -> None:
    path = make(tmp_path, fmt)
    write_tags(path, Tags(title="Glass Harbour", artists=("Aurora Vale", "Mørkeskog"), isrc="QZ1234567890"))
    theirs = mutagen.File(path, easy=True)  # a field Harmony does not model, as another tagger wrote it
    theirs["genre"] = ["Chamber Jazz"]
    theirs.save()
    before = read_tags(path)
    write_spotify_ids(path, "4uLU6hMCjMI75M1A2tKUQC", "1DFixLWuPkv3KT3TnV35m3", ("0OdUWJ0sBjDrqHygGUXeCF",))
    after = read_tags(path)
    assert (after.spotify_track_id, after.spotify_album_id) == (
        "4uLU6hMCjMI75M1A2tKUQC",
        "1DFixLWuPkv3KT3TnV35m3",
    )
    assert after.spotify_artist_ids == ("0OdUWJ0sBjDrqHygGUXeCF",)
    assert (
        dataclasses.replace(after, spotify_track_id="", spotify_album_id="", spotify_artist_ids=()) == before
    )
    assert mutagen.File(path, easy=True)["genre"] == ["Chamber Jazz"]
    write_spotify_ids(path, "", "", ())  # clearing them clears only them
    assert read_tags(path) == before
