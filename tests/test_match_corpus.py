"""The public match corpus (`tests/data/match/*.json`) holds the ranker to what a careful person would pick.

Each case is one Soulseek search for one track, in slskd's JSON, with the picks that are right (or
none). `evaluate()` scores the ranker on the corpus by category; `tools/bench/acquire.py` reports it.
`build.py` in the same directory generated the JSON, but the tests read only the JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harmony.ranking import rank_json

CORPUS = Path(__file__).resolve().parent / "data" / "match"
CATEGORIES = {
    "odd_names", "versions", "requested_version", "other_acts", "title_identity", "truncated_mislabelled",
    "missing_attributes", "multi_disc", "compilations", "non_latin", "hostile_paths", "peer_tiebreak",
    "quality", "nothing_acceptable",
}  # fmt: skip
RESPONSE_KEYS = {"username", "hasFreeUploadSlot", "uploadSpeed", "queueLength", "files", "lockedFiles"}
FILE_KEYS = {
    "filename",
    "size",
    "extension",
    "bitRate",
    "bitDepth",
    "sampleRate",
    "length",
    "isVariableBitRate",
}


def load(directory: Path = CORPUS) -> list[dict[str, Any]]:
    """Every case of every category file, in file then case order."""
    cases: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.json")):
        with open(path, encoding="utf-8") as handle:
            cases.extend(json.load(handle))
    return cases


def outcome(case: dict[str, Any]) -> dict[str, Any]:
    """`harmony rank`'s answer for one case."""
    document = {"wanted": case["wanted"], "responses": case["responses"]}
    if "preferences" in case:
        document["preferences"] = case["preferences"]
    return rank_json(document)


def acceptable(case: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["username"], a["filename"]) for a in case["acceptable"]}


@dataclass
class Score:
    """One category's (or the whole corpus's) tally.

    precision = right picks / picks; recall = right picks / cases with an acceptable file; "none"
    counts the cases with nothing acceptable and how many of them got no pick. `wrong_files` and
    `missed_files` judge every file, not only the pick: accepted files that are not acceptable where
    the case has no preference to settle (all but `peer_tiebreak` and `quality`, whose dispreferred
    right files are accepted by design), and acceptable files that were rejected.
    """

    cases: int = 0
    picks: int = 0
    right_picks: int = 0
    positives: int = 0
    negatives: int = 0
    negatives_empty: int = 0
    wrong_files: int = 0
    missed_files: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.right_picks / self.picks if self.picks else 1.0

    @property
    def recall(self) -> float:
        return self.right_picks / self.positives if self.positives else 1.0

    def add(self, case: dict[str, Any], result: dict[str, Any]) -> None:
        good = acceptable(case)
        picked = result["pick"]
        chosen = (picked["username"], picked["filename"]) if picked else None
        self.cases += 1
        self.picks += chosen is not None
        self.right_picks += chosen in good
        self.positives += bool(good)
        self.negatives += not good
        self.negatives_empty += not good and chosen is None
        if not (chosen in good if good else chosen is None):
            self.misses.append(case["id"])
        by_design = case["category"] in ("peer_tiebreak", "quality")
        for candidate in result["candidates"]:
            key = (candidate["username"], candidate["filename"])
            self.wrong_files += candidate["accepted"] and key not in good and not by_design
            self.missed_files += not candidate["accepted"] and key in good


def evaluate(cases: Iterable[dict[str, Any]]) -> dict[str, Score]:
    """Scores by category, plus "all" for the whole corpus."""
    scores: dict[str, Score] = {"all": Score()}
    for case in cases:
        result = outcome(case)
        scores.setdefault(case["category"], Score()).add(case, result)
        scores["all"].add(case, result)
    return scores


CASES = load()


def test_the_corpus_is_large_and_covers_every_category() -> None:
    assert len(CASES) >= 250
    assert {case["category"] for case in CASES} == CATEGORIES
    assert len({case["id"] for case in CASES}) == len(CASES)
    assert sum(not case["acceptable"] for case in CASES) >= 50


def test_cases_are_in_slskd_shape() -> None:
    for case in CASES:
        assert {"id", "category", "wanted", "responses", "acceptable", "why"} <= set(case), case["id"]
        assert case["why"] and "\n" not in case["why"]
        listed = set()
        for response in case["responses"]:
            assert set(response) >= RESPONSE_KEYS, case["id"]
            for file in response["files"] + response["lockedFiles"]:
                assert {"filename", "size"} <= set(file) <= FILE_KEYS | {"code", "isLocked"}, case["id"]
                assert None not in file.values()  # slskd omits nulls
            listed |= {(response["username"], f["filename"]) for f in response["files"]}
        assert acceptable(case) <= listed, case["id"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_the_pick_is_acceptable_or_none(case: dict[str, Any]) -> None:
    result = outcome(case)
    picked = result["pick"]
    good = acceptable(case)
    if good:
        assert picked is not None, f"{case['why']}: nothing picked"
        assert (picked["username"], picked["filename"]) in good, f"{case['why']}: picked {picked['filename']}"
    else:
        assert picked is None, f"{case['why']}: picked {picked['filename']}"


def test_precision_and_recall_meet_the_targets() -> None:
    overall = evaluate(CASES)["all"]
    assert overall.precision >= 0.99
    assert overall.recall >= 0.95
