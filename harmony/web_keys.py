"""Routes for managing API keys (admin only); the same operations as `harmony apikey`.

The keys page (the UI section at the end): `GET /ui/keys` lists them, `POST /ui/keys` creates
one and shows it once (the page is not stored anywhere), `POST /ui/keys/{id}/revoke` revokes
one, which also ends the sessions logged in with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

from . import auth
from .errors import BadInput, HarmonyError
from .web_base import action, encode_cursor, form_text, json_body, page_params, paged, path_id, render

if TYPE_CHECKING:
    from .context import Context


def register(app: bottle.Bottle, ctx: Context) -> None:
    db = ctx.db

    def list_keys() -> dict[str, Any]:
        limit, after = page_params()
        return paged(auth.list_keys(db, after[0] if after else 0, limit + 1), limit)

    def create() -> Any:
        body = json_body(allowed={"name", "role"})
        name, role = body.get("name"), body.get("role", "read")
        if not isinstance(role, str):
            raise BadInput("role must be a string", field="role")
        key, row = auth.create_key(db, auth.valid_name(name), role)
        bottle.response.status = 201
        bottle.response.set_header("Location", f"/api/v1/keys/{row['id']}")
        return {**row, "key": key}

    def revoke(key_id: str) -> dict[str, Any]:
        return auth.revoke_key(db, path_id(key_id, "key_id"))

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
            created=created,
            error=error,
            params={},
            next_cursor=encode_cursor((rows[-1]["id"],)) if more and rows else None,
            paged=after is not None,
        )

    def create_page() -> str:
        try:
            role = form_text("role", 20) or "read"
            key, row = auth.create_key(db, auth.valid_name(form_text("name", 200) or ""), role)
        except HarmonyError as exc:
            bottle.response.status = exc.status
            return keys_page(error=exc.message)
        bottle.response.status = 201
        return keys_page(created={**row, "key": key})

    def revoke_page(key_id: str) -> Any:
        def act() -> str:
            row = auth.revoke_key(db, path_id(key_id, "key_id"))
            return f"Revoked key {row['name']}; its sessions have ended."

        return action("/ui/keys", act)

    app.route("/api/v1/keys", "GET", list_keys, role="admin")
    app.route("/api/v1/keys", "POST", create, role="admin")
    app.route("/api/v1/keys/<key_id>", "DELETE", revoke, role="admin")
    app.route("/ui/keys", "GET", keys_page, role="admin")
    app.route("/ui/keys", "POST", create_page, role="admin")
    app.route("/ui/keys/<key_id>/revoke", "POST", revoke_page, role="admin")
