"""Tiny but real audio files: headers that audio readers accept, with no (or silent) audio.

`flac()` writes a FLAC stream with a STREAMINFO block whose total samples give the duration,
plus a VORBIS_COMMENT block. `mp3()` writes an ID3v2.4 tag, one MPEG-1 Layer III frame carrying
an `Info` (CBR Xing) header that declares the frame count and byte count of the whole stream, and
a few silent frames. `m4a()` writes an MPEG-4 file (ftyp, moov with one AAC sound track, mdat)
whose media header gives the duration. `ogg_vorbis()` and `ogg_opus()` write Ogg streams with
their identification and comment headers (and Vorbis's setup header), a few silent packets and a
last page whose granule position gives the duration. Readers such as mutagen report the declared
duration and bitrate from those headers, so a file of a few kilobytes stands for a track of
minutes. Output is a pure function of the arguments.

`complete=True` (FLAC and MP3) writes every audio frame, as silence, so the file also has the
size a real stream of that duration has: for checks that compare a file's size with what its
headers declare.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping

MP3_BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)  # kbps, MPEG-1 Layer III
_MP3_SAMPLE_RATES = {44100: 0, 48000: 1, 32000: 2}
_SAMPLES_PER_FRAME = 1152
_SIDE_INFO_STEREO = 32
_SILENT_FRAMES = 3
_FLAC_BLOCK = 4096  # samples per FLAC frame
_AAC_FRAME = 1024  # samples per AAC frame
# The AAC sampling-frequency index table (ISO/IEC 14496-3, 1.6.3.4).
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_OPUS_PRE_SKIP = 312  # what libopus encoders write: 6.5 ms at 48 kHz
_SILENT_PACKETS = 3


def flac(
    duration: float,
    *,
    sample_rate: int = 44100,
    bits_per_sample: int = 16,
    channels: int = 2,
    tags: Mapping[str, str] | None = None,
    padding: int = 0,
    complete: bool = False,
) -> bytes:
    """A FLAC file of `duration` seconds (rounded to whole samples). No audio frames follow the metadata
    unless `complete`, which writes every frame as silence stored verbatim (the size of uncompressed PCM).

    `padding` adds a PADDING block of that many bytes, to give files of different lengths different sizes.
    """
    valid = 1 <= sample_rate < 2**20 and 1 <= channels <= 8 and 4 <= bits_per_sample <= 32
    if duration <= 0 or not valid:
        raise ValueError("unsupported FLAC parameters")
    total_samples = round(duration * sample_rate)
    if total_samples >= 2**36:
        raise ValueError("duration too long for FLAC")
    packed = (sample_rate << 44) | ((channels - 1) << 41) | ((bits_per_sample - 1) << 36) | total_samples
    if complete:
        md5 = _silence_md5(total_samples * channels * ((bits_per_sample + 7) // 8))
    else:
        # The MD5 field normally hashes the decoded audio; a digest of the description keeps files distinct.
        md5 = hashlib.md5(repr((duration, sample_rate, sorted((tags or {}).items()))).encode()).digest()
    streaminfo = struct.pack(">HH", _FLAC_BLOCK, _FLAC_BLOCK) + b"\x00" * 6 + struct.pack(">Q", packed) + md5
    comment = _vorbis_comment(tags or {})
    blocks = _flac_block(0, streaminfo, last=False) + _flac_block(4, comment, last=padding <= 0)
    if padding > 0:
        blocks += _flac_block(1, b"\x00" * padding, last=True)
    frames = _flac_frames(total_samples, channels, bits_per_sample) if complete else b""
    return b"fLaC" + blocks + frames


def mp3(
    duration: float,
    *,
    bitrate: int = 320,
    sample_rate: int = 44100,
    tags: Mapping[str, str] | None = None,
    complete: bool = False,
    padding: int = 0,
) -> bytes:
    """A constant-bitrate MP3 of `duration` seconds (rounded to whole frames) at `bitrate` kbps.

    Only a few silent frames follow the `Info` frame unless `complete`, which writes every frame.
    `padding` zero bytes end the ID3v2 tag (an ID3v2 tag is written for them even without tags)."""
    if bitrate not in MP3_BITRATES or sample_rate not in _MP3_SAMPLE_RATES or duration <= 0:
        raise ValueError("unsupported MP3 parameters")
    frames = max(1, round(duration * sample_rate / _SAMPLES_PER_FRAME))
    frame_len = 144_000 * bitrate // sample_rate
    # A real CBR stream pads some frames to keep the exact bitrate on average; declare that byte count.
    stream_bytes = frame_len + round(frames * 144_000 * bitrate / sample_rate)
    header = _mp3_header(bitrate, sample_rate)
    info = b"Info" + struct.pack(">III", 0x3, frames, stream_bytes)
    first = header + b"\x00" * _SIDE_INFO_STEREO + info
    first += b"\x00" * (frame_len - len(first))
    id3 = _id3(tags or {}, padding)
    if complete:
        return id3 + first + _mp3_stream(frames, bitrate, sample_rate)
    silent = (header + b"\x00" * (frame_len - 4)) * _SILENT_FRAMES
    return id3 + first + silent


def m4a(
    duration: float,
    *,
    bitrate: int = 256,
    sample_rate: int = 44100,
    channels: int = 2,
    tags: Mapping[str, str] | None = None,
) -> bytes:
    """An AAC-LC M4A of `duration` seconds (rounded to whole samples) declaring `bitrate` kbps.

    The sound track's sample tables describe one AAC frame per 1,024 samples, each a placeholder
    byte in `mdat`. `tags` (title, artist, album, albumartist, tracknumber) become iTunes atoms."""
    if duration <= 0 or sample_rate not in _AAC_RATES or not 1 <= channels <= 7 or bitrate <= 0:
        raise ValueError("unsupported M4A parameters")
    samples = round(duration * sample_rate)
    frames = -(-samples // _AAC_FRAME)
    ftyp = _atom(b"ftyp", b"M4A " + struct.pack(">I", 0) + b"M4A mp42isom")
    # moov comes first, so its size (and with it the chunk offset into mdat) is known before mdat.
    moov_without_offset = _m4a_moov(duration, samples, frames, sample_rate, channels, bitrate, tags, 0)
    mdat_offset = len(ftyp) + len(moov_without_offset) + 8
    moov = _m4a_moov(duration, samples, frames, sample_rate, channels, bitrate, tags, mdat_offset)
    return ftyp + moov + _atom(b"mdat", b"\x00" * frames)


def ogg_vorbis(
    duration: float,
    *,
    bitrate: int = 192,
    sample_rate: int = 44100,
    channels: int = 2,
    tags: Mapping[str, str] | None = None,
) -> bytes:
    """An Ogg Vorbis stream of `duration` seconds (rounded to whole samples), nominally `bitrate` kbps.

    Pages: the identification header alone on the first page, then the comment and setup headers,
    then a page of silent audio packets whose granule position is the total sample count."""
    if duration <= 0 or not 1 <= channels <= 8 or not 8000 <= sample_rate <= 192000 or bitrate <= 0:
        raise ValueError("unsupported Ogg Vorbis parameters")
    samples = round(duration * sample_rate)
    # Block sizes 2^8 and 2^11; the one mode uses long blocks.
    ident = b"\x01vorbis" + struct.pack("<IBIiiiBB", 0, channels, sample_rate, 0, bitrate * 1000, 0, 0xB8, 1)
    comment = b"\x03vorbis" + _vorbis_comment(tags or {}) + b"\x01"  # the framing bit
    # An audio packet: type bit 0, long block with long neighbours, every channel's floor unused.
    silent = bytes([0x06])
    serial = _serial("vorbis", duration, sample_rate, channels, bitrate)
    groups = [([ident], 0), ([comment, _vorbis_setup()], 0), ([silent] * _SILENT_PACKETS, samples)]
    return _ogg(serial, groups)


def ogg_opus(
    duration: float,
    *,
    channels: int = 2,
    input_rate: int = 48000,
    tags: Mapping[str, str] | None = None,
) -> bytes:
    """An Ogg Opus stream of `duration` seconds (rounded to 1/48,000 s).

    Pages: OpusHead, then OpusTags, then a page of empty (silent) 20 ms packets whose granule
    position is the pre-skip plus the duration at 48 kHz, as RFC 7845 defines it."""
    if duration <= 0 or channels not in (1, 2) or not 0 < input_rate < 2**32:
        raise ValueError("unsupported Ogg Opus parameters")
    samples = round(duration * 48000)
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, channels, _OPUS_PRE_SKIP, input_rate, 0, 0)
    comment = b"OpusTags" + _vorbis_comment(tags or {})
    # TOC byte: configuration 31 (CELT, fullband, 20 ms), the stereo flag, one frame; no frame data.
    silent = bytes([(31 << 3) | ((channels == 2) << 2)])
    serial = _serial("opus", duration, channels, input_rate)
    groups = [([head], 0), ([comment], 0), ([silent] * _SILENT_PACKETS, _OPUS_PRE_SKIP + samples)]
    return _ogg(serial, groups)


TAG_PADDING = 2048


def render(fmt: str, duration: float, *, bitrate: int = 320, tags: Mapping[str, str] | None = None) -> bytes:
    """`flac()` or `mp3()` by format name ("flac" or "mp3"). FLAC files grow by 16 bytes per second.
    Both carry a few KiB of tag padding, as encoders leave, so rewriting their tags (the import
    does) happens in place and a sparse stand-in file stays sparse."""
    if fmt == "flac":
        return flac(duration, tags=tags, padding=TAG_PADDING + int(duration * 16))
    if fmt == "mp3":
        return mp3(duration, bitrate=bitrate, tags=tags, padding=TAG_PADDING)
    raise ValueError(f"unsupported format {fmt!r}")


# --- FLAC ----------------------------------------------------------------------------------


def _flac_block(kind: int, data: bytes, *, last: bool) -> bytes:
    return bytes([(0x80 if last else 0) | kind]) + len(data).to_bytes(3, "big") + data


def _flac_frames(total_samples: int, channels: int, bits: int) -> bytes:
    out = bytearray()
    for number, start in enumerate(range(0, total_samples, _FLAC_BLOCK)):
        out += _flac_frame(number, min(_FLAC_BLOCK, total_samples - start), channels, bits)
    return bytes(out)


def _flac_frame(number: int, block: int, channels: int, bits: int) -> bytes:
    # Fixed-blocksize frame; sample rate and size come from STREAMINFO (codes 0), channels independent.
    code = 0b1100 if block == _FLAC_BLOCK else 0b0111  # 0111: block size - 1 follows as 16 bits
    header = bytes([0xFF, 0xF8, code << 4, (channels - 1) << 4]) + _utf8_number(number)
    if code == 0b0111:
        header += struct.pack(">H", block - 1)
    header += bytes([_crc8(header)])
    # Each subframe: a header byte (VERBATIM, no wasted bits) then `block` zero samples; pad to a byte.
    per_channel = 8 + block * bits
    total_bits = -(-channels * per_channel // 8) * 8
    value = 0
    for c in range(channels):
        value |= 0x02 << (total_bits - c * per_channel - 8)
    frame = header + value.to_bytes(total_bits // 8, "big")
    return frame + struct.pack(">H", _crc16(frame))


def _utf8_number(n: int) -> bytes:
    # FLAC codes frame numbers like UTF-8, extended to 36 bits.
    if n < 0x80:
        return bytes([n])
    tail = []
    while True:
        tail.append(0x80 | (n & 0x3F))
        n >>= 6
        if n < (0x40 >> len(tail)):
            lead = (0xFF << (7 - len(tail))) & 0xFF
            return bytes([lead | n, *reversed(tail)])


def _silence_md5(length: int) -> bytes:
    digest = hashlib.md5()
    chunk = b"\x00" * 65536
    for start in range(0, length, len(chunk)):
        digest.update(chunk[: length - start])
    return digest.digest()


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
    return crc


def _crc_table(poly: int, width: int) -> tuple[int, ...]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for i in range(256):
        r = i << (width - 8)
        for _ in range(8):
            r = ((r << 1) ^ poly) if r & top else r << 1
        table.append(r & mask)
    return tuple(table)


_CRC8 = _crc_table(0x07, 8)  # FLAC frame header
_CRC16 = _crc_table(0x8005, 16)  # FLAC frame
_CRC32 = _crc_table(0x04C11DB7, 32)  # Ogg page (not the zlib CRC: unreflected, no final XOR)


def _vorbis_comment(tags: Mapping[str, str]) -> bytes:
    vendor = b"harmony fakes"
    out = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(tags))
    for key, value in tags.items():
        entry = f"{key.upper()}={value}".encode()
        out += struct.pack("<I", len(entry)) + entry
    return out


# --- MP3 -----------------------------------------------------------------------------------


def _mp3_header(bitrate: int, sample_rate: int, *, padded: bool = False) -> bytes:
    bitrate_index = MP3_BITRATES.index(bitrate) + 1
    # 0xFFFB: frame sync, MPEG-1, Layer III, no CRC. 0x44: joint stereo, "original" bit.
    third = (bitrate_index << 4) | (_MP3_SAMPLE_RATES[sample_rate] << 2) | (0x02 if padded else 0)
    return bytes([0xFF, 0xFB, third, 0x44])


def _mp3_stream(frames: int, bitrate: int, sample_rate: int) -> bytes:
    # Frames carry a padding byte where the running byte count falls behind the exact bitrate, as encoders do.
    exact = 144_000 * bitrate / sample_rate
    plain = _mp3_header(bitrate, sample_rate) + b"\x00" * (int(exact) - 4)
    padded = _mp3_header(bitrate, sample_rate, padded=True) + b"\x00" * (int(exact) - 3)
    out = bytearray()
    for i in range(frames):
        out += padded if round((i + 1) * exact) - round(i * exact) > int(exact) else plain
    return bytes(out)


_ID3_FRAMES = {
    "title": "TIT2",
    "artist": "TPE1",
    "album": "TALB",
    "albumartist": "TPE2",
    "tracknumber": "TRCK",
}


def _id3(tags: Mapping[str, str], padding: int = 0) -> bytes:
    body = b""
    for key, value in tags.items():
        frame_id = _ID3_FRAMES.get(key.lower())
        if frame_id is None:
            continue
        data = b"\x03" + value.encode()  # encoding 3 = UTF-8 (ID3v2.4)
        body += frame_id.encode() + _syncsafe(len(data)) + b"\x00\x00" + data
    if not body and not padding:
        return b""
    body += b"\x00" * padding
    return b"ID3\x04\x00\x00" + _syncsafe(len(body)) + body


def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


# --- MPEG-4 --------------------------------------------------------------------------------

_UNITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_MP4_TAGS = {"title": b"\xa9nam", "artist": b"\xa9ART", "album": b"\xa9alb", "albumartist": b"aART"}


def _atom(name: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + name + payload


def _full_atom(name: bytes, payload: bytes, flags: int = 0) -> bytes:
    return _atom(name, struct.pack(">I", flags) + payload)  # version 0


def _m4a_moov(
    duration: float,
    samples: int,
    frames: int,
    rate: int,
    channels: int,
    bitrate: int,
    tags: Mapping[str, str] | None,
    mdat_offset: int,
) -> bytes:
    movie_ms = round(duration * 1000)
    mvhd = _full_atom(
        b"mvhd",
        struct.pack(">IIII", 0, 0, 1000, movie_ms)
        + struct.pack(">IH", 0x10000, 0x100)
        + b"\x00" * 10
        + _UNITY_MATRIX
        + b"\x00" * 24
        + struct.pack(">I", 2),
    )
    tkhd = _full_atom(
        b"tkhd",
        struct.pack(">IIIII", 0, 0, 1, 0, movie_ms)
        + b"\x00" * 8
        + struct.pack(">hhHH", 0, 0, 0x100, 0)
        + _UNITY_MATRIX
        + struct.pack(">II", 0, 0),
        flags=7,  # enabled, in movie, in preview
    )
    mdhd = _full_atom(b"mdhd", struct.pack(">IIIIHH", 0, 0, rate, samples, 0x55C4, 0))  # language "und"
    hdlr = _full_atom(b"hdlr", struct.pack(">I", 0) + b"soun" + b"\x00" * 12 + b"SoundHandler\x00")
    stbl = _atom(
        b"stbl",
        _full_atom(b"stsd", struct.pack(">I", 1) + _mp4a_entry(rate, channels, bitrate))
        + _full_atom(b"stts", struct.pack(">III", 1, frames, _AAC_FRAME))
        + _full_atom(b"stsc", struct.pack(">IIII", 1, 1, frames, 1))
        + _full_atom(b"stsz", struct.pack(">II", 1, frames))  # every frame one byte
        + _full_atom(b"stco", struct.pack(">II", 1, mdat_offset)),
    )
    dinf = _atom(b"dinf", _full_atom(b"dref", struct.pack(">I", 1) + _full_atom(b"url ", b"", flags=1)))
    minf = _atom(b"minf", _full_atom(b"smhd", struct.pack(">hH", 0, 0)) + dinf + stbl)
    trak = _atom(b"trak", tkhd + _atom(b"mdia", mdhd + hdlr + minf))
    return _atom(b"moov", mvhd + trak + _mp4_udta(tags or {}))


def _mp4a_entry(rate: int, channels: int, bitrate: int) -> bytes:
    sample_entry = b"\x00" * 6 + struct.pack(">H", 1) + b"\x00" * 8
    audio = struct.pack(">HHHHI", channels, 16, 0, 0, rate << 16)
    # AudioSpecificConfig: object type 2 (AAC LC), frequency index, channel configuration, GA flags 0.
    asc = ((2 << 11) | (_AAC_RATES.index(rate) << 7) | (channels << 3)).to_bytes(2, "big")
    decoder_specific = _descriptor(5, asc)
    # objectTypeIndication 0x40 (MPEG-4 audio), streamType 5 (audio) << 2 | reserved bit.
    decoder_config = _descriptor(
        4,
        struct.pack(">BB", 0x40, 0x15)
        + b"\x00\x00\x00"
        + struct.pack(">II", bitrate * 1000, bitrate * 1000)
        + decoder_specific,
    )
    es = _descriptor(3, struct.pack(">HB", 0, 0) + decoder_config + _descriptor(6, b"\x02"))
    return _atom(b"mp4a", sample_entry + audio + _full_atom(b"esds", es))


def _descriptor(tag: int, payload: bytes) -> bytes:
    return bytes([tag, len(payload)]) + payload  # every descriptor here is shorter than 128 bytes


def _mp4_udta(tags: Mapping[str, str]) -> bytes:
    items = b""
    for key, value in tags.items():
        key = key.lower()
        if key in _MP4_TAGS:
            items += _atom(_MP4_TAGS[key], _atom(b"data", struct.pack(">II", 1, 0) + value.encode()))
        elif key == "tracknumber" and value.isdigit() and 0 < int(value) < 2**16:
            number = struct.pack(">HHHH", 0, int(value), 0, 0)
            items += _atom(b"trkn", _atom(b"data", struct.pack(">II", 0, 0) + number))
    if not items:
        return b""
    hdlr = _full_atom(b"hdlr", struct.pack(">I", 0) + b"mdirappl" + b"\x00" * 9)
    return _atom(b"udta", _full_atom(b"meta", hdlr + _atom(b"ilst", items)))


# --- Ogg -----------------------------------------------------------------------------------


def _ogg(serial: int, groups: list[tuple[list[bytes], int]]) -> bytes:
    """Ogg pages for `groups` of packets; each group starts a new page, and its pages that end a
    packet carry the group's granule position."""
    pages: list[tuple[int, bool, bytes, bytes]] = []  # (granule, continued, lacing, body)
    for packets, granule in groups:
        lacing: list[int] = []
        for packet in packets:
            lacing += [255] * (len(packet) // 255) + [len(packet) % 255]
        body = b"".join(packets)
        continued = False
        while lacing:
            page_lacing, lacing = lacing[:255], lacing[255:]
            size = sum(page_lacing)
            ends_packet = any(value < 255 for value in page_lacing)
            pages.append((granule if ends_packet else -1, continued, bytes(page_lacing), body[:size]))
            body = body[size:]
            continued = page_lacing[-1] == 255
    out = bytearray()
    for sequence, (granule, continued, lacing_bytes, body) in enumerate(pages):
        flags = (0x01 if continued else 0) | (0x02 if sequence == 0 else 0)
        flags |= 0x04 if sequence == len(pages) - 1 else 0
        header = b"OggS" + struct.pack("<BBqIIIB", 0, flags, granule, serial, sequence, 0, len(lacing_bytes))
        page = bytearray(header + lacing_bytes + body)
        page[22:26] = struct.pack("<I", _crc32(bytes(page)))
        out += page
    return bytes(out)


def _crc32(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC32[(crc >> 24) ^ byte]
    return crc


def _serial(*description: object) -> int:
    return int.from_bytes(hashlib.md5(repr(description).encode()).digest()[:4], "little")


class _Bits:
    """Vorbis packs fields least significant bit first."""

    def __init__(self) -> None:
        self.value = 0
        self.length = 0

    def put(self, value: int, width: int) -> _Bits:
        self.value |= (value & ((1 << width) - 1)) << self.length
        self.length += width
        return self

    def bytes(self) -> bytes:
        return self.value.to_bytes((self.length + 7) // 8, "little")


def _vorbis_setup() -> bytes:
    """The smallest setup header the Vorbis I spec allows: one two-entry codebook, one floor 1
    with no partitions, one residue 0 with one classification and no books, one mapping, one mode."""
    bits = _Bits()
    bits.put(0, 8)  # one codebook
    bits.put(0x564342, 24).put(1, 16).put(2, 24)  # sync, dimensions, entries
    bits.put(0, 1).put(0, 1).put(0, 5).put(0, 5)  # not ordered, not sparse, two codewords of length 1
    bits.put(0, 4)  # no lookup table
    bits.put(0, 6).put(0, 16)  # one time-domain transform, the placeholder 0
    bits.put(0, 6).put(1, 16)  # one floor, type 1
    bits.put(0, 5).put(0, 2).put(8, 4)  # no partitions, multiplier 1, range bits 8
    bits.put(0, 6).put(0, 16)  # one residue, type 0
    bits.put(0, 24).put(0, 24).put(0, 24).put(0, 6).put(0, 8)  # begin, end, partition size, classes, book
    bits.put(0, 3).put(0, 1)  # the class's cascade: no books
    bits.put(0, 6).put(0, 16)  # one mapping, type 0
    bits.put(0, 1).put(0, 1).put(0, 2)  # one submap, no coupling, reserved
    bits.put(0, 8).put(0, 8).put(0, 8)  # submap 0: time, floor 0, residue 0
    bits.put(0, 6)  # one mode
    bits.put(1, 1).put(0, 16).put(0, 16).put(0, 8)  # long blocks, window 0, transform 0, mapping 0
    bits.put(1, 1)  # framing
    return b"\x05vorbis" + bits.bytes()
