"""The wanted list: one identity per recording, sources, withdrawal, and the one transition function."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmony import events, wanted
from harmony.db import Database
from harmony.errors import Conflict, NotFound
from harmony.wanted import Source, Track

SINGLE = Source("release", release_id=None)


def track(**changes: Any) -> Track:
    base: dict[str, Any] = {
        "title": "Glass Harbour",
        "artists": ("Aurora Vale",),
        "spotify_id": "0" * 21 + "1",
        "isrc": "QZHN92600001",
        "album": "Low Tide",
        "duration_ms": 215_000,
    }
    return Track(**{**base, **changes})


def want(db: Database, t: Track, source: Source) -> tuple[wanted.Item, str]:
    with db.write() as conn:
        return wanted.want(conn, t, source)


def rows(db: Database, table: str) -> int:
    return int(db.scalar(f"SELECT count(*) FROM {table}"))


def add_release(db: Database, name: str) -> int:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO releases (spotify_id, name, first_seen_at) VALUES (?, ?, 0)",
            (name.ljust(22, "x"), name),
        )
        return int(conn.last_insert_rowid())


def add_playlist(db: Database, name: str) -> int:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO playlists (spotify_id, name, followed_at, next_sync_at) VALUES (?, ?, 0, 0)",
            (name.ljust(22, "x"), name),
        )
        return int(conn.last_insert_rowid())


def test_the_same_song_from_a_single_its_album_and_a_playlist_is_one_item(db: Database) -> None:
    single, album, playlist = add_release(db, "single"), add_release(db, "album"), add_playlist(db, "mix")
    first, outcome = want(db, track(spotify_id="S" * 22), Source("release", release_id=single))
    assert outcome == "created" and first.state == "wanted"
    # The album's copy has another Spotify id but the same ISRC.
    again, outcome = want(
        db, track(spotify_id="A" * 22, album="Low Tide"), Source("release", release_id=album)
    )
    assert outcome == "added" and again.id == first.id
    # The playlist's copy is known only by artist, title and a duration within 3 s.
    third, outcome = want(
        db,
        track(spotify_id="P" * 22, isrc=None, title="Glass Harbour - 2021 Remaster", duration_ms=216_500),
        Source("playlist", playlist_id=playlist),
    )
    assert outcome == "added" and third.id == first.id
    assert rows(db, "wanted_items") == 1
    assert sorted(s["kind"] for s in wanted.get(db, first.id).sources) == ["playlist", "release", "release"]
    assert wanted.get(db, first.id).source_rank == 2  # the playlist outranks the watchlist


def test_different_recordings_stay_apart(db: Database) -> None:
    want(db, track(), Source("manual"))
    live, _ = want(db, track(spotify_id="L" * 22, isrc=None, title="Glass Harbour - Live"), Source("manual"))
    longer, _ = want(db, track(spotify_id="X" * 22, isrc=None, duration_ms=240_000), Source("manual"))
    other, _ = want(db, track(spotify_id="O" * 22, isrc=None, artists=("Kite Theory",)), Source("manual"))
    assert len({live.id, longer.id, other.id}) == 3 and rows(db, "wanted_items") == 4


def test_a_track_in_the_library_is_recorded_as_owned(db: Database) -> None:
    with db.write() as conn:
        conn.execute(
            "INSERT INTO library_tracks (path, identity, isrc, duration_ms, scanned_at) "
            "VALUES (?, ?, ?, ?, 0)",
            ("Aurora Vale/2021 - Low Tide/01 Glass Harbour.flac", track().identity, "QZHN92600001", 215_000),
        )
    item, outcome = want(db, track(spotify_id="N" * 22), Source("manual"))
    assert outcome == "owned" and item.state == "done" and item.reason_code == "already_owned"
    assert "01 Glass Harbour.flac" in (item.reason or "")


def test_wanting_twice_from_one_source_changes_nothing(db: Database) -> None:
    item, _ = want(db, track(), Source("manual"))
    before = rows(db, "events")
    again, outcome = want(db, track(), Source("manual"))
    assert outcome == "known" and again.id == item.id and rows(db, "events") == before


def test_withdrawal_keeps_items_other_sources_or_transfers_still_want(db: Database) -> None:
    playlist, release = add_playlist(db, "mix"), add_release(db, "album")
    both, _ = want(db, track(), Source("playlist", playlist_id=playlist))
    want(db, track(), Source("release", release_id=release))
    only, _ = want(
        db,
        track(spotify_id="B" * 22, isrc="QZHN92600002", title="Other"),
        Source("playlist", playlist_id=playlist),
    )
    busy, _ = want(
        db,
        track(spotify_id="C" * 22, isrc="QZHN92600003", title="Third"),
        Source("playlist", playlist_id=playlist),
    )
    with db.write() as conn:
        for state in ("searching", "found", "queued", "downloading"):
            wanted.transition(conn, busy.id, state, "test", "moving along")
        key = f"playlist:{playlist}"
        assert wanted.withdraw(conn, both.id, [key], "removed") == "kept"
        assert wanted.withdraw(conn, only.id, [key], "removed") == "withdrawn"
        assert wanted.withdraw(conn, busy.id, [key], "removed") == "in_flight"
        assert wanted.withdraw(conn, only.id, [key], "removed") == "none"
    assert wanted.get(db, both.id).state == "wanted"
    withdrawn = wanted.get(db, only.id)
    assert withdrawn.state == "skipped" and withdrawn.reason_code == "withdrawn"
    assert wanted.get(db, busy.id).state == "downloading"
    # Wanted again by any source, a withdrawn item comes back.
    back, outcome = want(db, track(spotify_id="B" * 22, isrc="QZHN92600002", title="Other"), Source("manual"))
    assert outcome == "added" and back.state == "wanted" and back.reason_code == "wanted_again"


def test_transition_writes_the_state_and_one_event_or_refuses_naming_the_state(db: Database) -> None:
    item, _ = want(db, track(), Source("manual"))
    with db.write() as conn:
        moved = wanted.transition(
            conn,
            item.id,
            "searching",
            "searching",
            "query 1 of 3",
            next_action="poll",
            next_action_at=5.0,
            now=100.0,
        )
    assert (moved.state, moved.state_since, moved.reason_code, moved.next_action) == (
        "searching",
        100.0,
        "searching",
        "poll",
    )
    history = events.list_events(db, item_id=item.id)
    assert [(e.kind, e.from_state, e.to_state) for e in history][:1] == [
        ("item.state", "wanted", "searching")
    ]
    before = (rows(db, "events"), wanted.get(db, item.id).state)
    with pytest.raises(Conflict) as refused, db.write() as conn:
        wanted.transition(conn, item.id, "done", "x", "not allowed from searching")
    assert refused.value.details["state"] == "searching"
    with pytest.raises(Conflict), db.write() as conn:
        wanted.transition(conn, item.id, "wanted", "x", "y", expect=("failed",))
    with pytest.raises(NotFound), db.write() as conn:
        wanted.transition(conn, 999, "wanted", "x", "y")
    assert (rows(db, "events"), wanted.get(db, item.id).state) == before


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(wanted.STATES), min_size=1, max_size=12))
def test_only_allowed_transitions_happen_and_each_leaves_one_event(
    tmp_path_factory: Any, path: list[str]
) -> None:
    db = Database(str(tmp_path_factory.mktemp("w") / "h.db"))
    db.migrate()
    try:
        item, _ = want(db, track(), Source("manual"))
        state = "wanted"
        for to in path:
            before = rows(db, "events")
            try:
                with db.write() as conn:
                    wanted.transition(conn, item.id, to, "step", "a step")
            except Conflict:
                assert to not in wanted.TRANSITIONS[state]
                assert rows(db, "events") == before
                continue
            assert to in wanted.TRANSITIONS[state]
            assert rows(db, "events") == before + 1
            state = to
        assert wanted.get(db, item.id).state == state
    finally:
        db.close()


def test_lists_page_by_each_sort_without_gaps_or_repeats(db: Database) -> None:
    playlist = add_playlist(db, "mix")
    for n in range(23):
        source = Source("playlist", playlist_id=playlist) if n % 3 else Source("manual")
        item, _ = want(db, track(spotify_id=f"{n:022d}", isrc=None, title=f"Song {n}"), source)
        if n % 5 == 0:
            wanted.set_priority(db, item.id, n)
    for sort in wanted.SORTS:
        seen, after = [], None
        while True:
            page = wanted.list_items(db, after=after, limit=4, sort=sort)
            seen += [i.id for i in page]
            if len(page) < 4:
                break
            after = wanted.cursor_key(page[-1], sort)
        assert sorted(seen) == list(range(1, 24)) and len(set(seen)) == 23, sort
    backlog = wanted.list_items(db, limit=100)
    assert [i.priority for i in backlog[:4]] == [20, 15, 10, 5]
    assert wanted.count_items(db, source_kind="manual") == 8
    assert wanted.count_items(db, q="Song 1") == 11  # 1 and 10-19
    assert wanted.count_items(db, q="100%") == 0
