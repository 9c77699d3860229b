"""Benchmark of acquisition: how well the ranker picks on the public match corpus.

Run: .venv/bin/python tools/bench/acquire.py [--out reports/bench/acquire.md]

Sections, one function each, in report order:

1. `match_corpus`: precision and recall of the pick on `tests/data/match/` by category (targets:
   at least 99 % precision and 95 % recall), every file's verdict against its label, and the time
   `harmony rank` takes per search.

To add a section, write a function returning its Markdown lines and call it from `main`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import test_match_corpus as corpus  # noqa: E402

PRECISION_TARGET = 0.99
RECALL_TARGET = 0.95


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _row(name: str, s: corpus.Score, bold: bool = False) -> str:
    mark = "**" if bold else ""
    cells = [name, s.cases, s.positives, s.picks, s.right_picks, f"{mark}{_percent(s.precision)}{mark}",
             f"{mark}{_percent(s.recall)}{mark}", f"{s.negatives_empty} of {s.negatives}", s.wrong_files,
             s.missed_files]  # fmt: skip
    return "| " + " | ".join(map(str, cells)) + " |"


def match_corpus() -> list[str]:
    """Section 1: the pick against the corpus's acceptable picks, by category."""
    cases = corpus.load()
    scores = corpus.evaluate(cases)
    timings, files = [], []
    for case in cases:
        started = time.perf_counter()
        corpus.outcome(case)
        timings.append((time.perf_counter() - started) * 1000)
        files.append(sum(len(r["files"]) + len(r["lockedFiles"]) for r in case["responses"]))
    overall = scores["all"]
    met = overall.precision >= PRECISION_TARGET and overall.recall >= RECALL_TARGET
    rows = [_row(name, score) for name, score in sorted(scores.items()) if name != "all"]
    misses = ", ".join(overall.misses) or "none"
    return [
        "## Match corpus: precision and recall of the pick",
        "",
        f"{len(cases)} searches in `tests/data/match/`, each one track wanted, slskd's responses as a real "
        "search shows them, and the picks a careful person would accept (or none). The ranker runs through "
        "`harmony rank`'s contract (`ranking.rank_json`) with default preferences unless the case sets them.",
        "",
        "- precision: right picks / picks; recall: right picks / searches with an acceptable file;",
        '- "none": searches where nothing is acceptable that got no pick;',
        "- wrong files: files accepted (not only picked) that are not acceptable, in categories where no "
        "preference decides between right files (in `peer_tiebreak` and `quality` the right files that "
        "lose on preference are accepted by design); missed files: acceptable files rejected.",
        "",
        "| category | searches | with an acceptable file | picks | right picks | precision | recall "
        "| none when none | wrong files | missed files |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        _row("**all**", overall, bold=True),
        "",
        f"Targets: at least {_percent(PRECISION_TARGET)} precision and {_percent(RECALL_TARGET)} recall: "
        f"{'met' if met else '**not met**'}. Searches picked wrongly or missed: {misses}.",
        "",
        "The corpus was written alongside the ranker, so these figures are an upper bound: searches "
        "from real shares (users attach `harmony rank` output to bug reports) belong in it, each with "
        "its acceptable picks, and are the test that counts.",
        "",
        f"Time to rank one search ({statistics.mean(files):.1f} files on average, at most {max(files)}): "
        f"p50 {statistics.median(timings):.2f} ms, p95 {statistics.quantiles(timings, n=20)[18]:.2f} ms, "
        f"max {max(timings):.2f} ms (after the first pass warmed the caches).",
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench" / "acquire.md"))
    args = parser.parse_args(argv)

    sections = [match_corpus()]
    lines = [
        "# Acquisition benchmark",
        "",
        f"Produced by `tools/bench/acquire.py` on {time.strftime('%Y-%m-%d', time.gmtime())}: "
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}.",
        "",
        *(line for section in sections for line in section),
    ]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
