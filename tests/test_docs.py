"""The docs are generated or checked from the code, so they cannot drift."""

from __future__ import annotations

import os
import re

from harmony import __main__ as cli
from harmony import __version__, config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*parts: str) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as handle:
        return handle.read()


def test_configuration_reference_is_generated_from_the_table() -> None:
    assert read("docs", "configuration.md") == config.reference() + "\n", "run `make docs`"


def test_sample_config_is_current() -> None:
    assert read("docs", "harmony.sample.toml") == config.sample() + "\n", "run `make docs`"


def test_every_cli_command_is_documented() -> None:
    parser = cli._parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    docs = read("README.md") + read("docs", "operations.md")
    for name in commands:
        assert re.search(rf"harmony(\.pyz)? {name}\b", docs), f"`harmony {name}` is not documented"


def test_readme_gives_the_two_first_commands_and_the_version() -> None:
    readme = read("README.md")
    assert "make demo" in readme and "make test" in readme
    assert __version__ in readme


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in read(".ci", "run")
