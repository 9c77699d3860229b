"""Spotify payload parsing: whatever JSON arrives, a parser returns its dataclass or raises
UpstreamRejected, and optional or renamed fields never matter."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harmony.errors import UpstreamRejected
from harmony.spotify import (
    parse_album_ref,
    parse_artist,
    parse_artist_ref,
    parse_playlist,
    parse_playlist_item,
    parse_track,
    parse_user,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
# Objects shaped like Spotify's, with any value in any field.
KEYS = [
    "id", "name", "type", "images", "url", "artists", "album", "album_type", "release_date",
    "release_date_precision", "total_tracks", "album_group", "duration_ms", "track_number", "disc_number",
    "explicit", "external_ids", "isrc", "is_local", "items", "tracks", "total", "owner", "snapshot_id",
    "collaborative", "item", "track", "added_at", "episode", "display_name",
]  # fmt: skip
SHAPED = st.recursive(
    JSON,
    lambda children: (
        st.dictionaries(st.sampled_from(KEYS), children, max_size=8) | st.lists(children, max_size=3)
    ),
    max_leaves=40,
)
PARSERS = [
    parse_artist_ref,
    parse_artist,
    parse_user,
    parse_album_ref,
    parse_track,
    parse_playlist,
    parse_playlist_item,
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PARSERS), SHAPED)
def test_any_json_is_a_dataclass_or_upstream_rejected(parse: Any, payload: Any) -> None:
    try:
        result = parse(payload)
    except UpstreamRejected:
        return
    assert dataclasses.is_dataclass(result)


def test_playlist_entries_in_every_shape() -> None:
    track = {"id": "t" * 22, "name": "Song", "type": "track", "external_ids": {"isrc": "gbaaa0000001"}}
    assert parse_playlist_item({"added_at": "2026-01-01T00:00:00Z", "item": track}).skip_reason == ""
    legacy = parse_playlist_item({"added_at": None, "track": track})  # before the 2026 rename
    assert legacy.track is not None and legacy.track.isrc == "GBAAA0000001" and legacy.added_at is None
    episode_as_track = {**track, "type": "episode", "episode": True, "track": False}
    assert parse_playlist_item({"item": episode_as_track}).skip_reason == "episode"
    assert parse_playlist_item({"item": {**track, "episode": True}}).skip_reason == "episode"
    assert parse_playlist_item({"item": None, "track": None}).skip_reason == "unavailable"
    assert parse_playlist_item({"item": {**track, "id": None}}).skip_reason == "unavailable"
    local = parse_playlist_item({"item": {**track, "id": None, "is_local": True}})
    assert local.skip_reason == "local" and local.track is not None
