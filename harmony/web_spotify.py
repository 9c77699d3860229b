"""Routes for connecting Harmony to the user's Spotify account (authorisation code with PKCE).

The browser goes to the URL from `POST /api/v1/spotify/authorize`, Spotify sends it back to
`/auth/spotify/callback` (the redirect URI registered with the Spotify app), and the callback
stores the tokens. The callback cannot carry an API key; the single-use `state` it returns is
what authenticates it.

The Spotify page (the UI section at the end): `GET /ui/spotify` shows the connection, the
redirect URI to register with the Spotify app and when the authorisation expires;
`POST /ui/spotify/connect` starts the flow and links to Spotify (a link, not a redirect: the
Content-Security-Policy's `form-action 'self'` forbids a form from ending at another site);
`POST /ui/spotify/disconnect` forgets the tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse, request

from .config import Url
from .errors import BadInput, HarmonyError, Invalid
from .web_base import action, json_body, render, render_error, see_other

if TYPE_CHECKING:
    from .context import Context

CALLBACK_PATH = "/auth/spotify/callback"


def register(app: bottle.Bottle, ctx: Context) -> None:
    spotify = ctx.spotify

    def status() -> dict[str, Any]:
        cooling = ctx.upstream.cooldown("spotify")
        return {
            "configured": spotify.configured,
            "authorization": spotify.authorization(),
            "cooldown": {"until": cooling[0], "reason": cooling[1]} if cooling else None,
        }

    def authorize() -> dict[str, Any]:
        body = json_body(allowed={"redirect_uri"})
        redirect = body.get("redirect_uri")
        if "redirect_uri" in body:  # null is not a URL either
            try:
                redirect = Url()(redirect)
            except ValueError as exc:
                raise Invalid(f"redirect_uri: {exc}", field="redirect_uri") from None
        if not redirect and not spotify.redirect_uri:
            redirect = request.urlparts.scheme + "://" + request.urlparts.netloc + CALLBACK_PATH
        return {"url": spotify.authorize_url(redirect or None)}

    def callback() -> Any:
        error, state, code = (request.query.get(name, "") for name in ("error", "state", "code"))
        if error:
            return render_error(400, "spotify_denied", f"Spotify did not authorise Harmony: {error[:100]}")
        if not state or not code:
            raise BadInput("the callback needs code and state from Spotify")
        user = spotify.complete_authorization(state, code)
        return render("spotify_connected", name=user.display_name)

    def disconnect() -> HTTPResponse:
        json_body(allowed=())
        spotify.disconnect()
        return HTTPResponse(status=204)

    # --- pages (the web UI) ------------------------------------------------------------------

    def redirect_uri() -> str:
        return (
            spotify.redirect_uri or request.urlparts.scheme + "://" + request.urlparts.netloc + CALLBACK_PATH
        )

    def spotify_page(authorize: str | None = None) -> str:
        _, checks = ctx.health.report()
        return render(
            "spotify",
            title="Spotify",
            section="spotify",
            state=status(),
            check=checks.get("spotify"),
            redirect_uri=redirect_uri(),
            authorize=authorize,
        )

    def connect_page() -> Any:
        try:
            authorize = spotify.authorize_url(redirect_uri())
        except HarmonyError as exc:  # not configured: say so on the page
            return see_other("/ui/spotify", exc.message, error=True)
        return spotify_page(authorize=authorize)

    def disconnect_page() -> Any:
        def act() -> str:
            spotify.disconnect()
            return "Disconnected from Spotify; playlists stop syncing until you connect again."

        return action("/ui/spotify", act)

    app.route("/api/v1/spotify", "GET", status, role="read")
    app.route("/api/v1/spotify/authorize", "POST", authorize, role="admin")
    app.route("/api/v1/spotify/authorization", "DELETE", disconnect, role="admin")
    app.route(CALLBACK_PATH, "GET", callback)
    app.route("/ui/spotify", "GET", spotify_page, role="read")
    app.route("/ui/spotify/connect", "POST", connect_page, role="admin")
    app.route("/ui/spotify/disconnect", "POST", disconnect_page, role="admin")
