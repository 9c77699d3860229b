"""API keys: an optional expiry, the last use written at most once a minute, rotation, and a
key's secret never reaching a log line, an error or /env."""

from __future__ import annotations

import io
import json
import logging
import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from client import Client

from harmony import auth, log
from harmony.__main__ import main
from harmony.errors import Conflict, Forbidden, Unauthorized


def key_id(ctx: Any, name: str) -> int:
    return next(row["id"] for row in auth.list_keys(ctx.db) if row["name"] == name)


def expired_key(ctx: Any, name: str = "old", role: str = "read") -> tuple[str, dict[str, Any]]:
    """A key that expired a minute ago (created with a clock an hour back)."""
    then = time.time() - 3600
    return auth.create_key(ctx.db, name, role, expires_at=then + 3540, now=then)


# --- expiry ------------------------------------------------------------------------------------


def test_a_key_works_until_it_expires_then_gets_a_401_that_says_so(ctx) -> None:
    now = time.time()
    key, row = auth.create_key(ctx.db, "short", "read", expires_at=now + 60, now=now)
    assert row["expires_at"] == pytest.approx(now + 60)
    assert auth.authenticate(ctx.db, key, "read", now=now + 59)["id"] == row["id"]
    with pytest.raises(Unauthorized) as raised:
        auth.authenticate(ctx.db, key, "read", now=now + 60)
    assert "expired on" in raised.value.message and raised.value.details == {"reason": "expired"}
    assert key not in raised.value.message
    # A wrong secret with the expired key's prefix is just an invalid key: nothing is revealed.
    wrong = f"hmy_{row['prefix']}_{'x' * 43}"
    with pytest.raises(Unauthorized, match=r"^invalid API key$"):
        auth.authenticate(ctx.db, wrong, "read", now=now + 60)


def test_an_expired_key_is_refused_over_http_and_counted_like_a_bad_key(ctx, app) -> None:
    key, _ = expired_key(ctx)
    client = Client(app, key)
    resp = client.get("/api/v1/system/status")
    assert resp.status == 401 and resp.json["error"]["code"] == "unauthorized"
    assert "expired" in resp.json["error"]["message"] and resp.json["error"]["details"]["reason"] == "expired"
    assert ctx.metrics.registry.get_sample_value("harmony_auth_failures_total", {"outcome": "rejected"}) == 1
    for _ in range(ctx.config["auth.failure_limit"]):
        client.get("/api/v1/system/status")
    assert client.get("/api/v1/system/status").status == 429  # throttled like any bad key


def test_an_expired_key_ends_its_sessions_and_cannot_log_in(ctx) -> None:
    now = time.time()
    key, _ = auth.create_key(ctx.db, "ui", "operator", expires_at=now + 100, now=now)
    session_id, _ = auth.open_session(ctx.db, key, lifetime_s=86400, now=now)
    assert auth.find_session(ctx.db, session_id, idle_s=86400, now=now + 50) is not None
    assert auth.find_session(ctx.db, session_id, idle_s=86400, now=now + 100) is None
    with pytest.raises(Unauthorized, match="expired"):
        auth.open_session(ctx.db, key, lifetime_s=86400, now=now + 100)


def test_keys_are_created_with_an_expiry_over_the_api(client, ctx) -> None:
    before = time.time()
    made = client.post("/api/v1/keys", {"name": "ci", "role": "read", "expires_in": 3600})
    assert made.status == 201
    assert before + 3600 <= made.json["expires_at"] <= time.time() + 3600
    at = time.time() + 86400
    made = client.post("/api/v1/keys", {"name": "ci2", "expires_at": at})
    assert made.status == 201 and made.json["expires_at"] == pytest.approx(at)
    listed = {row["name"]: row for row in client.get("/api/v1/keys").json["items"]}
    assert listed["ci2"]["expires_at"] == pytest.approx(at) and listed["test admin"]["expires_at"] is None
    assert set(listed["ci"]) == {
        "id",
        "name",
        "role",
        "prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "rotated_from",
        "revoked_at",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expires_in": 0}, "expires_in"),
        ({"expires_in": -5}, "expires_in"),
        ({"expires_in": True}, "expires_in"),
        ({"expires_in": "30d"}, "expires_in"),
        ({"expires_in": 11 * 366 * 86400}, "expires_in"),
        ({"expires_at": 1000.0}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_in": 60, "expires_at": 9e9}, "expires_at"),
    ],
)
def test_a_bad_expiry_is_a_422_naming_the_field_and_creates_nothing(client, ctx, body, field) -> None:
    count = len(auth.list_keys(ctx.db))
    resp = client.post("/api/v1/keys", {"name": "x", **body})
    assert resp.status == 422 and resp.json["error"]["details"]["field"] == field
    assert len(auth.list_keys(ctx.db)) == count


def test_the_last_active_admin_is_counted_without_expired_keys(ctx) -> None:
    expired_key(ctx, "gone admin", "admin")
    _, row = auth.create_key(ctx.db, "only admin", "admin")
    with pytest.raises(Conflict, match="last active admin"):
        auth.revoke_key(ctx.db, row["id"])
    auth.revoke_key(ctx.db, key_id(ctx, "gone admin"))  # an expired admin key may be revoked


# --- last use ------------------------------------------------------------------------------------


def test_the_last_use_is_written_at_most_once_a_minute(ctx) -> None:
    key, row = auth.create_key(ctx.db, "busy", "read")
    conn = ctx.db.conn()
    now = time.time()
    changes = conn.total_changes()
    for n in range(50):
        auth.authenticate(ctx.db, key, "read", now=now + n)  # 50 requests within a minute
    assert conn.total_changes() - changes == 1  # one write, not fifty
    assert auth.get_key(ctx.db, row["id"])["last_used_at"] == now
    auth.authenticate(ctx.db, key, "read", now=now + 59)
    assert auth.get_key(ctx.db, row["id"])["last_used_at"] == now
    auth.authenticate(ctx.db, key, "read", now=now + 60)
    assert auth.get_key(ctx.db, row["id"])["last_used_at"] == now + 60
    assert conn.total_changes() - changes == 2


def test_a_request_shows_up_as_last_used(client, keys, ctx) -> None:
    reader = key_id(ctx, "test read")
    assert auth.get_key(ctx.db, reader)["last_used_at"] is None
    client.get("/api/v1/system/status", key=keys["read"])
    assert auth.get_key(ctx.db, reader)["last_used_at"] == pytest.approx(time.time(), abs=5)


# --- rotation ------------------------------------------------------------------------------------


def test_rotation_creates_a_successor_and_the_old_key_works_until_revoked(client, keys, ctx) -> None:
    old_id = key_id(ctx, "test operator")
    resp = client.post(f"/api/v1/keys/{old_id}/rotate")
    assert resp.status == 201
    new = resp.json
    assert resp.headers["location"] == f"/api/v1/keys/{new['id']}"
    assert (new["name"], new["role"], new["rotated_from"]) == ("test operator", "operator", old_id)
    assert new["key"].startswith(f"hmy_{new['prefix']}_") and new["key"] != keys["operator"]
    assert new["previous"]["id"] == old_id and new["previous"]["expires_at"] is None
    assert client.get("/api/v1/system/status", key=new["key"]).json["key"]["name"] == "test operator"
    assert client.get("/api/v1/system/status", key=keys["operator"]).status == 200  # still valid
    assert client.delete(f"/api/v1/keys/{old_id}").status in (200, 204)
    assert client.get("/api/v1/system/status", key=keys["operator"]).status == 401
    assert client.get("/api/v1/system/status", key=new["key"]).status == 200
    # The old key is spent: rotating it again, or rotating a revoked key, is a conflict.
    again = client.post(f"/api/v1/keys/{old_id}/rotate")
    assert again.status == 409 and again.json["error"]["details"]["state"] in ("revoked", "rotated")


def test_a_grace_period_ends_the_old_key(client, keys, ctx) -> None:
    old_id = key_id(ctx, "test read")
    before = time.time()
    resp = client.post(f"/api/v1/keys/{old_id}/rotate", {"grace": 3600})
    assert resp.status == 201
    assert before + 3600 <= resp.json["previous"]["expires_at"] <= time.time() + 3600
    assert client.get("/api/v1/system/status", key=keys["read"]).status == 200
    again = client.post(f"/api/v1/keys/{old_id}/rotate")
    assert again.status == 409 and again.json["error"]["details"]["successor"] == resp.json["id"]
    # Grace 0: the old key stops at once, with the message an expired key gets.
    op = key_id(ctx, "test operator")
    assert client.post(f"/api/v1/keys/{op}/rotate", {"grace": 0}).status == 201
    gone = client.get("/api/v1/system/status", key=keys["operator"])
    assert gone.status == 401 and "expired" in gone.json["error"]["message"]


def test_a_successor_keeps_the_lifetime_unless_told_otherwise(ctx) -> None:
    now = time.time()
    _, old = auth.create_key(ctx.db, "monthly", "read", expires_at=now + 30 * 86400, now=now)
    later = now + 86400
    _, new, _ = auth.rotate_key(ctx.db, old["id"], now=later)
    assert new["expires_at"] == pytest.approx(later + 30 * 86400)
    _, forever = auth.create_key(ctx.db, "forever", "read")
    _, chosen, _ = auth.rotate_key(ctx.db, forever["id"], expires_at=now + 7 * 86400, now=now)
    assert chosen["expires_at"] == pytest.approx(now + 7 * 86400)


def test_rotating_a_key_that_expired_is_refused(ctx) -> None:
    _, row = expired_key(ctx)
    with pytest.raises(Conflict, match="expired"):
        auth.rotate_key(ctx.db, row["id"])


@pytest.mark.parametrize(
    "body",
    [{"grace": -1}, {"grace": "1h"}, {"grace": 400 * 86400}, {"grace": False}, {"expires_in": 0}, {"x": 1}],
)
def test_bad_rotation_bodies_change_nothing(client, ctx, body) -> None:
    def state() -> list[tuple[Any, ...]]:
        return [(r["id"], r["expires_at"], r["revoked_at"]) for r in auth.list_keys(ctx.db)]

    before = state()
    resp = client.post(f"/api/v1/keys/{key_id(ctx, 'test read')}/rotate", body)
    assert resp.status == 422 and resp.json["error"]["code"] == "invalid"
    assert state() == before


def test_rotation_needs_admin_and_a_known_key(client, keys) -> None:
    assert client.post("/api/v1/keys/1/rotate", key=keys["operator"]).status == 403
    assert client.post("/api/v1/keys/9999/rotate").status == 404
    assert client.post("/api/v1/keys/abc/rotate").status == 400


def test_the_keys_page_shows_expiry_and_last_use_and_rotates(app, ctx, keys) -> None:
    from test_ui import Browser

    admin = Browser(app, keys["admin"])
    expired_key(ctx, "stale")
    page = admin.get("/ui/keys").text
    assert "expires" in page and "never" in page and "Rotate…" in page and ">expired<" in page
    target = key_id(ctx, "test read")
    made = admin.post(f"/ui/keys/{target}/rotate", {"grace": "1d", "back": "/ui/keys"})
    assert made.status == 201
    secret = re.search(r'id="created-key">(hmy_[^<]+)<', made.text)
    assert secret and auth.authenticate(ctx.db, secret.group(1), "read")["name"] == "test read"
    assert f"It replaces key {target}" in made.text
    successor = auth.authenticate(ctx.db, secret.group(1), "read")["id"]
    assert f"rotated: key {successor}" in admin.get("/ui/keys").text
    created = admin.post("/ui/keys", {"name": "temp", "role": "read", "expires": "30d"})
    assert created.status == 201 and "It expires on" in created.text
    assert admin.post("/ui/keys", {"name": "temp", "expires": "1000d"}).status == 400


# --- the CLI -------------------------------------------------------------------------------------


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_cli_creates_expiring_keys_rotates_and_lists_them(tmp_path, capsys) -> None:
    data = ("--data-dir", str(tmp_path))
    code, text = run("apikey", "create", "--name", "ci", "--expires", "30d", *data)
    assert code == 0 and "it expires on" in text
    year = time.gmtime().tm_year + 2
    code, text = run("apikey", "create", "--name", "dated", "--expires", f"{year}-01-31T12:00", *data)
    assert code == 0 and f"{year}-01-31 12:00 UTC" in text
    code, text = run("apikey", "rotate", "1", "--grace", "1h", *data)
    assert code == 0 and "replacing key 1" in text and "key 1 keeps working until" in text
    new_key = re.search(r"hmy_\w+_\S+", text)
    assert new_key is not None
    code, text = run("apikey", "list", *data)
    assert code == 0 and new_key.group(0) not in text and "expires 20" in text and "used never" in text
    assert run("apikey", "rotate", "1", *data)[0] == 1
    assert "rotated already" in capsys.readouterr().err
    assert run("apikey", "create", "--name", "x", "--expires", "yesterday", *data)[0] == 2
    assert run("apikey", "create", "--name", "x", "--expires", "2001-01-01", *data)[0] == 2
    assert "in the future" in capsys.readouterr().err


# --- secrets stay secret -----------------------------------------------------------------------


def test_a_keys_secret_never_reaches_the_log_errors_or_env(ctx, app, keys) -> None:
    """Exercise a key every way it can be used or refused, then grep everything logged."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, root = Keep(level=logging.DEBUG), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    bodies: list[str] = []
    try:
        admin = Client(app, keys["admin"])
        made = admin.post("/api/v1/keys", {"name": "secret-test", "role": "operator", "expires_in": 600})
        key = made.json["key"]
        prefix, secret = made.json["prefix"], key.split("_", 2)[2]
        user = Client(app, key)
        for path in ("/api/v1/system/status", "/env", "/api/v1/jobs", "/api/v1/keys", "/api/v1/nothing"):
            bodies.append(user.get(path).text)
        bodies.append(user.get("/api/v1/system/status", headers={"Authorization": f"Bearer {key}"}).text)
        # A failed attempt with a wrong secret of the same prefix, and one with the secret cut short.
        wrong = f"hmy_{prefix}_{secret[::-1]}"
        bodies.append(Client(app, wrong).get("/api/v1/system/status").text)
        bodies.append(Client(app, key[:-3]).get("/api/v1/system/status").text)
        # A login with the key (a form body), then its rotation and an expiry.
        login = urlencode({"api_key": key, "next": "/ui/"}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        bodies.append(Client(app).request("POST", "/ui/login", body=login, headers=headers).text)
        rotated = admin.post(f"/api/v1/keys/{made.json['id']}/rotate", {"grace": 0})
        bodies.append(user.get("/api/v1/system/status").text)  # now expired
        bodies.append(admin.get("/env").text)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    successor = rotated.json["key"].split("_", 2)[2]
    assert any(record.getMessage() == "request" for record in records)
    formats = (log.JsonFormatter(), log.TextFormatter())
    logged = "\n".join(fmt.format(record) for record in records for fmt in formats)
    logged += "\n".join(json.dumps(getattr(record, "fields", None), default=str) for record in records)
    for text in (secret, wrong.split("_", 2)[2], successor):
        assert text not in logged, "a key's secret was logged"
        assert all(text not in body for body in bodies), "a key's secret was in a response"
    assert not re.search(r"hmy_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}", logged)


def test_forbidden_names_the_role_not_the_key(ctx, keys) -> None:
    with pytest.raises(Forbidden) as raised:
        auth.authenticate(ctx.db, keys["read"], "admin")
    assert keys["read"] not in str(raised.value.details) and keys["read"] not in raised.value.message
