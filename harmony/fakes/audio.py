"""Tiny but real audio files: headers that audio readers accept, with no (or silent) audio.

`flac()` writes a FLAC stream with a STREAMINFO block whose total samples give the duration,
plus a VORBIS_COMMENT block. `mp3()` writes an ID3v2.4 tag, one MPEG-1 Layer III frame carrying
an `Info` (CBR Xing) header that declares the frame count and byte count of the whole stream, and
a few silent frames. Readers such as mutagen report the declared duration and bitrate from those
headers, so a file of a few kilobytes stands for a track of minutes. Output is a pure function of
the arguments.
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


def flac(
    duration: float,
    *,
    sample_rate: int = 44100,
    bits_per_sample: int = 16,
    channels: int = 2,
    tags: Mapping[str, str] | None = None,
    padding: int = 0,
) -> bytes:
    """A FLAC file of `duration` seconds (rounded to whole samples). No audio frames follow the metadata.

    `padding` adds a PADDING block of that many bytes, to give files of different lengths different sizes.
    """
    valid = 1 <= sample_rate < 2**20 and 1 <= channels <= 8 and 4 <= bits_per_sample <= 32
    if duration <= 0 or not valid:
        raise ValueError("unsupported FLAC parameters")
    total_samples = round(duration * sample_rate)
    if total_samples >= 2**36:
        raise ValueError("duration too long for FLAC")
    packed = (sample_rate << 44) | ((channels - 1) << 41) | ((bits_per_sample - 1) << 36) | total_samples
    # The MD5 field normally hashes the decoded audio; a digest of the description keeps files distinct.
    md5 = hashlib.md5(repr((duration, sample_rate, sorted((tags or {}).items()))).encode()).digest()
    streaminfo = struct.pack(">HH", 4096, 4096) + b"\x00" * 6 + struct.pack(">Q", packed) + md5
    comment = _vorbis_comment(tags or {})
    blocks = _flac_block(0, streaminfo, last=False) + _flac_block(4, comment, last=padding <= 0)
    if padding > 0:
        blocks += _flac_block(1, b"\x00" * padding, last=True)
    return b"fLaC" + blocks


def mp3(
    duration: float,
    *,
    bitrate: int = 320,
    sample_rate: int = 44100,
    tags: Mapping[str, str] | None = None,
) -> bytes:
    """A constant-bitrate MP3 of `duration` seconds (rounded to whole frames) at `bitrate` kbps."""
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
    silent = (header + b"\x00" * (frame_len - 4)) * _SILENT_FRAMES
    return _id3(tags or {}) + first + silent


def render(fmt: str, duration: float, *, bitrate: int = 320, tags: Mapping[str, str] | None = None) -> bytes:
    """`flac()` or `mp3()` by format name ("flac" or "mp3"). FLAC files grow by 16 bytes per second."""
    if fmt == "flac":
        return flac(duration, tags=tags, padding=int(duration * 16))
    if fmt == "mp3":
        return mp3(duration, bitrate=bitrate, tags=tags)
    raise ValueError(f"unsupported format {fmt!r}")


def _flac_block(kind: int, data: bytes, *, last: bool) -> bytes:
    return bytes([(0x80 if last else 0) | kind]) + len(data).to_bytes(3, "big") + data


def _vorbis_comment(tags: Mapping[str, str]) -> bytes:
    vendor = b"harmony fakes"
    out = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(tags))
    for key, value in tags.items():
        entry = f"{key.upper()}={value}".encode()
        out += struct.pack("<I", len(entry)) + entry
    return out


def _mp3_header(bitrate: int, sample_rate: int) -> bytes:
    bitrate_index = MP3_BITRATES.index(bitrate) + 1
    # 0xFFFB: frame sync, MPEG-1, Layer III, no CRC. 0x44: joint stereo, "original" bit.
    return bytes([0xFF, 0xFB, (bitrate_index << 4) | (_MP3_SAMPLE_RATES[sample_rate] << 2), 0x44])


_ID3_FRAMES = {
    "title": "TIT2",
    "artist": "TPE1",
    "album": "TALB",
    "albumartist": "TPE2",
    "tracknumber": "TRCK",
}


def _id3(tags: Mapping[str, str]) -> bytes:
    body = b""
    for key, value in tags.items():
        frame_id = _ID3_FRAMES.get(key.lower())
        if frame_id is None:
            continue
        data = b"\x03" + value.encode()  # encoding 3 = UTF-8 (ID3v2.4)
        body += frame_id.encode() + _syncsafe(len(data)) + b"\x00\x00" + data
    if not body:
        return b""
    return b"ID3\x04\x00\x00" + _syncsafe(len(body)) + body


def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])
