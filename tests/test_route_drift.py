"""The app's routes, docs/openapi.json and docs/api.md agree (tools/route_drift.py), and the
route -> role table in docs/api.md is the one the route table generates."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_tool() -> Any:
    spec = importlib.util.spec_from_file_location(
        "route_drift", os.path.join(ROOT, "tools", "route_drift.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["route_drift"] = module  # a dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


route_drift = load_tool()


def test_no_route_drifts(app: Any) -> None:
    problems = list(route_drift.compare(app).problems())
    assert not problems, "route drift (see `python tools/route_drift.py`):\n" + "\n".join(problems)


def test_api_md_definitions_are_read_with_their_roles() -> None:
    text = (
        "### `GET /a/{x}`\n\nRole `operator`. Does a.\n\n"
        "- `POST /ui/b`: role `admin`. Does b.\n"
        "- `GET /c` is open, unlike `GET /d` (role `read`) mentioned in passing.\n"
        f"{route_drift.TABLE_START}\n| `GET` | `/e` | `read` |\n{route_drift.TABLE_END}\n"
    )
    assert route_drift.doc_routes(text) == {
        ("GET", "/a/{x}"): "operator",
        ("POST", "/ui/b"): "admin",
        ("GET", "/c"): "read",  # the list item's text names a role: its own, as far as the tool knows
    }


def test_the_report_names_each_kind_of_drift() -> None:
    drift = route_drift.Drift(
        app={("GET", "/a"): "read", ("POST", "/b"): "operator"},
        spec={("GET", "/a"): "admin", ("GET", "/gone"): None},
        doc={("GET", "/a"): "read", ("POST", "/b"): "read", ("GET", "/old"): None},
        table_current=False,
    )
    problems = "\n".join(drift.problems())
    for text in (
        "x-role is admin",
        "`POST /b` is not in docs/openapi.json",
        "docs/api.md names role read",
        "`GET /gone` is in docs/openapi.json but the app has no such route",
        "`GET /old` is documented in docs/api.md but the app has no such route",
        "route table in docs/api.md is out of date",
    ):
        assert text in problems
    assert "- drift: 6" in route_drift.report(drift)
