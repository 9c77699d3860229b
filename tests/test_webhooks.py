"""Outbound webhooks against a real HTTP receiver on loopback: signed JSON for item done and
failed, quarantine, slskd down and back, Spotify's authorisation ending; retries, the dead
letter, the test endpoint and the secrets kept out of /env and the log."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from client import Client
from conftest import make_config

from harmony import auth, config, events, jobs, wanted, webhooks
from harmony.context import Context, opened
from harmony.web import make_app
from harmony.webhooks import Target

SECRET = "webhook-signing-secret-7f3a"
TOKEN = "tok3nInThePath"


class Receiver:
    """A loopback HTTP server that records each request and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[int] = []  # statuses to answer, in order; then 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = f"/hooks/{TOKEN}") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    try:
        yield running
    finally:
        running.stop()


def hooked(tmp_path: Any, *urls: str, **flags: Any) -> Any:
    return make_config(
        tmp_path,
        webhooks_urls=", ".join(urls),
        webhooks_secret=SECRET,
        upstream_connect_timeout="1s",
        **flags,
    )


@pytest.fixture
def wctx(tmp_path: Any, receiver: Receiver) -> Iterator[Context]:
    with opened(hooked(tmp_path, receiver.url(), webhooks_attempts="3")) as context:
        yield context


def new_item(ctx: Context, title: str = "Glass Harbour") -> int:
    with ctx.db.write() as conn:
        track = wanted.Track(title=title, artists=("Aurora Vale", "Mika"), album="Low Tide")
        item, _ = wanted.want(conn, track, wanted.Source("manual"))
    return item.id


def move(ctx: Context, item_id: int, to: str, code: str = "imported", message: str = "filed") -> None:
    with ctx.db.write() as conn:
        wanted.transition(conn, item_id, to, code, message)


def run_jobs(ctx: Context, now: float | None = None) -> list[jobs.Job]:
    ran = []
    while (job := ctx.workers.run_one(now)) is not None:
        ran.append(job)
    return ran


def webhook_jobs(ctx: Context, state: str | None = None) -> list[jobs.Job]:
    return ctx.queue.list_jobs(type=webhooks.JOB, state=state, limit=1000)


def deliveries(ctx: Context, outcome: str) -> float:
    return (
        ctx.metrics.registry.get_sample_value("harmony_webhook_deliveries_total", {"outcome": outcome}) or 0
    )


# --- what is sent ------------------------------------------------------------------------------


def test_an_item_done_is_delivered_once_signed_with_its_subject(wctx, receiver) -> None:
    item_id = new_item(wctx)
    move(wctx, item_id, "done", "imported", "filed as Aurora Vale/Low Tide/01 Glass Harbour.flac")
    assert wctx.webhooks.dispatch() == 1
    assert wctx.webhooks.dispatch() == 0  # handed out once
    run_jobs(wctx)
    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert request["path"] == f"/hooks/{TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Harmony-Event"] == "item.done"
    assert headers["X-Harmony-Signature"] == webhooks.sign(SECRET, headers["X-Harmony-Timestamp"], body)
    assert webhooks.verify(SECRET, headers["X-Harmony-Timestamp"], body, headers["X-Harmony-Signature"])
    payload = json.loads(body)
    assert payload["event"] == "item.done" and payload["at"] == pytest.approx(time.time(), abs=60)
    assert payload["item"] == {
        "id": item_id,
        "title": "Glass Harbour",
        "artists": ["Aurora Vale", "Mika"],
        "album": "Low Tide",
        "spotify_id": None,
        "state": "done",
        "reason": {"code": "imported", "message": "filed as Aurora Vale/Low Tide/01 Glass Harbour.flac"},
    }
    assert payload["title"] == "Harmony: got Glass Harbour"
    assert "Aurora Vale, Mika – Glass Harbour" in payload["message"]
    [job] = webhook_jobs(wctx)
    assert job.state == "done" and job.key == f"webhook:{payload['id']}:{Target(receiver.url()).id}"
    assert headers["X-Harmony-Delivery"] == f"{payload['id']}-{Target(receiver.url()).id}"
    assert TOKEN not in json.dumps(job.to_dict())  # jobs name the URL by a hash
    assert deliveries(wctx, "delivered") == 1


def test_a_signature_does_not_verify_for_another_body_secret_or_an_old_timestamp() -> None:
    body, now = b'{"event":"test"}', 1_800_000_000.0
    stamp = str(int(now))
    signature = webhooks.sign(SECRET, stamp, body)
    assert webhooks.verify(SECRET, stamp, body, signature, now=now + 10)
    assert not webhooks.verify(SECRET, stamp, body + b" ", signature, now=now)
    assert not webhooks.verify("other", stamp, body, signature, now=now)
    assert not webhooks.verify(SECRET, str(int(now) + 1), body, signature, now=now)  # the time is signed
    assert not webhooks.verify(SECRET, stamp, body, signature, now=now + 301)  # a replay, later
    assert not webhooks.verify(SECRET, None, body, signature, now=now)


def test_failed_items_and_quarantined_files_are_delivered(wctx, receiver, tmp_path) -> None:
    failed = new_item(wctx, "Undertow")
    move(wctx, failed, "failed", "no_candidates", "no peer has it")
    held = new_item(wctx, "Salt Lines")
    source = tmp_path / "download.flac"
    source.write_bytes(b"not really audio")
    wctx.importer._move_to_quarantine(
        str(source), "transfer-9/download.flac", "not_audio", "not audio", item_id=held
    )
    wctx.webhooks.dispatch()
    run_jobs(wctx)
    sent = [json.loads(r["body"]) for r in receiver.requests]
    assert [p["event"] for p in sent] == ["item.failed", "quarantine.added"]
    assert sent[0]["item"]["reason"] == {"code": "no_candidates", "message": "no peer has it"}
    assert sent[0]["message"] == "Aurora Vale, Mika – Undertow: no peer has it"
    assert sent[1]["quarantine"] == {
        "path": "transfer-9/download.flac",
        "code": "not_audio",
        "reason": "not audio",
    }
    assert sent[1]["item"]["id"] == held and sent[1]["item"]["title"] == "Salt Lines"
    # The feed has the quarantine too, once, even when the move is repeated after a crash.
    wctx.importer._move_to_quarantine(
        str(source), "transfer-9/download.flac", "not_audio", "not audio", item_id=held
    )
    assert len(events.list_events(wctx.db, kind="quarantine.added")) == 1


def test_no_delivery_for_other_events(wctx, receiver) -> None:
    item_id = new_item(wctx)
    move(wctx, item_id, "searching", "search", "searching")
    move(wctx, item_id, "not_found", "nothing", "nothing yet")
    with wctx.db.write() as conn:
        events.record(conn, "artist.scan", artist_id=1, code="unchanged", message="nothing new")
    assert wctx.webhooks.dispatch() == 0
    assert run_jobs(wctx) == [] and receiver.requests == []
    assert wctx.webhooks.state("cursor") == str(events.last_id(wctx.db))  # passed over, not rescanned


def test_a_change_rolled_back_sends_nothing(wctx, receiver) -> None:
    item_id = new_item(wctx)
    with pytest.raises(RuntimeError), wctx.db.write() as conn:
        wanted.transition(conn, item_id, "done", "imported", "filed")
        raise RuntimeError("the import failed after all")
    assert wctx.webhooks.dispatch() == 0 and receiver.requests == []


def test_events_from_before_the_webhooks_are_history(tmp_path, receiver) -> None:
    with opened(make_config(tmp_path)) as ctx:  # no webhooks yet
        move(ctx, new_item(ctx, "Before"), "done")
        ctx.webhooks.dispatch()
    with opened(hooked(tmp_path, receiver.url())) as ctx:
        move(ctx, new_item(ctx, "After"), "done")
        assert ctx.webhooks.dispatch() == 1
        run_jobs(ctx)
    assert [json.loads(r["body"])["item"]["title"] for r in receiver.requests] == ["After"]


def test_each_url_gets_its_own_job(tmp_path, receiver) -> None:
    first, second = receiver.url("/one"), receiver.url("/two")
    with opened(hooked(tmp_path, first, second)) as ctx:
        move(ctx, new_item(ctx), "done")
        assert ctx.webhooks.dispatch() == 2
        assert {job.payload["url"] for job in webhook_jobs(ctx)} == {Target(first).id, Target(second).id}
        run_jobs(ctx)
    assert sorted(r["path"] for r in receiver.requests) == ["/one", "/two"]


def test_a_burst_is_handed_out_in_batches_without_losing_one(wctx) -> None:
    for n in range(webhooks.BATCH + 50):
        move(wctx, new_item(wctx, f"Track {n}"), "done")
    assert wctx.webhooks.dispatch() == webhooks.BATCH
    assert wctx.webhooks.dispatch() == 50
    assert wctx.webhooks.dispatch() == 0
    titles = {job.payload["event"]["item"]["title"] for job in webhook_jobs(wctx)}
    assert titles == {f"Track {n}" for n in range(webhooks.BATCH + 50)}


# --- retries and the dead letter ---------------------------------------------------------------


def test_a_500_is_retried_with_backoff_then_delivered(wctx, receiver) -> None:
    receiver.answers = [500]
    move(wctx, new_item(wctx), "done")
    wctx.webhooks.dispatch()
    run_jobs(wctx)
    [job] = webhook_jobs(wctx)
    assert job.state == "ready" and job.attempts == 1 and job.run_at > time.time() + 10
    assert "answered 500" in (job.last_error or "") and TOKEN not in (job.last_error or "")
    assert deliveries(wctx, "failed") == 1
    run_jobs(wctx, now=job.run_at + 1)
    assert webhook_jobs(wctx)[0].state == "done"
    first, second = receiver.requests
    assert first["body"] == second["body"]
    assert first["headers"]["X-Harmony-Delivery"] == second["headers"]["X-Harmony-Delivery"]
    assert deliveries(wctx, "delivered") == 1


def test_dead_letter_after_the_attempt_budget(wctx, receiver) -> None:
    receiver.answers = [503, 500, 502, 200]
    move(wctx, new_item(wctx), "done")
    wctx.webhooks.dispatch()
    later = time.time()
    for _ in range(3):
        later += 4 * 3600
        run_jobs(wctx, now=later)
    [job] = webhook_jobs(wctx)
    assert job.state == "dead" and job.attempts == 3 == job.max_attempts
    assert len(receiver.requests) == 3
    assert deliveries(wctx, "failed") == 2 and deliveries(wctx, "dead") == 1
    wctx.webhooks.dispatch()
    assert len(webhook_jobs(wctx)) == 1  # the dead job keeps its key: nothing enqueued again
    wctx.queue.requeue([job.id])
    run_jobs(wctx, now=later + 60)
    assert webhook_jobs(wctx)[0].state == "done" and len(receiver.requests) == 4


def test_a_refusal_or_a_redirect_is_dead_at_once_and_no_redirect_is_followed(wctx, receiver) -> None:
    receiver.answers = [302]
    move(wctx, new_item(wctx, "One"), "done")
    wctx.webhooks.dispatch()
    run_jobs(wctx)
    [job] = webhook_jobs(wctx)
    assert job.state == "dead" and "does not follow redirects" in (job.last_error or "")
    assert [r["path"] for r in receiver.requests] == [f"/hooks/{TOKEN}"]
    receiver.answers = [404]
    move(wctx, new_item(wctx, "Two"), "done")
    wctx.webhooks.dispatch()
    run_jobs(wctx)
    assert [job.state for job in webhook_jobs(wctx)] == ["dead", "dead"]
    assert deliveries(wctx, "dead") == 2


def test_an_unreachable_url_is_retried_and_logged_without_its_token(tmp_path, caplog) -> None:
    with opened(hooked(tmp_path, f"http://127.0.0.1:9/hooks/{TOKEN}")) as ctx, caplog.at_level(logging.DEBUG):
        move(ctx, new_item(ctx), "done")
        ctx.webhooks.dispatch()
        run_jobs(ctx)
        [job] = webhook_jobs(ctx)
        assert job.state == "ready" and "unreachable" in (job.last_error or "")
        assert "http://127.0.0.1:9/…" in (job.last_error or "")
    logged = "\n".join(
        f"{r.getMessage()} {getattr(r, 'fields', '')} {r.exc_text or ''}" for r in caplog.records
    )
    assert "job_failed" in logged and TOKEN not in logged and SECRET not in logged


def test_a_url_taken_out_of_the_options_drops_its_deliveries(wctx, receiver, tmp_path) -> None:
    move(wctx, new_item(wctx), "done")
    wctx.webhooks.dispatch()
    wctx.config = hooked(tmp_path, receiver.url("/new"))
    run_jobs(wctx)
    assert webhook_jobs(wctx)[0].state == "done" and receiver.requests == []
    assert deliveries(wctx, "dropped") == 1


# --- slskd and Spotify -----------------------------------------------------------------------


def test_slskd_down_for_a_minute_then_back(wctx, receiver) -> None:
    up = {"ok": True}

    def check() -> str:
        if not up["ok"]:
            raise RuntimeError("slskd unreachable: connection refused")
        return "logged in"

    wctx.health.add("slskd", check, probed=True)
    wctx.health.probe()
    now = time.time()
    wctx.webhooks.dispatch(now)
    up["ok"] = False
    wctx.health.probe()
    wctx.webhooks.dispatch(now + 10)  # failing, but not for long yet
    assert events.list_events(wctx.db, kind="service.") == []
    wctx.webhooks.dispatch(now + 10 + webhooks.DOWN_AFTER)
    wctx.webhooks.dispatch(now + 200)  # once
    [down] = events.list_events(wctx.db, kind="service.")
    assert down.kind == "service.down" and "connection refused" in (down.message or "")
    # A restart does not announce it again.
    again = webhooks.Webhooks(
        wctx.db, wctx.queue, wctx.upstream, wctx.spotify, wctx.health, wctx.metrics, wctx.live
    )
    again.dispatch(now + 300)
    again.dispatch(now + 300 + webhooks.DOWN_AFTER)
    assert len(events.list_events(wctx.db, kind="service.")) == 1
    up["ok"] = True
    wctx.health.probe()
    again.dispatch(now + 400)
    again.dispatch(now + 401)
    run_jobs(wctx)
    sent = [json.loads(r["body"]) for r in receiver.requests]
    assert [p["event"] for p in sent] == ["service.down", "service.up"]
    assert sent[0]["check"]["ok"] is False and sent[0]["title"] == "Harmony: slskd is down"


def test_spotifys_authorisation_ending_is_announced_once_per_stage(wctx, receiver) -> None:
    from harmony.spotify import REFRESH_TOKEN_LIFETIME

    now = time.time()
    authorized = now - REFRESH_TOKEN_LIFETIME + 10 * 86400  # ten days left
    with wctx.db.write() as conn:
        conn.execute(
            "INSERT INTO spotify_auth (id, access_token, refresh_token, expires_at, user_id, updated_at, "
            "authorized_at) VALUES (1, 'at', 'rt', 0, 'listener', ?, ?)",
            (authorized, authorized),
        )
    wctx.webhooks.dispatch(now)
    wctx.webhooks.dispatch(now + 3600)
    wctx.webhooks.dispatch(now + 11 * 86400)  # it has ended
    wctx.webhooks.dispatch(now + 12 * 86400)
    run_jobs(wctx)
    sent = [json.loads(r["body"]) for r in receiver.requests]
    assert [p["event"] for p in sent] == ["authorization.expiring", "authorization.expired"]
    assert sent[0]["spotify"]["user_id"] == "listener" and "in 10 days" in sent[0]["message"]
    assert sent[0]["spotify"]["expires_at"] == pytest.approx(authorized + REFRESH_TOKEN_LIFETIME)


# --- formats -------------------------------------------------------------------------------------


def test_targets_parse_their_format_and_hide_their_path() -> None:
    discord = Target.parse("discord+https://discord.com/api/webhooks/1/secret")
    assert (discord.format, discord.url) == ("discord", "https://discord.com/api/webhooks/1/secret")
    assert discord.entry == "discord+https://discord.com/api/webhooks/1/secret"
    assert discord.shown == "https://discord.com/…"
    assert (
        Target.parse("https://gotify.example:8443/message?token=x").shown == "https://gotify.example:8443/…"
    )
    assert Target.parse("http://[::1]:8000").shown == "http://[::1]:8000"
    bad = (
        "ftp://x/{}",
        "https://",
        "slack+https://x/{}",
        "https://x/a {}",
        "ntfy+https://ntfy.sh/",
        "https://x/#{}",
    )
    for text in bad:
        with pytest.raises(ValueError) as raised:
            Target.parse(text.format(TOKEN))
        assert TOKEN not in str(raised.value)


def test_discord_ntfy_and_apprise_get_their_own_shape() -> None:
    body = {
        "event": "item.failed",
        "id": 3,
        "at": 1.0,
        "title": "Harmony: could not get X",
        "message": "@everyone",
    }
    url, data = webhooks.render(Target.parse("discord+https://discord.com/api/webhooks/1/t"), body)
    assert url == "https://discord.com/api/webhooks/1/t"
    assert json.loads(data) == {
        "content": "**Harmony: could not get X**\n@everyone",
        "allowed_mentions": {"parse": []},
    }
    url, data = webhooks.render(Target.parse("ntfy+https://ntfy.example/sub/alerts?auth=abc"), body)
    assert url == "https://ntfy.example/sub/?auth=abc"
    assert json.loads(data) == {
        "topic": "alerts",
        "title": body["title"],
        "message": "@everyone",
        "tags": ["x"],
    }
    url, data = webhooks.render(Target.parse("apprise+http://apprise:8000/notify/harmony"), body)
    assert url == "http://apprise:8000/notify/harmony"
    assert json.loads(data) == {"title": body["title"], "body": "@everyone", "type": "failure"}
    url, data = webhooks.render(Target.parse("https://gotify.example/message?token=t"), body)
    assert json.loads(data) == body  # Gotify reads its title and message from Harmony's own JSON


def test_an_ntfy_target_is_posted_at_the_server_root(tmp_path, receiver) -> None:
    with opened(hooked(tmp_path, "ntfy+" + receiver.url("/harmony-alerts"))) as ctx:
        move(ctx, new_item(ctx), "done")
        ctx.webhooks.dispatch()
        run_jobs(ctx)
    [request] = receiver.requests
    assert request["path"] == "/" and json.loads(request["body"])["topic"] == "harmony-alerts"


# --- the API ---------------------------------------------------------------------------------------


def test_the_test_endpoint_reports_each_url(tmp_path, receiver) -> None:
    receiver.answers = [200, 500]
    urls = (receiver.url("/ok"), receiver.url(f"/broken/{TOKEN}"), f"http://127.0.0.1:9/{TOKEN}")
    with opened(hooked(tmp_path, *urls)) as ctx:
        admin, _ = auth.create_key(ctx.db, "admin", "admin")
        operator, _ = auth.create_key(ctx.db, "op", "operator")
        client = Client(make_app(ctx), admin)
        resp = client.post("/api/v1/webhooks/test")
        assert resp.status == 200 and resp.json["ok"] is False
        ok, broken, unreachable = resp.json["results"]
        assert (
            ok["ok"] is True
            and ok["status"] == 200
            and ok["url"] == "http://127.0.0.1:" + ok["url"].split(":")[2]
        )
        assert broken["ok"] is False and broken["status"] == 500 and "500" in broken["error"]
        assert (
            unreachable["ok"] is False
            and unreachable["status"] is None
            and "unreachable" in unreachable["error"]
        )
        assert TOKEN not in resp.text
        assert [json.loads(r["body"])["event"] for r in receiver.requests] == ["test", "test"]
        assert webhooks.verify(
            SECRET,
            receiver.requests[0]["headers"]["X-Harmony-Timestamp"],
            receiver.requests[0]["body"],
            receiver.requests[0]["headers"]["X-Harmony-Signature"],
        )
        assert webhook_jobs(ctx) == []  # sent now, not queued
        assert client.post("/api/v1/webhooks/test", key=operator).status == 403
        assert client.post("/api/v1/webhooks/test", {"x": 1}).status == 422


def test_the_test_endpoint_without_urls_is_a_409(client) -> None:
    resp = client.post("/api/v1/webhooks/test")
    assert resp.status == 409 and resp.json["error"]["code"] == "not_configured"


def test_the_urls_and_the_secret_are_masked_in_env(tmp_path) -> None:
    env = {
        "HARMONY_WEBHOOKS_SECRET": SECRET,
        "HARMONY_WEBHOOKS_URLS": f"discord+https://discord.com/api/webhooks/1/{TOKEN}, https://x.example/h",
    }
    cfg = config.load(None, env, {"data.dir": str(tmp_path / "data"), "log.format": "text"})
    assert cfg.source("webhooks.secret") == "environment variable HARMONY_WEBHOOKS_SECRET"
    assert len(webhooks.targets(cfg)) == 2
    with opened(cfg) as ctx:
        admin, _ = auth.create_key(ctx.db, "admin", "admin")
        resp = Client(make_app(ctx), admin).get("/env")
    options = {row["key"]: row for row in resp.json["options"]}
    assert options["webhooks.urls"]["value"] == "********" and options["webhooks.urls"]["secret"] is True
    assert options["webhooks.secret"]["value"] == "********"
    assert TOKEN not in resp.text and SECRET not in resp.text


def test_an_unsigned_delivery_has_no_signature(tmp_path, receiver) -> None:
    with opened(make_config(tmp_path, webhooks_urls=receiver.url())) as ctx:
        move(ctx, new_item(ctx), "done")
        ctx.webhooks.dispatch()
        run_jobs(ctx)
    [request] = receiver.requests
    assert "X-Harmony-Signature" not in request["headers"] and "X-Harmony-Timestamp" in request["headers"]


def test_the_dispatcher_and_the_handler_are_wired(wctx) -> None:
    assert wctx.workers.handlers[webhooks.JOB] == wctx.webhooks.deliver
    assert "webhook_dispatch" in {row["name"] for row in wctx.wheel.tasks()}
