"""Shared fixtures: a configuration in a temporary directory, an opened context, the app, keys."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from client import Client

from harmony import auth, config
from harmony.context import Context, close_context, open_context
from harmony.web import make_app


def make_config(tmp_path: Any, **flags: Any) -> config.Config:
    """A config rooted in tmp_path; `flags` are option keys with `_` for the dot (server_port=0)."""
    values = {"data.dir": str(tmp_path / "data"), "log.format": "text"}
    values.update({name.replace("_", ".", 1): value for name, value in flags.items()})
    return config.load(None, {}, values)


@pytest.fixture
def cfg(tmp_path: Any) -> config.Config:
    return make_config(tmp_path)


@pytest.fixture
def ctx(cfg: config.Config) -> Iterator[Context]:
    context = open_context(cfg)
    try:
        yield context
    finally:
        close_context(context)


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
