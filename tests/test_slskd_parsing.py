"""slskd payload parsing: flags enums, timestamps with and without Z, TimeSpans, omitted nulls,
every version's enqueue response, 0.26 retries, and arbitrary JSON (a dataclass or UpstreamRejected)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmony.errors import UpstreamRejected
from harmony.slskd import (
    EnqueueResult,
    parse_application,
    parse_enqueue,
    parse_flags,
    parse_options,
    parse_response,
    parse_search,
    parse_time,
    parse_timespan,
    parse_transfer,
    parse_transfers,
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


# --- every response shape, and anything at all -----------------------------------------------------


def transfer_json(name: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "username": "u", "filename": name, "size": 1, "state": "Queued, Locally"}


@pytest.mark.parametrize(
    "payload",
    [
        {"enqueued": [transfer_json("a")], "failed": ["b"]},  # 0.24-0.25: names
        {"enqueued": [transfer_json("a")], "failed": [{}]},  # 0.26: (Filename, Message) tuples as {}
        {"enqueued": [transfer_json("a")], "failed": [{"filename": "b", "message": "Skipped"}]},
        {"enqueued": [transfer_json("a")]},  # `failed` absent
        {"enqueued": [transfer_json("a")], "failed": None},
    ],
)
def test_enqueue_failures_are_requested_minus_enqueued(payload: dict[str, Any]) -> None:
    result = parse_enqueue(payload, ["a", "b"])
    assert [t.filename for t in result.enqueued] == ["a"] and result.failed == ("b",)


def test_an_empty_enqueue_body_means_everything_was_queued() -> None:
    assert parse_enqueue(None, ["a", "b"]) == EnqueueResult()  # slskd <= 0.23: 201, no body


def test_retrying_is_a_failure_with_attempts_left() -> None:
    errored = {"state": "Completed, Errored", "attempts": 1}
    assert parse_transfer(errored, 3).retrying and not parse_transfer(errored, 3).failed
    assert parse_transfer({**errored, "attempts": 3}, 3).failed
    assert parse_transfer(errored).failed  # a slskd that does not retry
    rejected = parse_transfer({"state": "Completed, Rejected", "attempts": 1}, 3)
    assert rejected.failed and not rejected.retrying


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
# Payloads that look like slskd's, with any value in any field.
KEYS = [
    "id", "state", "searchText", "responseCount", "fileCount", "startedAt", "endedAt", "username", "files",
    "lockedFiles", "hasFreeUploadSlot", "uploadSpeed", "queueLength", "filename", "size", "bitRate",
    "isVariableBitRate", "averageSpeed", "percentComplete", "requestedAt", "elapsedTime", "remainingTime",
    "attempts", "removed", "exception", "directories", "enqueued", "failed", "server", "version", "user",
    "transfers", "download", "retry",
]  # fmt: skip
SHAPED = st.recursive(
    JSON,
    lambda children: (
        st.dictionaries(st.sampled_from(KEYS), children, max_size=8) | st.lists(children, max_size=3)
    ),
    max_leaves=40,
)
PARSERS = [
    parse_search,
    parse_response,
    parse_transfer,
    parse_transfers,
    parse_application,
    parse_options,
    lambda raw: parse_enqueue(raw, ["a"]),
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PARSERS), SHAPED)
def test_any_json_is_a_dataclass_or_upstream_rejected(parse: Any, payload: Any) -> None:
    try:
        result = parse(payload)
    except UpstreamRejected:
        return
    items = result if isinstance(result, list) else [result]
    assert all(dataclasses.is_dataclass(item) for item in items)
