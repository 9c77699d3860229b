"""Regression tests for the hostile-testing findings on the HTTP surface (D2-D5, D9, D14, D16, D19, I1, I2).

Each test names the finding it holds. The real-process findings (D1, D15, D20, D12) are in
tests/test_boot.py and tests/test_cli.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from client import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from harmony import auth
from harmony.context import Context


def key_rows(ctx: Context) -> list[tuple[Any, ...]]:
    return [(r["id"], r["name"], r["role"], r["revoked_at"]) for r in auth.list_keys(ctx.db)]


def post_raw(client: Client, path: str, body: bytes, **headers: str) -> Any:
    return client.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})


# --- D3: the method label is bounded ---------------------------------------------------------


def test_d3_invented_methods_do_not_grow_the_metrics(anon: Client) -> None:
    def samples() -> int:
        text = anon.get("/metrics").text
        return sum(len(family.samples) for family in text_string_to_metric_families(text))

    anon.request("XFIRST", "/live")
    samples()  # the first scrape adds the series of /metrics itself
    before = samples()
    for n in range(1000):
        assert anon.request(f"X{n}Y", "/live").status == 405
    assert samples() == before  # every invented method lands in the one `other` series
    methods = {
        s.labels["method"]
        for f in text_string_to_metric_families(anon.get("/metrics").text)
        if f.name == "harmony_http_requests"
        for s in f.samples
    }
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


# --- D4: undecodable credentials are an invalid key ----------------------------------------------


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_d4_a_non_utf8_credential_is_401_not_500(anon: Client, header: str) -> None:
    value = "\xff\xfe" if header == "X-API-Key" else "Bearer \xff"  # latin-1 as WSGI hands it over
    resp = anon.get("/api/v1/jobs/stats", headers={header: value})
    assert resp.status == 401 and resp.json["error"]["code"] == "unauthorized"


# --- D5: ids, nesting and surrogates -----------------------------------------------------------


def test_d5a_ids_beyond_sqlite_are_refused(client: Client, ctx: Context) -> None:
    before = key_rows(ctx)
    for path in ("/api/v1/jobs/dead/requeue", "/api/v1/jobs/dead/purge"):
        resp = client.post(path, {"ids": [2**63]})  # a body's wrong field: 422 naming it
        assert resp.status == 422 and resp.json["error"]["details"]["field"] == "ids"
    assert client.delete("/api/v1/keys/99999999999999999999").status == 400
    assert client.get("/api/v1/jobs/99999999999999999999").status == 400
    assert client.post("/api/v1/jobs/dead/requeue", {"ids": [2**63 - 1]}).status == 404
    assert key_rows(ctx) == before


@pytest.mark.parametrize(
    "path", ["/api/v1/jobs/dead/requeue", "/api/v1/jobs/dead/purge", "/api/v1/keys", "/api/v1/settings"]
)
def test_d5b_deep_nesting_is_400(client: Client, ctx: Context, path: str) -> None:
    before = key_rows(ctx)
    for body in (b'{"ids":' + b"[" * 100000 + b"]" * 100000 + b"}", b'{"a":' * 5000 + b"1" + b"}" * 5000):
        method = "PATCH" if path.endswith("settings") else "POST"
        resp = client.request(method, path, body=body, headers={"Content-Type": "application/json"})
        assert resp.status == 400 and "nested" in resp.json["error"]["message"]
    assert key_rows(ctx) == before


def test_d5c_lone_surrogates_are_400_naming_the_field(client: Client, ctx: Context) -> None:
    before = key_rows(ctx)
    resp = post_raw(client, "/api/v1/keys", b'{"name": "x\\ud800"}')
    assert resp.status == 400 and resp.json["error"]["details"]["field"] == "name"
    resp = post_raw(client, "/api/v1/spotify/authorize", b'{"redirect_uri": "http://x/\\ud800"}')
    assert resp.status == 400
    assert key_rows(ctx) == before


def test_i2_duplicate_keys_are_refused(client: Client, ctx: Context) -> None:
    ctx.queue.enqueue("gone", {})
    resp = post_raw(client, "/api/v1/jobs/dead/requeue", b'{"ids": [1], "ids": [2]}')
    assert resp.status == 400 and "duplicate key 'ids'" in resp.json["error"]["message"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_are_not_json(client: Client, literal: bytes) -> None:
    assert post_raw(client, "/api/v1/jobs/dead/requeue", b'{"ids": [' + literal + b"]}").status == 400


def test_i1_unicode_digits_are_not_ids(client: Client, ctx: Context) -> None:
    ctx.queue.enqueue("x", {})
    assert client.get("/api/v1/jobs/1").status == 200
    assert client.get("/api/v1/jobs/%D9%A1").status == 400  # ARABIC-INDIC DIGIT ONE
    assert client.get("/api/v1/jobs?limit=%D9%A3").status == 400


# --- D2 (in-process part): the app refuses an oversized body with the one shape -------------------


def test_d2_an_oversized_body_is_413_in_the_one_shape(client: Client, ctx: Context) -> None:
    before = key_rows(ctx)
    resp = post_raw(client, "/api/v1/keys", b'{"name": "' + b"x" * (1024 * 1024) + b'"}')
    assert resp.status == 413 and resp.json["error"]["code"] == "too_large"
    assert key_rows(ctx) == before


# --- D9: storage errors are a 503 with their own code ---------------------------------------------


def test_d9_a_full_database_is_503_disk_full_and_changes_nothing(client: Client, ctx: Context) -> None:
    before = key_rows(ctx)
    conn = ctx.db.conn()  # the in-process client runs on this thread, with this connection
    conn.execute("PRAGMA max_page_count = " + str(ctx.db.scalar("PRAGMA page_count")))
    try:
        for n in range(200):
            resp = client.post("/api/v1/keys", {"name": f"fill {n} " + "x" * 90})
            if resp.status != 201:
                break
        assert resp.status == 503 and resp.json["error"]["code"] == "disk_full"
    finally:
        conn.execute("PRAGMA max_page_count = 1073741823")
    assert len(key_rows(ctx)) >= len(before)


def test_d9_a_read_only_database_is_503_read_only(client: Client, ctx: Context) -> None:
    before = key_rows(ctx)
    ctx.db.conn().execute("PRAGMA query_only = 1")
    try:
        resp = client.post("/api/v1/keys", {"name": "never"})
    finally:
        ctx.db.conn().execute("PRAGMA query_only = 0")
    assert resp.status == 503 and resp.json["error"]["code"] == "read_only"
    assert key_rows(ctx) == before


# --- D14: failed authentication is throttled per address ------------------------------------------


def test_d14_failed_authentication_is_throttled_then_recovers(
    ctx: Context, app: Any, keys: dict[str, str]
) -> None:
    limit = ctx.config["auth.failure_limit"]
    guesser, other = Client(app, "hmy_deadbeef_" + "A" * 43), Client(app, keys["read"])
    for _ in range(limit):
        assert guesser.get("/api/v1/jobs/stats").status == 401
    blocked = guesser.get("/api/v1/jobs/stats")
    assert blocked.status == 429 and blocked.json["error"]["code"] == "too_many_requests"
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    # The address is blocked whatever key it sends; open routes still answer.
    assert other.get("/api/v1/jobs/stats").status == 429
    assert other.get("/live").status == 200
    text = Client(app).get("/metrics").text
    counts = {
        s.labels["outcome"]: s.value
        for f in text_string_to_metric_families(text)
        if f.name == "harmony_auth_failures"
        for s in f.samples
        if s.name.endswith("_total")
    }
    assert counts["rejected"] == limit and counts["throttled"] >= 2
    ctx.auth_throttle.clock = lambda: 1e12  # a minute later
    assert other.get("/api/v1/jobs/stats").status == 200


def test_d14_only_the_first_failure_of_an_address_is_logged(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO)
    guesser = Client(app, "hmy_deadbeef_" + "A" * 43)
    for _ in range(5):
        guesser.get("/api/v1/jobs/stats")
    logged = [r for r in caplog.records if r.getMessage() == "request" and r.levelno >= logging.INFO]
    assert len(logged) == 1


# --- D16: key names are printable and free of spoofing characters -------------------------------


@pytest.mark.parametrize("name", ["a\u007fb", "a\u0085b", "\u202egnp.exe", "\u200b", "x\u2066y", "a\nb", " "])
def test_d16_key_names_refuse_invisible_and_direction_controls(
    client: Client, ctx: Context, name: str
) -> None:
    before = key_rows(ctx)
    resp = client.post("/api/v1/keys", {"name": name})
    assert resp.status == 422 and resp.json["error"]["details"]["field"] == "name"
    assert key_rows(ctx) == before


def test_key_names_keep_the_users_script(client: Client) -> None:
    for name in ("Grafana 📈", "Плеер", "音楽サーバー"):
        assert client.post("/api/v1/keys", {"name": name}).status == 201


# --- no request can cause a 500 ------------------------------------------------------------------

# Header values as WSGI hands them over: latin-1 text standing for arbitrary bytes.
latin1 = st.binary(max_size=40).map(lambda raw: raw.decode("latin-1"))
segment = st.one_of(
    st.sampled_from(["1", "0", "-1", "99999999999999999999", "health_probe", "%00", "..", "%2e%2e", "abc"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#"), min_size=1, max_size=12),
)


def fill(rule: str, values: list[str]) -> str:
    parts = iter(values)
    return re.sub(r"<[^>]+>", lambda _: next(parts, "1"), rule)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    pick=st.integers(0, 10_000),
    params=st.lists(segment, min_size=2, max_size=2),
    query=st.binary(max_size=80),
    body=st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.text(max_size=8),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
                ),
                max_leaves=8,
            ),
            max_size=4,
        ).map(lambda d: json.dumps(d).encode()),
    ),
    header=latin1,
    content_type=st.sampled_from(["application/json", "", "text/plain", "application/json; charset=latin1"]),
)
def test_no_request_causes_a_5xx(
    app: Any,
    keys: dict[str, str],
    pick: int,
    params: list[str],
    query: bytes,
    body: bytes,
    header: str,
    content_type: str,
) -> None:
    # The event stream answers for as long as its client stays, and an in-process call never
    # leaves (tests/test_ui.py and tests/test_ui_stream.py cover it).
    routes = [r for r in app.routes if r.rule not in ("/ready", "/api/v1/events/stream")]
    route = routes[pick % len(routes)]
    path = fill(route.rule, params)
    client = Client(app, keys["admin"])
    headers = {"X-Request-ID": header, "Accept-Language": header}
    if content_type:
        headers["Content-Type"] = content_type
    resp = client.request(route.method, f"{path}?{query.decode('latin-1')}", body=body, headers=headers)
    assert resp.status < 500, (route.method, path, resp.status, resp.body[:300])
