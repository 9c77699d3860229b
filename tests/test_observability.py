"""docs/observability.md and docs/operations/ held to the code: every metric of a live registry
and every log event in the source is documented; every metric the doc, the alerts and the
dashboard name exists; promtool checks the scrape config, the rules (and their unit tests) and
the live exposition; the disk and oldest-item gauges report what they say."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from client import Client
from conftest import make_config
from prometheus_client.parser import text_string_to_metric_families

from harmony import wanted
from harmony.context import Context, opened
from harmony.wanted import Source, Track
from harmony.web import make_app

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "observability.md"
OPS = ROOT / "docs" / "operations"
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
# Series Prometheus makes itself, not Harmony.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
METRIC_NAME = re.compile(r"\b((?:harmony|process|python)_[a-z0-9_]+)\b")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`; .ci/run installs it)"
)


@pytest.fixture(scope="module")
def registry_ctx(tmp_path_factory: Any) -> Iterator[Context]:
    """A context of its own (no upstreams needed), with the health probe run once."""
    with opened(make_config(tmp_path_factory.mktemp("observability"))) as ctx:
        ctx.wheel.run_due()  # health_probe is triggered at start: disk gauges and readiness
        yield ctx


def families(ctx: Context) -> dict[str, str]:
    """Each metric family of the live registry: name -> type."""
    return {family.name: family.type for family in ctx.metrics.registry.collect()}


def exposed_names(kinds: dict[str, str]) -> set[str]:
    """Every series name the registry can expose, with the suffixes of its type."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("", "_bucket", "_sum", "_count", "_created"),  # "": the family, as documented
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    return {name + suffix for name, kind in kinds.items() for suffix in suffixes.get(kind, ("",))}


def documented_name(name: str, kind: str) -> str:
    """The name an operator queries: counters with `_total`, infos with `_info`."""
    return name + {"counter": "_total", "info": "_info"}.get(kind, "")


def log_events() -> dict[str, set[str]]:
    """Event names logged in harmony/ (the message of `log.<level>("event", ...)`), by module."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "harmony").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOG_METHODS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("log", "logger")
            ):
                continue
            args = node.args[1:] if node.func.attr == "log" else node.args
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            assert args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str), (
                f"{where}: log the event name as a string literal"
            )
            found.setdefault(args[0].value, set()).add(where)
    return found


def expressions() -> dict[str, list[str]]:
    """Every PromQL expression in alerts.yml and the Grafana dashboard, by where it is."""
    import yaml

    out: dict[str, list[str]] = {}
    rules = yaml.safe_load((OPS / "alerts.yml").read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            out.setdefault(f"alerts.yml {rule['alert']}", []).append(rule["expr"])
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.setdefault(f"dashboard {panel['title']}", []).append(target["expr"])
    return out


# --- the doc ----------------------------------------------------------------------------------


def test_every_metric_of_the_live_registry_is_documented(registry_ctx: Context) -> None:
    doc = DOC.read_text(encoding="utf-8")
    kinds = families(registry_ctx)
    assert "harmony_jobs" in kinds and "harmony_disk_free_bytes" in kinds
    missing = sorted(
        documented_name(n, k) for n, k in kinds.items() if f"`{documented_name(n, k)}`" not in doc
    )
    assert not missing, f"metrics missing from docs/observability.md: {missing}"


def test_every_metric_the_doc_names_exists(registry_ctx: Context) -> None:
    exposed = exposed_names(families(registry_ctx))
    named = set(METRIC_NAME.findall(DOC.read_text(encoding="utf-8")))
    unknown = sorted(named - exposed)
    assert not unknown, f"docs/observability.md names metrics the code does not have: {unknown}"


def test_every_log_event_is_documented() -> None:
    doc = DOC.read_text(encoding="utf-8")
    events = log_events()
    assert "request" in events and "ready_check_changed" in events
    missing = sorted(
        f"{name} ({', '.join(sorted(where))})" for name, where in events.items() if f"| `{name}` |" not in doc
    )
    assert not missing, f"log events missing from docs/observability.md: {missing}"


def test_every_readiness_check_and_timer_task_is_documented(registry_ctx: Context) -> None:
    doc = DOC.read_text(encoding="utf-8")
    _, checks = registry_ctx.health.report()
    for name in checks:
        assert f"| `{name}` |" in doc, f"readiness check {name} is not in docs/observability.md"
    for task in registry_ctx.wheel.tasks():
        assert f"`{task['name']}`" in doc, f"timer task {task['name']} (a label value) is not documented"


# --- alerts and dashboard ---------------------------------------------------------------------


def test_alerts_and_dashboard_use_only_metrics_that_exist(registry_ctx: Context) -> None:
    exposed = exposed_names(families(registry_ctx)) | PROMETHEUS_SERIES
    used = expressions()
    assert any(where.startswith("dashboard") for where in used)
    for where, exprs in used.items():
        for expr in exprs:
            for name in METRIC_NAME.findall(expr):
                assert name in exposed, f"{where}: {name} is not a metric Harmony exposes ({expr})"


def test_every_alert_the_issue_asks_for_exists_and_is_unit_tested() -> None:
    import yaml

    wanted_alerts = {
        "HarmonyDown",
        "SlskdDown",
        "SpotifyCoolingDown",
        "SearchBudgetExhausted",
        "ItemsStuck",
        "DeadLettersGrowing",
        "DiskNearlyFull",
        "BackupsFailing",
    }
    rules = yaml.safe_load((OPS / "alerts.yml").read_text(encoding="utf-8"))
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert wanted_alerts <= names
    tests = yaml.safe_load((OPS / "alerts.test.yml").read_text(encoding="utf-8"))
    for name in names:
        cases = [
            case for test in tests["tests"] for case in test["alert_rule_test"] if case["alertname"] == name
        ]
        assert any(case["exp_alerts"] for case in cases), f"no test shows {name} firing"
        assert any(not case["exp_alerts"] for case in cases), f"no test shows {name} staying quiet"


def test_grafana_dashboard_is_importable() -> None:
    dashboard = json.loads((OPS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dashboard["schemaVersion"] >= 36
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    titles = {panel["title"] for panel in dashboard["panels"]}
    for title in ("Items by state", "Time to library", "Search budget remaining", "Transfers under way"):
        assert title in titles
    for section in ("Errors", "Backups and disk"):
        assert section in titles
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], f"panel {panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_the_scrape_config_points_at_harmonys_default_port_and_loads_the_alerts() -> None:
    import yaml

    from harmony import config

    port = next(o.default for o in config.OPTIONS if o.section == "server" and o.name == "port")
    scrape = yaml.safe_load((OPS / "prometheus.yml").read_text(encoding="utf-8"))
    assert scrape["rule_files"] == ["alerts.yml"]
    (job,) = scrape["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"127.0.0.1:{port}"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]


# --- promtool ---------------------------------------------------------------------------------


def promtool(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@needs_promtool
def test_promtool_checks_the_scrape_config(tmp_path: Path) -> None:
    """promtool stats the credentials file: the check runs on a copy pointed at a dummy one
    (the rule file beside it, as rule_files are resolved relative to the config)."""
    key = tmp_path / "harmony.key"
    key.write_text("dummy-read-key\n")
    text = (OPS / "prometheus.yml").read_text(encoding="utf-8")
    assert "credentials_file: /etc/prometheus/harmony.key" in text
    (tmp_path / "prometheus.yml").write_text(text.replace("/etc/prometheus/harmony.key", str(key)))
    shutil.copy(OPS / "alerts.yml", tmp_path / "alerts.yml")
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", str(OPS / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_every_alert() -> None:
    result = promtool("test", "rules", str(OPS / "alerts.test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_finds_nothing_to_lint_in_the_live_exposition(registry_ctx: Context) -> None:
    anon = Client(make_app(registry_ctx))
    for path in ("/live", "/ready", "/api/v1/wanted", "/nowhere"):
        anon.get(path)  # fill some labelled series
    resp = anon.get("/metrics")
    assert resp.status == 200
    assert "harmony_http_requests_total{" in resp.text and 'harmony_disk_free_bytes{path="data"}' in resp.text
    result = promtool("check", "metrics", stdin=resp.body)
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


# --- the gauges added for the alerts ----------------------------------------------------------


def samples(ctx: Context, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    anon = Client(make_app(ctx))
    out = {}
    for family in text_string_to_metric_families(anon.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_disk_gauges_measure_each_directory(registry_ctx: Context) -> None:
    free = samples(registry_ctx, "harmony_disk_free_bytes")
    size = samples(registry_ctx, "harmony_disk_size_bytes")
    paths = {dict(labels)["path"] for labels in free}
    assert "data" in paths and paths <= {"data", "library", "downloads"}
    for labels, value in free.items():
        assert 0 < value <= size[labels]
    stats = os.statvfs(registry_ctx.config["data.dir"])
    assert size[(("path", "data"),)] == stats.f_blocks * stats.f_frsize


def test_a_directory_that_disappears_drops_its_disk_series(tmp_path: Path) -> None:
    from harmony.metrics import Metrics

    metrics = Metrics()
    there = tmp_path / "there"
    there.mkdir()
    metrics.measure_disks({"data": str(there), "library": str(tmp_path / "missing")})
    labels = {
        s.labels["path"]
        for f in metrics.registry.collect()
        for s in f.samples
        if f.name == "harmony_disk_free_bytes"
    }
    assert labels == {"data"}
    there.rmdir()
    metrics.measure_disks({"data": str(there)})
    assert not [
        s for f in metrics.registry.collect() for s in f.samples if f.name.startswith("harmony_disk_")
    ]


def test_oldest_seconds_reports_the_longest_wait_per_passing_state(tmp_path: Path) -> None:
    with opened(make_config(tmp_path)) as ctx:
        assert set(samples(ctx, "harmony_wanted_oldest_seconds").values()) == {0.0}
        now = ctx.started_at
        with ctx.db.write() as conn:
            for n, (state, since) in enumerate(
                (("searching", 600.0), ("searching", 60.0), ("wanted", 9000.0))
            ):
                track = Track(title=f"Song {n}", artists=("Aurora Vale",), duration_ms=200_000 + n * 10_000)
                item, _ = wanted.want(conn, track, Source("manual"))
                if state != "wanted":
                    wanted.transition(conn, item.id, state, state, "test", now=now - since)
        ages = {
            dict(labels)["state"]: value
            for labels, value in samples(ctx, "harmony_wanted_oldest_seconds").items()
        }
    assert set(ages) == set(wanted.PASSING_STATES)  # bounded: `wanted` is a backlog, not a wait
    assert 600.0 <= ages["searching"] < 700.0
    assert ages["queued"] == 0.0
