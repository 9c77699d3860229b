"""The docs are generated or checked from the code, so they cannot drift."""

from __future__ import annotations

import os
import re

from harmony import __main__ as cli
from harmony import __version__, config
from harmony.context import opened

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


# --- the hand-written docs, held to the code -------------------------------------------------

DOC_FILES = ("README.md", "docs/install.md", "docs/api.md", "docs/architecture.md", "docs/operations.md")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: str) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", read(path), flags=re.MULTILINE)
    return {slug(heading) for heading in headings}


def test_every_relative_link_in_the_docs_resolves() -> None:
    for doc in DOC_FILES:
        base = os.path.dirname(doc)
        for target in LINK.findall(read(doc)):
            if re.match(r"[a-z]+:", target):
                continue  # an external URL
            file, _, anchor = target.partition("#")
            path = os.path.normpath(os.path.join(base, file)) if file else doc
            assert os.path.exists(os.path.join(ROOT, path)), f"{doc} links to missing {target}"
            if anchor and path.endswith(".md"):
                assert anchor in anchors(path), f"{doc} links to missing heading {target}"


def test_readme_links_the_docs_it_promises() -> None:
    readme = read("README.md")
    for doc in ("install.md", "configuration.md", "operations.md", "api.md", "architecture.md"):
        assert f"(docs/{doc})" in readme, f"README.md should link docs/{doc}"


# Every route is documented in docs/api.md with its role: tests/test_route_drift.py.


def test_curl_examples_send_json_as_json() -> None:
    """A body sent without `Content-Type: application/json` is refused (415); curl's `-d` alone
    sends it as a form."""
    for doc in DOC_FILES:
        for command in re.findall(r"curl (?:[^\n]*\\\n)*[^\n]*", read(doc)):
            if re.search(r"\s(-d|--data)\s", command):
                assert "Content-Type: application/json" in command, f"{doc}: {command}"


def test_every_metric_is_documented(tmp_path: object) -> None:
    from conftest import make_config

    docs = read("docs", "api.md") + read("docs", "operations.md")
    with opened(make_config(tmp_path)) as ctx:
        names = {family.name for family in ctx.metrics.registry.collect()}
    assert "harmony_jobs" in names
    missing = sorted(name for name in names if name not in docs)
    assert not missing, f"metrics not documented in docs/api.md or docs/operations.md: {missing}"


def test_every_readiness_check_is_documented(tmp_path: object) -> None:
    from conftest import make_config

    api = read("docs", "api.md")
    with opened(make_config(tmp_path)) as ctx:
        _, checks = ctx.health.report()
    for name in checks:
        assert f"`{name}`" in api, f"readiness check {name} is not described in docs/api.md"


def test_every_error_code_is_documented() -> None:
    from harmony import errors, web

    api = read("docs", "api.md")
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, Exception) and hasattr(cls, "code")
    }
    codes |= set(web._HTTP_CODES.values()) | {"not_ready", "spotify_denied", "http_error"}
    codes -= {"config", "database_too_new"}  # CLI only: they stop startup, never reach HTTP
    for code in sorted(codes):
        assert f"`{code}`" in api, f"error code {code} is not in docs/api.md"


def test_every_runtime_dependency_has_a_reason() -> None:
    setup = read("setup.cfg")
    block = setup.split("install_requires =", 1)[1].split("\n[", 1)[0]
    names = [
        re.split(r"[<>=!~ ;]", line.strip(), maxsplit=1)[0] for line in block.splitlines() if line.strip()
    ]
    section = read("docs", "architecture.md").split("## Runtime dependencies and why", 1)[1]
    assert names
    for name in names:
        assert f"| `{name}` |" in section, f"docs/architecture.md gives no reason for dependency {name}"


def test_every_option_named_in_the_docs_exists() -> None:
    known = set(config.BY_KEY)
    sections = "|".join(config.SECTIONS)
    for doc in DOC_FILES:
        for key in re.findall(rf"`((?:{sections})\.[a-z_]+)`", read(doc)):
            if key.endswith((".yml", ".toml", ".md", ".py")):
                continue  # a file name, not an option
            assert key in known, f"{doc} names unknown option {key}"


def test_readme_starts_with_make_demo_then_make_test() -> None:
    commands = [
        line.split("#", 1)[0].strip()
        for block in re.findall(r"```sh\n(.*?)```", read("README.md"), flags=re.DOTALL)
        for line in block.splitlines()
        if line.strip()
    ]
    assert commands[:2] == ["make demo", "make test"]


def test_docs_reference_guard_finds_nothing() -> None:
    """tools/docs_reference_guard.py: every path the docs and reports name exists; every option,
    command, route, metric and readiness check is documented; the README's version is the
    package's, and CHANGELOG.md has its entry."""
    import sys

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import docs_reference_guard

    found = docs_reference_guard.findings()
    assert not found, "\n".join(found)


def test_docs_reference_guard_catches_a_missing_path() -> None:
    import sys

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import docs_reference_guard as guard

    text = (
        "See `tools/no_such_tool.py`, [the guide](missing.md), `docs/api.md`, `/etc/harmony/harmony.toml`,"
        " `reports/bench/<name>.json`, `dist/harmony.pyz`, `/api/v1/wanted` and https://example.org/x.md."
    )
    found = {path for _, path in guard.path_references("docs/x.md", text, guard.top_level())}
    assert found == {"tools/no_such_tool.py", "docs/missing.md", "docs/api.md"}
