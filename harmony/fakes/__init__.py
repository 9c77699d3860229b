"""Fake Spotify and slskd servers with a seeded fictional catalogue, for tests and `harmony demo`.

`start_fakes(downloads_dir)` builds the catalogue and the peers for a seed, starts both fakes on
127.0.0.1 and returns a `Fakes` holding what the app needs to point itself at them. Runtime code
here uses only the stdlib and bottle. Modules: `catalogue` (the data), `peers` (Soulseek shares and
behaviours), `audio` (tiny real files), `spotify` (the Web API) with `spotify_accounts` (tokens and
authorisation) and `spotify_user` (the user's library and playlists), `slskd` (the app and its
version profiles) with `slskd_searches`, `slskd_transfers` and `slskd_wire`, `faults` (fault
injection and the shared control routes), `server` (the HTTP server), `clock` (the fake clock).
`docs/architecture.md` says which versions and modes they imitate and what they do not do.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from harmony.fakes import catalogue, peers, slskd, spotify
from harmony.fakes.catalogue import Catalogue
from harmony.fakes.clock import FakeClock
from harmony.fakes.server import FakeServer
from harmony.fakes.slskd import SlskdState
from harmony.fakes.spotify import SpotifyState

__all__ = ["FakeClock", "FakeServer", "Fakes", "start_fakes"]

DEFAULT_SLSKD_API_KEY = "harmony-fake-slskd-api-key"


@dataclass
class Fakes:
    """Running fake services. `stop()` stops both servers; it is safe to call twice."""

    spotify: FakeServer
    slskd: FakeServer
    spotify_state: SpotifyState
    slskd_state: SlskdState
    clock: FakeClock
    downloads_dir: str

    @property
    def spotify_api_url(self) -> str:
        return f"{self.spotify.url}/v1"

    @property
    def spotify_accounts_url(self) -> str:
        return self.spotify.url

    @property
    def spotify_client_id(self) -> str:
        return self.spotify_state.client_id

    @property
    def spotify_client_secret(self) -> str:
        return self.spotify_state.client_secret

    @property
    def slskd_url(self) -> str:
        """Base URL including the URL base, if any (the API is under `<slskd_url>/api/v0`)."""
        return self.slskd.url + self.slskd_state.url_base

    @property
    def slskd_api_key(self) -> str:
        return self.slskd_state.api_key

    @property
    def catalogue(self) -> Catalogue:
        return self.spotify_state.catalogue

    def harmony_options(self, redirect_uri: str = "") -> dict[str, str]:
        """The option values (keys as in harmony/config.py) that point Harmony at these fakes."""
        return {
            "spotify.client_id": self.spotify_client_id,
            "spotify.client_secret": self.spotify_client_secret,
            "spotify.api_url": self.spotify_api_url,
            "spotify.accounts_url": self.spotify_accounts_url,
            "spotify.redirect_uri": redirect_uri,
            "slskd.url": self.slskd_url,
            "slskd.api_key": self.slskd_api_key,
            "slskd.downloads_dir": self.downloads_dir,
        }

    def approve(self, authorize_url: str) -> tuple[str, str]:
        """Be the user's browser at the fake's `/authorize`, which approves at once: return the
        (state, code) Spotify sends back to the redirect URI (the demo connects this way)."""
        request = urllib.request.Request(authorize_url, method="GET")
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            opener.open(request, timeout=5)
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location", "")
        else:
            raise RuntimeError("the fake Spotify did not redirect")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        return query["state"][0], query["code"][0]

    def stop(self) -> None:
        self.slskd_state.stopping.set()
        self.spotify.stop()
        self.slskd.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def start_fakes(
    downloads_dir: str,
    *,
    seed: int = 1,
    clock: FakeClock | None = None,
    slskd_api_key: str = DEFAULT_SLSKD_API_KEY,
    spotify_port: int = 0,
    slskd_port: int = 0,
    slskd_url_base: str = "",
    slskd_version: str = slskd.DEFAULT_VERSION,
) -> Fakes:
    """Build the seeded world and start both fakes on 127.0.0.1 (port 0 = any free port).

    `downloads_dir` is created if missing; the fake slskd writes completed downloads there. The
    catalogue's future releases are dated relative to `clock`'s date at start. `slskd_version`
    picks the slskd version to imitate (`slskd.PROFILES`). The caller owns the result and must
    call `stop()`.
    """
    clock = clock or FakeClock()
    os.makedirs(downloads_dir, exist_ok=True)
    world = catalogue.build(seed, clock.today())
    spotify_state = SpotifyState(world, clock)
    slskd_state = SlskdState(
        clock=clock,
        downloads_dir=os.path.abspath(downloads_dir),
        peers=peers.build(world, seed),
        api_key=slskd_api_key,
        url_base=slskd_url_base,
        version=slskd_version,
    )
    spotify_server = FakeServer(
        spotify.make_app(spotify_state), port=spotify_port, faults=spotify_state.faults, clock=clock
    )
    slskd_server = FakeServer(
        slskd.make_app(slskd_state), port=slskd_port, faults=slskd_state.faults, clock=clock
    )
    spotify_server.start()
    try:
        slskd_server.start()
    except Exception:
        spotify_server.stop()
        raise
    return Fakes(
        spotify_server, slskd_server, spotify_state, slskd_state, clock, os.path.abspath(downloads_dir)
    )
