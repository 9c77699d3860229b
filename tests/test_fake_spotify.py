"""Contract tests of the fake Spotify, driven through the real spotipy client and plain urllib3.

Each test starts its own fakes, so settings it changes (rotation, allowlists, rate limits)
end with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import spotipy
import urllib3
from conftest import extended_quota
from fakes_fixtures import authorize_redirect, control, http, spotify_app_client, spotify_user_client
from spotipy.oauth2 import SpotifyOauthError

from harmony.fakes import Fakes, catalogue, start_fakes
from harmony.fakes.catalogue import BIG_PLAYLIST_SIZE, DUPLICATED_ARTIST, ODD_PLAYLIST
from harmony.fakes.spotify_accounts import REFRESH_LIFETIME
from harmony.fakes.spotify_user import parse_fields


@pytest.fixture
def fakes(tmp_path: Any) -> Iterator[Fakes]:
    running = start_fakes(str(tmp_path / "downloads"), seed=1)
    try:
        yield running
    finally:
        running.stop()


def artist_id(fakes: Fakes, name: str) -> str:
    return fakes.catalogue.artist_by_name(name).id


def raw(fakes: Fakes, path: str, token: str | None = None) -> urllib3.BaseHTTPResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.request("GET", fakes.spotify_api_url + path, headers=headers)


def client_credentials(fakes: Fakes, secret: str) -> urllib3.BaseHTTPResponse:
    """A raw client-credentials token request with Basic auth."""
    return http.request(
        "POST",
        fakes.spotify_accounts_url + "/api/token",
        fields={"grant_type": "client_credentials"},
        encode_multipart=False,
        headers=urllib3.make_headers(basic_auth=f"{fakes.spotify_client_id}:{secret}"),
    )


def app_token(fakes: Fakes) -> str:
    response = client_credentials(fakes, fakes.spotify_client_secret)
    body = json.loads(response.data)
    assert response.status == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert "refresh_token" not in body
    return str(body["access_token"])


def test_catalogue_is_deterministic() -> None:
    one, again, other = catalogue.build(1), catalogue.build(1), catalogue.build(2)
    assert list(one.tracks) == list(again.tracks) and list(one.albums) == list(again.albums)
    assert set(one.tracks).isdisjoint(other.tracks)
    assert all(len(i) == 22 and i.isalnum() for i in one.tracks)
    precisions = {a.release_date_precision for a in one.albums.values()}
    assert precisions == {"year", "month", "day"}
    assert any(len({one.tracks[t].disc_number for t in a.track_ids}) > 1 for a in one.albums.values())
    assert len(
        one.playlists[next(p for p in one.playlists if one.playlists[p].name == "Everything Ever")].entries
    ) == (BIG_PLAYLIST_SIZE)


def test_artist_albums_paging_and_limits(fakes: Fakes) -> None:
    sp = spotify_app_client(fakes)
    velvet = artist_id(fakes, "The Velvet Hours")
    assert sp.artist(velvet)["name"] == "The Velvet Hours"
    page = sp.artist_albums(velvet, limit=10)
    names = [a["name"] for a in page["items"]]
    while page["next"]:
        assert page["next"].startswith(fakes.spotify_api_url)
        page = sp.next(page)
        names += [a["name"] for a in page["items"]]
    assert len(names) == page["total"] and any("(Deluxe Edition)" in n for n in names)
    singles = sp.artist_albums(velvet, include_groups="single", limit=10)
    assert {a["album_type"] for a in singles["items"]} == {"single"}
    appears = sp.artist_albums(velvet, include_groups="appears_on", limit=10)
    assert appears["items"] and all(a["album_type"] == "compilation" for a in appears["items"])
    with pytest.raises(spotipy.SpotifyException) as err:
        sp.artist_albums(velvet)  # spotipy's default limit of 20 is over the Dev-Mode cap
    assert err.value.http_status == 400 and "Invalid limit" in err.value.msg


def test_albums_tracks_and_isrcs(fakes: Fakes) -> None:
    sp = spotify_app_client(fakes)
    velvet = artist_id(fakes, "The Velvet Hours")
    ids = [a["id"] for a in sp.artist_albums(velvet, include_groups="album", limit=10)["items"]]
    with pytest.raises(spotipy.SpotifyException) as refused:
        sp.albums(ids[:2])  # batch reads are gone for Development Mode apps
    assert refused.value.http_status == 403
    with extended_quota(fakes):
        albums = sp.albums(ids[:20])["albums"]
    assert [a["id"] for a in albums] == ids[:20]
    deluxe = next(a for a in albums if "(Deluxe Edition)" in a["name"])
    assert {t["disc_number"] for t in deluxe["tracks"]["items"]} == {1, 2}
    assert deluxe["external_ids"]["upc"] and deluxe["release_date_precision"] in ("year", "month", "day")
    listing = sp.album_tracks(deluxe["id"], limit=50)["items"]
    assert all("external_ids" not in t and "album" not in t for t in listing)
    full = sp.track(listing[0]["id"])
    assert full["external_ids"]["isrc"] and full["album"]["id"] == deluxe["id"]
    assert "popularity" not in full  # Dev-Mode style: deprecated fields left out
    with extended_quota(fakes):
        batch = sp.tracks([t["id"] for t in listing[:3]])["tracks"]
        assert batch[0]["external_ids"]["isrc"] == full["external_ids"]["isrc"]
        with pytest.raises(spotipy.SpotifyException) as err:
            sp.albums(ids[:1] * 21)
        assert err.value.http_status == 400
    with pytest.raises(spotipy.SpotifyException) as err:
        sp.track("0" * 22)
    assert err.value.http_status == 404


def test_search(fakes: Fakes) -> None:
    sp = spotify_app_client(fakes)
    track = next(
        t for t in fakes.catalogue.tracks.values() if t.artist_ids[0] == artist_id(fakes, "Lo/Fi Saints")
    )
    found = sp.search(f'track:"{track.name}" artist:"Lo/Fi Saints"', type="track", limit=10)["tracks"]
    assert track.id in [t["id"] for t in found["items"]] or found["total"] > 10
    by_isrc = sp.search(f"isrc:{track.isrc}", type="track", limit=1)["tracks"]["items"]
    assert by_isrc[0]["external_ids"]["isrc"] == track.isrc
    # `album:` narrows tracks too (it applies to albums and tracks, api-contracts.md B.4).
    album = fakes.catalogue.albums[track.album_id].name
    on_album = sp.search(f'track:"{track.name}" album:"{album}"', type="track", limit=10)["tracks"]["items"]
    assert track.id in [t["id"] for t in on_album]
    assert all(album.casefold() in t["album"]["name"].casefold() for t in on_album)
    assert sp.search(f'track:"{track.name}" album:"No Such Album"', type="track")["tracks"]["total"] == 0
    accents = sp.search("eleonore vasquez", type="artist", limit=5)["artists"]["items"]
    assert accents[0]["name"] == "Éléonore Vasquez"
    both = sp.search("Mx: Orbit", type="artist,album", limit=5)
    assert both["artists"]["items"][0]["name"] == "Mx: Orbit" and "albums" in both
    with pytest.raises(spotipy.SpotifyException) as err:
        sp.search("Orbit", limit=11)
    assert err.value.http_status == 400 and "Invalid limit" in err.value.msg


def test_user_library_and_big_playlist(fakes: Fakes) -> None:
    sp = spotify_user_client(fakes)
    assert sp.me()["id"] == catalogue.USER_ID
    followed, after = [], None
    while True:
        page = sp.current_user_followed_artists(limit=5, after=after)["artists"]
        followed += [a["id"] for a in page["items"]]
        after = page["cursors"]["after"]
        if not page["next"]:
            break
    assert followed == fakes.catalogue.followed
    playlists = sp.current_user_playlists(limit=50)["items"]
    big = next(p for p in playlists if p["name"] == "Everything Ever")
    assert big["items"]["total"] == BIG_PLAYLIST_SIZE and big["snapshot_id"]
    assert sp.playlist(big["id"])["snapshot_id"] == big["snapshot_id"]
    page = sp.playlist_items(big["id"], limit=50)
    seen = len(page["items"])
    while page["next"]:
        page = sp.next(page)
        seen += len(page["items"])
    assert seen == BIG_PLAYLIST_SIZE
    entry = page["items"][-1]
    assert (
        entry["item"]["external_ids"]["isrc"] and entry["track"] is None and entry["added_at"].endswith("Z")
    )
    morning = next(p for p in playlists if p["name"] == "Morning Rotation")
    local = [e for e in sp.playlist_items(morning["id"], limit=50)["items"] if e["is_local"]]
    assert len(local) == 1 and local[0]["item"]["id"] is None
    shared = next(p for p in playlists if p["name"] == "Road Trip (shared)")
    assert sp.playlist_items(shared["id"], limit=50)["total"] == 25  # collaborative: readable
    not_ours = fakes.catalogue.playlists[shared["id"]]
    not_ours.collaborative = False
    try:
        with pytest.raises(spotipy.SpotifyException) as err:
            sp.playlist_items(shared["id"], limit=50)
        assert err.value.http_status == 403
    finally:
        not_ours.collaborative = True
    legacy = raw(
        fakes, f"/playlists/{morning['id']}/tracks", sp.auth_manager.get_access_token(check_cache=True)
    )
    assert legacy.status == 403
    saved = sp.current_user_saved_tracks(limit=50)
    assert saved["total"] == 80 and saved["items"][0]["track"]["external_ids"]["isrc"]
    with pytest.raises(spotipy.SpotifyException):
        sp.playlist_items(big["id"], limit=51)
    snapshot = control(
        fakes.spotify.url, f"/_fake/spotify/playlists/{big['id']}", {"remove": [entry["item"]["id"]]}
    )
    assert snapshot["snapshot_id"] != big["snapshot_id"] and snapshot["total"] == BIG_PLAYLIST_SIZE - 1


def test_oauth_code_flow_refresh_and_revoke(fakes: Fakes) -> None:
    sp = spotify_user_client(fakes, pkce=False)
    auth = sp.auth_manager
    first = auth.cache_handler.get_cached_token()
    assert first["refresh_token"] and "user-follow-read" in first["scope"]
    refreshed = auth.refresh_access_token(first["refresh_token"])
    assert refreshed["access_token"] != first["access_token"]
    assert refreshed["refresh_token"] == first["refresh_token"]  # omitted by the server, kept by spotipy
    control(fakes.spotify.url, "/_fake/spotify/revoke")
    with pytest.raises(SpotifyOauthError) as err:
        auth.refresh_access_token(first["refresh_token"])
    assert err.value.error == "invalid_grant"


def test_pkce_verifier_and_denial(fakes: Fakes) -> None:
    sp = spotify_user_client(fakes)
    token = sp.auth_manager.cache_handler.get_cached_token()
    control(fakes.spotify.url, "/_fake/spotify/settings", {"refresh_rotation": "single_use"})
    rotated = sp.auth_manager.refresh_access_token(token["refresh_token"])
    assert rotated["refresh_token"] != token["refresh_token"]
    with pytest.raises(SpotifyOauthError) as spent:
        sp.auth_manager.refresh_access_token(token["refresh_token"])  # single use
    assert spent.value.error == "invalid_grant"
    base = fakes.spotify_accounts_url
    query = (
        f"client_id={fakes.spotify_client_id}&response_type=code&redirect_uri=http://127.0.0.1:9/cb&state=s1"
    )
    location = authorize_redirect(f"{base}/authorize?{query}&code_challenge_method=S256&code_challenge=abc")
    code = parse_qs(urlsplit(location).query)["code"][0]
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1:9/cb",
        "client_id": fakes.spotify_client_id,
        "code_verifier": "not-the-right-one",
    }
    bad = http.request("POST", base + "/api/token", fields=fields, encode_multipart=False)
    assert bad.status == 400 and json.loads(bad.data)["error"] == "invalid_grant"
    control(fakes.spotify.url, "/_fake/spotify/settings", {"deny_authorize": True})
    denied = parse_qs(urlsplit(authorize_redirect(f"{base}/authorize?{query}")).query)
    assert denied == {"error": ["access_denied"], "state": ["s1"]}


def test_token_errors_and_expiry(fakes: Fakes) -> None:
    response = raw(fakes, "/artists/" + artist_id(fakes, "Aurora Vale"))
    assert response.status == 401 and json.loads(response.data) == {
        "error": {"status": 401, "message": "No token provided"}
    }
    assert json.loads(raw(fakes, "/me", "nope").data)["error"]["message"] == "Invalid access token"
    token = app_token(fakes)
    assert raw(fakes, "/me", token).status == 401  # client credentials carry no user
    assert raw(fakes, "/artists/bad", token).status == 400
    fakes.clock.advance(3601)
    expired = raw(fakes, "/artists/" + artist_id(fakes, "Aurora Vale"), token)
    assert (
        expired.status == 401 and json.loads(expired.data)["error"]["message"] == "The access token expired"
    )
    sp = spotify_app_client(fakes)
    sp.artist(artist_id(fakes, "Aurora Vale"))
    control(fakes.spotify.url, "/_fake/spotify/expire-tokens")
    with pytest.raises(spotipy.SpotifyException) as err:
        sp.artist(artist_id(fakes, "Aurora Vale"))
    assert err.value.http_status == 401
    bad_client = client_credentials(fakes, "wrong")
    assert bad_client.status == 400 and json.loads(bad_client.data)["error"] == "invalid_client"


def test_future_releases_appear_when_the_clock_moves(fakes: Fakes) -> None:
    sp = spotify_app_client(fakes)
    future = min((a for a in fakes.catalogue.albums.values() if a.future), key=lambda a: a.released_on)
    owner = future.artist_ids[0]

    def ids() -> set[str]:
        page: Any
        page, out = sp.artist_albums(owner, limit=10), set()
        while page:
            out |= {a["id"] for a in page["items"]}
            page = sp.next(page) if page["next"] else None
        return out

    assert future.id not in ids()
    with pytest.raises(spotipy.SpotifyException):
        sp.album(future.id)
    fakes.clock.advance(2 * 86400)
    sp = spotify_app_client(fakes)  # the old token has expired on the fake clock
    assert future.id in ids()
    assert sp.album(future.id)["release_date"] == future.release_date
    with extended_quota(fakes), pytest.warns(DeprecationWarning):  # gone for Development Mode apps
        new = sp.new_releases(limit=50)["albums"]["items"]
    assert future.id in [a["id"] for a in new]


def test_faults(fakes: Fakes) -> None:
    token = app_token(fakes)
    path = "/artists/" + artist_id(fakes, "Aurora Vale")
    control(
        fakes.spotify.url,
        "/_fake/faults",
        {"kind": "rate_limit", "path": "/v1/artists", "seconds": 2, "times": 1},
    )
    limited = raw(fakes, path, token)
    assert limited.status == 429 and limited.headers["Retry-After"] == "2"
    assert json.loads(limited.data) == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    control(fakes.spotify.url, "/_fake/faults", {"kind": "status", "path": "/v1/", "status": 502, "times": 1})
    failed = raw(fakes, path, token)
    assert failed.status == 502 and json.loads(failed.data)["error"]["status"] == 502
    control(fakes.spotify.url, "/_fake/faults", {"kind": "drop", "path": "/api/token", "times": 1})
    with pytest.raises(urllib3.exceptions.ProtocolError):
        app_token(fakes)
    assert raw(fakes, path, token).status == 200
    # A proxy in front of Spotify fails with an HTML page and no Retry-After, on both hosts' paths.
    for target in ("/v1/", "/api/token"):
        control(
            fakes.spotify.url, "/_fake/faults", {"kind": "edge", "path": target, "status": 503, "times": 1}
        )
    edge = raw(fakes, path, token)
    assert (
        edge.status == 503
        and edge.headers["Content-Type"] == "text/html"
        and "Retry-After" not in edge.headers
    )
    assert b"<title>503 Service Unavailable</title>" in edge.data
    assert client_credentials(fakes, fakes.spotify_client_secret).status == 503


# --- Development Mode's rules and 2026 behaviour -----------------------------------------------------


def test_spotify_owned_playlists_are_listed_but_answer_404(fakes: Fakes) -> None:
    sp = spotify_user_client(fakes)
    editorial = next(p for p in sp.current_user_playlists(limit=50)["items"] if p["owner"]["id"] == "spotify")
    assert editorial["id"].startswith("37i9") and editorial["items"]["total"] == 30
    for call in (lambda: sp.playlist(editorial["id"]), lambda: sp.playlist_items(editorial["id"], limit=50)):
        with pytest.raises(spotipy.SpotifyException) as err:
            call()
        assert err.value.http_status == 404 and "Resource not found" in err.value.msg
    with extended_quota(fakes):
        assert sp.playlist(editorial["id"])["name"] == "Editorial Picks"


def test_market_duplicates_collapse_when_a_market_is_given(fakes: Fakes) -> None:
    # spotipy's artist_albums sends `country`, not the documented `market`: plain requests here.
    artist, token = artist_id(fakes, DUPLICATED_ARTIST), app_token(fakes)

    def names(market: str = "", with_token: str = token) -> list[str]:
        query = "include_groups=album&limit=10" + (f"&market={market}" if market else "")
        response = raw(fakes, f"/artists/{artist}/albums?{query}", with_token)
        assert response.status == 200, response.data
        return [a["name"] for a in json.loads(response.data)["items"]]

    everywhere = names()
    assert len(everywhere) == len(set(everywhere)) + 2  # two releases listed twice
    assert sorted(names("US")) == sorted(set(everywhere))
    assert len(names("JP")) == len(set(everywhere))
    user = spotify_user_client(fakes).auth_manager.get_access_token(check_cache=True)
    assert sorted(names("from_token", user)) == sorted(set(everywhere))  # the user's country
    bad = raw(fakes, f"/artists/{artist}/albums?market=from_token", token)
    assert bad.status == 400  # from_token needs a user token


def test_fields_filter_is_applied(fakes: Fakes) -> None:
    sp = spotify_user_client(fakes)
    morning = next(p for p in fakes.catalogue.playlists.values() if p.name == "Morning Rotation")
    meta = sp.playlist(
        morning.id, fields="id,name,snapshot_id,owner(id),collaborative,items(total),tracks(total)"
    )
    assert meta == {
        "id": morning.id,
        "name": "Morning Rotation",
        "snapshot_id": morning.snapshot_id,
        "owner": {"id": catalogue.USER_ID},
        "collaborative": False,
        "items": {"total": len(morning.entries)},
        "tracks": {"total": len(morning.entries)},
    }
    items = sp.playlist_items(morning.id, limit=5, fields="items(added_at,item.id),total")
    assert set(items) == {"items", "total"} and set(items["items"][0]) == {"added_at", "item"}
    assert set(items["items"][0]["item"]) == {"id"}
    dropped = sp.playlist_items(morning.id, limit=5, fields="items(item(!album,!artists)),!href")
    assert "href" not in dropped and "album" not in dropped["items"][0]["item"]
    assert "name" in dropped["items"][0]["item"]
    for bad in ("items(", "a..b", "!items(total)", ",", "items)"):
        with pytest.raises(spotipy.SpotifyException) as err:
            sp.playlist(morning.id, fields=bad)
        assert err.value.http_status == 400
    assert parse_fields("a.b.c,a.d").apply({"a": {"b": {"c": 1, "x": 2}, "d": 3, "e": 4}, "f": 5}) == {
        "a": {"b": {"c": 1}, "d": 3}
    }


def test_odd_playlist_entries(fakes: Fakes) -> None:
    sp = spotify_user_client(fakes)
    odd = next(p for p in fakes.catalogue.playlists.values() if p.name == ODD_PLAYLIST)
    as_tracks = sp.playlist_items(odd.id, limit=50, additional_types=("track",))["items"]
    kinds = [(e.get("item") or e.get("track") or {}).get("type") for e in as_tracks]
    assert kinds == ["track", "episode", None, "track", "track", "track", "track"]
    episode = as_tracks[1]["item"]
    assert episode["episode"] is True and episode["track"] is False and "album" in episode
    assert as_tracks[2]["item"] is None  # an entry Spotify no longer has
    assert "item" not in as_tracks[3] and as_tracks[3]["track"]["id"]  # the legacy shape
    assert as_tracks[4]["added_at"] is None and as_tracks[4]["added_by"] is None
    local = as_tracks[5]["item"]
    assert local["is_local"] and local["id"] is None
    assert local["artists"][0]["name"] == "Home Band" and local["album"]["name"] == "Tapes"
    with_episodes = sp.playlist_items(odd.id, limit=50)["items"]  # spotipy asks for episodes by default
    assert with_episodes[1]["item"]["type"] == "episode" and "show" in with_episodes[1]["item"]


def test_users_not_on_the_allowlist_get_a_plain_text_403(fakes: Fakes) -> None:
    control(fakes.spotify.url, "/_fake/spotify/settings", {"allowlist": []})
    sp = spotify_user_client(fakes)  # the authorisation and token exchange succeed
    with pytest.raises(spotipy.SpotifyException) as err:
        sp.me()
    assert err.value.http_status == 403 and "User not registered in the Developer Dashboard" in err.value.msg
    token = sp.auth_manager.get_access_token(check_cache=True)
    response = raw(fakes, "/me", token)
    assert response.headers["Content-Type"] == "text/plain"
    assert response.data == b"User not registered in the Developer Dashboard"


def test_refresh_tokens_expire_six_months_after_the_authorisation(fakes: Fakes) -> None:
    sp = spotify_user_client(fakes, pkce=False)
    auth = sp.auth_manager
    first = auth.cache_handler.get_cached_token()
    fakes.clock.advance(REFRESH_LIFETIME - 86400)
    refreshed = auth.refresh_access_token(first["refresh_token"])
    assert refreshed["refresh_token"] == first["refresh_token"]  # not rotated: kept by spotipy
    fakes.clock.advance(2 * 86400)  # refreshing did not move the deadline
    with pytest.raises(SpotifyOauthError) as err:
        auth.refresh_access_token(first["refresh_token"])
    assert err.value.error == "invalid_grant" and err.value.error_description == "Refresh token expired"


def test_only_registered_redirect_uris_are_accepted(fakes: Fakes) -> None:
    control(
        fakes.spotify.url, "/_fake/spotify/settings", {"redirect_uris": ["http://127.0.0.1:8765/callback"]}
    )
    spotify_user_client(fakes)  # registered: fine
    base = fakes.spotify_accounts_url
    query = f"client_id={fakes.spotify_client_id}&response_type=code&redirect_uri=http://127.0.0.1:9/cb"
    refused = http.request("GET", f"{base}/authorize?{query}", redirect=False)
    assert refused.status == 400 and refused.data == b"INVALID_CLIENT: Invalid redirect URI"


def test_the_organic_rate_limit_grows_to_hours(fakes: Fakes) -> None:
    control(fakes.spotify.url, "/_fake/spotify/settings", {"rate_limit": 3})
    token = app_token(fakes)
    path = "/artists/" + artist_id(fakes, "Aurora Vale")
    assert [raw(fakes, path, token).status for _ in range(3)] == [200, 200, 200]
    waits = []
    for _ in range(9):  # calling on while limited makes each wait four times longer
        limited = raw(fakes, path, token)
        assert limited.status == 429 and json.loads(limited.data)["error"]["status"] == 429
        waits.append(int(limited.headers["Retry-After"]))
    assert waits[:3] == [1, 4, 16] and waits == sorted(waits) and waits[-1] >= 3600 * 3
    fakes.clock.advance(waits[-1] + 1)
    assert raw(fakes, path, app_token(fakes)).status == 200  # the old token expired meanwhile


def test_removed_endpoints_answer_with_their_real_statuses(fakes: Fakes) -> None:
    sp = spotify_app_client(fakes)
    aurora = artist_id(fakes, "Aurora Vale")
    token = app_token(fakes)
    for path in (
        f"/artists?ids={aurora}",
        "/browse/new-releases",
        f"/artists/{aurora}/related-artists",
        f"/artists/{aurora}/top-tracks?market=US",
        f"/audio-features/{next(iter(fakes.catalogue.tracks))}",
        f"/recommendations?seed_artists={aurora}",
    ):
        response = raw(fakes, path, token)
        assert response.status == 403, path
        assert json.loads(response.data) == {"error": {"status": 403, "message": "Forbidden"}}
    with pytest.raises(spotipy.SpotifyException) as err:
        sp.artists([aurora])
    assert err.value.http_status == 403


def test_playlist_search_holds_nulls(fakes: Fakes) -> None:
    found = spotify_app_client(fakes).search("Morning", type="playlist", limit=10)
    items = found["playlists"]["items"]
    assert None in items and any(p and p["name"] == "Morning Rotation" for p in items)
