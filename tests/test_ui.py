"""The status page: what it shows, and the headers every page carries."""

from __future__ import annotations


def test_root_redirects_to_the_status_page(anon) -> None:
    resp = anon.get("/")
    assert resp.status in (302, 303) and resp.headers["location"].endswith("/ui/")


def test_status_page_shows_checks_tasks_and_queue(ctx, anon) -> None:
    ctx.health.probe()
    ctx.queue.enqueue("example", {"n": 1})
    resp = anon.get("/ui/")
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/html")
    text = resp.text
    assert "ready" in text and "logged in as" in text  # the slskd check's detail
    for task in ("health_probe", "job_housekeeping"):
        assert task in text
    assert "example" in text
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_status_page_names_a_failing_check(ctx, anon, fakes) -> None:
    fakes.slskd.stop()
    ctx.health.probe()
    text = anon.get("/ui/").text
    assert "not ready" in text and "connection refused" in text


def test_untrusted_text_is_escaped(ctx, anon) -> None:
    ctx.queue.enqueue("x", {}, key="k")
    ctx.health.add("evil", lambda: "<script>alert(1)</script>")
    text = anon.get("/ui/").text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text


def test_static_files_are_served_and_paths_cannot_escape(anon) -> None:
    assert anon.get("/static/harmony.css").status == 200
    assert anon.get("/static/../__init__.py").status in (403, 404)
    assert anon.get("/static/%2e%2e/__init__.py").status in (403, 404)
