"""Routes for managing API keys (admin only); the same operations as `harmony apikey`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

from . import auth
from .errors import BadInput
from .web_base import json_body, page_params, paged, path_id

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

    app.route("/api/v1/keys", "GET", list_keys, role="admin")
    app.route("/api/v1/keys", "POST", create, role="admin")
    app.route("/api/v1/keys/<key_id>", "DELETE", revoke, role="admin")
