"""Import end to end in-process: a finished download is verified, tagged and filed, or set aside
with the reason while its item completes from another peer; one copy per recording, ever."""

from __future__ import annotations

import os
from typing import Any

from acquire_world import World, admin, track_shared_by, world

from harmony import events, library, naming, tags, wanted
from harmony.fakes import audio


def filed(w: World, item: wanted.Item) -> str:
    """The library file the item was filed as (its index row), checked to exist."""
    row = w.ctx.db.query_one("SELECT path FROM library_tracks WHERE item_id = ?", (item.id,))
    assert row is not None, "the item has no library file"
    path = os.path.join(w.ctx.config.library_dir, row["path"])
    assert os.path.isfile(path)
    return path


def held(w: World) -> list[dict[str, Any]]:
    return w.ctx.importer.quarantined(limit=100)


def test_a_download_is_verified_tagged_and_filed_under_the_template(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        done = w.until(item.id, {"done"})
        assert done.reason_code == "imported"
        path = filed(w, item)
        expected = naming.library_path(
            {
                "album_artist": item.album_artist,
                "artist": list(item.artists),
                "album": item.album,
                "title": item.title,
                "year": item.release_date[:4],
                "track_number": item.track_number,
                "disc_number": item.disc_number,
                "total_discs": item.disc_total,
                "ext": "flac",
            }
        )
        assert os.path.relpath(path, w.ctx.config.library_dir) == expected
        written = tags.read_tags(path)
        track = w.fakes.catalogue.tracks[item.spotify_id or ""]
        assert (written.title, written.artists, written.album) == (item.title, item.artists, item.album)
        assert written.isrc == track.isrc and written.spotify_track_id == item.spotify_id
        assert written.track_number == item.track_number and written.date.startswith(item.release_date[:4])
        assert written.cover is not None and written.cover.mime == "image/jpeg"
        assert os.path.isfile(os.path.join(os.path.dirname(path), "cover.jpg"))
        assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)
        transfer = w.transfers(item.id)[-1]
        assert not os.path.exists(transfer["local_path"]), "the download was moved, not copied"
        assert not os.path.exists(os.path.dirname(transfer["local_path"])), "its emptied folder went too"
        assert transfer["library_path"] == expected
        sample = w.ctx.metrics.registry.get_sample_value
        assert sample("harmony_imports_total", {"outcome": "imported"}) == 1
        assert sample("harmony_wanted_to_library_seconds_count") == 1


def test_a_damaged_download_is_set_aside_and_the_item_completes_from_another_peer(tmp_path: Any) -> None:
    for peer, code in (("bitrot", "not_audio"), ("truncator", "incomplete")):
        with world(tmp_path / peer) as w:
            item = w.want(track_shared_by(w.fakes, peer, "vinylvault", album_type="single"))
            done = w.until(item.id, {"done"}, steps=60)
            assert done.reason_code == "imported"
            first, *_, last = w.transfers(item.id)
            assert (first["username"], last["username"]) == (peer, "vinylvault"), (
                "the damaged peer ranks first"
            )
            [row] = held(w)
            assert (row["code"], row["username"], row["item_id"], row["present"]) == (
                code,
                peer,
                item.id,
                True,
            )
            bad = w.ctx.db.query("SELECT username, filename FROM bad_files")
            assert [(b["username"], b["filename"]) for b in bad] == [(peer, first["filename"])]
            codes = [e.code for e in wanted_events(w, item)]
            assert f"bad_{code}" in codes and codes[-1] == "imported"
            assert w.spent() == 1, "the fall-through took the next candidate without a new search"
            assert w.ctx.metrics.registry.get_sample_value("harmony_quarantined_total", {"reason": code}) == 1


def wanted_events(w: World, item: wanted.Item) -> list[Any]:
    return [e for e in reversed(events.list_events(w.ctx.db, item_id=item.id)) if e.kind == "item.state"]


def test_the_same_song_wanted_again_is_recognised_as_owned(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        w.until(item.id, {"done"})
        client = admin(w)
        assert client.delete(f"/api/v1/wanted/{item.id}").status == 204
        answer = client.post("/api/v1/wanted", {"spotify": item.spotify_id})
        [again] = answer.json["items"]
        assert (again["outcome"], again["state"], again["reason_code"]) == ("owned", "done", "already_owned")
        assert again["id"] > item.id, "an id is never given twice: it names the item's history"
        assert client.get("/api/v1/library/tracks").json["items"][0]["title"] == item.title


def put_in_library(w: World, item: wanted.Item, fmt: str, bitrate: int, relative: str) -> str:
    """A copy of the item's recording already in the library (as a scan would have indexed it)."""
    path = os.path.join(w.ctx.config.library_dir, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(audio.render(fmt, item.duration_ms / 1000, bitrate=bitrate))
    written = tags.Tags(title=item.title, artists=item.artists, album=item.album, isrc=item.isrc or "")
    tags.write_tags(path, written)
    st = os.stat(path)
    entry = library.Entry.of(relative, written, tags.audio_info(path), st.st_size, st.st_mtime)
    with w.ctx.db.write() as conn:
        library.record(conn, entry, w.now)
    return path


def test_a_second_copy_is_never_imported_the_better_one_stays(tmp_path: Any) -> None:
    with world(tmp_path / "keep", search_formats="flac,mp3") as w:
        item = w.want(track_shared_by(w.fakes, "mp3mike"))
        kept = put_in_library(w, item, "flac", 320, "Mine/kept.flac")
        done = w.until(item.id, {"done"})
        assert done.reason_code == "already_owned"
        assert w.ctx.db.scalar("SELECT count(*) FROM library_tracks") == 1 and os.path.isfile(kept)
        [row] = held(w)
        assert row["code"] == "duplicate" and row["present"]
    with world(tmp_path / "replace") as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        worse = put_in_library(w, item, "mp3", 128, "Mine/worse.mp3")
        assert w.until(item.id, {"done"}).reason_code == "imported"
        rows = w.ctx.db.query("SELECT path, format FROM library_tracks")
        assert [r["format"] for r in rows] == ["flac"] and not os.path.exists(worse)
        [row] = held(w)
        assert row["code"] == "replaced" and row["present"] and row["path"].endswith("worse.mp3")


def test_a_file_marked_wrong_leaves_the_library_and_is_never_taken_again(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        client = admin(w)
        item = w.want(track_shared_by(w.fakes, "vinylvault", "mp3mike"))
        w.until(item.id, {"done"})
        path = filed(w, item)
        answer = client.post(f"/api/v1/wanted/{item.id}/wrong")
        assert answer.status == 200 and answer.json["state"] == "wanted"
        assert not os.path.exists(path) and w.ctx.db.scalar("SELECT count(*) FROM library_tracks") == 0
        [row] = held(w)
        assert row["code"] == "wrong" and row["present"]
        done = w.until(item.id, {"done"}, steps=60)
        last = w.transfers(item.id)[-1]
        assert done.reason_code == "imported" and last["username"] != "vinylvault", (
            "never the wrong file again"
        )


def test_quarantine_api_lists_retries_and_deletes(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        client = admin(w)
        item = w.want(track_shared_by(w.fakes, "truncator", "vinylvault", album_type="single"))
        w.until(item.id, {"done"}, steps=60)
        page = client.get("/api/v1/quarantine").json
        [truncated] = page["items"]
        assert (
            truncated["code"] == "incomplete"
            and "bytes" in truncated["reason"]
            and page["next_cursor"] is None
        )
        assert client.post(f"/api/v1/quarantine/{truncated['id']}/retry").status == 409, "its item is done"
        # The operator calls the good file wrong, then changes their mind.
        assert client.post(f"/api/v1/wanted/{item.id}/wrong").json["state"] == "wanted"
        wrong = client.get("/api/v1/quarantine").json["items"][0]
        assert wrong["code"] == "wrong" and wrong["present"]
        still = client.post(f"/api/v1/quarantine/{truncated['id']}/retry")
        assert still.status == 422 and "still fails" in still.json["error"]["message"]
        back = client.post(f"/api/v1/quarantine/{wrong['id']}/retry")
        assert back.status == 200 and back.json["outcome"] == "imported", back.json
        assert client.get(f"/api/v1/wanted/{item.id}").json["state"] == "done"
        assert os.path.isfile(os.path.join(w.ctx.config.library_dir, back.json["path"]))
        assert client.delete(f"/api/v1/quarantine/{truncated['id']}").status == 204
        assert client.get("/api/v1/quarantine").json["items"] == []
        assert not os.listdir(
            os.path.join(w.ctx.config.quarantine_dir, f"transfer-{truncated['transfer_id']}")
        )
        assert client.delete(f"/api/v1/quarantine/{truncated['id']}").status == 404


def test_an_item_refused_by_too_many_peers_waits_for_the_operator(tmp_path: Any) -> None:
    with world(tmp_path, transfers_max_bad_peers="1") as w:
        item = w.want(track_shared_by(w.fakes, "bitrot", "vinylvault", album_type="single"))
        failed = w.until(item.id, {"failed"}, steps=60)
        assert failed.reason_code == "needs_attention" and "verification" in (failed.reason or "")
        client = admin(w)
        candidates = client.get(f"/api/v1/wanted/{item.id}/candidates").json["items"]
        good = next(c for c in candidates if c["username"] == "vinylvault")
        assert client.post(f"/api/v1/wanted/{item.id}/candidates/{good['id']}/pick").status == 200
        done = w.until(item.id, {"done"}, steps=60)
        assert done.reason_code == "imported" and w.transfers(item.id)[-1]["username"] == "vinylvault"
        assert client.post(f"/api/v1/wanted/{item.id}/retry").status == 409, "done: nothing to retry"
        assert w.ctx.db.scalar("SELECT count(*) FROM bad_files") == 1, "the refused file stays refused"
