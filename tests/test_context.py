"""The composition root: what it wires, what /ready says of the background, and clean failure."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from client import Client
from conftest import make_config

from harmony import log as logsetup
from harmony.context import opened
from harmony.db import Database
from harmony.errors import DatabaseTooNew
from harmony.schema import SCHEMA_VERSION
from harmony.web import make_app


def open_files(path: str) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(path):
            found.append(target)
    return found


def test_a_failed_open_closes_what_it_opened(tmp_path: Any) -> None:
    cfg = make_config(tmp_path)
    with opened(cfg) as ctx:
        pass
    db = Database(ctx.config.database_path)
    db.conn().execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    assert open_files(str(tmp_path)) == []
    with pytest.raises(DatabaseTooNew), opened(cfg):
        pass
    assert open_files(str(tmp_path)) == []  # the database was closed on the way out


def test_ready_names_a_dead_background_thread(ctx: Any, anon: Client) -> None:
    ctx.health.probe()
    ctx.start_background()
    try:
        assert anon.get("/ready").status == 200
        ctx.wheel.stop(2.0)  # the wheel's thread ends as if it had died
        resp = anon.get("/ready")
        assert resp.status == 503 and resp.json["error"]["details"]["failing"] == ["background"]
        assert "Wheel" in resp.json["error"]["details"]["checks"]["background"]["detail"]
    finally:
        ctx.stop_background()


def test_a_check_failing_at_its_first_probe_is_logged_once(
    tmp_path: Any, fakes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with opened(make_config(tmp_path, fakes, slskd_url="http://127.0.0.1:9")) as ctx:
        ctx.health.probe()
        ctx.health.probe()
    changes = [r for r in caplog.records if r.getMessage() == "ready_check_changed"]
    failing = [r for r in changes if r.fields["check"] == "slskd"]  # type: ignore[attr-defined]
    assert len(failing) == 1 and failing[0].levelno == logging.WARNING


def test_waitress_queue_warnings_are_not_logged() -> None:
    logsetup.configure("info", "json")
    assert not logging.getLogger("waitress.queue").isEnabledFor(logging.WARNING)
    assert logging.getLogger("waitress").isEnabledFor(logging.WARNING)


def test_every_check_task_and_handler_table_is_wired(ctx: Any) -> None:
    _, checks = ctx.health.report()
    assert set(checks) == {"database", "background", "library", "downloads", "move", "slskd", "spotify"}
    assert {task["name"] for task in ctx.wheel.tasks()} >= {"health_probe", "job_housekeeping"}
    assert Client(make_app(ctx)).get("/live").status == 200
