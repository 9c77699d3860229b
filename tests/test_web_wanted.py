"""The wanted-list API: artists, releases, playlists, wanted items, events and the Spotify search.

Every route answers its documented error for a bad id, a bad body and a wrong state, and a
rejected request changes no row (every table's count and content checksum compared).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from client import Client

from harmony.context import Context

TABLES = (
    "artists",
    "releases",
    "artist_releases",
    "playlists",
    "playlist_tracks",
    "wanted_items",
    "wanted_sources",
    "events",
    "jobs",
    "settings",
)


def fingerprint(ctx: Context) -> dict[str, str]:
    """A checksum of every row of the tables the wanted list touches."""
    out = {}
    for table in TABLES:
        digest = hashlib.sha256()
        for line in sorted(repr(sorted(row.items())) for row in ctx.db.query(f"SELECT * FROM {table}")):
            digest.update(line.encode())
        out[table] = digest.hexdigest()
    return out


def seed(ctx: Context) -> dict[str, int]:
    """One artist, release, playlist and item of each kind, written directly."""
    with ctx.db.write() as conn:
        conn.execute(
            "INSERT INTO artists (spotify_id, name, since, added_at, next_scan_at) "
            "VALUES (?, 'A', '2020-01-01', 0, 0)",
            ("a" * 22,),
        )
        conn.execute("INSERT INTO releases (spotify_id, name, first_seen_at) VALUES (?, 'R', 0)", ("r" * 22,))
        conn.execute(
            "INSERT INTO playlists (spotify_id, name, followed_at, next_sync_at) VALUES (?, 'P', 0, 0)",
            ("p" * 22,),
        )
    from harmony import wanted

    with ctx.db.write() as conn:
        item, _ = wanted.want(
            conn, wanted.Track("Song", ("A",), spotify_id="t" * 22), wanted.Source("manual")
        )
        busy, _ = wanted.want(
            conn, wanted.Track("Busy", ("A",), spotify_id="u" * 22), wanted.Source("manual")
        )
        for state in ("searching", "found", "queued"):
            wanted.transition(conn, busy.id, state, "test", "on its way")
    return {"artist": 1, "release": 1, "playlist": 1, "item": item.id, "busy": busy.id}


BAD = [
    # (method, path, body, status, code): 400 for a bad path or query parameter, 422 for a JSON
    # body with a wrong, missing or unknown field
    ("GET", "/api/v1/artists/abc", None, 400, "bad_input"),
    ("GET", "/api/v1/artists/99", None, 404, "not_found"),
    ("GET", "/api/v1/artists?sort=age", None, 400, "bad_input"),
    ("GET", "/api/v1/artists?paused=maybe", None, 400, "bad_input"),
    ("GET", "/api/v1/artists?cursor=zz", None, 400, "bad_input"),
    ("POST", "/api/v1/artists", {}, 422, "invalid"),
    ("POST", "/api/v1/artists", {"spotify": "spotify:track:" + "x" * 22}, 422, "invalid"),
    ("POST", "/api/v1/artists", {"spotify": "a" * 22, "release_groups": ["b-sides"]}, 422, "invalid"),
    ("POST", "/api/v1/artists", {"spotify": "a" * 22, "since": "last week"}, 422, "invalid"),
    ("POST", "/api/v1/artists", {"spotify": "a" * 22, "colour": "red"}, 422, "invalid"),
    ("POST", "/api/v1/artists", {"spotify": "a" * 22}, 409, "conflict"),
    ("PATCH", "/api/v1/artists/1", {"paused": "yes"}, 422, "invalid"),
    ("PATCH", "/api/v1/artists/1", {"priority": 10**9}, 422, "invalid"),
    ("PATCH", "/api/v1/artists/1", {}, 422, "invalid"),
    ("PATCH", "/api/v1/artists/99", {"paused": True}, 404, "not_found"),
    ("DELETE", "/api/v1/artists/0", None, 400, "bad_input"),
    ("DELETE", "/api/v1/artists/99", None, 404, "not_found"),
    ("DELETE", "/api/v1/artists/1", {"force": True}, 422, "invalid"),  # a route without a body refuses one
    ("POST", "/api/v1/artists/99/scan", None, 404, "not_found"),
    ("GET", "/api/v1/releases?group=b-sides", None, 400, "bad_input"),
    ("GET", "/api/v1/releases?since=2020", None, 400, "bad_input"),
    ("GET", "/api/v1/releases/99", None, 404, "not_found"),
    ("POST", "/api/v1/playlists", {"spotify": 5}, 422, "invalid"),
    ("POST", "/api/v1/playlists", {"spotify": "p" * 22}, 409, "conflict"),
    ("POST", "/api/v1/playlists", {"spotify": "spotify:artist:" + "a" * 22}, 422, "invalid"),
    ("POST", "/api/v1/playlists", {"spotify": "p" * 21 + "q", "want_tracks": "no"}, 422, "invalid"),
    ("GET", "/api/v1/playlists/x", None, 400, "bad_input"),
    ("PATCH", "/api/v1/playlists/1", {"want_tracks": 1}, 422, "invalid"),
    ("PATCH", "/api/v1/playlists/1", {"name": "x"}, 422, "invalid"),
    ("DELETE", "/api/v1/playlists/99", None, 404, "not_found"),
    ("POST", "/api/v1/playlists/99/sync", None, 404, "not_found"),
    ("GET", "/api/v1/wanted?state=lost", None, 400, "bad_input"),
    ("GET", "/api/v1/wanted?source=radio", None, 400, "bad_input"),
    ("GET", "/api/v1/wanted?sort=random", None, 400, "bad_input"),
    ("GET", "/api/v1/wanted?artist=-1", None, 400, "bad_input"),
    ("GET", "/api/v1/wanted?sort=changed&cursor=WzFd", None, 400, "bad_input"),
    ("POST", "/api/v1/wanted", {"spotify": ""}, 422, "invalid"),
    ("POST", "/api/v1/wanted", {"spotify": "https://example.com/track/1"}, 422, "invalid"),
    ("POST", "/api/v1/wanted", {"spotify": "spotify:artist:" + "a" * 22}, 422, "invalid"),
    ("POST", "/api/v1/wanted", {"spotify": "spotify:playlist:" + "a" * 22}, 422, "invalid"),
    ("GET", "/api/v1/wanted/99", None, 404, "not_found"),
    ("PATCH", "/api/v1/wanted/{item}", {"priority": "high"}, 422, "invalid"),
    ("PATCH", "/api/v1/wanted/{item}", {"state": "done"}, 422, "invalid"),
    ("DELETE", "/api/v1/wanted/{busy}", None, 409, "conflict"),
    ("POST", "/api/v1/wanted/{item}/retry", None, 409, "conflict"),
    ("POST", "/api/v1/wanted/{item}/unskip", None, 409, "conflict"),
    ("POST", "/api/v1/wanted/99/skip", None, 404, "not_found"),
    ("POST", "/api/v1/wanted/{item}/skip", {"why": "x"}, 422, "invalid"),
    ("GET", "/api/v1/search/spotify", None, 400, "bad_input"),
    ("GET", "/api/v1/search/spotify?q=x&type=podcast", None, 400, "bad_input"),
    ("GET", "/api/v1/search/spotify?q=x&cursor=WzEwMDBd", None, 400, "bad_input"),  # offset 1000
    ("GET", "/api/v1/events?kind=Bad%20Kind", None, 400, "bad_input"),
    ("GET", "/api/v1/events?item=x", None, 400, "bad_input"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"), BAD, ids=[f"{m} {p}" for m, p, *_ in BAD]
)
def test_bad_requests_get_their_error_and_change_nothing(
    ctx: Context, client: Client, method: str, path: str, body: Any, status: int, code: str
) -> None:
    ids = seed(ctx)
    before = fingerprint(ctx)
    resp = client.request(method, path.format(**ids), json_body=body)
    assert (resp.status, resp.json["error"]["code"]) == (status, code), resp.json
    assert fingerprint(ctx) == before


def test_reads_need_a_key_and_changes_need_an_operator(
    ctx: Context, client: Client, keys: dict[str, str]
) -> None:
    ids = seed(ctx)
    assert client.get("/api/v1/wanted", key="").status == 401
    for path in (
        "/api/v1/artists",
        "/api/v1/wanted",
        "/api/v1/playlists",
        "/api/v1/releases",
        "/api/v1/events",
    ):
        assert client.get(path, key=keys["read"]).status == 200, path
    before = fingerprint(ctx)
    assert client.post(f"/api/v1/wanted/{ids['item']}/skip", key=keys["read"]).status == 403
    assert client.delete("/api/v1/artists/1", key=keys["read"]).status == 403
    assert fingerprint(ctx) == before


def test_item_actions_move_it_and_show_its_history(ctx: Context, client: Client) -> None:
    ids = seed(ctx)
    item = ids["item"]
    skipped = client.post(f"/api/v1/wanted/{item}/skip")
    assert skipped.status == 200 and skipped.json["state"] == "skipped"
    assert client.post(f"/api/v1/wanted/{item}/unskip").json["state"] == "wanted"
    assert client.request("PATCH", f"/api/v1/wanted/{item}", json_body={"priority": 5}).json["priority"] == 5
    shown = client.get(f"/api/v1/wanted/{item}").json
    assert [e["to_state"] for e in shown["events"] if e["kind"] == "item.state"][:2] == ["wanted", "skipped"]
    assert shown["sources"][0]["kind"] == "manual"
    listed = client.get("/api/v1/wanted?state=wanted,queued&sort=changed").json
    assert {i["id"] for i in listed["items"]} == {item, ids["busy"]} and listed["total"] == 2
    assert client.delete(f"/api/v1/wanted/{item}").status == 204
    assert client.get(f"/api/v1/wanted/{item}").status == 404
    feed = client.get(f"/api/v1/events?item={item}&kind=item.").json["items"]
    assert feed[0]["kind"] == "item.deleted"


def test_status_counts_artists_playlists_and_items(ctx: Context, client: Client) -> None:
    seed(ctx)
    status = client.get("/api/v1/system/status").json
    assert status["artists"]["ok"] == 1 and status["playlists"]["followed"] == 1
    assert status["items"]["wanted"] == 1 and status["items"]["queued"] == 1


def test_the_spotify_search_pages_by_cursor_like_every_list(client: Client) -> None:
    first = client.get("/api/v1/search/spotify?q=a&type=track&limit=4").json
    assert len(first["items"]) == 4 and first["total"] > 10 and isinstance(first["next_cursor"], str)
    second = client.get(f"/api/v1/search/spotify?q=a&type=track&limit=4&cursor={first['next_cursor']}").json
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert len(set(ids)) == 8  # the second page starts where the first ended
    whole = client.get("/api/v1/search/spotify?q=a&type=track").json  # a page holds ten at most
    assert [item["id"] for item in whole["items"]][:8] == ids and len(whole["items"]) == 10
