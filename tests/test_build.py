"""build.py: two builds of the same sources, from checkouts at different paths, one with shiv
installed and one without, give the same bytes; the zipapp runs and, on start, removes the
extractions of other builds from its SHIV_ROOT."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from typing import Any

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name: str, path: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checkout(target: str) -> str:
    """A copy of the files build.py builds from, without .git: both copies get the same id."""
    load("harmony_build", os.path.join(ROOT, "build.py")).copy_sources(target)
    return target


@pytest.mark.timeout(600)  # about 30 s: two builds, one of them installs shiv into a new virtualenv
def test_builds_are_byte_identical_and_the_zipapp_prunes_old_extractions(tmp_path, monkeypatch) -> None:
    first = checkout(str(tmp_path / "a"))
    second = checkout(str(tmp_path / "elsewhere" / "deeper" / "harmony"))
    env = {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}

    # With shiv (this Python has it), from the checkout as the working directory.
    subprocess.run([sys.executable, "build.py"], cwd=first, env=env, check=True, capture_output=True)
    # Without shiv (-S: no site-packages, so build.py makes its own virtualenv), from another
    # directory, with a umask that would give pip's files other modes.
    done = subprocess.run(
        [sys.executable, "-S", os.path.join(second, "build.py")],
        cwd=str(tmp_path),
        env=env,
        check=True,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.umask(0o077),
    )
    assert "temporary virtualenv" in done.stdout

    built = os.path.join(first, "dist", "harmony.pyz")
    with open(built, "rb") as one, open(os.path.join(second, "dist", "harmony.pyz"), "rb") as other:
        assert one.read() == other.read(), "two builds of the same sources differ"

    shiv_root = tmp_path / "shiv"
    stale = shiv_root / "harmony.pyz_0123456789ab-fedcba9876"
    (stale / "site-packages").mkdir(parents=True)
    (shiv_root / ".harmony.pyz_0123456789ab-fedcba9876_lock").touch()
    monkeypatch.setenv("SHIV_ROOT", str(shiv_root))
    smoke = load("smoke_zipapp", os.path.join(ROOT, "tools", "smoke_zipapp.py"))
    assert smoke.check_version(built).startswith("harmony ")
    assert stale.is_dir()  # a command other than serve or demo removes nothing
    (tmp_path / "data").mkdir()
    smoke.check_demo(built, str(tmp_path / "data"))
    assert not stale.exists()
    assert [path.name for path in shiv_root.iterdir() if not path.name.startswith(".")] == [
        f"harmony.pyz_{done.stdout.split('(build ')[1].split(')')[0]}"
    ]
