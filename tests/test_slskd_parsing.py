"""slskd payload parsing: flags enums, timestamps with and without Z, TimeSpans, omitted nulls."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from harmony.slskd import (
    parse_flags,
    parse_response,
    parse_search,
    parse_time,
    parse_timespan,
    parse_transfer,
)

FLAGS = ["Completed", "Succeeded", "Queued", "Remotely", "Locally", "InProgress", "Errored", "Rejected"]


@given(st.sets(st.sampled_from(FLAGS), min_size=1))
def test_flags_round_trip(flags: set[str]) -> None:
    assert parse_flags(", ".join(sorted(flags))) == flags
    assert parse_flags(None) == frozenset()


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)), st.booleans())
def test_timestamps_with_and_without_zone(when: dt.datetime, tagged: bool) -> None:
    text = when.isoformat() + ("Z" if tagged else "")
    assert parse_time(text) == when.replace(tzinfo=dt.UTC).timestamp()


def test_dotnet_seven_digit_fractions() -> None:
    assert parse_time("2026-08-01T10:00:00.1234567Z") == parse_time("2026-08-01T10:00:00.123456Z")
    assert parse_time("not a time") is None


@given(
    st.integers(0, 30), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.integers(0, 9999999)
)
def test_timespans(days: int, hours: int, minutes: int, seconds: int, ticks: int) -> None:
    text = (f"{days}." if days else "") + f"{hours:02}:{minutes:02}:{seconds:02}.{ticks:07}"
    expected = days * 86400 + hours * 3600 + minutes * 60 + seconds + ticks / 1e7
    assert abs(parse_timespan(text) - expected) < 1e-6


def test_a_fresh_transfer_without_optional_keys() -> None:
    transfer = parse_transfer(
        {
            "id": "9b2f0c4e-3d1a-4b7e-9a55-2f6c1d0e8a11",
            "username": "u",
            "filename": "@@m\\a.flac",
            "size": 10,
            "state": "Queued, Locally",
            "requestedAt": "2026-08-01T10:00:00.123456",
        }
    )
    assert (
        transfer.state == {"Queued", "Locally"} and transfer.started_at is None and transfer.exception == ""
    )
    assert not transfer.succeeded and not transfer.failed


def test_terminal_states() -> None:
    done = parse_transfer({"state": "Completed, Succeeded", "bytesTransferred": 10, "size": 10})
    rejected = parse_transfer({"state": "Completed, Rejected", "exception": "Too many files"})
    assert done.succeeded and not done.failed
    assert rejected.failed and rejected.exception == "Too many files"


def test_search_and_response_tolerate_missing_fields() -> None:
    search = parse_search({"id": "x", "state": "InProgress", "responses": []})
    assert not search.complete and search.ended_at is None
    assert parse_search({"id": "x", "state": "Completed, TimedOut"}).complete
    peer = parse_response(
        {"username": "p", "files": [{"filename": "@@a\\b.mp3", "size": 5, "bitRate": 320}, None]}
    )
    assert peer.files[0].bit_rate == 320 and peer.files[0].length is None and len(peer.files) == 1
    assert peer.queue_length == 0 and peer.has_free_slot is False
