"""The web UI's own pages: login and logout, the dashboard, the activity feed and the system
page; and the static files every page uses.

Each other page family lives with its resource's API routes (`web_watchlist.py` holds the
watchlist pages, and so on), in a section of its own at the end of the module. Every page goes
through `web_base.render` (the strict Content-Security-Policy and the other headers), every
`/ui/` route but the login page needs a session or a key (the guard sends a browser without
one to the login page), and every action is a form POST answered with a 303 (see
`web_base.see_other`), so the whole UI works with script off; htmx only makes it quicker.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import bottle
from bottle import HTTPResponse, request

from . import auth, events, wanted, web_downloads
from .errors import BadInput, Forbidden, TooManyRequests, Unauthorized
from .web_base import (
    LOGIN_PATH,
    SESSION_COOKIE,
    STATIC_DIR,
    clear_session_cookie,
    encode_cursor,
    event_rows,
    form_text,
    int_param,
    local_path,
    page_params,
    render,
    see_other,
    set_session_cookie,
    str_param,
)

if TYPE_CHECKING:
    from .context import Context

CHART_DAYS = 30
DASHBOARD_TRANSFERS = 5  # transfers under way shown on the dashboard; the downloads page has all
ACTIVITY_KINDS = ("item.", "artist.", "release.", "playlist.")


def done_chart(db: Any, now: float) -> dict[str, Any]:
    """Items done per UTC day over the last CHART_DAYS days, as SVG bar geometry: the server
    draws the chart, so the page needs neither script nor inline style."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    first = today - dt.timedelta(days=CHART_DAYS - 1)
    start = dt.datetime.combine(first, dt.time(), dt.UTC).timestamp()
    counts = wanted.done_per_day(db, start)
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range(CHART_DAYS)]
    values = [counts.get(day, 0) for day in days]
    top = max(values) or 1
    width, height, left, bottom = 600, 160, 30, 20
    bar = (width - left) / CHART_DAYS
    bars = []
    for i, (day, n) in enumerate(zip(days, values)):
        h = round((height - bottom - 10) * n / top, 1)
        bars.append(
            {
                "x": round(left + i * bar + 1, 1),
                "y": round(height - bottom - h, 1),
                "w": round(bar - 2, 1),
                "h": h,
                "day": day,
                "n": n,
            }
        )
    return {
        "bars": bars,
        "top": max(values),
        "total": sum(values),
        "width": width,
        "height": height,
        "left": left,
        "bottom": bottom,
        "first": days[0],
        "last": days[-1],
    }


def register(app: bottle.Bottle, ctx: Context) -> None:
    db = ctx.db

    def home() -> None:
        bottle.redirect("/ui/")

    # --- login and logout ------------------------------------------------------------------

    def login_page() -> Any:
        if auth.find_session(db, request.get_cookie(SESSION_COOKIE), idle_s=ctx.config["auth.session_idle"]):
            return HTTPResponse("", 303, Location=local_path(request.query.get("next"), "/ui/"))
        return render("login", title="Log in", next=local_path(request.query.get("next"), "/ui/"))

    def login() -> Any:
        # A login form posted from another site would sign this browser in with someone else's
        # key; browsers say where a form came from.
        if request.environ.get("HTTP_SEC_FETCH_SITE") == "cross-site":
            raise Forbidden("a login must come from Harmony's own login page", reason="cross_site")
        address = request.environ.get("REMOTE_ADDR") or "-"
        wait = ctx.auth_throttle.blocked(address)
        if wait:
            raise TooManyRequests(
                "too many failed logins from this address; try again later", retry_after=round(wait, 1)
            )
        target = local_path(form_text("next", 2000), "/ui/")
        try:
            key = form_text("api_key", 200)
            session_id, _ = auth.open_session(
                db,
                key,
                lifetime_s=ctx.config["auth.session_lifetime"],
                address=address,
                user_agent=request.environ.get("HTTP_USER_AGENT", ""),
            )
        except (Unauthorized, BadInput):
            ctx.auth_throttle.failed(address)
            bottle.response.status = 401
            return render(
                "login", title="Log in", next=target, error="That API key is not valid (or was revoked)."
            )
        set_session_cookie(session_id, ctx.config["auth.session_lifetime"])
        bottle.response.status = 303
        bottle.response.set_header("Location", target)
        return ""

    def logout() -> HTTPResponse:
        auth.close_session(db, request.get_cookie(SESSION_COOKIE))
        clear_session_cookie()
        res = bottle.response.copy(cls=HTTPResponse)
        res.status = 303
        res.set_header("Location", LOGIN_PATH)
        return res

    def end_all_sessions() -> HTTPResponse:
        count = auth.close_all_sessions(db)
        clear_session_cookie()
        return see_other(LOGIN_PATH, f"Ended {count} session(s); everyone logs in again.", back=False)

    # --- pages -------------------------------------------------------------------------------

    def dashboard() -> str:
        now = time.time()
        ready, checks = ctx.health.report()
        counts = wanted.counts_by_state(db)
        moving = ctx.transfers.list_downloads(active=True, limit=DASHBOARD_TRANSFERS + 1)
        config = ctx.config
        return render(
            "dashboard",
            fragments={"live": "_dashboard_live", "dashboard-transfers": "_dashboard_transfers"},
            title="Dashboard",
            section="dashboard",
            now=now,
            ready=ready,
            checks=checks,
            upstreams=[(name, checks.get(name)) for name in ("slskd", "spotify")],
            counts=counts,
            total=sum(counts.values()),
            artists=ctx.watcher.counts(),
            followed=int(db.scalar("SELECT count(*) FROM playlists")),
            stale=ctx.playlists.stale_count(),
            jobs=ctx.queue.stats()["by_state"],
            recent=event_rows(db, events.list_events(db, limit=12)),
            chart=done_chart(db, now),
            budget=ctx.searcher.budget.status(now),
            transfers=moving[:DASHBOARD_TRANSFERS],
            more_transfers=len(moving) > DASHBOARD_TRANSFERS,
            transfer_counts=ctx.transfers.counts(),
            titles=wanted.titles(db, [d.item_id for d in moving if d.item_id]),
            give_up=lambda download: web_downloads.give_up(download, config),
            leaf=web_downloads.leaf,
        )

    def activity() -> str:
        limit, after = page_params()
        kind = str_param("kind", 64)
        if kind is not None and kind not in ACTIVITY_KINDS and not events.KIND.fullmatch(kind):
            raise BadInput("query parameter kind must be an event kind such as item.state", parameter="kind")
        item = int_param("item", None, 1)
        rows = events.list_events(db, after=after, limit=limit + 1, kind=kind, item_id=item)  # type: ignore[arg-type]
        more = len(rows) > limit
        rows = rows[:limit]
        params = {"kind": kind, "item": item, "limit": limit if limit != 50 else None}
        return render(
            "activity",
            title="Activity",
            section="activity",
            rows=event_rows(db, rows),
            kind=kind,
            kinds=ACTIVITY_KINDS,
            params=params,
            next_cursor=encode_cursor((rows[-1].id,)) if more and rows else None,
            paged=after is not None,
        )

    def system() -> str:
        ready, checks = ctx.health.report()
        return render(
            "system",
            title="System",
            section="system",
            ready=ready,
            checks=checks,
            started_at=ctx.started_at,
            schema=db.user_version(),
            data_dir=ctx.config["data.dir"],
            library_dir=ctx.config.library_dir,
            cooldowns=ctx.upstream.cooldowns(),
            sessions=auth.count_sessions(db),
        )

    def static(filename: str) -> Any:
        return bottle.static_file(
            filename, root=STATIC_DIR, headers={"Cache-Control": "public, max-age=3600"}
        )

    app.route("/", "GET", home)
    app.route(LOGIN_PATH, "GET", login_page)
    app.route(LOGIN_PATH, "POST", login)
    app.route("/ui/logout", "POST", logout, role="read")
    app.route("/ui/sessions/end-all", "POST", end_all_sessions, role="admin")
    app.route("/ui/", "GET", dashboard, role="read")
    app.route("/ui/activity", "GET", activity, role="read")
    app.route("/ui/system", "GET", system, role="read")
    app.route("/static/<filename:path>", "GET", static)
