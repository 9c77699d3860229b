"""The fakes' tiny audio files read back with mutagen at the declared duration and bitrate."""

from __future__ import annotations

import io

import mutagen
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmony.fakes import audio, catalogue, peers

durations = st.floats(min_value=1.0, max_value=3600.0, allow_nan=False, allow_infinity=False)
titles = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=40)


def read(data: bytes) -> mutagen.FileType:
    parsed = mutagen.File(io.BytesIO(data))
    assert parsed is not None
    return parsed


@settings(max_examples=60, deadline=None)
@given(duration=durations, rate=st.sampled_from([44100, 48000, 96000]), title=titles)
def test_flac_duration_and_tags(duration: float, rate: int, title: str) -> None:
    data = audio.flac(duration, sample_rate=rate, tags={"title": title, "artist": "Mørkeskog"})
    parsed = read(data)
    assert abs(parsed.info.length - duration) <= 1 / rate
    assert parsed.info.sample_rate == rate and parsed.info.channels == 2 and parsed.info.bits_per_sample == 16
    assert parsed.tags["title"] == [title] and parsed.tags["artist"] == ["Mørkeskog"]
    assert len(data) < 1024


@settings(max_examples=60, deadline=None)
@given(duration=durations, bitrate=st.sampled_from(audio.MP3_BITRATES), title=titles)
def test_mp3_duration_bitrate_and_tags(duration: float, bitrate: int, title: str) -> None:
    data = audio.mp3(duration, bitrate=bitrate, tags={"title": title, "album": "Golden Lights"})
    parsed = read(data)
    assert abs(parsed.info.length - duration) <= 1152 / 44100  # whole frames
    assert abs(parsed.info.bitrate - bitrate * 1000) <= bitrate * 5
    assert parsed.tags["TIT2"].text == [title] and parsed.tags["TALB"].text == ["Golden Lights"]
    assert len(data) < 8 * 1024


def test_output_is_deterministic_and_validated() -> None:
    assert audio.render("flac", 200.5) == audio.render("flac", 200.5)
    assert audio.render("mp3", 200.5, bitrate=128) != audio.render("mp3", 200.5, bitrate=320)
    assert len(audio.render("flac", 300)) > len(audio.render("flac", 100))  # sizes follow durations
    for call in (lambda: audio.mp3(10, bitrate=100), lambda: audio.flac(0), lambda: audio.render("ogg", 10)):
        with pytest.raises(ValueError):
            call()


def test_peer_traps_are_real_files() -> None:
    world = catalogue.build(3)
    shares = peers.build(world, 3)
    liar = shares["bitrate_liar"].files[0]
    parsed = read(peers.file_bytes(liar))
    assert liar.claimed_bitrate == 320 and abs(parsed.info.bitrate - 128_000) < 1000
    short = shares["radio_edits"].files[0]
    track = world.tracks[short.track_id or ""]
    assert track.duration_ms / 1000 - read(peers.file_bytes(short)).info.length > 30
    flac = shares["vinylvault"].files[0]
    assert abs(read(peers.file_bytes(flac)).info.length - flac.duration) < 0.001
