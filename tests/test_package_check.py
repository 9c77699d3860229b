"""tools/package_check.py's wheel check, on made-up wheels: it names what a wheel lacks or holds
beyond the package. (The check itself, building and installing, runs in `make release-check`.)"""

from __future__ import annotations

import importlib.util
import os
import re
import zipfile
from typing import Any

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = ("__init__.py", "templates/layout.tpl", "static/harmony.css", "openapi.json", "fakes/__init__.py")


@pytest.fixture(scope="module")
def package_check() -> Any:
    spec = importlib.util.spec_from_file_location(
        "package_check", os.path.join(ROOT, "tools", "package_check.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source(tmp_path: Any) -> str:
    for name in PACKAGE:
        path = tmp_path / "source" / "harmony" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return str(tmp_path / "source")


def wheel(tmp_path: Any, names: list[str], console_script: bool = True) -> str:
    path = str(tmp_path / "harmony-0.1.0-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "")
        scripts = "[console_scripts]\nharmony = harmony.__main__:main\n" if console_script else ""
        archive.writestr("harmony-0.1.0.dist-info/entry_points.txt", scripts)
    return path


def test_a_complete_wheel_passes(tmp_path, package_check) -> None:
    built = wheel(tmp_path, [f"harmony/{name}" for name in PACKAGE])
    assert package_check.check_wheel(built, source(tmp_path)).startswith(
        "harmony-0.1.0-py3-none-any.whl: 6 files"
    )


@pytest.mark.parametrize(
    ("names", "console_script", "message"),
    [
        (["harmony/__init__.py", "harmony/openapi.json"], True, "lacks 3 files: harmony/fakes/__init__.py"),
        (
            [f"harmony/{name}" for name in PACKAGE] + ["tests/test_x.py"],
            True,
            "outside harmony/: tests/test_x.py",
        ),
        ([f"harmony/{name}" for name in PACKAGE], False, "no `harmony` console script"),
    ],
    ids=["missing", "stray", "no-script"],
)
def test_a_wrong_wheel_is_named(tmp_path, package_check, names, console_script, message) -> None:
    built = wheel(tmp_path, names, console_script)
    with pytest.raises(package_check.CheckFailed, match=re.escape(message)):
        package_check.check_wheel(built, source(tmp_path))
