"""The API under generated requests, in-process.

1. docs/openapi.json agrees with the app: schemathesis fuzzes every documented operation with a
   key of each role. Every generated request (valid per the document) must get an answer the
   document promises: no 5xx, a documented status, a documented content type and a body that
   matches its schema. The operations run against the session's fakes, so the readiness checks
   pass and Spotify is configured.
2. Nothing a bad request carries changes anything: hypothesis sends every write route (POST,
   PUT, PATCH, DELETE under /api/v1, from the app's route table) bodies that are not a JSON
   object, bodies of another content type, objects with an unknown field or a field of the
   wrong type (from the route's schema in openapi.json), and a body over the limit, each with a
   generated query string, at ids that exist. Each gets its documented 4xx (400, 415, 422, 413)
   in the one error shape, and a checksum of every table is the same after as before.

The budget is bounded (examples per operation below) so the whole module stays well under two
minutes on two cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from client import Client
from conftest import make_config, reset_fakes
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harmony import auth, transfers, wanted
from harmony.context import Context, opened
from harmony.web import make_app
from harmony.web_base import MAX_BODY

SPEC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "openapi.json")
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]


# Examples per operation and role: the admin key reaches every handler; the lower roles mostly
# check that a refusal (403) is answered as documented.
EXAMPLES = {"admin": 25, "operator": 5, "read": 5}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: Any, fakes: Any) -> Iterator[tuple[Context, dict[str, str]]]:
    # A throttle that never trips: the fuzzer sends bad credentials on purpose.
    cfg = make_config(tmp_path_factory.mktemp("fuzz"), fakes, auth_failure_limit="100000")
    try:
        with opened(cfg) as ctx:
            ctx.health.probe()
            yield ctx, {role: auth.create_key(ctx.db, f"fuzzer {role}", role)[0] for role in auth.ROLES}
    finally:
        reset_fakes(fakes)


def operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_path(SPEC)
    schema.app = app
    # Revoking keys would revoke the fuzzer's own; tests/test_web.py covers that route.
    schema = schema.exclude(path="/api/v1/keys/{key_id}", method="DELETE")
    schema = schema.exclude(path="/ui/keys/{key_id}/revoke", method="POST")
    # Rotating with a grace period ends the old key, which may be the fuzzer's own;
    # tests/test_auth_keys.py covers rotation.
    schema = schema.exclude(path="/api/v1/keys/{key_id}/rotate", method="POST")
    schema = schema.exclude(path="/ui/keys/{key_id}/rotate", method="POST")
    # The event stream is a long-lived response: it ends only when its client leaves or the
    # server stops, and an in-process call never leaves. tests/test_ui.py covers it.
    schema = schema.exclude(path="/api/v1/events/stream", method="GET")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("role", list(EXAMPLES))
def test_every_operation_answers_as_documented(fuzzed: tuple[Context, dict[str, str]], role: str) -> None:
    ctx, keys = fuzzed
    key = keys[role]
    failures = []
    for operation in operations(make_app(ctx)):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES[role], deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


# --- 2. bad requests to every write route change nothing ------------------------------------

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WRITE_EXAMPLES = 50  # per route
NOT_JSON = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/xml")
# Columns a request may change whatever becomes of it, left out of the checksum:
# - api_keys.last_used_at: a key's last use, written when it authenticates (at most once a
#   minute, auth.TOUCH_INTERVAL), before the handler looks at the body.
# The failed-authentication throttle and the metrics live in memory, not in a table.
VOLATILE = {"api_keys": frozenset({"last_used_at"})}
JSON_TYPES = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string"}
JSON_TYPES.update({list: "array", dict: "object"})

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
queries = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=16), max_size=3).map(urlencode)


def checksum(ctx: Context) -> dict[str, str]:
    """A digest of every row of every table (but the VOLATILE columns), by table."""
    out = {}
    for table in [row["name"] for row in ctx.db.query("SELECT name FROM sqlite_master WHERE type = 'table'")]:
        skip = VOLATILE.get(table, frozenset())
        rows = ctx.db.query(f'SELECT * FROM "{table}"')
        digest = hashlib.sha256()
        for line in sorted(repr(sorted((k, v) for k, v in row.items() if k not in skip)) for row in rows):
            digest.update(line.encode())
        out[table] = digest.hexdigest()
    return out


def is_object(raw: bytes) -> bool:
    """Whether `raw` parses as a JSON object (as the server's json.loads would read it)."""
    try:
        return isinstance(json.loads(raw), dict)
    except (ValueError, RecursionError):
        return False


def json_type(value: Any) -> str:
    return JSON_TYPES[type(value)]


def wrong_for(schema: dict[str, Any]) -> Any:
    """Values the property's schema does not allow: another JSON type, or outside its enum."""
    kinds = schema.get("type")
    allowed = {kinds} if isinstance(kinds, str) else set(kinds or ())
    if "number" in allowed:
        allowed.add("integer")
    enum = schema.get("enum")
    return json_values.filter(lambda v: json_type(v) not in allowed or (enum is not None and v not in enum))


def body_fields(spec: dict[str, Any], method: str, path: str) -> dict[str, dict[str, Any]]:
    """The documented body's properties that name a type (each checked by the route)."""
    node: Any = spec["paths"].get(path, {}).get(method.lower(), {})
    node = node.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return {
        name: prop for name, prop in node.get("properties", {}).items() if "type" in prop or "enum" in prop
    }


@st.composite
def bad_requests(draw: Any, fields: dict[str, dict[str, Any]]) -> tuple[bytes, str, int]:
    """(body, content type, the status it must get)."""
    kinds = ["not an object", "not JSON", "unknown field"] + (["wrong value"] if fields else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "not an object":
        raw = draw(st.binary(min_size=1, max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
        assume(raw.strip() and not is_object(raw))
        return raw, "application/json", 400
    if kind == "not JSON":
        raw = draw(st.binary(min_size=1, max_size=64) | st.just(b'{"a": 1}'))
        assume(raw.strip())
        return raw, draw(st.sampled_from(NOT_JSON)), 415
    if kind == "unknown field":
        body = draw(st.dictionaries(st.sampled_from(sorted(fields) or ["x"]), json_values, max_size=2))
        body = {name: value for name, value in body.items() if name in fields}
        body["zz_" + draw(st.text(max_size=10))] = draw(json_values)  # no route takes a zz_ field
        return json.dumps(body).encode(), "application/json", 422
    name = draw(st.sampled_from(sorted(fields)))
    return json.dumps({name: draw(wrong_for(fields[name]))}).encode(), "application/json", 422


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: Any, fakes: Any) -> Iterator[tuple[Context, str, dict[str, str]]]:
    """A context with a thing of each kind a write route names, so a request that got past its
    body's checks would change something."""
    cfg = make_config(tmp_path_factory.mktemp("writes"), fakes)
    try:
        with opened(cfg) as ctx:
            key, _ = auth.create_key(ctx.db, "fuzzer", "admin")
            with ctx.db.write() as conn:
                conn.execute(
                    "INSERT INTO artists (spotify_id, name, since, added_at, next_scan_at) "
                    "VALUES (?, 'A', '2020-01-01', 0, 0)",
                    ("a" * 22,),
                )
                conn.execute(
                    "INSERT INTO playlists (spotify_id, name, followed_at, next_sync_at) "
                    "VALUES (?, 'P', 0, 0)",
                    ("p" * 22,),
                )
                item, _ = wanted.want(
                    conn, wanted.Track("Song", ("A",), spotify_id="t" * 22), wanted.Source("manual")
                )
            transfers.block(ctx.db, "some one/else", "fuzz")
            victim = auth.create_key(ctx.db, "victim", "read")[1]
            params = {
                "artist_id": str(ctx.db.scalar("SELECT id FROM artists")),
                "playlist_id": str(ctx.db.scalar("SELECT id FROM playlists")),
                "item_id": str(item.id),
                "key_id": str(victim["id"]),
                "username": quote("some one/else", safe=""),
                "name": "job_housekeeping",
            }
            yield ctx, key, params
    finally:
        reset_fakes(fakes)


def write_routes(app: Any) -> list[tuple[str, str]]:
    return [
        (route.method, route.rule)
        for route in app.routes
        if route.method in WRITES and route.rule.startswith("/api/v1/")
    ]


def test_bad_requests_to_every_write_route_get_a_4xx_and_change_nothing(
    seeded: tuple[Context, str, dict[str, str]],
) -> None:
    ctx, key, params = seeded
    app = make_app(ctx)
    client = Client(app, key)
    with open(SPEC, encoding="utf-8") as handle:
        spec = json.load(handle)
    client.get("/api/v1/system/status")  # the key's first use is written now, not mid-test
    routes = write_routes(app)
    assert len(routes) > 30
    failures: list[str] = []
    for method, rule in routes:
        path = re.sub(r"<([A-Za-z_]\w*)(?::[^>]*)?>", lambda m: params.get(m.group(1), "1"), rule)
        documented = re.sub(r"<([A-Za-z_]\w*)(?::[^>]*)?>", r"{\1}", rule)

        def check(
            raw: bytes, ctype: str, status: int, query: str, *, method: str = method, path: str = path
        ) -> None:
            before = checksum(ctx)
            url = f"{path}?{query}" if query else path
            resp = client.request(method, url, body=raw, headers={"Content-Type": ctype})
            changed = sorted(table for table, digest in checksum(ctx).items() if before.get(table) != digest)
            assert resp.status == status, (
                f"{status} expected, got {resp.status}: {raw[:80]!r} ({ctype}) {resp.body[:200]!r}"
            )
            assert set(resp.json["error"]) == {"code", "message", "details"}
            assert not changed, f"{raw[:80]!r} ({ctype}) changed {changed}"

        @given(case=bad_requests(body_fields(spec, method, documented)), query=queries)
        @settings(
            max_examples=WRITE_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: tuple[bytes, str, int], query: str) -> None:
            check(*case, query)

        try:
            run()
            check(b"{" + b" " * MAX_BODY + b"}", "application/json", 413, "")
        except Exception as exc:  # collect every route's failure, then report them all
            failures.append(f"{method} {rule}: {exc}")
    assert not failures, f"{len(failures)} of {len(routes)} write routes:\n\n" + "\n\n".join(failures)
