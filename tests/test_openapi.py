"""docs/openapi.json is kept by hand; these tests hold it to the app's route table.

Adding a route without documenting it (or documenting one that does not exist, or giving an
operation the wrong `x-role`) fails here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from harmony import __version__, auth

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load_spec() -> dict[str, Any]:
    with open(os.path.join(ROOT, "docs", "openapi.json"), encoding="utf-8") as handle:
        return json.load(handle)  # type: ignore[no-any-return]


def openapi_path(rule: str) -> str:
    """Bottle's `/jobs/<job_id>` or `/x/<id:int>` or `/static/<name:path>` as `/jobs/{job_id}`."""
    return re.sub(r"<([A-Za-z_][A-Za-z0-9_]*)(?::[^>]*)?>", r"{\1}", rule)


def route_table(app: Any) -> dict[tuple[str, str], str | None]:
    return {(r.method.upper(), openapi_path(r.rule)): r.config.get("role") for r in app.routes}


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def test_openapi_path_conversion() -> None:
    assert openapi_path("/api/v1/jobs/<job_id>") == "/api/v1/jobs/{job_id}"
    assert openapi_path("/api/v1/keys/<id:int>/revoke") == "/api/v1/keys/{id}/revoke"
    assert openapi_path("/static/<filename:path>") == "/static/{filename}"
    assert openapi_path("/a/<x:re:[0-9]+>/<y>") == "/a/{x}/{y}"


# Every route of the app is in the document with its role: tests/test_route_drift.py.


def test_the_package_carries_the_document() -> None:
    """The app serves harmony/openapi.json (package data, so a zipapp has it): a copy of this one."""
    with (
        open(os.path.join(ROOT, "harmony", "openapi.json"), "rb") as packaged,
        open(os.path.join(ROOT, "docs", "openapi.json"), "rb") as documented,
    ):
        assert packaged.read() == documented.read(), "run `make docs` (it copies docs/openapi.json)"


def test_the_app_serves_the_document(app: Any, keys: dict[str, str]) -> None:
    from client import Client

    served = Client(app, keys["read"]).get("/api/v1/openapi.json")
    assert served.status == 200 and served.headers["content-type"] == "application/json"
    assert served.json == load_spec()
    assert Client(app).get("/api/v1/openapi.json").status == 401


BODILESS = {"204", "303", "304"}


def test_every_response_has_a_schema() -> None:
    spec = load_spec()
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            response = resolve(spec, response["$ref"]) if "$ref" in response else response
            if status in BODILESS:
                assert "content" not in response, f"{method} {path} {status} has no body"
                continue
            assert response.get("content"), f"{method} {path} {status} has no content"
            for media, content in response["content"].items():
                assert "schema" in content, f"{method} {path} {status} {media} has no schema"


def test_every_write_route_takes_a_json_body_and_documents_its_refusals() -> None:
    """One body rule for every change: 400 not a JSON object, 413 too large, 415 not JSON, 422 a
    wrong field; a route without a body documents the empty one it accepts."""
    for method, path, operation in operations(load_spec()):
        if not path.startswith("/api/") or method not in ("POST", "PUT", "PATCH", "DELETE"):
            continue
        assert "application/json" in operation["requestBody"]["content"], f"{method} {path}"
        for status in ("400", "413", "415", "422"):
            assert status in operation["responses"], f"{method} {path} should document {status}"


def test_lists_are_pages() -> None:
    """Every list under /api/ answers a Page: `items`, `next_cursor` (and `total` where cheap)."""
    spec = load_spec()
    for method, path, operation in operations(spec):
        content = operation["responses"].get("200", {}).get("content", {}).get("application/json", {})
        schema = resolve_all(spec, [content.get("schema", {})])[0]
        parts = resolve_all(spec, schema.get("allOf", [schema]))
        items = [p.get("properties", {}).get("items", {}).get("type") for p in parts]
        if method == "GET" and path.startswith("/api/") and "array" in items:
            assert spec["components"]["schemas"]["Page"] in parts, f"{path} should be a Page"


def test_roles_and_security_agree() -> None:
    for method, path, operation in operations(load_spec()):
        role = operation.get("x-role")
        assert role is None or role in auth.ROLES, f"{method} {path}: unknown role {role!r}"
        schemes = {name for requirement in operation.get("security", []) for name in requirement}
        if role:
            assert schemes == {"apiKey", "bearer"}, f"{method} {path} needs a key: list both schemes"
            for status in ("401", "403"):
                assert status in operation["responses"], f"{method} {path} should document {status}"


def test_metrics_role_follows_the_option(tmp_path: Any) -> None:
    """/metrics is open by default (no x-role) and takes a read key with metrics.require_key."""
    from conftest import make_config

    from harmony.context import opened
    from harmony.web import make_app

    with opened(make_config(tmp_path, metrics_require_key="true")) as context:
        assert route_table(make_app(context))[("GET", "/metrics")] == "read"
    operation = load_spec()["paths"]["/metrics"]["get"]
    assert "x-role" not in operation
    assert {} in operation["security"], "/metrics must also allow no key"


def test_document_is_well_formed() -> None:
    spec = load_spec()
    assert spec["openapi"].startswith("3.1.")
    assert spec["info"]["version"] == __version__
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    error = spec["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(error["required"]) == {"code", "message", "details"}
    operation_ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(operation_ids) == len(set(operation_ids)), "operationId must be unique"
    for method, path, operation in operations(spec):
        assert operation["responses"], f"{method} {path} has no responses"
        parameters = resolve_all(spec, operation.get("parameters", []))
        declared = {p["name"] for p in parameters if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), f"{method} {path}: path parameters"


def resolve_all(spec: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [resolve(spec, item["$ref"]) if "$ref" in item else item for item in items]


def resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


@pytest.mark.parametrize("ref", sorted(set(refs(load_spec()))))
def test_every_reference_resolves(ref: str) -> None:
    resolve(load_spec(), ref)


def test_error_codes_cover_the_errors_harmony_raises() -> None:
    from harmony import errors

    error = load_spec()["components"]["schemas"]["Error"]["properties"]["error"]
    documented = set(error["properties"]["code"]["enum"])
    http_errors = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.HarmonyError)
    }
    # config and database_too_new stop the CLI; they never reach an HTTP response.
    assert http_errors - {"config", "database_too_new"} <= documented


def test_the_settings_body_names_exactly_the_live_options() -> None:
    from harmony import config

    body = load_spec()["components"]["schemas"]["SettingsChange"]
    assert set(body["propertyNames"]["enum"]) == {option.key for option in config.OPTIONS if option.live}
