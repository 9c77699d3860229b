"""The fakes' M4A, Ogg Vorbis and Ogg Opus files (and complete FLAC and MP3 streams) read back with
mutagen at the declared duration, and their containers are well formed: Ogg page checksums, FLAC
frame checksums and MP4 chunk offsets are what real files carry."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import mutagen
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutagen.ogg import OggPage

from harmony.fakes import audio

durations = st.floats(min_value=1.0, max_value=3600.0, allow_nan=False, allow_infinity=False)
titles = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=40)


def read(data: bytes) -> Any:  # mutagen types `info` and `tags` as optional
    parsed = mutagen.File(io.BytesIO(data))
    assert parsed is not None
    return parsed


@settings(max_examples=40, deadline=None)
@given(
    duration=durations,
    rate=st.sampled_from([44100, 48000, 32000, 22050]),
    bitrate=st.sampled_from([96, 128, 256, 320]),
    channels=st.sampled_from([1, 2]),
    title=titles,
)
def test_m4a_duration_bitrate_and_tags(
    duration: float, rate: int, bitrate: int, channels: int, title: str
) -> None:
    data = audio.m4a(
        duration,
        bitrate=bitrate,
        sample_rate=rate,
        channels=channels,
        tags={"title": title, "tracknumber": "7"},
    )
    parsed = read(data)
    assert type(parsed).__name__ == "MP4"
    assert abs(parsed.info.length - duration) <= 1 / rate
    assert parsed.info.bitrate == bitrate * 1000 and parsed.info.sample_rate == rate
    assert parsed.info.channels == channels and parsed.info.codec == "mp4a.40.2"
    assert parsed.tags["\xa9nam"] == [title] and parsed.tags["trkn"] == [(7, 0)]
    assert len(data) < 16 * 1024 + duration * rate / 1024  # one placeholder byte per AAC frame


@settings(max_examples=40, deadline=None)
@given(
    duration=durations,
    rate=st.sampled_from([44100, 48000, 22050]),
    bitrate=st.integers(64, 500),
    channels=st.integers(1, 6),
    title=titles,
)
def test_ogg_vorbis_duration_bitrate_and_tags(
    duration: float, rate: int, bitrate: int, channels: int, title: str
) -> None:
    data = audio.ogg_vorbis(
        duration, bitrate=bitrate, sample_rate=rate, channels=channels, tags={"title": title}
    )
    parsed = read(data)
    assert type(parsed).__name__ == "OggVorbis"
    assert abs(parsed.info.length - duration) <= 1 / rate
    assert parsed.info.bitrate == bitrate * 1000 and parsed.info.channels == channels
    assert parsed.tags["title"] == [title]
    assert len(data) < 1024


@settings(max_examples=40, deadline=None)
@given(duration=durations, channels=st.sampled_from([1, 2]), title=titles)
def test_ogg_opus_duration_and_tags(duration: float, channels: int, title: str) -> None:
    data = audio.ogg_opus(duration, channels=channels, tags={"title": title, "artist": "Mørkeskog"})
    parsed = read(data)
    assert type(parsed).__name__ == "OggOpus"
    assert abs(parsed.info.length - duration) <= 1 / 48000
    assert parsed.info.channels == channels
    assert parsed.tags["title"] == [title] and parsed.tags["artist"] == ["Mørkeskog"]
    assert len(data) < 1024


def ogg_pages(data: bytes) -> list[tuple[OggPage, bytes]]:
    stream, pages = io.BytesIO(data), []
    while stream.tell() < len(data):
        start = stream.tell()
        page = OggPage(stream)
        pages.append((page, data[start : stream.tell()]))
    return pages


def crc32_ogg(data: bytes) -> int:
    """Bit by bit, independent of the table in the fakes: polynomial 0x04C11DB7, no reflection."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


@pytest.mark.parametrize(
    "data",
    [
        audio.ogg_vorbis(200.5, tags={"title": "x" * 600}),  # a comment packet longer than 255 bytes
        audio.ogg_opus(200.5, tags={"comment": "y" * 70_000}),  # a comment packet over several pages
    ],
    ids=["vorbis", "opus"],
)
def test_ogg_pages_are_well_formed(data: bytes) -> None:
    pages = ogg_pages(data)
    assert len(pages) >= 3
    for i, (page, raw) in enumerate(pages):
        assert page.sequence == i and page.serial == pages[0][0].serial
        assert page.first == (i == 0) and page.last == (i == len(pages) - 1)
        assert page.write() == raw  # mutagen computes the checksum afresh when it writes a page
        blank = raw[:22] + b"\x00\x00\x00\x00" + raw[26:]
        assert struct.unpack("<I", raw[22:26])[0] == crc32_ogg(blank)
    assert all(page.position == 0 for page, _ in pages[:-1] if page.complete)  # headers carry granule 0
    assert read(data).info.length == pytest.approx(200.5)


class BitReader:
    """Vorbis packs fields least significant bit first."""

    def __init__(self, data: bytes) -> None:
        self.value, self.pos, self.size = int.from_bytes(data, "little"), 0, len(data) * 8

    def read(self, width: int) -> int:
        assert self.pos + width <= self.size, "read past the end of the packet"
        out = (self.value >> self.pos) & ((1 << width) - 1)
        self.pos += width
        return out


def parse_setup(packet: bytes) -> dict[str, int]:
    """A reader for the Vorbis I setup header (spec §4.2.4), for codebooks without lookup tables,
    floor 1 and residues 0-2: it checks every field's range and that the framing bit ends it."""
    assert packet[:7] == b"\x05vorbis"
    r = BitReader(packet[7:])
    books = r.read(8) + 1
    for _ in range(books):
        assert r.read(24) == 0x564342
        dims, entries = r.read(16), r.read(24)
        assert dims >= 1 and entries >= 1
        assert r.read(1) == 0  # not ordered
        sparse = r.read(1)
        for _ in range(entries):
            if not sparse or r.read(1):
                r.read(5)
        assert r.read(4) == 0  # no lookup
    for _ in range(r.read(6) + 1):
        assert r.read(16) == 0
    floors = r.read(6) + 1
    for _ in range(floors):
        assert r.read(16) == 1
        partitions = r.read(5)
        classes = [r.read(4) for _ in range(partitions)]
        assert not classes  # the fakes use no partitions
        r.read(2)
        assert 0 <= r.read(4) <= 15
    residues = r.read(6) + 1
    for _ in range(residues):
        assert r.read(16) <= 2
        begin, end = r.read(24), r.read(24)
        assert begin <= end
        r.read(24)
        classifications = r.read(6) + 1
        assert r.read(8) < books
        cascade = []
        for _ in range(classifications):
            low, high = r.read(3), r.read(5) if r.read(1) else 0
            cascade.append(high * 8 + low)
        for bits in cascade:
            for j in range(8):
                if bits & (1 << j):
                    assert r.read(8) < books
    mappings = r.read(6) + 1
    for _ in range(mappings):
        assert r.read(16) == 0
        submaps = r.read(4) + 1 if r.read(1) else 1
        assert r.read(1) == 0  # no coupling
        assert r.read(2) == 0
        assert submaps == 1
        for _ in range(submaps):
            r.read(8)
            assert r.read(8) < floors and r.read(8) < residues
    modes = r.read(6) + 1
    for _ in range(modes):
        r.read(1)
        assert r.read(16) == 0 and r.read(16) == 0 and r.read(8) < mappings
    assert r.read(1) == 1  # framing
    assert r.size - r.pos < 8 and r.value >> r.pos == 0
    return {"books": books, "floors": floors, "residues": residues, "mappings": mappings, "modes": modes}


def test_vorbis_headers_follow_the_spec() -> None:
    pages = ogg_pages(audio.ogg_vorbis(10, channels=2))
    first, second = pages[0][0], pages[1][0]
    assert len(first.packets) == 1 and first.packets[0].startswith(b"\x01vorbis")
    assert len(first.packets[0]) == 30 and first.packets[0][-1] == 1  # identification, framing bit
    assert second.packets[0].startswith(b"\x03vorbis") and second.packets[0][-1] == 1
    assert parse_setup(second.packets[1]) == dict(books=1, floors=1, residues=1, mappings=1, modes=1)
    assert all(packet == b"\x06" for packet in pages[2][0].packets)  # audio starts on its own page


def crc_bitwise(data: bytes, poly: int, width: int) -> int:
    crc, top, mask = 0, 1 << (width - 1), (1 << width) - 1
    for byte in data:
        crc ^= byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & mask if crc & top else (crc << 1) & mask
    return crc


@pytest.mark.parametrize(("bits", "channels"), [(16, 2), (24, 1), (20, 3)])
def test_complete_flac_has_every_frame_with_valid_checksums(bits: int, channels: int) -> None:
    rate, duration = 8000, 1.3
    data = audio.flac(duration, sample_rate=rate, bits_per_sample=bits, channels=channels, complete=True)
    parsed = read(data)
    assert parsed.info.length == pytest.approx(duration)
    samples = round(duration * rate)
    frame_sizes = [-(-(channels * (8 + n * bits)) // 8) for n in (4096, 4096, samples - 8192)]
    offset = (
        len(data) - sum(size + 8 for size in frame_sizes) - 2
    )  # 6-byte header, 2-byte CRC; +2 for the last
    for number, size in enumerate(frame_sizes):
        header_len = 6 + (2 if number == 2 else 0)
        frame = data[offset : offset + header_len + size + 2]
        assert frame[:2] == b"\xff\xf8" and frame[4] == number
        assert frame[header_len - 1] == crc_bitwise(frame[: header_len - 1], 0x07, 8)
        assert struct.unpack(">H", frame[-2:])[0] == crc_bitwise(frame[:-2], 0x8005, 16)
        offset += len(frame)
    assert offset == len(data)


def test_flac_frame_numbers_are_utf8_coded() -> None:
    for number in (0, 1, 127, 128, 2047, 2048, 0xFFFF, 0x10000, 0x10FFFF):
        coded = audio._utf8_number(number)
        if not 0xD800 <= number <= 0xDFFF:
            assert coded == chr(number).encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("bitrate", [128, 320])
def test_complete_mp3_is_the_size_of_its_bitrate(bitrate: int) -> None:
    data = audio.mp3(3.0, bitrate=bitrate, complete=True)
    parsed = read(data)
    assert abs(parsed.info.bitrate - bitrate * 1000) <= bitrate * 5  # the Info frame's byte count rounds
    assert abs(parsed.info.length - 3.0) <= 1152 / 44100
    assert abs(len(data) * 8 / parsed.info.length / 1000 - bitrate) < bitrate * 0.02


def test_tags_can_be_rewritten_in_every_new_format(tmp_path: Path) -> None:
    files = {
        "a.m4a": audio.m4a(95.0, tags={"title": "peer"}),
        "a.ogg": audio.ogg_vorbis(95.0, tags={"title": "peer"}),
        "a.opus": audio.ogg_opus(95.0, tags={"title": "peer"}),
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        parsed = mutagen.File(path)
        parsed.tags["title" if name != "a.m4a" else "\xa9nam"] = ["A title long enough to move the data" * 40]
        parsed.save()
        again = mutagen.File(path)
        assert again.info.length == pytest.approx(95.0)
    # mutagen moved mdat when moov grew; the chunk offset still points at mdat's payload.
    m4a = (tmp_path / "a.m4a").read_bytes()
    offset = struct.unpack(">I", m4a[m4a.index(b"stco") + 12 : m4a.index(b"stco") + 16])[0]
    assert m4a[offset - 4 : offset] == b"mdat"


def test_output_is_deterministic_and_validated() -> None:
    for make in (audio.m4a, audio.ogg_vorbis, audio.ogg_opus):
        assert make(200.5) == make(200.5)
        assert make(200.5) != make(100.0)
        with pytest.raises(ValueError):
            make(0)
    for call in (
        lambda: audio.m4a(10, sample_rate=44000),
        lambda: audio.ogg_vorbis(10, channels=0),
        lambda: audio.ogg_opus(10, channels=3),
    ):
        with pytest.raises(ValueError):
            call()
