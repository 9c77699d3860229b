"""Live options: changed through the API, stored in the database, a source between file and environment."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from client import Client
from conftest import make_config

from harmony import auth, config
from harmony.context import opened
from harmony.web import make_app


def stored(ctx: Any) -> list[tuple[str, str]]:
    return [(r["key"], r["value"]) for r in ctx.db.query("SELECT key, value FROM settings ORDER BY key")]


def test_settings_list_the_live_options_with_their_source(client: Client) -> None:
    items = {item["key"]: item for item in client.get("/api/v1/settings").json["items"]}
    assert set(items) == {option.key for option in config.OPTIONS if option.live}
    level = items["log.level"]
    assert level["value"] == "info" and "debug" in level["choices"]
    assert level["source"] == "default" and level["editable"] is True and level["kind"] == "choice"


def test_a_change_applies_at_once_is_stored_and_shown_in_env(client: Client, ctx: Any) -> None:
    resp = client.request("PATCH", "/api/v1/settings", json_body={"log.level": "debug"})
    assert resp.status == 200
    item = next(i for i in resp.json["items"] if i["key"] == "log.level")
    assert item["value"] == "debug" and item["source"] == config.STORED_SOURCE
    assert ctx.config["log.level"] == "debug"
    assert logging.getLogger().level == logging.DEBUG
    env = {row["key"]: row for row in client.get("/env").json["options"]}
    assert env["log.level"]["source"] == config.STORED_SOURCE
    assert stored(ctx) == [("log.level", '"debug"')]
    client.request("PATCH", "/api/v1/settings", json_body={"log.level": None})  # forget it again
    assert ctx.config["log.level"] == "info" and stored(ctx) == []


def test_a_stored_setting_survives_a_restart(tmp_path: Any, fakes: Any) -> None:
    cfg = make_config(tmp_path, fakes)
    with opened(cfg) as ctx:
        key, _ = auth.create_key(ctx.db, "admin", "admin")
        assert (
            Client(make_app(ctx), key)
            .request("PATCH", "/api/v1/settings", json_body={"log.level": "warning"})
            .status
            == 200
        )
    with opened(cfg) as ctx:
        assert ctx.config["log.level"] == "warning" and ctx.config.source("log.level") == config.STORED_SOURCE


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"log.level": "shout"}, 422, "log.level"),
        ({"nosuch.option": 1}, 422, "nosuch.option"),
        ({"server.port": 9000}, 422, "cannot be changed while running"),
        ({"log.level": "debug", "server.threads": 3}, 422, "server.threads"),  # all or nothing
    ],
)
def test_bad_changes_name_the_option_and_change_nothing(
    client: Client, ctx: Any, body: dict[str, Any], status: int, fragment: str
) -> None:
    before = (stored(ctx), ctx.config["log.level"])
    resp = client.request("PATCH", "/api/v1/settings", json_body=body)
    assert resp.status == status and fragment in resp.json["error"]["message"]
    assert resp.json["error"]["details"]["option"]
    assert (stored(ctx), ctx.config["log.level"]) == before


def test_an_option_fixed_by_the_environment_cannot_be_changed(tmp_path: Any) -> None:
    cfg = config.load(None, {"HARMONY_LOG_LEVEL": "error", "HARMONY_DATA_DIR": str(tmp_path)})
    with opened(cfg) as ctx:
        key, _ = auth.create_key(ctx.db, "admin", "admin")
        client = Client(make_app(ctx), key)
        item = next(i for i in client.get("/api/v1/settings").json["items"] if i["key"] == "log.level")
        assert item["editable"] is False
        resp = client.request("PATCH", "/api/v1/settings", json_body={"log.level": "debug"})
        assert resp.status == 409
        assert resp.json["error"]["details"]["source"] == "environment variable HARMONY_LOG_LEVEL"
        assert stored(ctx) == []


def test_changing_settings_needs_admin(client: Client, keys: dict[str, str]) -> None:
    assert client.get("/api/v1/settings", key=keys["read"]).status == 200
    resp = client.request("PATCH", "/api/v1/settings", json_body={"log.level": "debug"}, key=keys["operator"])
    assert resp.status == 403
