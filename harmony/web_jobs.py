"""Routes for the job queue and the timer wheel: look with a read key, act with an operator key.

    GET  /api/v1/jobs                 ?state=&type=&limit=&cursor=   one page, by ascending id
    GET  /api/v1/jobs/stats           totals by state and by type
    GET  /api/v1/jobs/{id}            one job
    POST /api/v1/jobs/dead/requeue    {"ids": [...]} or {"type": "..."}: dead jobs back to ready
    POST /api/v1/jobs/dead/purge      {"ids": [...]} or {"type": "..."}: dead jobs deleted
    GET  /api/v1/tasks                the wheel's tasks, their schedule and last outcome
    POST /api/v1/tasks/{name}/run     run a task at the wheel's next step (202)

The jobs page (the UI section at the end):

    GET  /ui/jobs                     ?state=&type=&cursor=  totals, one page of jobs, the tasks
    POST /ui/jobs/requeue             dead jobs back to ready (form: ids, or type)
    POST /ui/jobs/purge               dead jobs deleted (form: ids, or type)
    POST /ui/tasks/{name}/run         run a task now

A job type is known if a handler is registered for it or a job of that type exists. Unknown
types, malformed ids and bodies get a 4xx and change nothing (the queue checks every id
before it moves any).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse

from .errors import BadInput, Invalid, NotFound
from .jobs import MAX_BATCH, STATES, TYPE_PATTERN
from .web_base import (
    MAX_ID,
    action,
    choice_param,
    encode_cursor,
    form_list,
    form_text,
    json_body,
    listed,
    page_params,
    paged,
    path_id,
    render,
    str_param,
)

if TYPE_CHECKING:
    from .context import Context


def register(app: bottle.Bottle, ctx: Context) -> None:
    queue, wheel = ctx.queue, ctx.wheel

    def known_type(value: Any, error: type[BadInput] | type[Invalid] = BadInput, **where: str) -> str:
        """A job type with a handler or a job; `error` (with `where`, naming the parameter or
        field) otherwise."""
        if not isinstance(value, str) or not TYPE_PATTERN.match(value):
            raise error("job type must be a string matching [a-z][a-z0-9_.:-]{0,63}", **where)
        if value not in ctx.workers.handlers and not queue.has_type(value):
            known = sorted(ctx.workers.handlers)
            raise error(f"unknown job type {value!r}", type=value, known=known, **where)
        return value

    def selection() -> dict[str, Any]:
        """The body of requeue and purge: exactly one of `ids` (1..MAX_BATCH integers) or `type`."""
        body = json_body(allowed={"ids", "type"})
        if ("ids" in body) == ("type" in body):
            raise Invalid('give either "ids" (a list of job ids) or "type"', fields=["ids", "type"])
        if "type" in body:
            return {"type": known_type(body["type"], Invalid, field="type")}
        ids = body["ids"]
        if not isinstance(ids, list) or not ids or len(ids) > MAX_BATCH:
            raise Invalid(f'"ids" must be a list of 1 to {MAX_BATCH} job ids', field="ids")
        if not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_ID for i in ids):
            raise Invalid('"ids" must hold positive integers (at most 2^63 - 1)', field="ids")
        return {"ids": ids}

    def list_jobs() -> dict[str, Any]:
        limit, after = page_params()
        state = choice_param("state", STATES)
        raw_type = str_param("type", 64)
        job_type = known_type(raw_type, parameter="type") if raw_type else None
        rows = queue.list_jobs(state=state, type=job_type, limit=limit + 1, after=after[0] if after else 0)
        total = None if after is not None else count(state, job_type)
        return paged(rows, limit, lambda job: (job.id,), total=total)

    def count(state: str | None, job_type: str | None) -> int:
        """The jobs a filter selects, from the totals the metrics read too (one grouped count)."""
        stats = queue.stats()
        by_state = stats["by_type"].get(job_type, {}) if job_type else stats["by_state"]
        return int(by_state.get(state, 0)) if state else int(sum(by_state.values()))

    def stats() -> dict[str, Any]:
        return {**queue.stats(), "handlers": sorted(ctx.workers.handlers)}

    def get_job(job_id: str) -> dict[str, Any]:
        number = path_id(job_id, "job_id")
        job = queue.get(number)
        if job is None:
            raise NotFound(f"no job {number}", id=number)
        return job.to_dict()

    def requeue() -> dict[str, Any]:
        ids = queue.requeue(**selection())
        return {"requeued": ids, "count": len(ids)}

    def purge() -> dict[str, Any]:
        ids = queue.purge(**selection())
        return {"purged": ids, "count": len(ids)}

    def tasks() -> dict[str, Any]:
        return listed(wheel.tasks(), *page_params())

    def run_task(name: str) -> HTTPResponse:
        json_body(allowed=())
        wheel.trigger(name)
        return HTTPResponse({"task": name, "triggered": True}, 202)

    # --- pages (the web UI) ------------------------------------------------------------------

    def jobs_page() -> str:
        limit, after = page_params()
        state = choice_param("state", STATES)
        raw_type = str_param("type", 64)
        job_type = known_type(raw_type) if raw_type else None
        rows = queue.list_jobs(state=state, type=job_type, limit=limit + 1, after=after[0] if after else 0)
        more = len(rows) > limit
        rows = rows[:limit]
        stats = queue.stats()
        return render(
            "jobs",
            title="Jobs",
            section="jobs",
            stats=stats,
            jobs=rows,
            state=state,
            job_type=job_type,
            states=STATES,
            types=sorted(set(ctx.workers.handlers) | set(stats["by_type"])),
            tasks=wheel.tasks(),
            params={"state": state, "type": job_type},
            next_cursor=encode_cursor((rows[-1].id,)) if more and rows else None,
            paged=after is not None,
        )

    def chosen_dead() -> dict[str, Any]:
        """The form of requeue and purge: the checked `ids`, or a `type` for all its dead jobs."""
        job_type = form_text("type", 64)
        if job_type:
            return {"type": known_type(job_type)}
        raw = form_list("ids", MAX_BATCH, 20)
        if not raw:
            raise BadInput("choose at least one dead job")
        if not all(r.isascii() and r.isdigit() and 0 < int(r) <= MAX_ID for r in raw):
            raise BadInput("ids must be job ids", field="ids")
        return {"ids": [int(r) for r in raw]}

    def requeue_page() -> Any:
        return action(
            "/ui/jobs?state=dead", lambda: f"Requeued {len(queue.requeue(**chosen_dead()))} job(s)."
        )

    def purge_page() -> Any:
        return action("/ui/jobs?state=dead", lambda: f"Purged {len(queue.purge(**chosen_dead()))} job(s).")

    def run_task_page(name: str) -> Any:
        def act() -> str:
            wheel.trigger(name)
            return f"Task {name} runs now."

        return action("/ui/jobs", act)

    app.route("/api/v1/jobs", "GET", list_jobs, role="read")
    app.route("/api/v1/jobs/stats", "GET", stats, role="read")
    app.route("/api/v1/jobs/<job_id>", "GET", get_job, role="read")
    app.route("/api/v1/jobs/dead/requeue", "POST", requeue, role="operator")
    app.route("/api/v1/jobs/dead/purge", "POST", purge, role="operator")
    app.route("/api/v1/tasks", "GET", tasks, role="read")
    app.route("/api/v1/tasks/<name>/run", "POST", run_task, role="operator")
    app.route("/ui/jobs", "GET", jobs_page, role="read")
    app.route("/ui/jobs/requeue", "POST", requeue_page, role="operator")
    app.route("/ui/jobs/purge", "POST", purge_page, role="operator")
    app.route("/ui/tasks/<name>/run", "POST", run_task_page, role="operator")
