"""Holds the hand-written docs to the repository and the code: a finding for each thing they miss.

Run: .venv/bin/python tools/docs_reference_guard.py        (exit 0: nothing found; 1: findings)

What it checks:

1. **Paths.** Every repository path that README.md, CHANGELOG.md, docs/*.md, docs/operations/*
   and reports/**/*.md name, in `backticks` or as a link target, exists. A link resolves from
   the document's folder (anchors and external URLs are left alone; tests/test_docs.py checks the
   anchors of the main docs). A backticked name counts as a repository path when it names a file
   or folder from the repository's top level (`tools/bench/run.py`, `docs/api.md`,
   `CHANGELOG.md`, `build.py`) or one beside the document; anything with a placeholder (`<`,
   `{`, `*`, `$`, `…`), a space or a scheme, absolute system paths (`/etc/harmony/...`,
   `/var/lib/...`), routes (`/api/v1/...`) and what a build or a run leaves in ignored folders
   (`dist/`, `.venv/`, `demo-data/`) are not. A `path:line` or `path:line(function)` reference
   (profiler output) is checked for its path.
2. **Options.** Every option of `harmony.config.OPTIONS` is named (`section.name`, or its
   environment variable as the generated docs/configuration.md lists it) in docs/ or the README:
   it holds while docs/configuration.md is current (`make docs`; tests/test_docs.py checks that).
3. **Commands.** Every command of `harmony`'s argument parser, and every action of a command
   that has actions (`harmony apikey create`), appears as `harmony NAME` or `harmony.pyz NAME`
   in docs/ or the README.
4. **Routes.** Every route of the app (built as tools/route_drift.py builds it) is defined in
   docs/api.md with its role, matches docs/openapi.json, and the generated route table is
   current: the drift tools/route_drift.py reports.
5. **Metrics.** Every metric family in the live registry (a context opened on a throwaway data
   directory) is named in docs/ or the README.
6. **Readiness checks.** Every check `/ready` reports is named, in backticks, in docs/ or the
   README.
7. **Version.** The README's `Version: X.Y.Z` is `harmony.__version__`, and CHANGELOG.md has an
   entry for it.

Standard library and Harmony only; takes a second or two. `make docs-verify` runs it, and
tests/test_docs.py runs it in the suite.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))

# Folders a build, a run or a virtual environment leaves behind; never part of a fresh clone.
NOT_IN_REPO = {".venv", "venv", "dist", "build", "demo-data", "data", ".git", "__pycache__"}
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
BACKTICK = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
PLACEHOLDER = re.compile(r"[<>{}*$…\s|\\\"'=,;]")
VERSION = re.compile(r"^Version: (\S+)\s*$", re.MULTILINE)


def rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def documents() -> list[str]:
    """The documents whose path references are checked, relative to the repository."""
    found = ["README.md", "CHANGELOG.md"]
    found += sorted(rel(p) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
    found += sorted(
        rel(p) for p in glob.glob(os.path.join(ROOT, "docs", "operations", "*")) if os.path.isfile(p)
    )
    found += sorted(rel(p) for p in glob.glob(os.path.join(ROOT, "reports", "**", "*.md"), recursive=True))
    return [doc for doc in found if os.path.exists(os.path.join(ROOT, doc))]


def prose_docs() -> str:
    """README.md and every Markdown file in docs/ (not reports/): where things are documented."""
    parts = [read(os.path.join(ROOT, "README.md"))]
    for path in sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)):
        parts.append(read(path))
    return "\n".join(parts)


def top_level() -> set[str]:
    names = {n for n in os.listdir(ROOT) if n not in NOT_IN_REPO and not n.endswith(".egg-info")}
    return {n for n in names if not n.startswith(".")} | {".ci"}


def looks_like_path(text: str) -> bool:
    if PLACEHOLDER.search(text) or re.match(r"[a-z][a-z0-9+.-]*:", text, re.IGNORECASE):
        return False  # a placeholder, a sentence, or a URL/scheme (`ntfy+https:`, `spotify:artist:`)
    return bool(re.fullmatch(r"[\w./@+-]+", text))


def path_references(doc: str, text: str, roots: set[str]) -> Iterator[tuple[str, str]]:
    """(what the document says, the repository path it means) for each path reference."""
    base = os.path.dirname(doc)
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith(("#", "/")):
            continue  # external, an anchor in the same document, or a site-absolute URL
        file = target.split("#", 1)[0]
        if file and not PLACEHOLDER.search(file):
            yield target, os.path.normpath(os.path.join(base, file))
    for span in BACKTICK.findall(FENCE.sub("", text)):
        candidate = re.sub(r":\d+(\(.*\))?$", "", span.strip())  # `harmony/db.py:78(_row_trace)`
        if candidate.startswith("./"):
            candidate = candidate[2:]
        if not candidate or candidate.startswith(("/", "~", "-")) or not looks_like_path(candidate):
            continue
        first = candidate.split("/", 1)[0]
        if first in NOT_IN_REPO or first in ("", ".", ".."):
            continue
        beside = os.path.normpath(os.path.join(base, candidate))
        if base and os.path.exists(os.path.join(ROOT, beside)):
            continue  # a file named from its neighbour (`operations/harmony.service` in docs/)
        if "/" in candidate.rstrip("/"):
            if first in roots:
                yield span, candidate.rstrip("/")
        elif candidate in roots or re.fullmatch(r"[A-Z][A-Z_-]*\.md", candidate):
            yield span, candidate  # a top-level file: `build.py`, `CHANGELOG.md`


def check_paths() -> Iterator[str]:
    roots = top_level()
    for doc in documents():
        seen: set[str] = set()
        for said, path in path_references(doc, read(os.path.join(ROOT, doc)), roots):
            if path in seen:
                continue
            seen.add(path)
            if not os.path.exists(os.path.join(ROOT, path)):
                yield f"{doc}: names `{said}`, but {path} does not exist"


def command_names(parser: argparse.ArgumentParser) -> Iterator[str]:
    """`serve`, `apikey create`, ...: every command, and each action of a command with actions."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = [n for n in command_names(sub)]
                if nested:
                    yield from (f"{name} {n}" for n in nested)
                else:
                    yield name


def check_commands(docs: str) -> Iterator[str]:
    from harmony import __main__ as cli

    for name in command_names(cli._parser()):
        words = r"\s+".join(re.escape(word) for word in name.split())
        if not re.search(rf"harmony(\.pyz)?\s+{words}\b", docs):
            yield f"command `harmony {name}` is not documented in docs/ or README.md"


def check_options(docs: str) -> Iterator[str]:
    from harmony import config

    for option in config.OPTIONS:
        named = re.search(rf"(?<![\w.]){re.escape(option.key)}(?![\w])", docs)
        if not named and not re.search(rf"\b{option.env}\b", docs):  # configuration.md's table
            yield f"option `{option.key}` is not documented in docs/ or README.md"


def check_live(docs: str) -> Iterator[str]:
    """Routes, metrics and readiness checks, read from a context over a throwaway data directory."""
    import route_drift

    from harmony import config
    from harmony.context import opened
    from harmony.web import make_app

    with tempfile.TemporaryDirectory(prefix="harmony-docs-guard-") as data_dir:
        cfg = config.load(None, {}, {"data.dir": data_dir, "log.format": "text", "log.level": "warning"})
        with opened(cfg) as ctx:
            app: Any = make_app(ctx)
            metrics = sorted({family.name for family in ctx.metrics.registry.collect()})
            _, checks = ctx.health.report()
    for problem in route_drift.compare(app).problems():
        yield f"route drift (tools/route_drift.py): {problem}"
    for name in metrics:
        suffixes = "(?:_total|_created|_bucket|_count|_sum|_info)?"
        if not re.search(rf"(?<!\w){re.escape(name)}{suffixes}(?!\w)", docs):
            yield f"metric `{name}` is not documented in docs/ or README.md"
    for name in sorted(checks):
        if f"`{name}`" not in docs:
            yield f"readiness check `{name}` is not documented in docs/ or README.md"


def check_version() -> Iterator[str]:
    from harmony import __version__

    readme = read(os.path.join(ROOT, "README.md"))
    match = VERSION.search(readme)
    if not match:
        yield "README.md has no `Version: X.Y.Z` line"
    elif match.group(1) != __version__:
        yield f"README.md says version {match.group(1)}, the package is {__version__}"
    changelog = os.path.join(ROOT, "CHANGELOG.md")
    if not os.path.exists(changelog):
        yield "CHANGELOG.md does not exist"
    elif not re.search(rf"^## \[{re.escape(__version__)}\]", read(changelog), re.MULTILINE):
        yield f"CHANGELOG.md has no entry `## [{__version__}]`"


def findings() -> list[str]:
    docs = prose_docs()
    found: list[str] = []
    checks: Iterable[Iterator[str]] = (
        check_paths(),
        check_options(docs),
        check_commands(docs),
        check_live(docs),
        check_version(),
    )
    for check in checks:
        found.extend(check)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.parse_args(argv)
    found = findings()
    for finding in found:
        print(finding)
    print(f"docs reference guard: {len(found)} finding(s)" if found else "docs reference guard: ok")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
