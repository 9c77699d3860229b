"""The acquisition and import pages in-process: an item's candidates, pick, search now and wrong
file; downloads with their progress, the stall countdown and cancel; blocked users; the
quarantine with an error next to its row; the library with its covers, the scan and backfill;
the dashboard's budget gauge and active transfers; and the stream's transfer frames.

Every form route is also refused without the session's CSRF token and below its role. The
browser tests (tests/test_browser.py) drive the same pages through Chromium against a real
process; these run the same flows in-process on the acquisition test world (acquire_world.py),
whose one clock moves Harmony and the fakes together.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from typing import Any

import pytest
from acquire_world import World, track_shared_by, world
from test_ui import Browser

from harmony import auth, library, transfers, wanted
from harmony.transfers import Download
from harmony.web import make_app
from harmony.web_downloads import give_up


def flash_of(resp: Any) -> str:
    """The message a form action left for the next page (its flash cookie)."""
    cookie = resp.headers.get("set-cookie", "")
    match = re.search(r"harmony_flash=([^;]+)", cookie)
    assert match, f"no message: {resp.status} {resp.headers}"
    raw = match.group(1).strip('"')
    kind, text = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    return f"{kind}: {text}"


def follow(browser: Browser, resp: Any) -> Any:
    """The page a 303 sends the browser to, with the message the action left."""
    assert resp.status == 303, (resp.status, resp.text[:300])
    flash = resp.headers["set-cookie"].split(";")[0]
    return browser.client.get(resp.headers["location"], headers={"Cookie": f"{browser.cookie}; {flash}"})


def browsers(w: World) -> tuple[Browser, Browser]:
    """An admin's and a reader's session on one app of the world."""
    app = make_app(w.ctx)
    return (
        Browser(app, auth.create_key(w.ctx.db, "ui admin", "admin")[0]),
        Browser(app, auth.create_key(w.ctx.db, "ui reader", "read")[0]),
    )


def active(w: World, item_id: int) -> list[Download]:
    return w.ctx.transfers.list_downloads(item_id=item_id, active=True)


# --- an item: candidates, pick, search now, wrong file ----------------------------------------------


def test_an_items_candidates_show_their_reasons_and_a_pick_downloads_that_file(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        ui, reader = browsers(w)
        item = w.want(track_shared_by(w.fakes, "vinylvault", "slowpoke"))
        w.until(item.id, {"queued", "downloading"})
        page = ui.get(f"/ui/wanted/{item.id}").text
        candidates = w.ctx.searcher.candidates(item.id)
        slow = next(c for c in candidates if c.username == "slowpoke")
        assert 'id="item-candidates"' in page and f'id="candidate-{slow.id}"' in page
        for reason in slow.reasons:  # each reason, as the ranking gave it
            assert reason.replace("'", "&#039;") in page
        assert "Last search: “" in page and f"/candidates/{slow.id}/pick" in page
        assert "/pick" not in reader.get(f"/ui/wanted/{item.id}").text  # a reader sees no button
        first = active(w, item.id)[0]

        resp = ui.post(f"/ui/wanted/{item.id}/candidates/{slow.id}/pick", {"back": f"/ui/wanted/{item.id}"})
        assert resp.status == 303 and resp.headers["location"] == f"/ui/wanted/{item.id}"
        assert "downloading slowpoke's" in flash_of(resp)
        assert w.ctx.transfers.get(first.id).state == "cancelled", "the transfer under way made room"
        [picked] = active(w, item.id)
        assert picked.username == "slowpoke" and picked.candidate_id == slow.id
        assert reader.post(f"/ui/wanted/{item.id}/candidates/{slow.id}/pick").status == 403

        # The download on the downloads page: its progress bar and when it would be given up.
        for _ in range(5):
            w.step(3)
        moving = w.ctx.transfers.get(picked.id)
        assert moving.state == "in_progress" and 0 < moving.bytes < moving.size, moving
        html = ui.get("/ui/downloads").text
        row = re.search(rf'<tr id="transfer-{picked.id}".*?</tr>', html, re.S).group(0)  # type: ignore[union-attr]
        bar = re.search(r'<progress max="100" value="([0-9.]+)"', row)
        assert (
            bar and float(bar.group(1)) == pytest.approx(moving.percent, abs=0.1) and float(bar.group(1)) > 0
        )
        _, why = give_up(moving, w.ctx.config)  # type: ignore[misc]
        assert why == "unless new bytes arrive" and "slowpoke" in row and f"{item.artists[0]}" in row
        assert re.search(r">in \d+m \d\ds<", row), row
        assert 'style="' not in html
        # The item's page shows it too, and a reader sees no cancel button.
        assert f'id="transfer-{picked.id}"' in ui.get(f"/ui/wanted/{item.id}").text
        assert f"/ui/downloads/{picked.id}/cancel" not in reader.get("/ui/downloads").text

        resp = ui.post(f"/ui/downloads/{picked.id}/cancel")
        assert resp.status == 303 and resp.headers["location"] == "/ui/downloads"
        assert "Cancelled" in flash_of(resp) and w.ctx.transfers.get(picked.id).state == "cancelled"
        again = ui.post(f"/ui/downloads/{picked.id}/cancel")
        assert again.status == 303 and "already cancelled" in flash_of(again)
        # A pick the item's state refuses is explained on the page it came from.
        with w.ctx.db.write() as conn:
            wanted.transition(conn, item.id, "skipped", "test", "skipped by the test")
        refused = ui.post(
            f"/ui/wanted/{item.id}/candidates/{slow.id}/pick", {"back": f"/ui/wanted/{item.id}"}
        )
        assert (
            refused.status == 303
            and flash_of(refused).startswith("error: ")
            and "skipped" in flash_of(refused)
        )


def test_search_now_spends_the_budget_or_says_when_and_wrong_file_wants_the_item_again(tmp_path: Any) -> None:
    with world(tmp_path, search_budget="1") as w:
        ui, reader = browsers(w)
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        page = ui.get(f"/ui/wanted/{item.id}").text
        assert f'action="/ui/wanted/{item.id}/search"' in page and "Search now" in page
        assert "1 of 1 searches left" in page
        assert reader.post(f"/ui/wanted/{item.id}/search").status == 403
        resp = ui.post(f"/ui/wanted/{item.id}/search", {"back": f"/ui/wanted/{item.id}"})
        assert resp.status == 303 and "searching now" in flash_of(resp)
        assert wanted.get(w.ctx.db, item.id).state == "searching"
        w.until(item.id, {"done"})

        other = w.want(next(t for t in w.fakes.catalogue.tracks if t != item.spotify_id))
        resp = ui.post(f"/ui/wanted/{other.id}/search", {"back": "/ui/wanted"})
        message = flash_of(resp)
        assert resp.status == 303 and resp.headers["location"] == "/ui/wanted"
        assert message.startswith("error: Not searched: the search budget (1 searches per 3m 40s) is spent")
        assert re.search(r"next search can start in \d+m \d\ds \(at \d\d:\d\d UTC\)", message), message
        assert wanted.get(w.ctx.db, other.id).state == "wanted"

        done = ui.get(f"/ui/wanted/{item.id}").text
        assert f'action="/ui/wanted/{item.id}/wrong"' in done and "Wrong file" in done
        assert f"/ui/wanted/{item.id}/search" not in done
        [download] = w.ctx.transfers.list_downloads(item_id=item.id)
        resp = ui.post(f"/ui/wanted/{item.id}/wrong", {"back": f"/ui/wanted/{item.id}"})
        assert resp.status == 303 and "wanted anew" in flash_of(resp)
        again = wanted.get(w.ctx.db, item.id)
        assert (again.state, again.reason_code) == ("wanted", "wrong_file")
        bad = w.ctx.db.query("SELECT username, filename FROM bad_files")
        assert [(b["username"], b["filename"]) for b in bad] == [(download.username, download.filename)]
        assert [h["code"] for h in w.ctx.importer.quarantined()] == ["wrong"]
        refused = ui.post(f"/ui/wanted/{item.id}/wrong")  # no file any more: explained, not a crash
        assert refused.status == 303 and flash_of(refused).startswith("error: ")


# --- downloads: the stall countdown and blocked users ------------------------------------------------


def test_the_stall_countdown_is_when_the_reconciler_gives_up(ctx: Any) -> None:
    config = ctx.config
    base = dict(
        id=1, item_id=None, candidate_id=None, username="u", filename="a\\b.flac", size=1000, slskd_id="s",
        slskd_state=None, bytes=0, percent=0.0, speed=0.0, place=None, attempts=0, requested_at=1000.0,
        queued_at=None, progress_at=None, best_place=None, place_at=None, seen_at=None, finished_at=None,
        outcome=None, reason=None,
    )  # fmt: skip
    cases = [
        ({"state": "requested"}, {}),
        ({"state": "queued", "queued_at": None}, {}),
        ({"state": "in_progress", "queued_at": 1010.0, "progress_at": 1100.0}, {"progress_at": 1100.0}),
        ({"state": "remote_queued", "queued_at": 1010.0, "place_at": 1500.0, "place": 3}, {}),
        ({"state": "retrying", "queued_at": 1010.0}, {}),
    ]  # fmt: skip
    for fields, changes in cases:
        download = Download(**{**base, **fields})  # type: ignore[arg-type]
        due = give_up(download, config)
        assert due is not None
        at, _ = due
        stalled = ctx.transfers._stalled  # the reconciler's own rule
        assert stalled(download, download.state, dict(changes), config, at - 1) is None, fields
        assert stalled(download, download.state, dict(changes), config, at + 1) is not None, fields
    assert give_up(Download(**{**base, "state": "succeeded", "finished_at": 2000.0}), config) is None  # type: ignore[arg-type]


def test_blocked_users_are_listed_blocked_and_unblocked_from_the_downloads_page(
    app: Any, ctx: Any, keys: Any
) -> None:
    ui, reader = Browser(app, keys["operator"]), Browser(app, keys["read"])
    resp = ui.post("/ui/users/blocked", {"username": "Lo/Fi fan", "reason": "mislabels"})
    assert resp.status == 303 and "Blocked Lo/Fi fan" in flash_of(resp)
    html = ui.get("/ui/downloads").text
    assert "Lo/Fi fan" in html and "mislabels" in html and 'action="/ui/users/unblock"' in html
    assert 'action="/ui/users/unblock"' not in reader.get("/ui/downloads").text
    assert reader.post("/ui/users/unblock", {"username": "Lo/Fi fan"}).status == 403
    empty = ui.post("/ui/users/blocked", {"username": "  "})
    assert empty.status == 303 and "username is required" in flash_of(empty)
    assert ui.post("/ui/users/unblock", {"username": "Lo/Fi fan"}).status == 303
    assert transfers.list_blocked(ctx.db) == []
    gone = ui.post("/ui/users/unblock", {"username": "Lo/Fi fan"})
    assert gone.status == 303 and "is not blocked" in flash_of(gone)


# --- the quarantine --------------------------------------------------------------------------------


def test_quarantine_page_retries_with_the_reason_next_to_the_row_and_deletes(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        ui, reader = browsers(w)
        item = w.want(track_shared_by(w.fakes, "bitrot", "vinylvault", album_type="single"))
        w.until(item.id, {"done"}, steps=60)
        [held] = w.ctx.importer.quarantined()
        html = ui.get("/ui/quarantine").text
        row = re.search(rf'<tr id="held-{held["id"]}".*?</tr>', html, re.S).group(0)  # type: ignore[union-attr]
        assert (
            "not audio" in row
            and held["reason"] in row
            and "bitrot" in row
            and f"/ui/wanted/{item.id}" in row
        )
        assert "/retry" not in reader.get("/ui/quarantine").text
        assert reader.post(f"/ui/quarantine/{held['id']}/retry").status == 403

        done = ui.post(f"/ui/quarantine/{held['id']}/retry", {"back": "/ui/quarantine"})
        assert done.status == 303 and done.headers["location"] == f"/ui/quarantine?held={held['id']}"
        page = follow(ui, done).text
        error = re.search(rf'id="held-{held["id"]}-error">([^<]+)<', page).group(1)  # type: ignore[union-attr]
        assert f"item {item.id} is done" in error, "its item is done"
        assert re.search(rf'<tr id="held-{held["id"]}" class="bad">', page)
        assert '<p class="flash' not in page, "shown next to the row, not again at the top"
        ui.post(f"/ui/wanted/{item.id}/wrong")
        still = ui.post(f"/ui/quarantine/{held['id']}/retry", {"back": "/ui/quarantine"})
        assert "still fails verification" in follow(ui, still).text.split(f'id="held-{held["id"]}-error">')[1]
        assert w.ctx.importer.held(held["id"])["present"], "nothing changed"
        # Sent from a page that does not show its row (the newer "wrong" file fills it): the
        # reason is the page's message instead.
        elsewhere = ui.post(f"/ui/quarantine/{held['id']}/retry", {"back": "/ui/quarantine?limit=1"})
        assert elsewhere.headers["location"] == f"/ui/quarantine?limit=1&held={held['id']}"
        shown = follow(ui, elsewhere).text
        assert f'id="held-{held["id"]}"' not in shown
        assert re.search(r'<p class="flash error">[^<]*still fails verification', shown)

        resp = ui.post(f"/ui/quarantine/{held['id']}/delete")
        assert resp.status == 303 and f"Deleted {held['path']}" in flash_of(resp)
        assert [h["code"] for h in w.ctx.importer.quarantined()] == ["wrong"]
        gone = ui.post(f"/ui/quarantine/{held['id']}/retry")
        assert "no quarantined file" in follow(ui, gone).text  # not on the page: in the message
        wrong = w.ctx.importer.quarantined()[0]
        back = ui.post(f"/ui/quarantine/{wrong['id']}/retry")
        assert back.status == 303 and "imported" in flash_of(back)
        assert wanted.get(w.ctx.db, item.id).state == "done"


# --- the library -----------------------------------------------------------------------------------


def test_library_pages_list_search_and_page_with_covers_from_inside_the_root(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        ui, reader = browsers(w)
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        w.until(item.id, {"done"})
        row = w.ctx.db.query_one("SELECT * FROM library_tracks WHERE item_id = ?", (item.id,))
        assert row is not None
        artist, album = row["album_artist"], row["album"]
        assert artist in ui.get("/ui/library").text
        albums = ui.get("/ui/library/albums?" + _q(artist=artist)).text
        cover = re.search(r'<img src="(/ui/library/cover\?[^"]+)"', albums).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
        image = ui.get(cover)
        assert image.status == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.body[:2] == b"\xff\xd8" and image.headers["cache-control"].startswith("private")
        assert ui.get(cover, **{"If-None-Match": image.headers["etag"]}).status == 304
        tracks = ui.get("/ui/library/tracks?" + _q(q=item.title)).text
        assert row["path"] in tracks and f"/ui/wanted/{item.id}" in tracks
        assert row["path"] in ui.get("/ui/library/tracks?" + _q(artist=artist, album=album)).text
        assert "No track matches" in ui.get("/ui/library/tracks?" + _q(q="no such words at all")).text

        # No cover.jpg: the picture embedded in the album's first file.
        folder = os.path.join(w.ctx.config.library_dir, os.path.dirname(row["path"]))
        os.unlink(os.path.join(folder, "cover.jpg"))
        embedded = ui.get(cover)
        assert embedded.status == 200 and embedded.headers["content-type"] == "image/jpeg"
        assert embedded.headers["etag"] != image.headers["etag"]
        # A cover.jpg that links outside the library is not read.
        outside = tmp_path / "secret.jpg"
        outside.write_bytes(b"\xff\xd8\xff\xe0 not for the browser")
        os.symlink(outside, os.path.join(folder, "cover.jpg"))
        assert b"not for the browser" not in ui.get(cover).body
        # An album nobody has, and an index row pointing outside the root, get the placeholder.
        unknown = ui.get("/ui/library/cover?" + _q(artist="Nobody", album=""))
        assert unknown.status == 200 and unknown.headers["content-type"] == "image/svg+xml"
        escape = library.Entry(
            path="../escape/01 x.flac", identity="x", title="x", artists=("Esc",), album="Out",
            album_artist="Esc", format="flac", duration_ms=1000, size=1, mtime=1.0,
        )  # fmt: skip
        (tmp_path / "escape").mkdir()
        (tmp_path / "escape" / "cover.jpg").write_bytes(outside.read_bytes())
        with w.ctx.db.write() as conn:
            library.record(conn, escape, 1.0)
        assert (
            ui.get("/ui/library/cover?" + _q(artist="Esc", album="Out")).headers["content-type"]
            == "image/svg+xml"
        )
        assert ui.get("/ui/library/cover?artist=x").status == 400

        # Pages are bookmarkable: a page of one, then the next by its cursor.
        first = ui.get("/ui/library?limit=1").text
        following = (
            re.search(r'href="(/ui/library\?[^"]*cursor=[^"]+)"', first).group(1).replace("&amp;", "&")
        )  # type: ignore[union-attr]
        assert "First page" in ui.get(following).text

        # Scan now and backfill: operator buttons, refused to a reader.
        assert "Scan now" not in reader.get("/ui/library").text
        assert reader.post("/ui/library/scan").status == 403
        resp = ui.post("/ui/library/scan")
        assert resp.status == 303 and "started" in flash_of(resp)
        busy = ui.post("/ui/library/scan")
        assert busy.status == 303 and "already running" in flash_of(busy)
        assert "file(s) looked at" in ui.get("/ui/library").text
        resp = ui.post("/ui/library/backfill", {"retry_unmatched": "1"})
        assert resp.status == 303 and "Backfill run" in flash_of(resp), flash_of(resp)
        assert re.search(r"Run \d+ <span class=\"badge running\">", ui.get("/ui/library").text)


def _q(**values: str) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


# --- the dashboard ---------------------------------------------------------------------------------


def test_the_dashboard_shows_the_budget_as_a_gauge_and_transfers_with_progress(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        ui, _ = browsers(w)
        item = w.want(track_shared_by(w.fakes, "vinylvault", "slowpoke"))
        w.until(item.id, {"queued", "downloading"})
        html = ui.get("/ui/").text
        status = w.ctx.searcher.budget.status()
        gauge = re.search(r'<meter id="budget-gauge"[^>]*value="(\d+)"', html)
        assert gauge and int(gauge.group(1)) == status["remaining"] and f'max="{status["limit"]}"' in html
        assert 'for="budget-gauge"' in html and "searches left" in html
        assert "Downloads under way" in html and re.search(r'<progress max="100" value="[0-9.]+"', html)
        assert "sse:transfer" in html


# --- the roles and the CSRF check on every new form route --------------------------------------------

FORM_ROUTES = (
    "/ui/wanted/1/search",
    "/ui/wanted/1/wrong",
    "/ui/wanted/1/candidates/1/pick",
    "/ui/downloads/1/cancel",
    "/ui/users/blocked",
    "/ui/users/unblock",
    "/ui/quarantine/1/retry",
    "/ui/quarantine/1/delete",
    "/ui/library/scan",
    "/ui/library/backfill",
)


@pytest.mark.parametrize("path", FORM_ROUTES)
def test_each_form_route_wants_the_csrf_token_and_the_operator_role(
    app: Any, ctx: Any, keys: Any, path: str
) -> None:
    tables = ("wanted_items", "transfers", "peers", "quarantine", "library_scans", "backfill_jobs", "jobs")
    before = {t: ctx.db.query(f"SELECT * FROM {t}") for t in tables}
    operator, reader = Browser(app, keys["operator"]), Browser(app, keys["read"])
    fields = {"username": "someone"}
    refused = operator.post(path, fields, csrf=None)
    assert refused.status == 403 and "CSRF" in refused.text
    other = operator.post(path, fields, csrf=reader.csrf)  # another session's token
    assert other.status == 403
    assert reader.post(path, fields).status == 403  # the role
    assert {t: ctx.db.query(f"SELECT * FROM {t}") for t in tables} == before


@pytest.mark.parametrize(
    "path", ["/ui/downloads", "/ui/quarantine", "/ui/library", "/ui/library/albums", "/ui/library/tracks"]
)
def test_the_new_pages_are_in_the_navigation_and_hide_actions_from_a_reader(
    app: Any, keys: Any, path: str
) -> None:
    html = Browser(app, keys["read"]).get(path).text
    assert f'href="{path}"' in html or path.startswith("/ui/library/")
    assert 'method="post" action="/ui/logout"' in html
    forms = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"', html)
    assert forms == ["/ui/logout"], forms


# --- the event stream's transfer frames --------------------------------------------------------------


def test_the_stream_sends_transfer_progress_and_the_end_of_a_transfer(ctx: Any, app: Any, keys: Any) -> None:
    from test_ui import stream_environ

    with ctx.db.write() as conn:
        number = next(
            conn.execute(
                "INSERT INTO transfers (username, filename, size, state, requested_at) "
                "VALUES ('slowpoke', 'a\\b.flac', 1000, 'in_progress', 1.0) RETURNING id"
            )
        )["id"]
    browser = Browser(app, keys["read"])
    seen: dict[str, Any] = {}
    body = app(stream_environ(browser.cookie), lambda status, headers, exc=None: seen.setdefault("s", status))
    chunks = iter(body)
    try:
        assert next(chunks).startswith(b"retry:")
        with ctx.db.write() as conn:
            conn.execute(
                "UPDATE transfers SET bytes = 400, percent = 40.0, speed = 20 WHERE id = ?", (number,)
            )
        text = _next_within(chunks, 10).decode()
        assert "event: transfer\ndata: " in text and "\nid:" not in text
        frame = json.loads(text.split("data: ", 1)[1].split("\n", 1)[0])
        assert (frame["id"], frame["bytes"], frame["percent"], frame["active"]) == (number, 400, 40.0, True)
        with ctx.db.write() as conn:
            conn.execute(
                "UPDATE transfers SET finished_at = 2.0, state = 'succeeded' WHERE id = ?", (number,)
            )
        ended = json.loads(_next_within(chunks, 10).decode().split("data: ", 1)[1].split("\n", 1)[0])
        assert ended == {"id": number, "item_id": None, "active": False}
    finally:
        body.close()


def _next_within(chunks: Any, seconds: float) -> bytes:
    """The stream's next chunk, or a failure after `seconds` (a heartbeat is skipped)."""
    out: list[bytes] = []

    def read() -> None:
        while True:
            chunk = next(chunks)
            if not chunk.startswith(b": heartbeat"):
                out.append(chunk)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(seconds)
    assert out, f"no frame within {seconds} s"
    return out[0]
