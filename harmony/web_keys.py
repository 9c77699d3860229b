"""Routes for managing API keys (admin only); the same operations as `harmony apikey`.

A key may be created with an expiry (`expires_in` seconds or `expires_at`), and rotated:
`POST /api/v1/keys/{id}/rotate` creates its successor (shown once) and leaves the old key
working until it is revoked or its `grace` ends.

The keys page (the UI section at the end): `GET /ui/keys` lists them, `POST /ui/keys` creates
one and shows it once (the page is not stored anywhere), `POST /ui/keys/{id}/rotate` creates
a successor and shows it once, `POST /ui/keys/{id}/revoke` revokes one, which also ends the
sessions logged in with it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse

from . import auth
from .errors import BadInput, HarmonyError, Invalid
from .web_base import action, encode_cursor, form_text, json_body, page_params, paged, path_id, render

if TYPE_CHECKING:
    from .context import Context

# The lifetimes and grace periods the keys page offers (form value -> seconds; "" is none).
FORM_LIFETIMES = {"": None, "30d": 30 * 86400.0, "90d": 90 * 86400.0, "365d": 365 * 86400.0}
FORM_GRACES = {"": None, "0": 0.0, "1h": 3600.0, "1d": 86400.0, "7d": 7 * 86400.0}


def _expiry(body: dict[str, Any], now: float) -> float | None:
    """The expiry a body asks for: `expires_in` (seconds from now) or `expires_at` (Unix
    seconds), at most one of them; None when neither. Invalid naming the field otherwise."""
    if body.get("expires_in") is not None and body.get("expires_at") is not None:
        raise Invalid("give expires_in or expires_at, not both", field="expires_at")
    try:
        seconds = body.get("expires_in")
        if seconds is not None:
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
                raise BadInput("expires_in must be a positive number of seconds", field="expires_in")
            return auth.valid_expiry(now + seconds, now, "expires_in")
        return auth.valid_expiry(body.get("expires_at"), now)
    except BadInput as exc:
        raise Invalid(exc.message, **exc.details) from None


def _form_choice(name: str, choices: dict[str, float | None]) -> float | None:
    value = form_text(name, 10) or ""
    if value not in choices:
        raise BadInput(f"{name} must be one of the offered choices", field=name)
    return choices[value]


def register(app: bottle.Bottle, ctx: Context) -> None:
    db = ctx.db

    def list_keys() -> dict[str, Any]:
        limit, after = page_params()
        return paged(auth.list_keys(db, after[0] if after else 0, limit + 1), limit)

    def create() -> Any:
        body = json_body(allowed={"name", "role", "expires_in", "expires_at"})
        name, role = body.get("name"), body.get("role", "read")
        if role not in auth.ROLES:
            raise Invalid(f"role must be one of {', '.join(auth.ROLES)}", field="role")
        try:
            name = auth.valid_name(name)
        except BadInput as exc:  # the key form shows it as a 400; a body's wrong field is a 422
            raise Invalid(exc.message, **exc.details) from None
        now = time.time()
        key, row = auth.create_key(db, name, role, expires_at=_expiry(body, now), now=now)
        bottle.response.status = 201
        bottle.response.set_header("Location", f"/api/v1/keys/{row['id']}")
        return {**row, "key": key}

    def show(key_id: str) -> dict[str, Any]:
        return auth.get_key(db, path_id(key_id, "key_id"))

    def rotate(key_id: str) -> Any:
        ident = path_id(key_id, "key_id")
        body = json_body(allowed={"grace", "expires_in", "expires_at"})
        grace = body.get("grace")
        if grace is not None and (
            isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= auth.MAX_GRACE
        ):
            raise Invalid("grace must be a number of seconds from 0 to a year", field="grace")
        now = time.time()
        key, row, old = auth.rotate_key(db, ident, grace_s=grace, expires_at=_expiry(body, now), now=now)
        bottle.response.status = 201
        bottle.response.set_header("Location", f"/api/v1/keys/{row['id']}")
        return {**row, "key": key, "previous": old}

    def revoke(key_id: str) -> HTTPResponse:
        json_body(allowed=())
        auth.revoke_key(db, path_id(key_id, "key_id"))
        return HTTPResponse(status=204)

    # --- pages (the web UI) ------------------------------------------------------------------

    def keys_page(created: dict[str, Any] | None = None, error: str | None = None) -> str:
        limit, after = page_params()
        rows = auth.list_keys(db, after[0] if after else 0, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return render(
            "keys",
            title="API keys",
            section="keys",
            keys=rows,
            roles=auth.ROLES,
            lifetimes=[key for key in FORM_LIFETIMES if key],
            graces=[key for key in FORM_GRACES if key],
            active=auth.is_active,
            successors=auth.successors(db),
            created=created,
            error=error,
            params={},
            next_cursor=encode_cursor((rows[-1]["id"],)) if more and rows else None,
            paged=after is not None,
        )

    def create_page() -> str:
        try:
            role = form_text("role", 20) or "read"
            lifetime = _form_choice("expires", FORM_LIFETIMES)
            now = time.time()
            expires_at = now + lifetime if lifetime else None
            name = auth.valid_name(form_text("name", 200) or "")
            key, row = auth.create_key(db, name, role, expires_at=expires_at, now=now)
        except HarmonyError as exc:
            bottle.response.status = exc.status
            return keys_page(error=exc.message)
        bottle.response.status = 201
        return keys_page(created={**row, "key": key})

    def rotate_page(key_id: str) -> str:
        try:
            grace = _form_choice("grace", FORM_GRACES)
            key, row, old = auth.rotate_key(db, path_id(key_id, "key_id"), grace_s=grace)
        except HarmonyError as exc:
            bottle.response.status = exc.status
            return keys_page(error=exc.message)
        bottle.response.status = 201
        return keys_page(created={**row, "key": key, "previous": old})

    def revoke_page(key_id: str) -> Any:
        def act() -> str:
            row = auth.revoke_key(db, path_id(key_id, "key_id"))
            return f"Revoked key {row['name']}; its sessions have ended."

        return action("/ui/keys", act)

    app.route("/api/v1/keys", "GET", list_keys, role="admin")
    app.route("/api/v1/keys", "POST", create, role="admin")
    app.route("/api/v1/keys/<key_id>", "GET", show, role="admin")
    app.route("/api/v1/keys/<key_id>", "DELETE", revoke, role="admin")
    app.route("/api/v1/keys/<key_id>/rotate", "POST", rotate, role="admin")
    app.route("/ui/keys", "GET", keys_page, role="admin")
    app.route("/ui/keys", "POST", create_page, role="admin")
    app.route("/ui/keys/<key_id>/rotate", "POST", rotate_page, role="admin")
    app.route("/ui/keys/<key_id>/revoke", "POST", revoke_page, role="admin")
