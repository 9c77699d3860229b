"""The outbound HTTP policy against a real loopback server with injected faults."""

from __future__ import annotations

import json
import time

import bottle
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harmony.errors import UpstreamCoolingDown, UpstreamRejected, UpstreamUnavailable
from harmony.fakes.faults import FaultTable, Rule
from harmony.fakes.server import FakeServer
from harmony.metrics import Metrics
from harmony.upstream import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    RETRY_AFTER_CEILING,
    Upstream,
    backoff,
    clock_time,
    parse_retry_after,
)


@given(st.integers(1, 50), st.floats(0, 1, exclude_max=True))
def test_backoff_is_jittered_under_a_doubling_cap(attempt: int, u: float) -> None:
    wait = backoff(attempt, lambda: u)
    assert 0 <= wait <= min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))


def test_retry_after_parsing() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("7", now) == 7
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 120))
    assert parse_retry_after(when, now) == pytest.approx(120, abs=1)
    # Absurd values are bounded; Unicode digits are not digits here.
    assert parse_retry_after("9" * 300, now) == RETRY_AFTER_CEILING
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now) == RETRY_AFTER_CEILING
    assert parse_retry_after("\u0663", now) is None


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 4e9))
def test_clock_time_never_fails(until: float, now: float) -> None:
    assert isinstance(clock_time(until, now), str)


@pytest.fixture
def server():
    app = bottle.Bottle()
    hits = {"n": 0}

    @app.route("/thing", method=["GET", "POST"])
    def thing():
        hits["n"] += 1
        bottle.response.content_type = "application/json"
        return json.dumps({"ok": True})

    @app.route("/missing")
    def missing():
        bottle.response.status = 404
        return json.dumps({"error": {"status": 404, "message": "non existing id"}})

    faults = FaultTable(lambda status, message: (json.dumps(message or "err").encode(), "application/json"))
    with FakeServer(app, faults=faults) as srv:
        srv.hits = hits  # type: ignore[attr-defined]
        yield srv


@pytest.fixture
def upstream():
    sleeps: list[float] = []
    up = Upstream(
        Metrics(), connect_timeout=1, read_timeout=0.5, retries=2, max_retry_after=5, sleep=sleeps.append
    )
    up.sleeps = sleeps  # type: ignore[attr-defined]
    yield up
    up.close()


def count(up: Upstream, outcome: str) -> float:
    return up.m_requests.labels("svc", outcome)._value.get()


def test_get_is_retried_through_transient_5xx(server, upstream) -> None:
    server.faults.add(Rule(kind="status", path="/thing", status=503, times=2))
    assert upstream.request("svc", "GET", server.url + "/thing").json() == {"ok": True}
    assert server.hits["n"] == 1 and len(upstream.sleeps) == 2


def test_post_is_not_repeated_after_a_5xx(server, upstream) -> None:
    server.faults.add(Rule(kind="status", path="/thing", status=503, times=1))
    with pytest.raises(UpstreamUnavailable) as info:
        upstream.request("svc", "POST", server.url + "/thing", json_body={})
    assert info.value.details["status"] == 503 and upstream.sleeps == []


def test_a_429_is_waited_for_even_on_post(server, upstream) -> None:
    server.faults.add(Rule(kind="rate_limit", path="/thing", seconds=2, times=1))
    assert upstream.request("svc", "POST", server.url + "/thing", json_body={}).status == 200
    assert upstream.sleeps == [2.0]


def test_a_long_retry_after_becomes_a_cooldown_not_a_sleep(server, upstream) -> None:
    server.faults.add(Rule(kind="rate_limit", path="/thing", seconds=60, times=1))
    with pytest.raises(UpstreamCoolingDown):
        upstream.request("svc", "GET", server.url + "/thing")
    assert upstream.sleeps == []
    hits = server.hits["n"]
    with pytest.raises(UpstreamCoolingDown, match="cooling down"):
        upstream.request("svc", "GET", server.url + "/thing")
    assert server.hits["n"] == hits  # no request left the process
    assert upstream.cooldowns()["svc"]["until"] > time.time() + 50
    assert upstream.m_cooldown.labels("svc")._value.get() > 0
    assert count(upstream, "cooldown") == 1


def test_a_cooldown_is_capped_and_formats_whatever_the_header_says(server, upstream) -> None:
    server.faults.add(Rule(kind="rate_limit", path="/thing", seconds=1e300, times=1))  # 301 digits
    started = time.time()
    with pytest.raises(UpstreamCoolingDown) as info:
        upstream.request("svc", "GET", server.url + "/thing")
    until = info.value.details["until"]
    assert started + 3599 <= until <= time.time() + 3600  # upstream.max_cooldown, 1 h by default
    assert "capped at 3600s" in upstream.cooldowns()["svc"]["reason"]
    with pytest.raises(UpstreamCoolingDown, match=r"cooling down until \d\d:\d\d:\d\d"):
        upstream.request("svc", "GET", server.url + "/thing")


def test_a_success_ends_the_cooldown_early(server, upstream) -> None:
    server.faults.add(Rule(kind="rate_limit", path="/thing", seconds=600, times=1))
    with pytest.raises(UpstreamCoolingDown):
        upstream.request("svc", "GET", server.url + "/thing")
    # A probe may ask while the service cools down; its success ends the cooldown for everyone.
    assert upstream.request("svc", "GET", server.url + "/thing", ignore_cooldown=True).status == 200
    assert upstream.cooldowns() == {} and upstream.m_cooldown.labels("svc")._value.get() == 0
    assert upstream.request("svc", "GET", server.url + "/thing").status == 200


def test_a_success_sent_before_the_cooldown_began_does_not_end_it() -> None:
    now = [1000.0]
    up = Upstream(Metrics(), clock=lambda: now[0])
    try:
        up.start_cooldown("svc", 60, "test")
        with up._lock:
            up._end_cooldown("svc", sent_at=999.0)  # a request already in flight when the 429 came
        assert "svc" in up.cooldowns()
        with up._lock:
            up._end_cooldown("svc", sent_at=1000.5)
        assert up.cooldowns() == {}
    finally:
        up.close()


def test_an_html_error_page_becomes_its_title(server, upstream) -> None:
    server.faults.add(Rule(kind="edge", path="/thing", status=503, times=5))
    with pytest.raises(UpstreamUnavailable, match=r"svc answered 503: 503 Service Unavailable$"):
        upstream.request("svc", "POST", server.url + "/thing", json_body={})


def test_ok_listed_statuses_count_as_what_they_are(server, upstream) -> None:
    assert upstream.request("svc", "GET", server.url + "/missing", ok=(404,)).status == 404
    assert count(upstream, "http_4xx") == 1 and count(upstream, "ok") == 0


def test_dropped_connections(server, upstream) -> None:
    server.faults.add(Rule(kind="drop", path="/thing", times=1))
    assert upstream.request("svc", "GET", server.url + "/thing").status == 200  # retried
    server.faults.add(Rule(kind="drop", path="/thing", times=1))
    with pytest.raises(UpstreamUnavailable, match="connection dropped"):
        upstream.request("svc", "POST", server.url + "/thing", json_body={})


def test_a_hung_upstream_times_out_within_the_bounds(server, upstream) -> None:
    server.faults.add(Rule(kind="delay", path="/thing", seconds=5))
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="timed out"):
        upstream.request("svc", "GET", server.url + "/thing")
    # three attempts of at most 0.5 s read timeout each (sleeps are recorded, not slept)
    assert time.monotonic() - started < 3


def test_quick_requests_make_one_short_attempt(server, upstream) -> None:
    server.faults.add(Rule(kind="status", path="/thing", status=502, times=1))
    with pytest.raises(UpstreamUnavailable):
        upstream.request("svc", "GET", server.url + "/thing", quick=True)
    assert upstream.sleeps == []


def test_client_errors_are_rejections_with_the_upstream_message(server, upstream) -> None:
    with pytest.raises(UpstreamRejected) as info:
        upstream.request("svc", "GET", server.url + "/missing")
    assert info.value.details["status"] == 404 and "non existing id" in info.value.message
    assert upstream.request("svc", "GET", server.url + "/missing", ok=(404,)).status == 404


def test_connection_refused_is_unavailable(server, upstream) -> None:
    url = server.url
    server.stop()
    with pytest.raises(UpstreamUnavailable, match="connection refused"):
        upstream.request("svc", "GET", url + "/thing")
    assert count(upstream, "error") == 1
