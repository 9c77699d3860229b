"""The fake Spotify accounts service: `POST /api/token` and `GET /authorize`, as in 2026.

- Grants: client credentials (needs the secret), authorisation code (with PKCE S256, or the
  secret), refresh token. Client authentication by Basic header or form fields. Errors are
  OAuth-style: `{"error", "error_description"}` with 400.
- `/authorize` approves at once (or redirects with `error=access_denied` when `deny_authorize`
  is set). Redirect URIs must be https or a loopback IP over http (`localhost` is refused), and,
  when `redirect_uris` is set, one of the registered ones ("INVALID_CLIENT: Invalid redirect URI").
- Refresh tokens expire `refresh_lifetime` (6 months) after the original authorisation, on the
  fake clock, and refreshing does not extend that ("Refresh token expired"). `refresh_rotation`
  chooses what a refresh does to the token: `none` (2026: the response carries no new refresh
  token and the old one stays valid) or `single_use` (the old PKCE behaviour: a new one each
  time, and the old one is refused), whatever the client sends.
- Development Mode serves only the users on `allowlist`: others get their tokens, then a
  plain-text 403 "User not registered in the Developer Dashboard" on every request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlencode

import bottle

from harmony.fakes.catalogue import USER_ID

if TYPE_CHECKING:
    from harmony.fakes.spotify import SpotifyState

REFRESH_LIFETIME = 182 * 86400.0  # "6 months" after the original authorisation
ROTATIONS = ("none", "single_use")
NOT_REGISTERED = "User not registered in the Developer Dashboard"


@dataclass(frozen=True)
class Grant:
    """What a refresh token stands for: the user's scopes and when they authorised the app."""

    scopes: frozenset[str]
    authorized_at: float
    user_id: str = USER_ID


def register(app: bottle.Bottle, state: SpotifyState) -> None:
    """Add the accounts routes to the fake Spotify `app`."""

    @app.post("/api/token")
    def token() -> Any:
        form = bottle.request.forms.decode()
        client_id, secret = _client_auth(form.get("client_id"), form.get("client_secret"))
        basic = bottle.request.headers.get("Authorization", "").startswith("Basic ")
        with state.lock:  # what the client sent, for tests of what a client sends
            state.token_requests.append(
                {
                    "grant_type": form.get("grant_type"),
                    "client_id": client_id,
                    "secret": secret is not None,
                    "basic": basic,
                }
            )
        if client_id != state.client_id or (secret is not None and secret != state.client_secret):
            oauth_fail("invalid_client", "Invalid client")
        grant = form.get("grant_type")
        if grant == "client_credentials":
            if secret is None:
                oauth_fail("invalid_client", "Invalid client secret")
            return state.issue(frozenset(), user=None)
        if grant == "authorization_code":
            return _exchange(state, form, secret)
        if grant == "refresh_token":
            return _refresh(state, form.get("refresh_token") or "")
        oauth_fail("unsupported_grant_type", "grant_type parameter is missing")

    @app.get("/authorize")
    def authorize() -> Any:
        q = bottle.request.query.decode()
        redirect_uri = q.get("redirect_uri") or ""
        if q.get("client_id") != state.client_id:
            return bottle.HTTPResponse("INVALID_CLIENT: Invalid client", 400)
        if not redirect_uri.startswith(("http://127.0.0.1", "http://[::1]", "https://")):
            return bottle.HTTPResponse("INVALID_CLIENT: Insecure redirect URI", 400)
        if state.redirect_uris is not None and redirect_uri not in state.redirect_uris:
            return bottle.HTTPResponse("INVALID_CLIENT: Invalid redirect URI", 400)
        if q.get("response_type") != "code":
            return bottle.HTTPResponse("unsupported_response_type", 400)
        params = {"state": q.get("state")} if q.get("state") else {}
        if state.deny_authorize:
            params = {"error": "access_denied", **params}
        else:
            if q.get("code_challenge") and q.get("code_challenge_method") != "S256":
                return bottle.HTTPResponse("code_challenge_method must be S256", 400)
            code = secrets.token_urlsafe(32)
            with state.lock:
                state.codes[code] = {
                    "redirect_uri": redirect_uri,
                    "scopes": frozenset((q.get("scope") or "").replace(",", " ").split()),
                    "challenge": q.get("code_challenge") or "",
                    "expires_at": state.clock.now() + 600,
                }
            params = {"code": code, **params}
        sep = "&" if "?" in redirect_uri else "?"
        bottle.redirect(f"{redirect_uri}{sep}{urlencode(params)}", 302)


def _exchange(state: SpotifyState, form: Any, secret: str | None) -> dict[str, Any]:
    with state.lock:
        code = state.codes.pop(form.get("code") or "", None)
    if code is None or code["expires_at"] < state.clock.now():
        oauth_fail("invalid_grant", "Invalid authorization code")
    if form.get("redirect_uri") != code["redirect_uri"]:
        oauth_fail("invalid_grant", "Invalid redirect URI")
    if code["challenge"]:
        verifier = form.get("code_verifier") or ""
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code["challenge"]:
            oauth_fail("invalid_grant", "code_verifier was incorrect")
    elif secret is None:
        oauth_fail("invalid_client", "Invalid client secret")
    body = state.issue(code["scopes"], user=USER_ID)
    body["refresh_token"] = _new_refresh(state, Grant(code["scopes"], state.clock.now()))
    return body


def _refresh(state: SpotifyState, refresh_token: str) -> dict[str, Any]:
    with state.lock:
        grant = state.refresh_tokens.get(refresh_token)
        if grant is None:
            oauth_fail("invalid_grant", "Invalid refresh token")
        if state.clock.now() >= grant.authorized_at + state.refresh_lifetime:
            oauth_fail("invalid_grant", "Refresh token expired")
        if state.refresh_rotation == "single_use":
            del state.refresh_tokens[refresh_token]
    body = state.issue(grant.scopes, user=grant.user_id)
    if state.refresh_rotation == "single_use":
        body["refresh_token"] = _new_refresh(state, grant)  # the deadline stays the original one
    return body


def oauth_fail(error: str, description: str) -> NoReturn:
    body = json.dumps({"error": error, "error_description": description})
    raise bottle.HTTPResponse(body, 400, headers={"Content-Type": "application/json"})


def _client_auth(form_id: str | None, form_secret: str | None) -> tuple[str | None, str | None]:
    """(client_id, client_secret or None) from the Basic header, else from the form."""
    header = bottle.request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            oauth_fail("invalid_client", "Invalid client")
        return client_id, secret
    return form_id, form_secret


def _new_refresh(state: SpotifyState, grant: Grant) -> str:
    token = secrets.token_urlsafe(32)
    with state.lock:
        state.refresh_tokens[token] = grant
    return token
