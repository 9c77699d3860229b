"""Every route of the app x every kind of credential -> the status docs/api.md documents.

The routes come from the app's route table, so a new route is covered without touching this
file. The credentials: none, a key of each role, a revoked key, an expired key, and (for
POST, PUT, PATCH and DELETE) an admin's UI session without its CSRF token. The rules are the
table "What each credential gets" in docs/api.md:

- an open route answers the same whatever is sent;
- no credential: 401 under /api/ and on the machine endpoints; a page under /ui/ is a 303 to
  the login page;
- a revoked or expired key: 401;
- a key whose role is too low: 403;
- a key with the role: the handler's own answer, never 401 or 403 (nor a 5xx);
- a session's state-changing request without its CSRF token: 403 (`reason` csrf), whatever
  the handler would have done.

Requests name ids that do not exist and send an empty body, so a role that is met mostly gets a
404, 409 or 422: what matters here is that it got past the guard.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from client import Client, Response
from conftest import make_config, reset_fakes

from harmony import auth
from harmony.context import Context, opened
from harmony.web import make_app
from harmony.web_base import SESSION_COOKIE

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Path parameters: ids that name nothing, and a task, user and file that do not exist.
PARAMS = {"filename": "no-such-file.css", "username": "nobody-here", "name": "no_such_task", "verb": "retry"}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: Any, fakes: Any) -> Iterator[tuple[Context, dict[str, str]]]:
    # Bad credentials are sent on purpose: a throttle that never trips.
    cfg = make_config(tmp_path_factory.mktemp("matrix"), fakes, auth_failure_limit="100000")
    try:
        with opened(cfg) as ctx:
            # The event stream ends at once when the server is stopping, instead of streaming on.
            ctx.stopping.set()
            ctx.health.probe()  # so /ready answers 200: a 5xx anywhere is a failure here
            keys = {role: auth.create_key(ctx.db, f"matrix {role}", role)[0] for role in auth.ROLES}
            revoked, row = auth.create_key(ctx.db, "matrix revoked", "admin")
            auth.revoke_key(ctx.db, row["id"])
            keys["revoked"] = revoked
            columns = {column["name"] for column in ctx.db.query("PRAGMA table_info(api_keys)")}
            if "expires_at" in columns:
                expired, row = auth.create_key(ctx.db, "matrix expired", "admin")
                with ctx.db.write() as conn:
                    conn.execute(
                        "UPDATE api_keys SET expires_at = ? WHERE id = ?", (time.time() - 60, row["id"])
                    )
                keys["expired"] = expired
            yield ctx, keys
    finally:
        reset_fakes(fakes)


def concrete(rule: str) -> str:
    """The route's rule with every path parameter filled in."""
    return re.sub(r"<([A-Za-z_]\w*)(?::[^>]*)?>", lambda m: PARAMS.get(m.group(1), "999999999"), rule)


def send(app: Any, method: str, path: str, *, key: str | None = None, cookie: str | None = None) -> Response:
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
    if method in UNSAFE and path.startswith("/ui/"):
        return Client(app).request(
            method,
            path,
            body=b"",
            key=key or "",
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
    body = b"{}" if method in UNSAFE else None
    return Client(app).request(
        method, path, body=body, key=key or "", headers={**headers, "Content-Type": "application/json"}
    )


def credentials(keys: dict[str, str]) -> list[str]:
    return ["none", *auth.ROLES, "revoked", *(["expired"] if "expired" in keys else [])]


def expected(need: str | None, credential: str, path: str) -> str:
    """What the documented rules promise, as a short description checked by `meets`."""
    if need is None:
        return "same as without a key"
    if credential == "none":
        return "303 to the login page" if path.startswith("/ui/") else "401"
    if credential in ("revoked", "expired"):
        return "401"
    return "past the guard" if auth.role_allows(credential, need) else "403"


def meets(promise: str, resp: Response, baseline: Response | None) -> bool:
    if resp.status >= 500:
        return False
    if promise == "same as without a key":
        return baseline is not None and resp.status == baseline.status
    if promise == "303 to the login page":
        return resp.status == 303 and resp.headers.get("location", "").startswith("/ui/login")
    if promise == "past the guard":
        return resp.status not in (401, 403)
    return resp.status == int(promise)


def test_every_route_answers_every_credential_as_documented(matrix: tuple[Context, dict[str, str]]) -> None:
    ctx, keys = matrix
    app = make_app(ctx)
    failures, cells = [], 0
    routes = [(route.method, route.rule, route.config.get("role")) for route in app.routes]
    for method, rule, need in routes:
        path = concrete(rule)
        baseline = send(app, method, path) if need is None else None
        for credential in credentials(keys):
            resp = send(app, method, path, key=keys.get(credential))
            cells += 1
            promise = expected(need, credential, path)
            if not meets(promise, resp, baseline):
                failures.append(f"{method} {rule} with {credential}: {resp.status}, documented {promise}")
        if method in UNSAFE:
            # An admin's session, fresh (an earlier cell may have ended every session), without
            # its CSRF token.
            session_id, _ = auth.open_session(ctx.db, keys["admin"], lifetime_s=3600)
            resp = send(app, method, path, cookie=session_id)
            cells += 1
            if need is None:
                ok = baseline is not None and resp.status == baseline.status
            else:
                ok = resp.status == 403 and (
                    not path.startswith("/api/") or resp.json["error"]["details"].get("reason") == "csrf"
                )
            if not ok:
                failures.append(f"{method} {rule} with a session without CSRF: {resp.status}, documented 403")
    assert len(routes) > 100 and cells > 6 * len(routes)
    assert not failures, f"{len(failures)} of {cells} cells:\n" + "\n".join(failures)


def test_the_expired_column_is_there(matrix: tuple[Context, dict[str, str]]) -> None:
    """Key expiry exists (harmony/auth.py): the matrix has its column."""
    _, keys = matrix
    assert "expired" in keys


def test_a_session_with_its_csrf_token_gets_past_the_guard(matrix: tuple[Context, dict[str, str]]) -> None:
    """The other side of the CSRF column: the same session with its token is let through."""
    ctx, keys = matrix
    app = make_app(ctx)
    session_id, session = auth.open_session(ctx.db, keys["admin"], lifetime_s=3600)
    resp = Client(app).request(
        "POST",
        "/api/v1/wanted/999999999/skip",
        body=b"{}",
        headers={
            "Cookie": f"{SESSION_COOKIE}={session_id}",
            "X-CSRF-Token": session["csrf_token"],
            "Content-Type": "application/json",
        },
    )
    assert resp.status == 404
