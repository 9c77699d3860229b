"""The search budget (never exceeded, whatever the callers and restarts) and the query variants."""

from __future__ import annotations

import threading
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from harmony import config, search
from harmony.db import Database
from harmony.wanted import Track


def live(budget: int = 5, window: str = "60s") -> Any:
    cfg = config.load(None, {}, {"search.budget": str(budget), "search.window": window})
    return lambda: cfg


def spend(db: Database, budget: search.Budget, now: float) -> bool:
    with db.write() as conn:
        return budget.spend(conn, now) is None


@settings(max_examples=40, deadline=None)
@given(
    limit=st.integers(1, 8),
    steps=st.lists(st.tuples(st.floats(0, 30), st.integers(1, 6), st.booleans()), min_size=1, max_size=12),
)
def test_the_budget_is_never_exceeded_by_concurrent_callers_or_restarts(
    tmp_path_factory: Any, limit: int, steps: list[tuple[float, int, bool]]
) -> None:
    path = str(tmp_path_factory.mktemp("budget") / "h.db")
    db = Database(path)
    db.migrate()
    now = 1000.0
    window = 60.0
    try:
        for gap, callers, restart in steps:
            now += gap
            if restart:  # a new process on the same file: the spending is still counted
                db.close()
                db = Database(path)
            budget = search.Budget(db, live(limit, "60s"))
            granted: list[bool] = []

            def call(budget: search.Budget = budget, at: float = now, out: list[bool] = granted) -> None:
                out.append(spend(db, budget, at))  # noqa: B023 - the db is the loop's current one

            threads = [threading.Thread(target=call) for _ in range(callers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            spent = [row["at"] for row in db.query("SELECT at FROM search_spend ORDER BY at")]
            for at in spent:  # in every window ending at a spend, at most `limit` spends
                assert sum(1 for other in spent if at - window < other <= at) <= limit
            status = budget.status(now)
            assert status["spent"] + status["remaining"] == limit and status["spent"] <= limit
    finally:
        db.close()


def test_the_budget_says_when_the_next_search_may_start(db: Database) -> None:
    budget = search.Budget(db, live(2, "100s"))
    assert spend(db, budget, 10.0) and spend(db, budget, 20.0) and not spend(db, budget, 30.0)
    status = budget.status(30.0)
    assert status == {"limit": 2, "window_s": 100.0, "spent": 2, "remaining": 0, "next_free_at": 110.0}
    with db.write() as conn:
        assert budget.spend(conn, 30.0) == 80.0  # the seconds to wait
    assert spend(db, budget, 111.0)


def track(title: str, artist: str = "Aurora Vale", album: str = "Low Tide") -> Track:
    return Track(title=title, artists=(artist,), album=album, album_artist=artist)


def test_query_variants_in_order_without_repeats() -> None:
    plans = dict(search.queries(track("Glass Harbour (feat. Kite Theory) - 2011 Remaster")))
    assert plans["primary"] == "Aurora Vale Glass Harbour"
    assert plans["wildcard"] == "*urora *ale Glass Harbour"
    assert plans["title_only"] == "Glass Harbour"
    assert "plain" not in plans  # the same as the primary query
    assert list(plans) == ["primary", "wildcard", "title_only"]


def test_short_titles_carry_album_words_and_are_never_searched_alone() -> None:
    plans = dict(search.queries(track("Intro")))
    assert plans["album_words"] == "Aurora Vale Low Tide Intro" and "title_only" not in plans


def test_a_requested_version_stays_in_the_query_and_scripts_are_kept() -> None:
    assert (
        dict(search.queries(track("Quiet Tide - Live at Leeds")))["primary"]
        == "Aurora Vale Quiet Tide live leeds"
    )
    plans = dict(search.queries(track("Ночной город", artist="Ночной Город")))
    assert plans["primary"] == "Ночной Город Ночной город"
    plain = dict(search.queries(track("Éléonore", artist="Sigrún Hólm")))["plain"]
    assert plain == "Sigrun Holm Eleonore"


def test_album_mode_searches_for_the_album() -> None:
    plans = search.queries(track("Glass Harbour", album="Low Tide (Deluxe Edition)"), album=True)
    assert plans[0] == ("primary", "Aurora Vale Low Tide")


@given(st.text(max_size=60), st.text(max_size=30), st.text(max_size=30))
def test_no_query_starts_a_word_with_a_minus_or_is_empty(title: str, artist: str, album: str) -> None:
    for _, query in search.queries(Track(title=title, artists=(artist,), album=album)):
        assert query and not any(word.startswith("-") for word in query.split())
        assert any(len(word.strip("*")) > 1 for word in query.split())
