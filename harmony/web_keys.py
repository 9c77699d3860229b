"""Routes for managing API keys (admin only); the same operations as `harmony apikey`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

from . import auth
from .errors import BadInput
from .web import json_body, page, page_params

if TYPE_CHECKING:
    from .context import Context


def register(app: bottle.Bottle, ctx: Context) -> None:
    db = ctx.db

    def list_keys() -> dict[str, Any]:
        limit, cursor = page_params()
        return page(auth.list_keys(db, cursor, limit + 1), limit)

    def create() -> Any:
        body = json_body()
        unknown = sorted(set(body) - {"name", "role"})
        if unknown:
            raise BadInput(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
        name, role = body.get("name"), body.get("role", "read")
        if not isinstance(name, str) or not isinstance(role, str):
            raise BadInput("name and role must be strings")
        key, row = auth.create_key(db, name, role)
        bottle.response.status = 201
        return {**row, "key": key}

    def revoke(key_id: int) -> dict[str, Any]:
        return auth.revoke_key(db, key_id)

    app.route("/api/v1/keys", "GET", list_keys, role="admin")
    app.route("/api/v1/keys", "POST", create, role="admin")
    app.route("/api/v1/keys/<key_id:int>", "DELETE", revoke, role="admin")
