"""Helpers shared by the fake-server contract tests: real third-party clients pointed at the fakes."""

from __future__ import annotations

import json
from typing import Any

import slskd_api
import spotipy
import urllib3
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOAuth, SpotifyPKCE

from harmony.fakes import Fakes

REDIRECT_URI = "http://127.0.0.1:8765/callback"
USER_SCOPES = "user-read-private playlist-read-private user-follow-read user-library-read"

http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=5))


def spotify_app_client(fakes: Fakes) -> spotipy.Spotify:
    """spotipy with client credentials against the fake accounts service and API."""
    auth = SpotifyClientCredentials(
        fakes.spotify_client_id, fakes.spotify_client_secret, cache_handler=MemoryCacheHandler()
    )
    auth.OAUTH_TOKEN_URL = fakes.spotify_accounts_url + "/api/token"
    return _client(fakes, auth)


def spotify_user_client(fakes: Fakes, *, pkce: bool = True, scope: str = USER_SCOPES) -> spotipy.Spotify:
    """spotipy with a user token obtained through /authorize (auto-approved) and /api/token."""
    auth: SpotifyPKCE | SpotifyOAuth
    if pkce:
        auth = SpotifyPKCE(
            fakes.spotify_client_id,
            REDIRECT_URI,
            scope=scope,
            cache_handler=MemoryCacheHandler(),
            open_browser=False,
        )
    else:
        auth = SpotifyOAuth(
            fakes.spotify_client_id,
            fakes.spotify_client_secret,
            REDIRECT_URI,
            scope=scope,
            cache_handler=MemoryCacheHandler(),
            open_browser=False,
        )
    auth.OAUTH_AUTHORIZE_URL = fakes.spotify_accounts_url + "/authorize"
    auth.OAUTH_TOKEN_URL = fakes.spotify_accounts_url + "/api/token"
    location = authorize_redirect(auth.get_authorize_url())
    code = auth.parse_response_code(location)
    if isinstance(auth, SpotifyPKCE):
        auth.get_access_token(code)
    else:
        auth.get_access_token(code, as_dict=False)
    return _client(fakes, auth)


def authorize_redirect(url: str) -> str:
    """Follow the user's browser to /authorize and return where it is sent back to."""
    response = http.request("GET", url, redirect=False)
    assert response.status == 302, response.data
    return str(response.headers["Location"])


def _client(fakes: Fakes, auth: Any) -> spotipy.Spotify:
    sp = spotipy.Spotify(auth_manager=auth, retries=0, requests_timeout=5)
    sp.prefix = fakes.spotify_api_url + "/"
    return sp


def slskd_client(fakes: Fakes) -> slskd_api.SlskdClient:
    base = fakes.slskd_state.url_base or "/"
    return slskd_api.SlskdClient(fakes.slskd.url, fakes.slskd_api_key, base, timeout=5)


def control(url: str, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
    """Call a fake's control API and return the decoded JSON."""
    response = http.request(method, url + path, body=json.dumps(body or {}).encode())
    assert response.status == 200, response.data
    return json.loads(response.data)


def no_nulls(value: Any) -> bool:
    """True when no JSON property anywhere in `value` is null (slskd leaves null properties out)."""
    if isinstance(value, dict):
        return all(v is not None and no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nulls(v) for v in value)
    return True
