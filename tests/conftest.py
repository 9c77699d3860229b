"""Shared fixtures: fakes for the session, a configuration pointed at them, a context, the app, keys."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from client import Client

from harmony import auth, config
from harmony.context import Context, opened
from harmony.db import Database
from harmony.fakes import Fakes, start_fakes
from harmony.web import make_app


class Clock:
    """A clock that moves only when told to; tests pass it as wall and monotonic clock."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Any) -> Iterator[Database]:
    """A migrated database of its own, outside any context."""
    database = Database(str(tmp_path / "harmony.db"))
    database.migrate()
    try:
        yield database
    finally:
        database.close()


def fake_options(fakes: Fakes) -> dict[str, str]:
    """The options that point Harmony at running fakes."""
    return fakes.harmony_options("http://127.0.0.1:8337/auth/spotify/callback")


def make_config(tmp_path: Any, fakes: Fakes | None = None, **flags: Any) -> config.Config:
    """A config rooted in tmp_path (and pointed at `fakes` if given); `flags` are option keys
    with `_` for the dot (server_port=0)."""
    values = {"data.dir": str(tmp_path / "data"), "log.format": "text", "upstream.connect_timeout": "2s"}
    if fakes is not None:
        values.update(fake_options(fakes))
    values.update({name.replace("_", ".", 1): value for name, value in flags.items()})
    return config.load(None, {}, values)


@pytest.fixture(scope="session")
def fakes(tmp_path_factory: Any) -> Iterator[Fakes]:
    """Both fakes, shared by the session; each test leaves them as it found them (see `cfg`)."""
    running = start_fakes(str(tmp_path_factory.mktemp("slskd-downloads")))
    try:
        yield running
    finally:
        running.stop()


@contextmanager
def extended_quota(fakes: Fakes) -> Iterator[None]:
    """The fake Spotify as an Extended Quota Mode app sees it (batch reads allowed, 2025 limits)."""
    fakes.spotify_state.dev_mode = False
    try:
        yield
    finally:
        fakes.spotify_state.dev_mode = True


def reset_fakes(fakes: Fakes) -> None:
    for server in (fakes.spotify, fakes.slskd):
        server.start()  # a test may have stopped it
    fakes.spotify_state.faults.clear()
    fakes.slskd_state.faults.clear()
    with fakes.slskd_state.lock:
        fakes.slskd_state.logged_in = True
        fakes.slskd_state.search_busy = 0


@pytest.fixture
def cfg(tmp_path: Any, fakes: Fakes) -> Iterator[config.Config]:
    try:
        yield make_config(tmp_path, fakes)
    finally:
        reset_fakes(fakes)


@pytest.fixture
def ctx(cfg: config.Config) -> Iterator[Context]:
    with opened(cfg) as context:
        yield context


@pytest.fixture
def app(ctx: Context) -> Any:
    return make_app(ctx)


@pytest.fixture
def keys(ctx: Context) -> dict[str, str]:
    """One active key per role."""
    return {role: auth.create_key(ctx.db, f"test {role}", role)[0] for role in auth.ROLES}


@pytest.fixture
def client(app: Any, keys: dict[str, str]) -> Client:
    """A client authenticated as admin; pass key=... per request for other roles."""
    return Client(app, keys["admin"])


@pytest.fixture
def anon(app: Any) -> Client:
    return Client(app)
