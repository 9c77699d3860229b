"""The web UI in-process: sessions, the CSRF check, roles, every page and every form action.

The browser tests (tests/test_browser.py) drive the same pages through Chromium; these run
everywhere and fast, and hold the rules the guard enforces.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from client import Client, Response
from conftest import make_config

from harmony import auth, events, wanted
from harmony.__main__ import create_server
from harmony.context import opened
from harmony.web_base import CSP, SESSION_COOKIE

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Browser:
    """A client that keeps the session cookie and sends forms with the page's CSRF token."""

    def __init__(self, app: Any, key: str) -> None:
        self.client = Client(app)
        resp = self.client.request(
            "POST", "/ui/login", body=urlencode({"api_key": key}).encode(), headers=FORM
        )
        assert resp.status == 303, resp.text
        self.cookie = resp.headers["set-cookie"].split(";")[0]
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', self.get("/ui/").text).group(1)  # type: ignore[union-attr]

    def get(self, url: str, **headers: str) -> Response:
        return self.client.get(url, headers={"Cookie": self.cookie, **headers})

    def post(
        self, url: str, fields: dict[str, Any] | None = None, *, csrf: str | None = "", **headers: str
    ) -> Response:
        body = dict(fields or {})
        if csrf is not None:
            body["csrf_token"] = csrf or self.csrf
        return self.client.request(
            "POST",
            url,
            body=urlencode(body, doseq=True).encode(),
            headers={"Cookie": self.cookie, **FORM, **headers},
        )


@pytest.fixture
def admin(app: Any, keys: dict[str, str]) -> Browser:
    return Browser(app, keys["admin"])


@pytest.fixture
def reader(app: Any, keys: dict[str, str]) -> Browser:
    return Browser(app, keys["read"])


def an_item(ctx: Any, title: str = "Song", state: str | None = None) -> wanted.Item:
    with ctx.db.write() as conn:
        item, _ = wanted.want(conn, wanted.Track(title=title, artists=("Band",)), wanted.Source("manual"))
        if state:
            wanted.transition(conn, item.id, "searching", "search", "searching")
            item = wanted.transition(conn, item.id, state, "test", f"made {state} by the test")
    return item


# --- sessions ---------------------------------------------------------------------------------


def test_root_and_pages_without_a_session_go_to_the_login_page(anon: Client) -> None:
    assert anon.get("/").headers["location"].endswith("/ui/")
    resp = anon.get("/ui/wanted?state=failed")
    assert resp.status == 303 and resp.headers["location"] == "/ui/login?next=%2Fui%2Fwanted%3Fstate%3Dfailed"
    assert anon.get("/ui/login").status == 200
    assert anon.get("/static/harmony.css").status == 200
    # htmx asking for a fragment is told to go there whole, not handed the login page to swap in
    resp = anon.get("/ui/", headers={"HX-Request": "true"})
    assert resp.status == 401 and resp.headers["hx-redirect"].startswith("/ui/login")


def test_login_sets_a_strict_cookie_and_stores_only_a_hash(app: Any, ctx: Any, keys: dict[str, str]) -> None:
    client = Client(app)
    body = urlencode({"api_key": keys["read"], "next": "/ui/wanted"}).encode()
    resp = client.request("POST", "/ui/login", body=body, headers=FORM)
    assert resp.status == 303 and resp.headers["location"] == "/ui/wanted"
    cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Path=/" in cookie
    assert "Secure" not in cookie
    session_id = cookie.split(";")[0].split("=", 1)[1]
    stored = ctx.db.query("SELECT id_hash FROM sessions")
    assert len(stored) == 1 and session_id not in stored[0]["id_hash"]
    https = client.request("POST", "/ui/login", body=body, headers={**FORM, "X-Forwarded-Proto": "https"})
    assert "Secure" in https.headers["set-cookie"]


def test_login_goes_only_to_pages_of_this_ui(app: Any, keys: dict[str, str]) -> None:
    client = Client(app)
    for target in ("https://evil.example/", "//evil.example/ui/", "/api/v1/keys", "/ui/\\\\evil"):
        body = urlencode({"api_key": keys["read"], "next": target}).encode()
        assert client.request("POST", "/ui/login", body=body, headers=FORM).headers["location"] == "/ui/"


def test_failed_logins_are_refused_then_throttled_per_address(app: Any, ctx: Any) -> None:
    client = Client(app)
    limit = ctx.config["auth.failure_limit"]
    for _ in range(limit):
        resp = client.request("POST", "/ui/login", body=b"api_key=hmy_nope_nope", headers=FORM)
        assert resp.status == 401 and "not valid" in resp.text
    resp = client.request("POST", "/ui/login", body=b"api_key=hmy_nope_nope", headers=FORM)
    assert resp.status == 429 and int(resp.headers["retry-after"]) >= 1


def test_sessions_expire_when_idle_and_absolutely(ctx: Any, keys: dict[str, str]) -> None:
    now = time.time()
    sid, _ = auth.open_session(ctx.db, keys["read"], lifetime_s=1000, now=now)
    assert auth.find_session(ctx.db, sid, idle_s=100, now=now + 90) is not None  # use renews it
    assert auth.find_session(ctx.db, sid, idle_s=100, now=now + 180) is not None
    assert auth.find_session(ctx.db, sid, idle_s=100, now=now + 281) is None  # idle for 101 s
    assert auth.find_session(ctx.db, sid, idle_s=100, now=now + 282) is None  # and gone for good
    sid, _ = auth.open_session(ctx.db, keys["read"], lifetime_s=1000, now=now)
    for step in range(1, 12):  # used every 90 s: never idle, alive until its lifetime ends
        assert auth.find_session(ctx.db, sid, idle_s=100, now=now + 90 * step) is not None
    assert auth.find_session(ctx.db, sid, idle_s=100, now=now + 1000) is None


def test_a_revoked_key_ends_its_sessions(app: Any, ctx: Any, keys: dict[str, str]) -> None:
    row = next(k for k in auth.list_keys(ctx.db) if k["role"] == "operator")
    operator = Browser(app, keys["operator"])
    assert operator.get("/ui/").status == 200
    auth.revoke_key(ctx.db, row["id"])
    assert operator.get("/ui/").status == 303


def test_logout_and_log_out_everywhere(app: Any, ctx: Any, keys: dict[str, str]) -> None:
    one, two, admin = Browser(app, keys["read"]), Browser(app, keys["read"]), Browser(app, keys["admin"])
    resp = one.post("/ui/logout")
    assert resp.status == 303 and resp.headers["location"] == "/ui/login"
    assert one.get("/ui/").status == 303 and two.get("/ui/").status == 200
    assert two.post("/ui/sessions/end-all").status == 403  # an admin's button only
    assert admin.post("/ui/sessions/end-all").status == 303
    assert two.get("/ui/").status == 303 and admin.get("/ui/").status == 303
    assert ctx.db.scalar("SELECT count(*) FROM sessions") == 0


# --- the CSRF check and roles ----------------------------------------------------------------------


def test_a_state_change_without_the_csrf_token_is_refused_and_changes_nothing(
    ctx: Any, admin: Browser
) -> None:
    item = an_item(ctx)
    resp = admin.post(f"/ui/wanted/{item.id}/skip", csrf=None)
    assert resp.status == 403 and "CSRF" in resp.text and resp.headers["content-type"].startswith("text/html")
    assert wanted.get(ctx.db, item.id).state == "wanted"
    # the JSON API with a session cookie is held to the same rule
    resp = admin.client.request("POST", f"/api/v1/wanted/{item.id}/skip", headers={"Cookie": admin.cookie})
    assert resp.status == 403 and resp.json["error"]["details"]["reason"] == "csrf"
    assert wanted.get(ctx.db, item.id).state == "wanted"


def test_another_sessions_csrf_token_is_refused(app: Any, ctx: Any, keys: dict[str, str]) -> None:
    item = an_item(ctx)
    mine, theirs = Browser(app, keys["admin"]), Browser(app, keys["operator"])
    assert mine.csrf != theirs.csrf
    assert mine.post(f"/ui/wanted/{item.id}/skip", csrf=theirs.csrf).status == 403
    assert mine.post(f"/ui/wanted/{item.id}/skip", csrf=None, **{"X-CSRF-Token": theirs.csrf}).status == 403
    assert wanted.get(ctx.db, item.id).state == "wanted"
    # its own token, as a header (what htmx sends) or a form field, is accepted
    assert mine.post(f"/ui/wanted/{item.id}/skip", csrf=None, **{"X-CSRF-Token": mine.csrf}).status == 303
    assert wanted.get(ctx.db, item.id).state == "skipped"
    assert mine.post(f"/ui/wanted/{item.id}/unskip").status == 303
    assert wanted.get(ctx.db, item.id).state == "wanted"


def test_an_api_key_needs_no_csrf_token(ctx: Any, client: Client) -> None:
    item = an_item(ctx)
    assert client.post(f"/ui/wanted/{item.id}/skip").status == 303
    assert wanted.get(ctx.db, item.id).state == "skipped"


def test_pages_hide_what_the_role_cannot_do_and_the_server_refuses_it(ctx: Any, reader: Browser) -> None:
    item = an_item(ctx, state="failed")
    page = reader.get("/ui/wanted").text
    assert "Song" in page and "/retry" not in page and "Want it" not in page
    assert "/ui/keys" not in page  # no nav entry for an admin page
    assert reader.post(f"/ui/wanted/{item.id}/retry").status == 403
    assert wanted.get(ctx.db, item.id).state == "failed"
    assert reader.get("/ui/keys").status == 403
    assert reader.post("/ui/settings", {"log.level": "debug"}).status == 403


# --- pages ---------------------------------------------------------------------------------------

PAGES = (
    "/ui/",
    "/ui/watchlist",
    "/ui/wanted",
    "/ui/wanted/1",
    "/ui/downloads",
    "/ui/library",
    "/ui/library/albums",
    "/ui/library/tracks",
    "/ui/quarantine",
    "/ui/playlists",
    "/ui/playlists/mine",
    "/ui/activity",
    "/ui/jobs",
    "/ui/jobs?state=dead",
    "/ui/settings",
    "/ui/keys",
    "/ui/spotify",
    "/ui/system",
)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_with_the_strict_policy_and_no_inline_code(
    ctx: Any, admin: Browser, path: str
) -> None:
    an_item(ctx, state="failed")
    resp = admin.get(path)
    assert resp.status == 200, resp.text[:500]
    assert resp.headers["content-security-policy"] == CSP and "unsafe" not in CSP
    html = resp.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert re.search(r"<main[^>]*id=\"main\"", html) and 'lang="en"' in html
    for field in re.findall(r"<(?:input|select)\b[^>]*>", html):
        if 'type="hidden"' in field or 'type="checkbox"' in field:
            continue
        ident = re.search(r'id="([^"]+)"', field)
        assert ident and (f'for="{ident.group(1)}"' in html), f"unlabelled field {field}"


def test_untrusted_text_is_escaped(ctx: Any, admin: Browser) -> None:
    an_item(ctx, title="<script>alert(1)</script>")
    ctx.health.add("evil", lambda: "<img src=x onerror=alert(1)>")
    for path in ("/ui/wanted", "/ui/system", "/ui/"):
        text = admin.get(path).text
        assert "<script>alert(1)</script>" not in text and "<img src=x" not in text


def test_the_dashboard_shows_states_health_and_a_chart_of_done_items(ctx: Any, admin: Browser) -> None:
    an_item(ctx, "One")
    with ctx.db.write() as conn:
        item, _ = wanted.want(conn, wanted.Track(title="Two", artists=("Band",)), wanted.Source("manual"))
        wanted.transition(conn, item.id, "done", "imported", "in the library")
    ctx.health.probe()
    html = admin.get("/ui/").text
    assert "/ui/wanted?state=wanted" in html and "Soulseek (slskd)" in html and "logged in as" in html
    bars = re.findall(r'<rect class="bar"[^>]*height="([0-9.]+)"', html)
    assert len(bars) == 30 and float(bars[-1]) > 0 and all(float(b) == 0 for b in bars[:-1])
    assert "Two" in html  # recent activity names the item


def test_the_dashboard_names_a_failing_upstream(ctx: Any, admin: Browser, fakes: Any) -> None:
    fakes.slskd.stop()
    ctx.health.probe()
    html = admin.get("/ui/").text
    assert "failing" in html and "connection refused" in html


def test_filters_live_in_the_url_and_pages_are_bookmarkable(ctx: Any, admin: Browser) -> None:
    for n in range(7):
        an_item(ctx, f"Track {n}", state="not_found" if n % 2 else None)
    page = admin.get("/ui/wanted?state=not_found&limit=2")
    assert page.status == 200 and "3 item(s) match" in page.text and page.text.count('id="item-') == 2
    following = re.search(r'href="(/ui/wanted\?[^"]*cursor=[^"]+)"', page.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert "state=not_found" in following
    second = admin.get(following).text
    assert second.count('id="item-') == 1 and "First page" in second
    assert admin.get("/ui/wanted?state=bogus").status == 400


def test_htmx_gets_only_the_fragment_it_targets(ctx: Any, admin: Browser) -> None:
    an_item(ctx)
    whole = admin.get("/ui/wanted").text
    part = admin.get("/ui/wanted", **{"HX-Request": "true", "HX-Target": "wanted-table"}).text
    assert "<html" in whole and "<html" not in part and 'id="wanted-table"' in part


def test_item_page_shows_sources_and_history_and_the_actions_work(ctx: Any, admin: Browser) -> None:
    item = an_item(ctx, state="failed")
    html = admin.get(f"/ui/wanted/{item.id}").text
    assert "a manual request" in html and "made failed by the test" in html and "searching → failed" in html
    resp = admin.post(f"/ui/wanted/{item.id}/retry", {"back": f"/ui/wanted/{item.id}"})
    assert resp.status == 303 and resp.headers["location"] == f"/ui/wanted/{item.id}"
    assert wanted.get(ctx.db, item.id).state == "wanted"
    flash = resp.headers["set-cookie"].split(";")[0]
    shown = admin.client.get(resp.headers["location"], headers={"Cookie": f"{admin.cookie}; {flash}"}).text
    assert "Song: wanted (retry asked for by the operator)" in shown
    # an action the item's state does not allow is explained, not a crash
    resp = admin.post(f"/ui/wanted/{item.id}/unskip")
    assert resp.status == 303 and wanted.get(ctx.db, item.id).state == "wanted"
    assert admin.post(f"/ui/wanted/{item.id}", {"priority": "7"}).status == 303
    assert wanted.get(ctx.db, item.id).priority == 7


def test_watchlist_forms_add_pause_resume_and_prioritise(ctx: Any, admin: Browser, fakes: Any) -> None:
    artist = fakes.catalogue.artist_by_name("Aurora Vale")
    found = admin.get("/ui/watchlist?q=Aurora").text
    assert "Aurora Vale" in found and "Watch Aurora Vale" in found
    assert admin.post("/ui/watchlist", {"spotify": artist.id}).status == 303
    watched = ctx.watcher.list_artists()[0]
    assert admin.post(f"/ui/artists/{watched.id}", {"paused": "true"}).status == 303
    assert ctx.watcher.get(watched.id).paused
    assert admin.post(f"/ui/artists/{watched.id}", {"paused": "false"}).status == 303
    assert not ctx.watcher.get(watched.id).paused
    assert admin.post(f"/ui/artists/{watched.id}", {"priority": "12"}).status == 303
    assert ctx.watcher.get(watched.id).priority == 12
    form = {"filters": "1", "release_groups": ["album", "compilation"], "since": "2020-01-01"}
    assert admin.post(f"/ui/artists/{watched.id}", form).status == 303
    assert ctx.watcher.get(watched.id).release_groups == ("album", "compilation")
    assert admin.get(f"/ui/artists/{watched.id}").status == 200
    row = admin.get("/ui/watchlist", **{"HX-Request": "true", "HX-Target": f"artist-{watched.id}"}).text
    assert row.startswith(f'<tr id="artist-{watched.id}"')
    assert admin.post(f"/ui/artists/{watched.id}/scan").status == 303
    resp = admin.post(f"/ui/artists/{watched.id}/unwatch", {"back": f"/ui/artists/{watched.id}"})
    assert resp.headers["location"] == "/ui/watchlist" and not ctx.watcher.list_artists()


def test_settings_form_checks_each_value_with_its_converter(ctx: Any, admin: Browser) -> None:
    resp = admin.post("/ui/settings", {"watchlist.interval": "soon", "log.level": "debug"})
    assert resp.status == 422 and "expected a duration" in resp.text and 'aria-invalid="true"' in resp.text
    assert ctx.config["log.level"] == "info"
    resp = admin.post("/ui/settings", {"watchlist.interval": "6h", "log.level": "info"})
    assert resp.status == 303 and ctx.config["watchlist.interval"] == 6 * 3600
    assert "6h" in admin.get("/ui/settings").text
    assert admin.post("/ui/settings", {"reset:watchlist.interval": "1"}).status == 303
    assert ctx.config["watchlist.interval"] == 86400


def test_keys_page_shows_a_new_key_once_and_revokes(ctx: Any, admin: Browser) -> None:
    resp = admin.post("/ui/keys", {"name": "phone", "role": "read"})
    key = re.search(r'id="created-key">([^<]+)<', resp.text).group(1)  # type: ignore[union-attr]
    assert resp.status == 201 and auth.authenticate(ctx.db, key, "read")["name"] == "phone"
    assert key not in admin.get("/ui/keys").text
    row = next(k for k in auth.list_keys(ctx.db) if k["name"] == "phone")
    assert admin.post(f"/ui/keys/{row['id']}/revoke").status == 303
    assert auth.get_key(ctx.db, row["id"])["revoked_at"] is not None


def test_spotify_page_shows_the_redirect_uri_and_links_to_spotify(ctx: Any, admin: Browser) -> None:
    html = admin.get("/ui/spotify").text
    assert "http://127.0.0.1:8337/auth/spotify/callback" in html
    connect = admin.post("/ui/spotify/connect").text
    link = re.search(r'id="authorize" href="([^"]+)"', connect).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert "code_challenge_method=S256" in link and "state=" in link


def test_playlist_pages(ctx: Any, admin: Browser) -> None:
    mine = admin.get("/ui/playlists/mine")
    assert mine.status == 200
    assert admin.post("/ui/playlists", {"spotify": "not a playlist"}).status == 303  # explained in a flash


# --- the event stream ------------------------------------------------------------------------------


def record(ctx: Any, n: int) -> list[int]:
    with ctx.db.write() as conn:
        return [events.record(conn, "item.state", item_id=i + 1, to_state="wanted") for i in range(n)]


def test_the_stream_sends_new_events_and_resumes_from_last_event_id(
    ctx: Any, app: Any, keys: dict[str, str]
) -> None:
    ids = record(ctx, 3)
    ctx.stopping.set()  # the stream sends what it has, then ends as it does when the server stops
    client = Client(app, keys["read"])
    resp = client.get("/api/v1/events/stream?after=0")
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")
    assert resp.text.startswith("retry: ")
    assert re.findall(r"^id: (\d+)$", resp.text, flags=re.M) == [str(i) for i in ids]
    assert "event: item\n" in resp.text and '"kind":"item.state"' in resp.text
    resumed = client.get("/api/v1/events/stream", headers={"Last-Event-ID": str(ids[0])})
    assert re.findall(r"^id: (\d+)$", resumed.text, flags=re.M) == [str(i) for i in ids[1:]]
    fresh = client.get("/api/v1/events/stream")  # without a position: from the next event on
    assert "id:" not in fresh.text
    assert client.get("/api/v1/events/stream", headers={"Last-Event-ID": "x"}).status == 400
    assert Client(app).get("/api/v1/events/stream").status == 401


def test_streams_per_session_are_bounded(ctx: Any, app: Any, keys: dict[str, str], admin: Browser) -> None:
    ctx.config = ctx.config.replace({"auth.streams_per_client": 2}, "test")
    limit = 2
    ctx.stopping.set()
    opened = []
    for _ in range(limit):
        body = start(app, admin.cookie)
        opened.append(body)
    status, _ = start_status(app, admin.cookie)
    assert status == 429
    other = Browser(app, keys["read"])
    assert start_status(app, other.cookie)[0] == 200  # another session has its own allowance
    opened[0].close()
    assert start_status(app, admin.cookie)[0] == 200  # a closed stream frees its place
    for body in opened[1:]:
        body.close()
    # in all, streams hold at most half of the server's threads
    crowd = [Browser(app, keys["read"]) for _ in range(ctx.config["server.threads"] // 2)]
    held = [start(app, b.cookie) for b in crowd[:-1]]
    held.append(start(app, admin.cookie))
    assert start_status(app, crowd[-1].cookie)[0] == 429
    for body in held:
        body.close()


def start_status(app: Any, cookie: str) -> tuple[int, Any]:
    seen: dict[str, Any] = {}
    environ = stream_environ(cookie)
    body = app(environ, lambda status, headers, exc=None: seen.setdefault("status", int(status[:3])))
    if seen["status"] == 200:
        body.close()
    return seen["status"], body


def start(app: Any, cookie: str) -> Any:
    seen: dict[str, Any] = {}
    body = app(stream_environ(cookie), lambda status, headers, exc=None: seen.setdefault("status", status))
    assert seen["status"].startswith("200")
    return body


def stream_environ(cookie: str) -> dict[str, Any]:
    import io

    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/api/v1/events/stream",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_COOKIE": cookie,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def test_session_cookie_name_is_stable() -> None:
    assert SESSION_COOKIE == "harmony_session"


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
def test_behind_a_trusted_proxy_cookies_are_secure_and_throttling_is_per_client(
    tmp_path: Any, fakes: Any, trusted: str
) -> None:
    """The server as `serve` builds it: forwarding headers count only from `server.trusted_proxy`
    (here the proxy connects from 127.0.0.1); from anyone else they are dropped."""
    cfg = make_config(tmp_path, fakes, server_port="0", server_trusted_proxy=trusted, auth_failure_limit="3")
    with opened(cfg) as ctx:
        key = auth.create_key(ctx.db, "proxied", "read")[0]
        server = create_server(ctx)
        try:
            client = Client(server.application)
            https = {**FORM, "X-Forwarded-Proto": "https"}
            body = urlencode({"api_key": key}).encode()
            cookie = client.request("POST", "/ui/login", body=body, headers=https).headers["set-cookie"]
            assert ("Secure" in cookie) == bool(trusted)
            bad = b"api_key=hmy_nope_nope"
            for _ in range(3):  # one client behind the proxy spends the limit ...
                client.request(
                    "POST", "/ui/login", body=bad, headers={**FORM, "X-Forwarded-For": "203.0.113.7"}
                )
            other = client.request(
                "POST", "/ui/login", body=bad, headers={**FORM, "X-Forwarded-For": "203.0.113.8"}
            )
            # ... and only that client is throttled when the proxy is trusted; else all share it
            assert other.status == (401 if trusted else 429)
        finally:
            server.close()
