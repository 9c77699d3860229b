"""The acquisition API: candidates, search now, pick, wrong file, downloads, blocked users, budget."""

from __future__ import annotations

from typing import Any

from acquire_world import admin, track_shared_by, world

from harmony import wanted


def test_an_item_from_want_to_download_through_the_api(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        client = admin(w)
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        assert client.post(f"/api/v1/wanted/{item.id}/search").status == 202
        w.until(item.id, {"done"})
        candidates = client.get(f"/api/v1/wanted/{item.id}/candidates").json
        assert candidates["items"][0]["rank"] == 1 and candidates["items"][0]["reasons"]
        assert candidates["searches"][0]["variant"] == "primary"
        page = client.get(f"/api/v1/downloads?item={item.id}").json
        assert page["live_current"] is True and page["items"][0]["outcome"] == "succeeded"
        assert page["items"][0]["live"]["state"] == "Completed, Succeeded"
        budget = client.get("/api/v1/search/budget").json
        assert budget["spent"] == 1 and budget["remaining"] == budget["limit"] - 1
        wrong = client.post(f"/api/v1/wanted/{item.id}/wrong")
        assert (
            wrong.status == 200
            and wrong.json["state"] == "wanted"
            and wrong.json["reason_code"] == "wrong_file"
        )
        bad = w.ctx.db.query("SELECT username, filename FROM bad_files")
        assert [(b["username"], b["filename"]) for b in bad] == [
            (page["items"][0]["username"], page["items"][0]["filename"])
        ]


def test_the_budget_refuses_a_search_now_with_retry_after(tmp_path: Any) -> None:
    with world(tmp_path, search_budget="1") as w:
        client = admin(w)
        first, second = (w.want(track_shared_by(w.fakes, "vinylvault")), None)
        assert client.post(f"/api/v1/wanted/{first.id}/search").status == 202
        w.run_jobs()  # the search starts and spends the one search of the window
        ids = [t.id for t in w.fakes.catalogue.tracks.values()][:400]
        second = w.want(next(i for i in ids if i != first.spotify_id))
        refused = client.post(f"/api/v1/wanted/{second.id}/search")
        assert refused.status == 429 and 1 <= int(refused.headers["retry-after"]) <= 220
        assert wanted.get(w.ctx.db, second.id).state == "wanted"


def test_acquisition_routes_answer_their_errors_and_change_nothing(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        client = admin(w)
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        with w.ctx.db.write() as conn:
            wanted.transition(conn, item.id, "skipped", "test", "skipped")
        before = w.ctx.db.query("SELECT * FROM wanted_items")
        for method, path, status in (
            ("GET", "/api/v1/wanted/x/candidates", 400),
            ("GET", "/api/v1/wanted/999/candidates", 404),
            ("POST", f"/api/v1/wanted/{item.id}/search", 409),
            ("POST", f"/api/v1/wanted/{item.id}/candidates/999/pick", 404),
            ("POST", f"/api/v1/wanted/{item.id}/wrong", 409),
            ("GET", "/api/v1/downloads?active=maybe", 400),
            ("GET", "/api/v1/downloads/abc", 400),
            ("GET", "/api/v1/downloads/999", 404),
            ("POST", "/api/v1/downloads/999/cancel", 404),
            ("DELETE", "/api/v1/users/blocked/nobody", 404),
        ):
            resp = client.request(method, path)
            assert resp.status == status, (method, path, resp.json)
        assert client.post("/api/v1/users/blocked", {"username": ""}).status == 422
        assert client.post("/api/v1/users/blocked", {"username": "x", "colour": 1}).status == 422
        assert w.ctx.db.query("SELECT * FROM wanted_items") == before
        assert not w.ctx.db.query("SELECT * FROM peers")


def test_blocking_a_user_lists_refuses_and_unblocks(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        client = admin(w)
        made = client.post("/api/v1/users/blocked", {"username": "Lo/Fi fan", "reason": "mislabels"})
        assert made.status == 201 and made.headers["location"] == "/api/v1/users/blocked/Lo%2FFi%20fan"
        assert client.get(made.headers["location"]).json["reason"] == "mislabels"
        assert [u["username"] for u in client.get("/api/v1/users/blocked").json["items"]] == ["Lo/Fi fan"]
        assert client.delete("/api/v1/users/blocked/Lo%2FFi%20fan").status == 204
        assert client.get("/api/v1/users/blocked").json["items"] == []
        assert client.get(made.headers["location"]).status == 404


def test_downloads_answer_without_slskd_with_live_false(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        client = admin(w)
        item = w.want(track_shared_by(w.fakes, "vinylvault", "slowpoke"))
        w.ctx.searcher.dispatch(w.now)
        w.run_jobs()
        w.advance(10)
        w.ctx.searcher.poll(w.now)
        w.run_jobs()
        assert w.transfers(item.id)
        w.fakes.slskd.stop()
        w.advance(60)
        page = client.get("/api/v1/downloads?active=true").json
        if page["items"]:
            assert page["live_current"] is False and page["items"][0]["live"]["bytes"] is None
        w.fakes.slskd.start()
