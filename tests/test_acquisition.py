"""Acquisition against the fake slskd: search, rank, download, fall through, cool down, recover.

Each test runs its own fakes and moves one clock for Harmony and the fakes (tests/acquire_world.py).
"""

from __future__ import annotations

from typing import Any

from acquire_world import World, track_shared_by, world

from harmony import events, wanted
from harmony.fakes.faults import Rule
from harmony.fakes.peers import SharedFile


def candidate_of(w: World, item: wanted.Item, username: str) -> int:
    shared = w.shared_by(username, item)
    found = [
        c for c in w.ctx.searcher.candidates(item.id) if c.username == username and c.filename == shared.path
    ]
    assert found, f"{username}'s file is not a candidate"
    return found[0].id


def searched(w: World, item: wanted.Item) -> wanted.Item:
    """Search for the item and stop once its candidates are known, before any download."""
    w.ctx.searcher.dispatch(w.now)
    w.run_jobs()
    w.advance(10)
    w.ctx.searcher.poll(w.now)
    while w.ctx.workers.run_one(now=w.now + 10**7) is not None:
        if wanted.get(w.ctx.db, item.id).state == "found":
            break
    return wanted.get(w.ctx.db, item.id)


def searched_by_title(w: World, item: wanted.Item) -> wanted.Item:
    """Search with the title alone: peers who leave the artist out of their paths answer it."""
    from harmony import search

    variants = [name for name, _ in search.queries(item)]
    with w.ctx.db.write() as conn:
        wanted.transition(conn, item.id, "searching", "test", "searching by title")
    w.ctx.queue.enqueue(search.JOB_START, {"item_id": item.id, "variant": variants.index("title_only")})
    w.run_jobs()
    w.advance(10)
    w.ctx.searcher.poll(w.now)
    while w.ctx.workers.run_one(now=w.now + 10**7) is not None:
        if wanted.get(w.ctx.db, item.id).state == "found":
            break
    return wanted.get(w.ctx.db, item.id)


def pick(w: World, item: wanted.Item, username: str) -> dict[str, Any]:
    w.ctx.searcher.pick(item.id, candidate_of(w, item, username))
    transfers = w.transfers(item.id)
    assert transfers[-1]["username"] == username
    return transfers[-1]


def test_a_wanted_track_is_found_downloaded_and_handed_to_import(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        done = w.until(item.id, {"done"})
        transfer = w.transfers(item.id)[-1]
        assert transfer["outcome"] == "succeeded" and transfer["bytes"] == transfer["size"]
        assert done.reason_code == "imported" and w.spent() == 1
        jobs = w.ctx.queue.list_jobs(type="import")
        assert [job.payload for job in jobs] == [{"transfer_id": transfer["id"]}]
        history = [(e.kind, e.code) for e in reversed(events.list_events(w.ctx.db, item_id=item.id))]
        assert ("search.started", "primary") in history and ("search.result", "primary") in history
        codes = [code for kind, code in history if kind == "item.state"]
        assert codes[-3:] == ["downloaded", "importing", "imported"], codes
        sample = w.ctx.metrics.registry.get_sample_value
        assert sample("harmony_search_to_enqueue_seconds_count") == 1
        assert sample("harmony_transfers_started_total") == 1


def test_a_stalled_transfer_falls_through_to_the_next_candidate_without_a_new_search(tmp_path: Any) -> None:
    with world(tmp_path, transfers_stall_timeout="30s") as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault", "staller"))
        assert searched(w, item).state == "found"
        spent = w.spent()
        stalled = pick(w, item, "staller")
        for _ in range(80):  # slskd retries the stalled file first; Harmony waits those out
            w.step(15)
            if len(w.transfers(item.id)) > 1:
                break
        first, second = w.transfers(item.id)[:2]
        assert first["id"] == stalled["id"] and first["outcome"] in ("stalled_no_progress", "timed_out")
        assert second["username"] != "staller"
        assert w.spent() == spent  # the next candidate of the same search: no search spent
        assert w.until(item.id, {"done"}).state == "done"


def test_a_remote_queue_that_stops_improving_falls_through(tmp_path: Any) -> None:
    with world(tmp_path, transfers_queue_timeout="60s") as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault", "queue_queen"))
        assert searched_by_title(w, item).state == "found"
        pick(w, item, "queue_queen")
        for _ in range(10):
            w.step(15)
            if len(w.transfers(item.id)) > 1:
                break
        first = w.transfers(item.id)[0]
        assert first["username"] == "queue_queen" and first["outcome"] == "stalled_queue"
        assert w.until(item.id, {"done"}).state == "done"
        assert (
            w.ctx.metrics.registry.get_sample_value("harmony_transfer_stalls_total", {"kind": "queue"}) == 1
        )


def test_rejecting_and_offline_peers_are_cooled_down(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault", "grumpy", "ghost_peer"))
        assert searched(w, item).state == "found"
        pick(w, item, "grumpy")
        w.step(2)
        rejected = w.transfers(item.id)[0]
        assert rejected["outcome"] == "rejected" and "Too many megabytes" in rejected["reason"]
        pick(w, item, "ghost_peer")
        offline = w.transfers(item.id)[-1]
        assert offline["outcome"] == "enqueue_refused" and "offline" in offline["reason"]
        peers = {row["username"]: row for row in w.ctx.db.query("SELECT * FROM peers")}
        for name in ("grumpy", "ghost_peer"):
            assert peers[name]["failures"] == 1 and peers[name]["cooldown_until"] > w.now + 3000
        # Cooling down, they are gates now: a new ranking refuses them.
        from harmony import transfers

        assert {"grumpy", "ghost_peer"} <= transfers.user_context(w.ctx.db, item.id, w.now).cooling
        assert w.until(item.id, {"done"}).state == "done"


def test_slskd_down_for_a_minute_changes_nothing_and_loses_nothing(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault", "slowpoke"))
        assert searched(w, item).state == "found"
        pick(w, item, "slowpoke")
        w.step(2)
        before = (wanted.get(w.ctx.db, item.id).state, w.transfers(item.id))
        assert before[0] in ("queued", "downloading")
        w.fakes.slskd.stop()
        for _ in range(6):
            w.ctx.transfers.clock = w.clock
            w.now += 10  # Harmony's minute passes; the fake is down
            assert w.ctx.transfers.poll(w.now) == 0
            w.ctx.searcher.dispatch(w.now)
            w.run_jobs()
        after = (wanted.get(w.ctx.db, item.id).state, w.transfers(item.id))
        assert after == before
        w.fakes.slskd.start()
        w.fakes.clock.advance(600)  # slowpoke's file arrives meanwhile
        assert w.until(item.id, {"done"}, seconds=30).state == "done"
        assert len(w.transfers(item.id)) == 1


def test_traps_are_never_downloaded(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        cat = w.fakes.catalogue
        traps = w.fakes.slskd_state.peers["bootlegger"].files
        trapped = sorted({cat.tracks[f.track_id].isrc for f in traps if f.track_id})
        ids = [t.id for t in sorted(cat.tracks.values(), key=lambda t: t.id) if t.isrc in trapped[:12]]
        items = []
        for track_id in ids:
            album = cat.albums[cat.tracks[track_id].album_id]
            if album.future or album.album_type != "album" or album.duplicate_of:
                continue
            items.append(w.want(track_id))
        assert len(items) >= 6
        for _ in range(40):
            w.step(3)
            if all(wanted.get(w.ctx.db, i.id).state in ("downloaded", "not_found") for i in items):
                break
        downloaded = 0
        for item in items:
            for transfer in w.transfers(item.id):
                if transfer["outcome"] != "succeeded":
                    continue
                shared: SharedFile | None = w.fakes.slskd_state.peers[transfer["username"]].find(
                    transfer["filename"]
                )
                assert shared is not None and shared.variant == "original", transfer["filename"]
                assert cat.tracks[shared.track_id].isrc == cat.tracks[item.spotify_id].isrc
                downloaded += 1
        assert downloaded >= len(items) - 1


def test_album_mode_takes_one_complete_folder(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        cat = w.fakes.catalogue
        artist = cat.artist_by_name("Mørkeskog")
        w.ctx.watcher.add(artist.id, release_groups=["album"], since="1990-01-01")
        w.run_jobs()
        albums = {r.id: r for r in w.ctx.watcher.releases(artist_id=1, limit=50)}
        assert albums
        for _ in range(30):
            w.step(3)
            states = [i.state for i in wanted.list_items(w.ctx.db, limit=500)]
            if states and all(s in ("downloaded", "not_found") for s in states):
                break
        searches = w.ctx.db.query("SELECT mode, release_id FROM searches")
        assert {row["mode"] for row in searches} == {"album"}  # every release found as a whole
        for release_id in albums:
            users = {
                (t.username, t.filename.rsplit("\\", 1)[0])
                for item in wanted.list_items(w.ctx.db, release_id=release_id, limit=100)
                for t in w.ctx.transfers.list_downloads(item_id=item.id)
                if t.outcome == "succeeded"
            }
            assert len(users) == 1, users  # one user's one folder per release


def test_album_mode_falls_back_to_tracks_when_no_folder_is_complete(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        cat = w.fakes.catalogue
        artist = cat.artist_by_name("Mørkeskog")
        from harmony import transfers

        for name in w.fakes.slskd_state.peers:  # nobody's folder may serve it
            transfers.block(w.ctx.db, name, "test")
        w.ctx.watcher.add(artist.id, release_groups=["album"], since="2016-01-01")
        w.run_jobs()
        for _ in range(12):
            w.step(3)
        codes = {
            e.code
            for e in __import__("harmony.events").events.list_events(w.ctx.db, kind="item.state", limit=500)
        }
        assert "album_fallback" in codes
        modes = {row["mode"] for row in w.ctx.db.query("SELECT mode FROM searches")}
        assert modes == {"album", "track"}
        assert all(
            i.state in ("not_found", "searching", "wanted") for i in wanted.list_items(w.ctx.db, limit=500)
        )
        assert cat  # the catalogue was searched, nothing was downloaded
        assert not w.ctx.db.scalar("SELECT count(*) FROM transfers")


def test_a_download_that_waited_in_the_peers_queue_is_not_taken_for_stalled_when_it_starts(
    tmp_path: Any,
) -> None:
    # The peer queues the file for 15 minutes, far longer than the no-progress timeout (60 s).
    with world(tmp_path, transfers_stall_timeout="60s", transfers_queue_timeout="1h") as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault", "queue_queen"))
        assert searched_by_title(w, item).state == "found"
        pick(w, item, "queue_queen")
        done = w.until(item.id, {"done"}, steps=120, seconds=15)
        [transfer] = w.transfers(item.id)
        assert transfer["username"] == "queue_queen" and transfer["outcome"] == "succeeded", done.reason
        assert w.ctx.slskd.downloads() == [], "a finished record is removed from slskd's list"


def test_an_item_nobody_shares_costs_every_variant_once_then_one_search_per_back_off(tmp_path: Any) -> None:
    from harmony import search, transfers

    with world(tmp_path) as w:
        for name in w.fakes.slskd_state.peers:  # every file is refused: as if nobody shared it
            transfers.block(w.ctx.db, name, "test")
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        first = w.until(item.id, {"not_found"}, steps=60)
        variants = len(search.queries(item))
        assert w.spent() == variants and first.next_action_at is not None
        w.advance(first.next_action_at - w.now + 1)  # the back-off is over
        w.until(item.id, {"searching"})
        second = w.until(item.id, {"not_found"}, steps=60)
        assert second.attempts == 2 and w.spent() == variants + 1, "one search per back-off"
        assert "1 search;" in (second.reason or "")


def test_a_search_creation_slskd_may_have_started_stays_spent_and_a_refused_one_is_given_back(
    tmp_path: Any,
) -> None:
    """The budget guards the account, so it counts what may have reached Soulseek: a 429 (slskd's
    own refusal) gives the spend back, a 5xx (slskd may have started the search) keeps it."""
    with world(tmp_path, upstream_retries="0") as w:
        faults = w.fakes.slskd_state.faults
        for status, spends in ((429, 1), (503, 2)):
            before = w.spent()
            item = w.want(
                track_shared_by(w.fakes, "vinylvault", album_type="single" if spends == 2 else "album")
            )
            faults.add(Rule(kind="status", path="/api/v0/searches", method="POST", status=status, times=1))
            w.ctx.searcher.dispatch(w.now)
            w.run_jobs()  # refused once, then created
            assert w.spent() - before == spends, status
            assert w.until(item.id, {"done"}).state == "done"
        with w.fakes.slskd_state.lock:
            created = len(w.fakes.slskd_state.search_log)
        assert created == 2 and w.spent() == 3
