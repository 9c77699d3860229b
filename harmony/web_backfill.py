"""Routes for backfill: start a run with an operator key, follow runs with a read key.

    POST /api/v1/backfill             {"write_tags"?: bool, "retry_unmatched"?: bool}: start a run (202)
    GET  /api/v1/backfill/jobs        ?state=&limit=&cursor=   the runs, newest first
    GET  /api/v1/backfill/jobs/{id}   one run and its progress

A second start while a run is running is 409 (`conflict`); without a Spotify client id it is
409 (`not_configured`). Unknown body fields and values that are not booleans are 422.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse

from . import backfill
from .errors import Invalid
from .web_base import choice_param, json_body, page_params, paged, path_id

if TYPE_CHECKING:
    from .context import Context

FIELDS = ("write_tags", "retry_unmatched")


def register(app: bottle.Bottle, ctx: Context) -> None:
    db, backfiller = ctx.db, ctx.backfill

    def start() -> HTTPResponse:
        body = json_body(allowed=FIELDS)
        for name in FIELDS:
            if name in body and not isinstance(body[name], bool):
                raise Invalid(f"{name} must be true or false", field=name)
        run = backfiller.start(
            write_tags=body.get("write_tags"), retry_unmatched=body.get("retry_unmatched", False)
        )
        return HTTPResponse(run.to_dict(), 202, Location=f"/api/v1/backfill/jobs/{run.id}")

    def list_runs() -> dict[str, Any]:
        limit, after = page_params()
        state = choice_param("state", backfill.STATES)
        rows = backfill.list_runs(db, after=after, limit=limit + 1, state=state)
        return paged(rows, limit, lambda run: (run.id,))

    def get_run(run_id: str) -> dict[str, Any]:
        return backfill.get_run(db, path_id(run_id, "run_id")).to_dict()

    app.route("/api/v1/backfill", "POST", start, role="operator")
    app.route("/api/v1/backfill/jobs", "GET", list_runs, role="read")
    app.route("/api/v1/backfill/jobs/<run_id>", "GET", get_run, role="read")
