"""The app in-process: health, env, metrics, authentication by role, the one error shape."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from client import Client
from conftest import make_config
from prometheus_client.parser import text_string_to_metric_families

from harmony import auth
from harmony.context import opened
from harmony.web import make_app


def test_live_needs_nothing_and_sets_a_request_id(anon) -> None:
    resp = anon.get("/live")
    assert resp.status == 200 and resp.json == {"status": "ok"}
    assert len(resp.headers["x-request-id"]) == 16
    echoed = anon.get("/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    hostile = anon.get("/live", headers={"X-Request-ID": "x" * 100 + "\n"})
    assert hostile.headers["x-request-id"] != "x" * 100


def test_ready_waits_for_the_first_probe_then_is_ok(ctx, anon) -> None:
    pending = anon.get("/ready")
    assert pending.status == 503
    # The database check is probed too: it looks at free space and takes the write lock, which
    # /ready itself must not do on every request.
    assert pending.json["error"]["details"]["failing"] == ["database", "move", "slskd", "spotify"]
    ctx.health.probe()
    resp = anon.get("/ready")
    assert resp.status == 200, resp.json
    checks = resp.json["checks"]
    assert set(checks) == {"database", "background", "library", "downloads", "move", "slskd", "spotify"}
    assert checks["move"]["detail"].startswith("same filesystem")
    assert all(check["ok"] for check in checks.values())
    assert checks["slskd"]["detail"].startswith("logged in as")


def test_ready_follows_slskd_down_and_back_within_one_probe(ctx, anon, fakes) -> None:
    ctx.health.probe()
    assert anon.get("/ready").status == 200
    fakes.slskd.stop()
    assert anon.get("/ready").status == 200  # probed checks change only when probed
    ctx.health.probe()
    resp = anon.get("/ready")
    assert resp.status == 503
    assert resp.json["error"]["details"]["failing"] == ["slskd"]
    assert "connection refused" in resp.json["error"]["details"]["checks"]["slskd"]["detail"]
    fakes.slskd.start()
    ctx.health.probe()
    assert anon.get("/ready").status == 200


def test_ready_names_slskd_when_logged_out_of_soulseek(ctx, anon, fakes) -> None:
    fakes.slskd_state.logged_in = False
    ctx.health.probe()
    resp = anon.get("/ready")
    assert (
        resp.status == 503 and "not logged in" in resp.json["error"]["details"]["checks"]["slskd"]["detail"]
    )


def test_ready_names_a_missing_download_directory(tmp_path, fakes) -> None:
    with opened(make_config(tmp_path, fakes, slskd_downloads_dir=str(tmp_path / "nowhere"))) as ctx:
        ctx.health.probe()
        resp = Client(make_app(ctx)).get("/ready")
        assert resp.status == 503 and resp.json["error"]["details"]["failing"] == ["downloads", "move"]


def test_env_shows_sources_and_masks_secrets(tmp_path) -> None:
    from harmony import config

    cfg = config.load(
        None,
        {"HARMONY_SLSKD_API_KEY": "top-secret-value", "HARMONY_DATA_DIR": str(tmp_path)},
        {"server.port": "9999"},
    )
    with opened(cfg) as ctx:
        key, _ = auth.create_key(ctx.db, "reader", "read")
        resp = Client(make_app(ctx), key).get("/env")
        assert resp.status == 200
        rows = {row["key"]: row for row in resp.json["options"]}
        assert rows["slskd.api_key"] == {
            "key": "slskd.api_key",
            "value": "********",
            "source": "environment variable HARMONY_SLSKD_API_KEY",
            "secret": True,
            "live": False,
        }
        assert rows["server.port"]["value"] == 9999 and rows["server.port"]["source"] == "flag --server-port"
        assert rows["server.threads"]["source"] == "default"
        assert "top-secret-value" not in resp.text


def test_metrics_parse_and_count_requests_by_route_template(anon) -> None:
    anon.get("/live")
    anon.get("/api/v1/system/status")
    anon.get("/no/such/path")
    resp = anon.get("/metrics")
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    assert "process_resident_memory_bytes" in families
    assert families["harmony_build_info"].samples[0].labels["version"]
    counts = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["harmony_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert counts[("/live", "200")] == 1
    assert counts[("/api/v1/system/status", "401")] == 1
    assert counts[("unmatched", "404")] == 1
    assert "harmony_http_request_duration_seconds" in families


def test_metrics_can_require_a_key(tmp_path) -> None:
    with opened(make_config(tmp_path, metrics_require_key="true")) as ctx:
        app = make_app(ctx)
        assert Client(app).get("/metrics").status == 401
        key, _ = auth.create_key(ctx.db, "prometheus", "read")
        assert Client(app, key).get("/metrics").status == 200


@pytest.mark.parametrize("path", ["/api/v1/system/status", "/env"])
def test_api_needs_a_valid_key(anon, keys, ctx, path) -> None:
    missing = anon.get(path)
    assert missing.status == 401
    assert missing.json["error"]["code"] == "unauthorized"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert anon.get(path, key="hmy_nope_nope").status == 401
    assert anon.get(path, key="garbage").status == 401
    assert anon.get(path, key=keys["read"]).status == 200
    assert anon.get(path, headers={"Authorization": f"Bearer {keys['read']}"}).status == 200
    # A revoked key stops working at once.
    key_id = next(r["id"] for r in auth.list_keys(ctx.db) if r["role"] == "read")
    auth.revoke_key(ctx.db, key_id)
    assert anon.get(path, key=keys["read"]).status == 401


def test_roles_are_ordered(ctx, keys) -> None:
    app = make_app(ctx)
    app.route("/api/v1/test/op", "POST", lambda: {"ok": True}, role="operator")
    app.route("/api/v1/test/admin", "POST", lambda: {"ok": True}, role="admin")
    client = Client(app)
    assert client.post("/api/v1/test/op", key=keys["read"]).status == 403
    assert client.post("/api/v1/test/op", key=keys["operator"]).status == 200
    assert client.post("/api/v1/test/admin", key=keys["operator"]).json["error"]["code"] == "forbidden"
    assert client.post("/api/v1/test/admin", key=keys["admin"]).status == 200


def test_status_reports_version_schema_and_key(ctx, client, keys) -> None:
    ctx.health.probe()
    body = client.get("/api/v1/system/status").json
    assert body["schema_version"] >= 1 and body["ready"] is True
    assert body["key"] == {"name": "test admin", "role": "admin"}


def test_unknown_paths_and_methods_get_the_error_shape(anon) -> None:
    resp = anon.get("/api/v1/nothing-here")
    assert resp.status == 404 and resp.json["error"]["code"] == "not_found"
    resp = anon.request("DELETE", "/live")
    assert resp.status == 405 and resp.json["error"]["code"] == "method_not_allowed"
    assert "GET" in resp.headers["allow"]
    html = anon.get("/ui/nothing-here")
    assert html.status == 404 and html.headers["content-type"].startswith("text/html")
    assert "no such path" in html.text


def test_unexpected_exceptions_are_a_500_that_leaks_nothing_logged_once(ctx, keys, caplog) -> None:
    app = make_app(ctx)

    def explode() -> None:
        raise RuntimeError("secret internal detail")

    app.route("/api/v1/boom", "GET", explode, role="read")
    app.route("/ui/boom", "GET", explode)
    with caplog.at_level(logging.ERROR):
        resp = Client(app, keys["read"]).get("/api/v1/boom")
        page = Client(app).get("/ui/boom")
    assert resp.status == 500
    assert resp.json["error"]["code"] == "internal"
    assert "secret internal detail" not in resp.text
    assert page.status == 500 and page.headers["content-type"].startswith("text/html")
    assert "secret internal detail" not in page.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info is not None for r in errors)  # once per request


def test_routes_under_api_must_declare_a_role(ctx) -> None:
    import bottle

    from harmony import web

    original = bottle.Bottle.route

    def sneaky(self, path=None, method="GET", callback=None, **options):
        if path == "/api/v1/system/status":
            options.pop("role", None)
        return original(self, path, method, callback, **options)

    bottle.Bottle.route = sneaky  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="must declare role"):
            web.make_app(ctx)
    finally:
        bottle.Bottle.route = original  # type: ignore[method-assign]


def test_each_app_is_independent(ctx) -> None:
    first, second = make_app(ctx), make_app(ctx)
    first.route("/only-first", "GET", lambda: {"x": 1})
    assert Client(first).get("/only-first").status == 200
    assert Client(second).get("/only-first").status == 404


def test_keys_api_creates_lists_and_revokes(client, keys) -> None:
    created = client.post("/api/v1/keys", {"name": "grafana", "role": "read"})
    assert created.status == 201 and created.json["key"].startswith("hmy_")
    assert client.get("/api/v1/system/status", key=created.json["key"]).json["key"]["name"] == "grafana"
    listing = client.get("/api/v1/keys").json["items"]
    assert [row["name"] for row in listing][-1] == "grafana"
    assert all("key" not in row and "hash" not in row for row in listing)
    assert created.headers["location"] == f"/api/v1/keys/{created.json['id']}"
    assert client.get(created.headers["location"]).json["name"] == "grafana"
    revoked = client.delete(f"/api/v1/keys/{created.json['id']}")
    assert revoked.status == 204 and revoked.body == b""
    assert client.get(created.headers["location"]).json["revoked_at"]
    assert client.get("/api/v1/system/status", key=created.json["key"]).status == 401


@pytest.mark.parametrize(
    "body",
    [{"name": "x", "role": "root"}, {"name": ""}, {"role": "read"}, {"name": "x", "extra": 1}, {"name": 5}],
)
def test_keys_api_rejects_bad_bodies_and_changes_nothing(client, ctx, body) -> None:
    def state() -> list[tuple]:
        return [(r["id"], r["name"], r["role"], r["revoked_at"]) for r in auth.list_keys(ctx.db)]

    before = state()
    resp = client.post("/api/v1/keys", body)
    # A JSON object with a wrong, missing or unknown field: 422 naming the field.
    assert resp.status == 422 and resp.json["error"]["code"] == "invalid"
    assert resp.json["error"]["details"]["field"] in ("name", "role", "extra")
    assert state() == before


def test_keys_api_needs_admin_and_known_ids(client, keys) -> None:
    assert client.get("/api/v1/keys", key=keys["operator"]).status == 403
    assert client.delete("/api/v1/keys/9999").status == 404
    assert client.delete("/api/v1/keys/abc").status == 400  # ids are checked before any lookup
    assert client.delete("/api/v1/keys/99999999999999999999").status == 400
    bad_json = client.request(
        "POST", "/api/v1/keys", body=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status == 400


def test_keys_list_is_paginated(client, keys) -> None:
    first = client.get("/api/v1/keys?limit=2").json
    assert len(first["items"]) == 2 and isinstance(first["next_cursor"], str)  # an opaque cursor
    rest = client.get(f"/api/v1/keys?limit=2&cursor={first['next_cursor']}").json
    assert [k["id"] for k in rest["items"]] == [3] and rest["next_cursor"] is None
    assert client.get("/api/v1/keys?limit=501").status == 400
    assert client.get("/api/v1/keys?cursor=-1").status == 400
    assert client.get("/api/v1/keys?cursor=WyJ4Il0").status == 400  # well-formed, wrong shape


def test_move_check_reports_a_library_on_another_filesystem(tmp_path, fakes) -> None:
    import tempfile

    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    with (
        tempfile.TemporaryDirectory(dir="/dev/shm") as library,
        opened(make_config(tmp_path, fakes, library_dir=library)) as ctx,
    ):
        ctx.health.probe()
        ok, checks = ctx.health.report()
        assert ok and checks["move"]["detail"].startswith("different filesystems")
        assert os.listdir(library) == [] and not any(
            name.startswith(".harmony-probe-") for name in os.listdir(fakes.downloads_dir)
        )


def test_the_running_wheel_turns_ready_within_one_probe_interval(tmp_path, fakes) -> None:
    import time

    def wait_for(client: Client, status: int, within: float) -> Any:
        deadline = time.monotonic() + within
        while (resp := client.get("/ready")).status != status:
            assert time.monotonic() < deadline, f"/ready stayed {resp.status}"
            time.sleep(0.05)
        return resp

    with opened(make_config(tmp_path, fakes, health_probe_interval="1s")) as ctx:
        client = Client(make_app(ctx))
        ctx.start_background()
        try:
            wait_for(client, 200, 2.5)  # the first probe runs as the wheel starts
            fakes.slskd.stop()
            assert wait_for(client, 503, 2.5).json["error"]["details"]["failing"] == ["slskd"]
            fakes.slskd.start()
            wait_for(client, 200, 2.5)
        finally:
            ctx.stop_background()


def test_open_reads_lets_an_anonymous_request_read_and_nothing_more(tmp_path: Any, fakes: Any) -> None:
    """`auth.open_reads`: the pages, /env and the read API answer without a key; every write,
    every route above the read role, and a wrong key are refused as before."""
    with opened(make_config(tmp_path, fakes)) as ctx:
        closed = Client(make_app(ctx))
        assert closed.get("/ui/wanted").status == 303 and closed.get("/env").status == 401
    with opened(make_config(tmp_path, fakes, auth_open_reads="true")) as ctx:
        anon, before = Client(make_app(ctx)), ctx.db.query("SELECT count(*) AS n FROM wanted_items")[0]["n"]
        page = anon.get("/ui/wanted")
        assert page.status == 200 and b"anonymous" in page.body and b'href="/ui/login"' in page.body
        assert anon.get("/env").status == 200 and anon.get("/api/v1/wanted").status == 200
        assert anon.get("/api/v1/keys").status == 401  # admin: still needs a key
        assert anon.get("/api/v1/wanted", headers={"X-API-Key": "hmy_wrong"}).status == 401
        refused = anon.post("/api/v1/wanted", {"track": "spotify:track:0000000000000000000001"})
        assert refused.status == 401
        assert ctx.db.query("SELECT count(*) AS n FROM wanted_items")[0]["n"] == before
