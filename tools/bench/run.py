"""Runs every benchmark in tools/bench/ and writes a summary: each figure beside its target, met or not.

Run: .venv/bin/python tools/bench/run.py [--quick] [--only NAME ...] [--summary-only] [--strict]

- Without `--quick`: each benchmark at full size, writing its report to `reports/bench/NAME.md`
  (as `make bench` does); then `reports/bench/summary.md` and `reports/bench/summary.json`.
- `--quick`: each benchmark's short mode (`--quick`, or smaller sizes for the scripts without one),
  writing to `reports/bench/quick/` so the full results are never overwritten by small runs; the
  summary goes to `reports/bench/quick/summary.md`. The release gate runs this: it proves every
  benchmark still runs end to end. Its figures come from smaller sizes than the targets are set
  for, so a target missed there is reported, not fatal.
- `--summary-only`: runs nothing; rebuilds the summary from the reports already written.
- `--strict`: exit 1 when any target is not met (otherwise only a benchmark that fails to run,
  or a report whose figures cannot be read, makes the exit status 1).

Each benchmark writes a Markdown report for people; this script reads the figures back out of it
(the `| figure | measured | target | |` tables the reports share, and a few report-specific
lines), so a report is the one source of its numbers. A report whose expected figures are missing
is a failure: the summary would otherwise silently lose a target. Each figure's row is also
written to `summary.json` as `{"bench", "figure", "measured", "target", "met", "source"}`.

The targets are the ones in DESIGN.md ("Scale and speed") and the issues that asked for each
benchmark; every one of them appears in the summary, under the benchmark that measures it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tools" / "bench"
FULL_DIR = ROOT / "reports" / "bench"
QUICK_DIR = FULL_DIR / "quick"

# name -> (extra arguments for a full run, for a quick run). Every script takes --out.
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "jobs": ([], ["--cycles", "2000"]),
    "service": ([], ["--requests", "300"]),
    "watchlist": ([], ["--quick"]),
    "library": ([], ["--quick"]),
    "ui": ([], ["--items", "1000", "--tracks", "10000", "--rounds", "5"]),
    "acquire": ([], ["--quick"]),
    "api": ([], ["--quick"]),
}

# The targets of DESIGN.md's "Scale and speed", each with the benchmark that measures it.
DESIGN_TARGETS = [
    ("idle RSS under 60 MB", "service"),
    ("`/live` under 2 ms", "service"),
    ("list endpoints p95 under 50 ms at full size", "api, library, watchlist"),
    ("one slskd list call per poll whatever the number of transfers", "acquire"),
    ("searches per resolved item under 1.3", "acquire"),
    ("library rescan of an unchanged 250k-track library under 30 s", "library"),
    ("cold start of the zipapp under 1 s with a warm extraction cache", "service"),
    ("UI pages p95 under 300 ms (250k tracks, 10k items)", "ui"),
    ("job queue at least 2,000 cycles/s", "jobs"),
]


@dataclass
class Figure:
    bench: str
    figure: str
    measured: str
    target: str
    met: bool
    source: str  # the report it was read from, relative to the repository


class ReportError(Exception):
    pass


def plain(cell: str) -> str:
    """A Markdown table cell as text: bold markers dropped, spaces squeezed."""
    return re.sub(r"\s+", " ", cell.replace("**", "")).strip()


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def target_tables(text: str) -> list[tuple[str, str, str, str]]:
    """Rows of every `| figure | measured | target | |` table that have a target."""
    rows: list[tuple[str, str, str, str]] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        head = [plain(c).lower() for c in cells(line)] if line.startswith("|") else []
        if head[:3] != ["figure", "measured", "target"]:
            continue
        for row in lines[index + 2 :]:
            if not row.startswith("|"):
                break
            parts = cells(row)
            if len(parts) < 4:
                continue
            figure, measured, target, verdict = (plain(p) for p in parts[:4])
            if target.lower() in ("", "no target"):
                continue
            rows.append((figure, measured, target, verdict))
    return rows


def verdict_met(verdict: str) -> bool:
    word = verdict.lower()
    if word in ("met", "pass", "yes"):
        return True
    if word in ("not met", "fail", "no"):
        return False
    raise ReportError(f"unreadable verdict {verdict!r}")


def generic(bench: str, text: str, source: str) -> list[Figure]:
    return [
        Figure(bench, figure, measured, target, verdict_met(verdict), source)
        for figure, measured, target, verdict in target_tables(text)
    ]


def need(pattern: str, text: str, what: str) -> re.Match[str]:
    match = re.search(pattern, text, flags=re.MULTILINE)
    if not match:
        raise ReportError(f"no {what} in the report")
    return match


def number(text: str) -> float:
    return float(text.replace(",", ""))


def read_acquire(text: str, source: str) -> list[Figure]:
    figures = []
    row = need(r"^\| \*\*all\*\* \|(.*)$", text, "match corpus 'all' row")
    parts = [plain(c) for c in cells("|" + row.group(1))]
    # searches, with an acceptable file, picks, right picks, precision, recall, ...
    precision, recall = parts[4], parts[5]
    figures.append(
        Figure(
            "acquire",
            "match corpus: precision of the pick",
            precision,
            "≥ 99 %",
            number(precision.rstrip(" %")) >= 99.0,
            source,
        )
    )
    figures.append(
        Figure(
            "acquire",
            "match corpus: recall of the pick",
            recall,
            "≥ 95 %",
            number(recall.rstrip(" %")) >= 95.0,
            source,
        )
    )
    figures += generic("acquire", text, source)
    once = need(r"One list call per poll in every case: \*\*(yes|no)\*\*", text, "list calls per poll")
    active = need(r"^\| active only \| ([\d,]+) \|[^|]*\| \*\*([\d.]+)\*\* \|", text, "the poll's CPU")
    figures.append(
        Figure(
            "acquire",
            f"slskd list calls per transfer poll ({active.group(1)} active transfers; "
            f"CPU {active.group(2)} ms a poll, p50)",
            "1 in every case" if once.group(1) == "yes" else "more than 1",
            "1 per poll",
            once.group(1) == "yes",
            source,
        )
    )
    return figures


def read_service(text: str, source: str) -> list[Figure]:
    section = need(r"(?s)^## Summary\n(.*?)(?=^## )", text + "\n## ", "summary table").group(1)
    figures = []
    for line in section.splitlines()[3:]:
        if not line.startswith("|"):
            continue
        what, measured, verdict = (plain(c) for c in cells(line)[:3])
        split = re.match(r"(.*?)\s*\b(under [^(,]+?)\s*(,.*|\(.*)?$", what)
        rest = (split.group(3) or "") if split else ""
        joined = f"{split.group(1)}{'' if rest.startswith(',') else ' '}{rest}" if split else what
        figure, target = (joined, split.group(2)) if split else (what, what)
        figures.append(Figure("service", figure.strip(" ,"), measured, target, verdict_met(verdict), source))
    if len(figures) < 3:
        raise ReportError("fewer than three targets in the summary table")
    return figures


def read_jobs(text: str, source: str) -> list[Figure]:
    row = need(r"^\| ([\d,]+) \| [\d.]+ \| \*\*([\d,]+)\*\* \|", text, "throughput row")
    target = number(need(r"Target: at least ([\d,]+) cycles/s", text, "target line").group(1))
    value = number(row.group(2))
    return [
        Figure(
            "jobs",
            f"enqueue → lease → complete, {row.group(1)} jobs, 2 workers",
            f"{value:,.0f} cycles/s",
            f"≥ {target:,.0f} cycles/s",
            value >= target,
            source,
        )
    ]


def read_ui(text: str, source: str) -> list[Figure]:
    target = number(need(r"Target: p95 under ([\d,]+) ms", text, "target line").group(1))
    worst: tuple[float, str] | None = None
    for line in text.splitlines():
        match = re.match(r"^\| ([^|]+) \| `[^`]*` \| [\d.]+ \| \*\*([\d.]+)\*\* \|", line)
        if match:
            value = float(match.group(2))
            if worst is None or value > worst[0]:
                worst = (value, match.group(1).strip())
    if worst is None:
        raise ReportError("no page rows")
    items = re.search(r"holds ([\d,]+) wanted items", text)
    tracks = re.search(r"library index holds ([\d,]+) tracks", text)
    size = f"{items.group(1) if items else '?'} items, {tracks.group(1) if tracks else '?'} tracks"
    return [
        Figure(
            "ui",
            f"slowest page p95 ({worst[1]}; {size})",
            f"{worst[0]:.2f} ms",
            f"p95 < {target:.0f} ms",
            worst[0] < target,
            source,
        )
    ]


READERS = {
    "acquire": read_acquire,
    "service": read_service,
    "jobs": read_jobs,
    "ui": read_ui,
}
EXPECTED_AT_LEAST = {"watchlist": 2, "library": 2, "api": 1}


def read_report(name: str, path: Path, quick: bool = False) -> tuple[list[Figure], str]:
    """The report's target figures and a line saying how and when it was produced."""
    text = path.read_text(encoding="utf-8")
    source = str(path.relative_to(ROOT))
    reader = READERS.get(name)
    figures = reader(text, source) if reader else generic(name, text, source)
    if len(figures) < EXPECTED_AT_LEAST.get(name, 1):
        raise ReportError(f"only {len(figures)} target figure(s) found")
    produced = re.search(r"^Produced by `[^`]+`(?: \(([^)]*)\))? on ([\d-]+)", text, flags=re.MULTILINE)
    how = ""
    if produced:
        sizes = produced.group(1)
        if not sizes:
            arguments = BENCHES[name][1] if quick else []
            sizes = f"`{' '.join(arguments)}`" if arguments else "its default sizes"
        how = f"{sizes}, {produced.group(2)}"
    return figures, how


def run_bench(name: str, quick: bool, out_dir: Path, python: str) -> tuple[bool, float, str]:
    full, short = BENCHES[name]
    out = out_dir / f"{name}.md"
    command = [python, str(BENCH / f"{name}.py"), *(short if quick else full), "--out", str(out)]
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - started
    tail = "\n".join(done.stdout.strip().splitlines()[-15:])
    print(tail, flush=True)
    print(f"== {name}: exit {done.returncode} after {seconds:.0f} s", flush=True)
    return done.returncode == 0, seconds, tail


def summary_lines(
    quick: bool,
    out_dir: Path,
    figures: list[Figure],
    notes: dict[str, str],
    failures: dict[str, str],
    timings: dict[str, float],
) -> list[str]:
    met = sum(1 for figure in figures if figure.met)
    mode = (
        "short runs (`tools/bench/run.py --quick`): smaller sizes than the targets are set for, "
        "so a figure here shows the benchmark runs, not that the target holds at full size; the "
        "full results are in [reports/bench/summary.md](../summary.md)"
        if quick
        else "the full-size runs (`tools/bench/run.py`, or each script on its own)"
    )
    lines = [
        "# Benchmark summary" + (" (short runs)" if quick else ""),
        "",
        f"Written by `tools/bench/run.py` on {time.strftime('%Y-%m-%d', time.gmtime())} from the reports "
        f"of {mode}. Each row is read from the benchmark's own report, linked beside it, which says "
        'how it was measured. Targets: DESIGN.md ("Scale and speed") and the issue that asked for '
        "each benchmark.",
        "",
        f"Targets met: **{met} of {len(figures)}**"
        + (f"; not met: {', '.join(f.figure for f in figures if not f.met)}." if met < len(figures) else ".")
        + (
            f" Benchmarks that failed or could not be read: {', '.join(sorted(failures))}."
            if failures
            else ""
        ),
        "",
        "| benchmark | figure | measured | target | |",
        "|---|---|---|---|---|",
    ]
    for figure in figures:
        verdict = "met" if figure.met else "**not met**"
        lines.append(
            f"| [{figure.bench}]({os.path.relpath(ROOT / figure.source, out_dir)}) | {figure.figure} "
            f"| {figure.measured} | {figure.target} | {verdict} |"
        )
    lines += ["", "## The reports", "", "| benchmark | report | run | |", "|---|---|---|---:|"]
    for name in BENCHES:
        report = out_dir / f"{name}.md"
        status = failures.get(name) or notes.get(name, "")
        took = f"{timings[name]:.0f} s" if name in timings else ""
        if not report.exists() and not quick and (QUICK_DIR / report.name).exists():
            report = QUICK_DIR / report.name
        rel = report.relative_to(out_dir) if report.exists() else None
        link = f"[{rel}]({rel})" if rel else "(none)"
        lines.append(f"| `tools/bench/{name}.py` | {link} | {status} | {took} |")
    lines += ["", "## DESIGN.md's targets and where they are measured", ""]
    for target, where in DESIGN_TARGETS:
        lines.append(f"- {target}: {where}.")
    if failures:
        lines += ["", "## Failures", ""]
        for name, why in sorted(failures.items()):
            lines += [f"### {name}", "", "```", why, "```", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short modes, reports in reports/bench/quick/")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(BENCHES), help="run only these (the summary reads all)"
    )
    parser.add_argument("--summary-only", action="store_true", help="run nothing; summarise existing reports")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)

    out_dir = QUICK_DIR if args.quick else FULL_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    failures: dict[str, str] = {}
    timings: dict[str, float] = {}
    if not args.summary_only:
        for name in args.only or list(BENCHES):
            ok, seconds, tail = run_bench(name, args.quick, out_dir, sys.executable)
            timings[name] = seconds
            if not ok:
                failures[name] = f"exited non-zero; last lines:\n{tail}"

    figures: list[Figure] = []
    notes: dict[str, str] = {}
    for name in BENCHES:
        report = out_dir / f"{name}.md"
        if name in failures:
            continue
        short = False
        if not report.exists() and not args.quick and (QUICK_DIR / f"{name}.md").exists():
            report, short = QUICK_DIR / f"{name}.md", True  # no full run yet: say so on every row
        if not report.exists():
            failures[name] = "no report: run the benchmark"
            continue
        try:
            found, how = read_report(name, report, quick=args.quick or short)
        except ReportError as exc:
            failures[name] = f"report unreadable: {exc}"
            continue
        if short:
            for figure in found:
                figure.figure += " (short run: no full-size report yet)"
            how = f"**short run only** ({how}): {report.relative_to(out_dir)}"
        figures += found
        notes[name] = how

    lines = summary_lines(args.quick, out_dir, figures, notes, failures, timings)
    summary = out_dir / "summary.md"
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out_dir / "summary.json").write_text(
        json.dumps([asdict(figure) for figure in figures], indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    missed = [figure for figure in figures if not figure.met]
    print(
        f"wrote {os.path.relpath(summary, ROOT)}: {len(figures) - len(missed)} of {len(figures)} targets met"
    )
    for name, why in failures.items():
        print(f"FAILED {name}: {why.splitlines()[0]}", file=sys.stderr)
    if failures or (args.strict and missed):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
