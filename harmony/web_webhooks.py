"""Routes for the outbound webhooks (see `webhooks.py`; the URLs are options, not a resource).

POST   /api/v1/webhooks/test     send a `test` event to every configured URL now; each result
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle

from .web_base import json_body

if TYPE_CHECKING:
    from .context import Context


def register(app: bottle.Bottle, ctx: Context) -> None:
    notifier = ctx.webhooks

    def test() -> dict[str, Any]:
        json_body(allowed=())
        results = notifier.test()
        return {"results": results, "ok": all(result["ok"] for result in results)}

    app.route("/api/v1/webhooks/test", "POST", test, role="admin")
