"""docs/openapi.json agrees with the app: schemathesis fuzzes every documented operation in-process.

Every generated request (valid per the document, and made-invalid variants) must get an answer
the document promises: no 5xx, a documented status, a documented content type and a body that
matches its schema. The operations run with an admin key against the session's fakes, so the
readiness checks pass and Spotify is configured.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from conftest import make_config, reset_fakes
from hypothesis import HealthCheck, given, settings

from harmony import auth
from harmony.context import Context, opened
from harmony.web import make_app

SPEC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "openapi.json")
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: Any, fakes: Any) -> Iterator[tuple[Context, str]]:
    # A throttle that never trips: the fuzzer sends bad credentials on purpose.
    cfg = make_config(tmp_path_factory.mktemp("fuzz"), fakes, auth_failure_limit="100000")
    try:
        with opened(cfg) as ctx:
            ctx.health.probe()
            key, _ = auth.create_key(ctx.db, "fuzzer", "admin")
            yield ctx, key
    finally:
        reset_fakes(fakes)


def operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_path(SPEC)
    schema.app = app
    # Revoking keys would revoke the fuzzer's own; tests/test_web.py covers that route.
    schema = schema.exclude(path="/api/v1/keys/{key_id}", method="DELETE")
    schema = schema.exclude(path="/ui/keys/{key_id}/revoke", method="POST")
    # The event stream is a long-lived response: it ends only when its client leaves or the
    # server stops, and an in-process call never leaves. tests/test_ui.py covers it.
    schema = schema.exclude(path="/api/v1/events/stream", method="GET")
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_answers_as_documented(fuzzed: tuple[Context, str]) -> None:
    ctx, key = fuzzed
    failures = []
    for operation in operations(make_app(ctx)):

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
