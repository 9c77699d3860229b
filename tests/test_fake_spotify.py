"""Contract tests of the fake Spotify, driven through the real spotipy client and plain urllib3."""

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
from harmony.fakes.catalogue import BIG_PLAYLIST_SIZE


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
    editorial = next(p for p in playlists if p["owner"]["id"] == "spotify")
    with pytest.raises(spotipy.SpotifyException) as err:
        sp.playlist_items(editorial["id"], limit=50)
    assert err.value.http_status == 403
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
    rotated = sp.auth_manager.refresh_access_token(token["refresh_token"])
    assert rotated["refresh_token"] != token["refresh_token"]
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
    with pytest.warns(DeprecationWarning):  # deprecated by Spotify, still served by the fake
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
