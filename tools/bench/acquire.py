"""Benchmark of acquisition: the ranker's picks, a 10,000-item backlog on a simulated clock, the poll.

Run: .venv/bin/python tools/bench/acquire.py [--quick] [--out reports/bench/acquire.md]

Sections, one function each, in report order:

1. `match_corpus`: precision and recall of the pick on `tests/data/match/` by category (targets:
   at least 99 % precision and 95 % recall), every file's verdict against its label, and the time
   `harmony rank` takes per search.
2. `backlog`: N wanted items (10,000; 500 with `--quick`) against the fake slskd, worked through by
   Harmony's own `Searcher` and `Transfers` as `open_context` wires them: the tasks `search_dispatch`,
   `search_poll` and `transfer_poll` at the wheel's intervals and the job handlers through
   `workers.run_one`, on a simulated clock, until the backlog settles. Searches per resolved item
   (target at most 1.3), budget violations in any sliding window (target 0, checked on the fake's
   own record of search creations and on `search_spend`), p50/p95 from search start to enqueue,
   whether every downloaded file is the wanted recording, and where Harmony's CPU went.
3. `transfer_poll`: 1,000 active transfers (in progress or queued at the peer) on the fake slskd;
   the CPU time of `Transfers.poll` per cycle, median and p95, and its list calls per poll (from
   `harmony_slskd_list_calls_total` and from the fake's request log); then the same with slskd's
   list also holding completed downloads (Harmony never clears them), and after clearing them.

Processes: sections 2 and 3 each run Harmony in a child process (this script with `--child`), so
its CPU time and peak RSS are its own, and each child starts the fakes in a process of their own
(this script with `--fakes`) that it drives over stdin and stdout: one JSON line a command (move
the clock, clear completed downloads, read the request counts, hand over the record). The fakes'
clock moves only when the child moves it, so the two clocks agree exactly; advancing it through
the HTTP control route would cost the server's 50 ms settle wait on every step.

For a run of this length the fakes process changes the fake slskd in three ways (`Bookkeeping`,
`narrow_search`): a word index narrows the files a search tests (`slskd_searches._plan` tests every
shared file of every peer) and the per-request upkeep (`SlskdState.tick`) revisits only the
downloads that can still change, both with the same results; and its scheduling of searches is
kept to slskd's two network slots, which the fake overruns once Harmony deletes completed searches
(`Bookkeeping.schedule` says how). Search creation and peer connection, which hold a request for
20 ms of fake time, take none: on a clock that moves only between steps they would never end.

To add a section, write a function returning its Markdown lines and call it from `main`. With
`--quick` the sizes shrink (500 items, 2,000 completed downloads, 15 polls a case) and the run
takes about a minute. The full run takes about 11 minutes on 2 cores: the backlog simulates some
34 hours of searching, and Harmony's own work on 10,000 items is about 6 minutes of CPU, the
fake's answers to it about 2.5, one after the other. `--items N` sets the backlog's size.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import cProfile
import dataclasses
import io
import json
import math
import os
import platform
import pstats
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import test_match_corpus as corpus  # noqa: E402

from harmony import config, search, transfers, wanted  # noqa: E402
from harmony import log as logsetup  # noqa: E402
from harmony.context import Context, opened  # noqa: E402
from harmony.fakes import FakeClock, slskd_searches, start_fakes  # noqa: E402
from harmony.fakes import peers as peerlib  # noqa: E402
from harmony.fakes.catalogue import Album, Artist, Catalogue, Track, spotify_id  # noqa: E402
from harmony.fakes.peers import Peer, SharedFile  # noqa: E402
from harmony.fakes.slskd import SlskdState  # noqa: E402
from harmony.fakes.slskd_searches import Search  # noqa: E402
from harmony.fakes.slskd_transfers import Transfer  # noqa: E402

PRECISION_TARGET = 0.99
RECALL_TARGET = 0.95
SEARCHES_PER_RESOLVED_TARGET = 1.3
ENQUEUE_P50_TARGET_S = 20.0  # spec/peers.md §4.2 "Time to enqueue", when results exist
SEED = 20261130
# The job `open_context`'s `downloaded` hook queues for a finished download; the benchmark stands in
# for its handler, as the import is not part of acquisition.
IMPORT_JOB = "import"
LIST_ENDPOINT = "GET /transfers/downloads"
# The tasks the backlog drives, in the order `open_context` registers them (the wheel runs the
# tasks due at one moment in that order).
TASKS = ("search_dispatch", "search_poll", "transfer_poll")
SQL_DUE_JOB = "SELECT 1 FROM jobs WHERE state = 'ready' AND run_at <= ? LIMIT 1"
OPEN_STATES = ("wanted", "searching", "found", "queued", "downloading")
RESOLVED_STATES = ("downloaded", "importing", "done")
# Settings given in seconds (the report adds the unit).
SECONDS = frozenset({"window", "timeout", "poll_interval", "requested_timeout", "stall_timeout"})
SECONDS |= {"queue_timeout", "user_cooldown"}


@dataclass(frozen=True)
class Sizes:
    items: int  # wanted items in the backlog
    active: int  # active transfers in the poll section
    history: int  # completed downloads left in slskd's list in the poll section
    cycles: int  # timed polls per case

    @classmethod
    def pick(cls, quick: bool) -> Sizes:
        return cls(500, 1_000, 2_000, 15) if quick else cls(10_000, 1_000, 9_000, 30)


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else math.nan
    return statistics.quantiles(values, n=100, method="inclusive")[94]


# --- 1. match corpus -------------------------------------------------------------------------------


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


# --- the fakes process -----------------------------------------------------------------------------


class SteppedClock(FakeClock):
    """A fake clock that moves only when advanced (`FakeClock` also moves with real time), so the
    fakes and Harmony's simulated clock read the same time however long a step takes to compute."""

    def __init__(self, start: float) -> None:
        self._pinned = start
        super().__init__()

    def now(self) -> float:
        with self._moved:
            return self._pinned + self._offset

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Wait until the clock has been advanced `seconds` (or `stop` is set); real time does not
        count. The fakes' waits are set to take no time, so nothing waits here in a run."""
        deadline = self.now() + seconds
        with self._moved:
            while self._pinned + self._offset < deadline and not (stop is not None and stop.is_set()):
                self._moved.wait(0.05)


_LITERAL_SEGMENTS = frozenset(
    {"searches", "responses", "transfers", "downloads", "all", "completed", "application", "version"}
    | {"server", "options", "startup", "users", "status", "events"}
)


def endpoint(method: str, path: str) -> str:
    """`GET /transfers/downloads`, `GET /searches/{}/responses`, ...: ids and usernames as `{}`."""
    parts = [p for p in path.removeprefix("/api/v0").split("/") if p]
    return f"{method} /" + "/".join(p if p in _LITERAL_SEGMENTS else "{}" for p in parts)


class Counting:
    """WSGI wrapper: counts the requests the fake slskd answers, by endpoint."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        key = endpoint(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        with self.lock:
            self.counts[key] += 1
        return self.app(environ, start_response)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


class TransferLog(dict[str, Transfer]):
    """`SlskdState.transfers` that also lists its transfers in insertion order (the fake never
    deletes one), so the bookkeeping below visits only those added since it last looked."""

    def __init__(self) -> None:
        super().__init__()
        self.added: list[Transfer] = []

    def __setitem__(self, key: str, value: Transfer) -> None:
        if key not in self:
            self.added.append(value)
        super().__setitem__(key, value)


_schedule = slskd_searches.schedule  # the fake's own, which `Bookkeeping.schedule` wraps


class Bookkeeping:
    """The fake slskd's upkeep made incremental, and its record of search creations.

    `tick` replaces `SlskdState.tick` (every request runs it first): the same search scheduling and
    the same files written, but only downloads not yet written and not ended otherwise are looked
    at, where the original computes every download's timeline on every request. `clear_completed`
    does what `DELETE /transfers/downloads/all/completed` does (every download that is done is
    marked removed), again looking only at downloads not yet removed. `created` holds every search
    slskd accepted: (fake time, text); `ran` each search's (created, slot taken, ended) by id.
    `schedule` replaces `slskd_searches.schedule` to keep to slskd's two network slots (see there).
    """

    def __init__(self, state: SlskdState) -> None:
        self.state = state
        self.log = TransferLog()
        state.transfers = self.log
        self.unwritten: dict[str, Transfer] = {}
        self.listed: dict[str, Transfer] = {}
        self.ticked = self.cleared = 0  # entries of `log.added` each one has taken in
        self.created: list[tuple[float, str]] = []
        self.refused = 0
        state.tick = self.tick  # type: ignore[method-assign]  # the app's request hook calls state.tick()
        start = slskd_searches._start_search

        def recorded(state: SlskdState, data: dict[str, Any], now: float) -> dict[str, Any]:
            try:
                view = start(state, data, now)
            except Exception:
                self.refused += 1
                raise
            self.created.append((now, str(data.get("searchText"))))
            return view

        slskd_searches._start_search = recorded
        # When Harmony reads a search's responses: when it was created, took one of slskd's network
        # slots, and ended.
        self.ran: dict[str, tuple[float, float | None, float | None]] = {}
        responses = Search.responses

        def recording_responses(search: Search, now: float) -> list[dict[str, Any]]:
            self.ran.setdefault(search.id, (search.created, search.run_start, search.finished_at()))
            return responses(search, now)

        Search.responses = recording_responses  # type: ignore[method-assign]
        self.slotted: dict[str, Search] = {}
        slskd_searches.schedule = self.schedule

    def schedule(self, state: SlskdState, now: float) -> None:
        """`slskd_searches.schedule`, with the slots of searches deleted after they completed kept
        in view. The fake gives a waiting search the first moment a slot was free, which may lie in
        the past; it keeps a deleted search's slot (`retired_searches`) only if the search had not
        completed, so a search still waiting could be given a start overlapping a completed search
        already deleted, and three or four would run at once. Spans that ended before every waiting
        search was created can no longer matter and are dropped."""
        live = state.searches
        self.slotted.update((k, v) for k, v in live.items() if v.run_start is not None)
        waiting = [
            v for v in live.values() if v.run_start is None and not v.errored and v.cancelled_at is None
        ]
        horizon = min((v.created for v in waiting), default=now)
        self.slotted = {
            k: v for k, v in self.slotted.items() if k in live or (v.finished_at() or now) > horizon
        }
        retired = {id(v) for v in state.retired_searches}
        state.retired_searches.extend(
            v for k, v in self.slotted.items() if k not in live and id(v) not in retired
        )
        _schedule(state, now)

    def tick(self) -> None:
        """`SlskdState.tick`: schedule the searches, write the downloads that succeeded by now."""
        state = self.state
        now = state.clock.now()
        with state.lock:
            self.schedule(state, now)
            for transfer in self.log.added[self.ticked :]:
                self.unwritten[transfer.id] = transfer
            self.ticked = len(self.log.added)
            for transfer in list(self.unwritten.values()):
                if transfer.written:
                    del self.unwritten[transfer.id]
                    continue
                info = transfer.timeline(now)
                if info["state"] == "Completed, Succeeded":
                    state._write(transfer, now)
                    del self.unwritten[transfer.id]
                elif info["final"]:
                    del self.unwritten[transfer.id]  # ended otherwise: it will never be written

    def clear_completed(self) -> int:
        """`DELETE /transfers/downloads/all/completed`; returns how many it removed."""
        state = self.state
        removed = 0
        with state.lock:
            now = state.clock.now()
            for transfer in self.log.added[self.cleared :]:
                self.listed[transfer.id] = transfer
            self.cleared = len(self.log.added)
            for transfer in list(self.listed.values()):
                if transfer.removed:
                    del self.listed[transfer.id]
                elif transfer.done(now):
                    transfer.removed = True
                    del self.listed[transfer.id]
                    removed += 1
        return removed


def narrow_search(state: SlskdState) -> None:
    """Let the fake's search plan see, of each peer, only the files holding every query word.

    Soulseek matches a query's words against a file's path words, and `_plan` tests each file with
    `peers.matches`; the files it is given here are a superset of those that match (exclusions are
    still its to apply), in share order, so the plan is the same."""
    indexes = {
        name: (_word_index(peer.files), _word_index(peer.locked)) for name, peer in state.peers.items()
    }
    plan = slskd_searches._plan

    def narrowed(
        state: SlskdState, include: list[str], exclude: list[str], data: dict[str, Any], number: Any
    ) -> list[tuple[float, dict[str, Any]]]:
        shown = {}
        for name, peer in state.peers.items():
            files = _holding(peer.files, indexes[name][0], include)
            locked = _holding(peer.locked, indexes[name][1], include)
            if files or locked:
                shown[name] = dataclasses.replace(peer, files=files, locked=locked)
        return plan(types.SimpleNamespace(peers=shown), include, exclude, data, number)  # type: ignore[arg-type]

    slskd_searches._plan = narrowed


def _word_index(files: list[SharedFile]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = collections.defaultdict(list)
    for position, shared in enumerate(files):
        for word in shared.words():
            index[word].append(position)
    return index


def _holding(files: list[SharedFile], index: dict[str, list[int]], include: list[str]) -> list[SharedFile]:
    if not include:
        return list(files)
    shortest = min((index.get(word, []) for word in include), key=len)
    return [files[i] for i in shortest if all(word in files[i].words() for word in include)]


# The backlog's world. Names are pseudo-words from syllables with, in titles and album names,
# common words mixed in, so a title-only query also meets other artists' files.
_SYLLABLES = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou")
_COMMON = (
    "Amber", "Winter", "Glass", "Harbour", "Paper", "Static", "Velvet", "Hollow", "Cinder", "Orbit",
    "Meadow", "Copper", "Lantern", "Saltwater", "Tundra", "Ivory", "Pulse", "Signal", "Drift", "Ember",
    "Marble", "Nocturne", "Quartz", "Ribbon", "Solstice", "Thistle", "Undertow", "Willow", "Zephyr", "Basalt",
)  # fmt: skip
_ACUTE = str.maketrans("aeiou", "áéíóú")
# The fake's share layouts that name the artist (its "tagged" layout names only the album, so the
# ranker rightly refuses those files: only the trap peer uses it).
_STYLES = ("year_dash", "artist_album", "linux")


@dataclass(frozen=True)
class Category:
    """A way the fake peers share a wanted track, with its share of the backlog."""

    name: str
    share: float
    source: str  # the item's source: "manual", or "release" (a watched artist's release, album mode)
    means: str


CATEGORIES = (
    Category(
        "at_once",
        0.66,
        "manual",
        "1 to 3 peers share its album folder (trap versions beside it for "
        "30 % of them): the first query finds it",
    ),
    Category(
        "fall_through",
        0.05,
        "manual",
        "the best-ranked copy is on a peer that refuses, errors, stalls, "
        "never answers or is offline; a second peer has it in MP3",
    ),
    Category(
        "remote_queue",
        0.02,
        "manual",
        "only a peer with a remote queue has it: 10 min in its queue before the transfer starts",
    ),
    Category(
        "later_variant",
        0.05,
        "manual",
        "its artist's name has accents that every share leaves out, "
        "so the first query misses and a later variant finds it",
    ),
    Category(
        "nowhere",
        0.05,
        "manual",
        "nobody shares the recording; for half of them a trap peer shares live, remix, cover or cut "
        "versions, or a 128 kbps copy sold as 320",
    ),
    Category(
        "album",
        0.13,
        "release",
        "every track of a watched artist's release is wanted, and 1 or 2 peers share the complete folder",
    ),
    Category(
        "album_split",
        0.04,
        "release",
        "every track of a release is wanted; two peers share it, each "
        "folder missing a different track, so album mode falls back to track searches",
    ),
)


def _pseudo(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3)))).capitalize()


def _phrase(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_COMMON) if rng.random() < 0.5 else _pseudo(rng) for _ in range(words))


def _accented(name: str) -> str:
    """The first vowel of each word with an acute accent: "Velora Mintak" -> "Vélora Míntak"."""
    out = []
    for word in name.split():
        i = next(n for n, ch in enumerate(word) if ch.lower() in "aeiou")
        out.append(word[:i] + word[i].translate(_ACUTE) + word[i + 1 :])
    return " ".join(out)


def _unaccented(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


@dataclass
class Roster:
    """The backlog's peers: ordinary sharers with a format and a layout each, trap sharers, peers
    that fail one way each, and one with a long remote queue."""

    good: list[tuple[Peer, str, str]]  # (peer, format, layout style)
    traps: list[tuple[Peer, str, str, tuple[str, ...]]]  # (peer, format, style, variants it shares)
    failing: list[Peer]
    queued: Peer

    @classmethod
    def build(cls, rng: random.Random) -> Roster:
        good, names = [], set()
        while len(good) < 30:
            name = f"{_pseudo(rng).lower()}{rng.randrange(10, 99)}"
            if name in names:
                continue
            names.add(name)
            slow = len(good) % 8 == 7
            speed = 60 if slow else rng.choice((400_000, 900_000, 1_500_000, 2_500_000))
            peer = Peer(
                name,
                "slow" if slow else "fast",
                speed,
                free_slot=rng.random() < 0.75,
                queue_length=rng.randrange(0, 10),
                response_delay=round(rng.uniform(0.3, 3.0), 2),
            )
            good.append((peer, "flac" if rng.random() < 0.6 else "mp3", rng.choice(_STYLES)))
        traps = [
            (
                Peer("bootleg_barn", "fast", 800_000, response_delay=1.0),
                "flac",
                "year_dash",
                ("live", "remix", "instrumental"),
            ),
            (Peer("karaoke_corner", "fast", 800_000, response_delay=1.1), "mp3", "artist_album", ("cover",)),
            (Peer("edit_suite", "fast", 800_000, response_delay=1.2), "flac", "year_dash", ("short",)),
            (Peer("bitrate_bluff", "fast", 1_100_000, response_delay=0.4), "mp3", "tagged", ("mislabelled",)),
        ]
        failing = [
            Peer(name, behaviour, 2_500_000, response_delay=0.5)
            for name, behaviour in (
                ("nope_nora", "rejects"),
                ("flaky_fred", "fails"),
                ("stally_sam", "stalls"),
                ("silent_sid", "unresponsive"),
                ("ghost_gus", "offline"),
            )
        ]
        queued = Peer(
            "long_line",
            "queued",
            1_200_000,
            free_slot=False,
            queue_length=37,
            queue_seconds=600.0,
            response_delay=1.4,
        )
        return cls(good, traps, failing, queued)

    def peers(self) -> dict[str, Peer]:
        everyone = [p for p, _, _ in self.good] + [p for p, _, _, _ in self.traps] + self.failing
        return {p.username: p for p in [*everyone, self.queued]}


def backlog_world(cat: Catalogue, count: int, rng: random.Random) -> tuple[dict[str, Peer], list[Any]]:
    """`count` wanted tracks in the categories' shares (exact counts, albums shuffled so the item ids
    interleave the categories), their albums added to the catalogue, and the peers sharing them.
    Returns the peers by name and the items: `{"track": wanted.Track's fields, "category",
    "release": the album's id for release-sourced items}`."""
    roster = Roster.build(rng)
    build = peerlib._ShareBuilder(cat)  # the fake's own share layouts, so paths look like the demo's
    quotas = {c.name: round(count * c.share) for c in CATEGORIES}
    quotas["at_once"] += count - sum(quotas.values())
    artists: dict[str, list[Artist]] = {"plain": [], "accented": []}
    titles: dict[str, set[str]] = collections.defaultdict(set)  # artist id -> casefolded titles
    names: set[str] = set()
    isrc = iter(range(10**6, 10**7))
    albums: list[tuple[Category, Album, list[Track]]] = []

    def artist_for(kind: str) -> Artist:
        pool = artists[kind]
        if pool and rng.random() < 0.6:  # most artists have a few albums
            return rng.choice(pool)
        while (name := f"{_pseudo(rng)} {_pseudo(rng)}") in names:
            pass
        names.add(name)
        artist = Artist(spotify_id(rng), _accented(name) if kind == "accented" else name, ("indie pop",))
        cat.artists[artist.id] = artist
        pool.append(artist)
        return artist

    for category in CATEGORIES:
        left = quotas[category.name]
        while left > 0:
            artist = artist_for("accented" if category.name == "later_variant" else "plain")
            year = rng.randrange(1995, 2025)
            day = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            album = Album(
                spotify_id(rng),
                _phrase(rng, 2),
                "album",
                (artist.id,),
                day,
                "day",
                f"{rng.randrange(10**11, 10**12)}",
                "Bench Records",
            )
            cat.albums[album.id] = album
            for number in range(1, rng.randint(4, 10) + 1):
                while (title := _phrase(rng, rng.choice((2, 2, 3)))).casefold() in titles[artist.id]:
                    pass
                titles[artist.id].add(title.casefold())
                track = Track(
                    spotify_id(rng),
                    title,
                    (artist.id,),
                    album.id,
                    rng.randint(95_000, 420_000),
                    number,
                    1,
                    f"XB{year % 100:02d}{next(isrc)}",
                )
                cat.tracks[track.id] = track
                album.track_ids.append(track.id)
            tracks = cat.album_tracks(album)
            if category.source == "release":
                chosen = tracks[:left]
            else:
                chosen = sorted(
                    rng.sample(tracks, min(left, rng.choice((1, 1, 2)))), key=lambda t: t.track_number
                )
            left -= len(chosen)
            albums.append((category, album, chosen))
            _share(build, roster, rng, category.name, album)
    rng.shuffle(albums)
    items = []
    for category, album, chosen in albums:
        artist = cat.artists[album.artist_ids[0]]
        for track in chosen:
            fields = {
                "title": track.name,
                "artists": [artist.name],
                "spotify_id": track.id,
                "isrc": track.isrc,
                "album": album.name,
                "album_artist": artist.name,
                "spotify_album_id": album.id,
                "spotify_artist_ids": [artist.id],
                "track_number": track.track_number,
                "track_total": len(album.track_ids),
                "disc_number": 1,
                "disc_total": 1,
                "duration_ms": track.duration_ms,
                "release_date": album.release_date,
            }
            release = album.id if category.source == "release" else None
            items.append({"track": fields, "category": category.name, "release": release})
    return roster.peers(), items


def _share(
    build: peerlib._ShareBuilder, roster: Roster, rng: random.Random, category: str, album: Album
) -> None:
    """Put the album's files in the shares of the peers its category says."""

    def give(peer: Peer, fmt: str, style: str, variant: str = "original", missing: str = "") -> None:
        files = build.album(album, fmt, style=style, share=f"@@{peer.username}", variant=variant)
        if category == "later_variant":  # the share spells the artist without its accents
            files = [
                dataclasses.replace(f, path=_unaccented(f.path), artist=_unaccented(f.artist)) for f in files
            ]
        peer.files += [f for f in files if f.track_id != missing]

    def traps(chance: float) -> None:
        if rng.random() < chance:
            peer, fmt, style, variants = rng.choice(roster.traps)
            for variant in variants:
                give(peer, fmt, style, variant)

    if category in ("at_once", "later_variant", "album"):
        count = rng.choice((1, 1, 2, 2, 3)) if category == "at_once" else rng.choice((1, 2))
        for peer, fmt, style in rng.sample(roster.good, count):
            give(peer, fmt, style)
        traps(0.3 if category != "later_variant" else 0.0)
    elif category == "fall_through":
        give(rng.choice(roster.failing), "flac", rng.choice(_STYLES))
        peer, _, style = rng.choice([g for g in roster.good if g[1] == "mp3" and g[0].behaviour == "fast"])
        give(peer, "mp3", style)
    elif category == "remote_queue":
        give(roster.queued, "flac", "year_dash")
    elif category == "nowhere":
        traps(0.5)
    elif category == "album_split":  # two folders, each without a different track: every track in one
        first, second = rng.sample(album.track_ids, 2)
        for (peer, fmt, style), missing in zip(rng.sample(roster.good, 2), (first, second)):
            give(peer, fmt, style, missing=missing)


def poll_world(active: int, history: int) -> tuple[dict[str, Peer], dict[str, Any]]:
    """`active` files on 20 peers that keep a transfer active for hours (10 upload at 1 byte a second
    of the stand-in file, 10 keep it a day in their remote queue), and `history` files on one fast
    peer, whose downloads complete at once. Returns the peers and, for each group, the files as
    `{"username", "filename", "size", "title", "artist"}`."""
    slow = [Peer(f"trickle{n:02d}", "slow", 1) for n in range(10)]
    queued = [
        Peer(
            f"waitlist{n:02d}", "queued", 1_000_000, free_slot=False, queue_length=50, queue_seconds=86_400.0
        )
        for n in range(10)
    ]
    archive = Peer("archive_annie", "fast", 50_000_000)
    holders = [*slow, *queued]
    world: dict[str, Any] = {"active": [], "history": []}
    for group, count in (("active", active), ("history", history)):
        for n in range(count):
            peer = holders[n % len(holders)] if group == "active" else archive
            artist, album = f"Poll Artist {group} {n // 10:04d}", f"Poll Album {n // 10:04d}"
            title = f"Poll Track {group} {n:05d}"
            shared = SharedFile(
                path=f"@@{peer.username}\\Music\\{artist}\\2020 - {album}\\{n % 10 + 1:02d} - {title}.flac",
                fmt="flac",
                duration=180.0 + n % 120,
                title=title,
                artist=artist,
                album=album,
                track_number=n % 10 + 1,
            )
            peer.files.append(shared)
            world[group].append(
                {
                    "username": peer.username,
                    "filename": shared.path,
                    "size": shared.size,
                    "title": title,
                    "artist": artist,
                }
            )
    return {p.username: p for p in [*holders, archive]}, world


def serve_fakes(spec: dict[str, Any]) -> None:
    """`--fakes`: start the fakes on a stepped clock with the world `spec` asks for, print one JSON
    line (the options pointing Harmony at the fake slskd, the start time, the world), then answer one
    JSON command a line from stdin until it closes."""
    with tempfile.TemporaryDirectory(prefix="harmony-bench-fakes-") as directory:
        started = time.perf_counter()
        clock = SteppedClock(float(int(time.time())))
        fakes = start_fakes(os.path.join(directory, "slskd"), clock=clock)
        try:
            state = fakes.slskd_state
            if spec["kind"] == "backlog":
                found, items = backlog_world(fakes.catalogue, spec["items"], random.Random(SEED))
                world: dict[str, Any] = {"items": items}
            else:
                found, world = poll_world(spec["active"], spec["history"])
            with state.lock:
                state.peers = found
            narrow_search(state)
            books = Bookkeeping(state)
            state.change({"search_create_seconds": 0, "peer_connect_seconds": 0})
            fakes.slskd.stop()  # serve the same app, counted, on the same port
            counting = Counting(fakes.slskd.app)
            fakes.slskd.app = counting
            fakes.slskd.start()
            options = {k: v for k, v in fakes.harmony_options().items() if k.startswith("slskd.")}
            files = sum(len(p.files) for p in found.values())
            world.update(
                options=options,
                start=clock.now(),
                build_s=time.perf_counter() - started,
                peers=len(found),
                files=files,
            )
            print(json.dumps(world), flush=True)
            for line in sys.stdin:
                print(json.dumps(_control(json.loads(line), clock, books, counting)), flush=True)
        finally:
            fakes.stop()


def _control(command: dict[str, Any], clock: SteppedClock, books: Bookkeeping, counting: Counting) -> Any:
    op = command["op"]
    if op == "advance":
        clock.advance(max(0.0, command["to"] - clock.now()))
        return {"now": clock.now()}
    if op == "clear_completed":
        return {"removed": books.clear_completed()}
    if op == "counts":
        return {"requests": counting.snapshot()}
    if op == "report":
        now = clock.now()
        with books.state.lock:
            held = {
                t.id: [
                    t.shared.track_id if t.shared else None,
                    t.shared.variant if t.shared else None,
                    t.timeline(now)["state"],
                ]
                for t in books.log.added
            }
        return {
            "created": books.created,
            "ran": books.ran,
            "refused": books.refused,
            "requests": counting.snapshot(),
            "transfers": held,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cpu_s": time.process_time(),
        }
    raise ValueError(f"unknown command {op!r}")


# --- Harmony's side (the child processes) -------------------------------------------------------------


class FakesProcess:
    """The fakes process (this script with `--fakes`) for one world; `call` sends a command and
    returns its answer. Use as a context manager: the process ends when its stdin closes."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.world: dict[str, Any] = {}

    def __enter__(self) -> FakesProcess:
        argv = [sys.executable, __file__, "--fakes", json.dumps(self.spec)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fakes process exited with {self.proc.wait()}")
        self.world = json.loads(line)
        return self

    def call(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fakes process ended during {op!r}")
        return json.loads(line)

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def bench_config(data_dir: str, options: dict[str, str]) -> config.Config:
    """Harmony's defaults, data in `data_dir`, pointed at the fake slskd by `options`."""
    values = {"data.dir": data_dir, "log.format": "text", "log.level": "warning", **options}
    return config.load(None, {}, values)


@dataclass
class Task:
    name: str
    fn: Callable[[], object]
    interval_s: float
    due: float
    calls: int = 0
    failures: int = 0
    cpu_s: list[float] = dataclasses.field(default_factory=list)


class Simulation:
    """Harmony's acquisition work as the timer wheel and the job workers would do it, on a simulated
    clock that Harmony's searcher, budget, transfers and job queue read and the fakes share.

    The tasks in `TASKS` run at the intervals and first delays `open_context` gave the wheel,
    missed ticks skipped as `Wheel.run_due` skips them; at each moment the due tasks run in
    registration order, then every job due (`workers.run_one`), as idle workers would pick them up
    at once. Time jumps straight to the next moment a task or a job is due. Import jobs complete
    without doing anything: the import is not part of this benchmark. The transfers' candidate pick
    is given the simulated time (see below); nothing else is rewired.
    """

    def __init__(self, ctx: Context, fakes: FakesProcess, start: float) -> None:
        self.ctx, self.fakes, self.now = ctx, fakes, start
        for part in (ctx.searcher, ctx.searcher.budget, ctx.transfers, ctx.queue):
            part.clock = self.clock  # type: ignore[attr-defined]
        ctx.workers.handlers[IMPORT_JOB] = lambda job: None
        functions = {
            "search_dispatch": ctx.searcher.dispatch,
            "search_poll": ctx.searcher.poll,
            "transfer_poll": ctx.transfers.poll,
        }
        wall = ctx.wheel.clock()
        views = {view["name"]: view for view in ctx.wheel.tasks()}
        # First runs after the initial delays (whole seconds) the wheel was given.
        self.tasks = [
            Task(
                name,
                functions[name],
                views[name]["interval_s"],
                start + round(views[name]["next_run_at"] - wall),
            )
            for name in TASKS
        ]
        self.jobs: collections.Counter[str] = collections.Counter()
        self.job_cpu: collections.Counter[str] = collections.Counter()
        self.evaluations: dict[int, float] = {}  # search id -> CPU seconds of its evaluation
        self.after_transfer_poll: Callable[[], None] | None = None

    def clock(self) -> float:
        return self.now

    def advance_to(self, moment: float) -> None:
        if moment > self.now:
            self.now = float(self.fakes.call("advance", to=moment)["now"])

    def run_jobs(self) -> int:
        """Run every job due now, as idle workers would; returns how many ran."""
        ran = 0
        # A lease is a write transaction; most moments have no job due, so look first.
        while self.ctx.db.scalar(SQL_DUE_JOB, (self.now,)) is not None:
            cpu = time.process_time()
            job = self.ctx.workers.run_one(now=self.now)
            if job is None:
                return ran
            spent = time.process_time() - cpu
            self.jobs[job.type] += 1
            self.job_cpu[job.type] += spent
            if job.type == search.JOB_EVALUATE:
                self.evaluations[job.payload["search_id"]] = spent
            ran += 1
        return ran

    def step(self) -> list[str]:
        """Move to the next moment something is due and do it; returns the tasks that ran."""
        moment = min(task.due for task in self.tasks)
        ready = self.ctx.db.scalar("SELECT min(run_at) FROM jobs WHERE state = 'ready'")
        if ready is not None:
            moment = min(moment, max(float(ready), self.now))
        self.advance_to(moment)
        ran = [task for task in self.tasks if task.due <= self.now]
        for task in ran:
            self._run(task)
        self.run_jobs()
        return [task.name for task in ran]

    def _run(self, task: Task) -> None:
        cpu = time.process_time()
        try:
            task.fn()
        except Exception as exc:  # the wheel catches and records a task's failure; so does this
            task.failures += 1
            print(f"task {task.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        task.cpu_s.append(time.process_time() - cpu)
        task.calls += 1
        task.due += task.interval_s * (math.floor((self.now - task.due) / task.interval_s) + 1)
        if task.name == "transfer_poll" and self.after_transfer_poll is not None:
            self.after_transfer_poll()


def list_calls(ctx: Context) -> float:
    return ctx.metrics.registry.get_sample_value("harmony_slskd_list_calls_total", {"outcome": "ok"}) or 0.0


def labelled(ctx: Context, name: str) -> dict[str, float]:
    """A counter's `_total` samples by their labels joined with "/"."""
    out: dict[str, float] = {}
    for metric in ctx.metrics.registry.collect():
        if metric.name == name:
            for s in metric.samples:
                if s.name.endswith("_total"):
                    out["/".join(s.labels.values()) or "all"] = s.value
    return out


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill_backlog(ctx: Context, items: list[dict[str, Any]], now: float) -> None:
    """The items through `wanted.want`, 500 a transaction; release-sourced ones get their release's
    row first, as a watched artist's scan would have recorded it."""
    releases: dict[str, int] = {}
    for start in range(0, len(items), 500):
        with ctx.db.write() as conn:
            for raw in items[start : start + 500]:
                fields = dict(raw["track"], artists=tuple(raw["track"]["artists"]))
                fields["spotify_artist_ids"] = tuple(fields["spotify_artist_ids"])
                track = wanted.Track(**fields)
                source = wanted.Source("manual")
                if raw["release"] is not None:
                    if raw["release"] not in releases:
                        row = next(
                            conn.execute(
                                "INSERT INTO releases (spotify_id, name, album_type, release_date, "
                                "total_tracks, artist_names, first_seen_at, wanted, expanded_at) "
                                "VALUES (?, ?, 'album', ?, ?, ?, ?, 1, ?) RETURNING id",
                                (
                                    raw["release"],
                                    track.album,
                                    track.release_date,
                                    track.track_total,
                                    json.dumps([track.album_artist]),
                                    now,
                                    now,
                                ),
                            )
                        )
                        releases[raw["release"]] = row["id"]
                    source = wanted.Source("release", release_id=releases[raw["release"]])
                _, outcome = wanted.want(conn, track, source, now=now)
                if outcome != "created":
                    raise RuntimeError(f"{track.title!r} was {outcome}, not created")


def window_check(times: list[float], budget: int, window: float) -> dict[str, Any]:
    """Every sliding window (t - window, t] ending at a search (the budget's own window): the most
    searches any held, and how many windows held more than `budget`."""
    times = sorted(times)
    worst, over = 0, 0
    for t in sorted(set(times)):
        held = bisect.bisect_right(times, t) - bisect.bisect_right(times, t - window)
        worst = max(worst, held)
        over += held > budget
    return {"searches": len(times), "max_in_window": worst, "violations": over}


# Why a search was made: an item's first track search; a later query variant after one that found
# nothing acceptable; a release's album search; a track search after its album search found no
# complete folder; the first variant again (its not-found back-off ended, or every candidate of its
# last search failed).
SEARCH_KINDS = ("first", "later variant", "album", "after album fallback", "again")


def child_backlog(spec: dict[str, Any]) -> dict[str, Any]:
    """The backlog on the simulated clock until it settles; its figures (see `backlog`)."""
    out: dict[str, Any] = {}
    with FakesProcess({"kind": "backlog", "items": spec["items"]}) as fakes:
        world = fakes.world
        out["world"] = {k: world[k] for k in ("build_s", "peers", "files")}
        with opened(bench_config(spec["directory"], world["options"])) as ctx:
            sim = Simulation(ctx, fakes, world["start"])
            sim.after_transfer_poll = lambda: fakes.call("clear_completed")
            started = time.perf_counter()
            fill_backlog(ctx, world["items"], sim.now)
            out["fill_s"] = time.perf_counter() - started
            out["settings"] = {
                key: ctx.config[key]
                for key in (
                    "search.budget",
                    "search.window",
                    "search.timeout",
                    "search.album_min_tracks",
                    "transfers.poll_interval",
                    "transfers.requested_timeout",
                    "transfers.stall_timeout",
                    "transfers.queue_timeout",
                    "transfers.user_cooldown",
                )
            }
            out["tasks_wired"] = {
                t.name: {"interval_s": t.interval_s, "first_s": t.due - sim.now} for t in sim.tasks
            }
            start_sim, wall, cpu = sim.now, time.perf_counter(), time.process_time()
            next_report = wall + 20
            while True:
                if "search_dispatch" in sim.step() and settled(ctx):
                    break
                if time.perf_counter() > next_report:
                    next_report += 20
                    hours = (sim.now - start_sim) / 3600
                    open_items = int(
                        ctx.db.scalar(f"SELECT count(*) FROM wanted_items WHERE state IN {OPEN_STATES}")
                    )
                    print(
                        f"  backlog: {hours:.1f} h simulated, {open_items:,} items open, "
                        f"{time.perf_counter() - wall:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                if sim.now - start_sim > spec["limit_s"]:
                    break  # it does not settle: what is stuck is in out["stuck"]
            out["stuck"] = _stuck(ctx, sim.now)
            out["run"] = {
                "wall_s": time.perf_counter() - wall,
                "cpu_s": time.process_time() - cpu,
                "simulated_s": sim.now - start_sim,
            }
            out["tasks"] = {
                t.name: {
                    "calls": t.calls,
                    "failures": t.failures,
                    "cpu_s": sum(t.cpu_s),
                    "first_ms": 1000 * statistics.mean(t.cpu_s[: max(1, len(t.cpu_s) // 10)]),
                    "last_ms": 1000 * statistics.mean(t.cpu_s[-max(1, len(t.cpu_s) // 10) :]),
                }
                for t in sim.tasks
            }
            out["jobs"] = {
                kind: {"runs": n, "cpu_s": sim.job_cpu[kind]} for kind, n in sim.jobs.most_common()
            }
            out["dead_jobs"] = {f"{t}": n for (s, t), n in ctx.queue.counts().items() if s == "dead"}
            report = fakes.call("report")
            out.update(_backlog_figures(ctx, world["items"], report, sim.evaluations))
            out["queries"] = _query_costs(ctx, sim.now)
            out["fakes"] = {
                "maxrss_mb": report["maxrss_mb"],
                "cpu_s": report["cpu_s"],
                "requests": report["requests"],
            }
        out["maxrss_mb"] = rss_mb()
    return out


def settled(ctx: Context) -> bool:
    """Nothing can move any more: no item wanted, searching, queued or downloading, no transfer
    active, no job ready or running. Items not found wait for their back-off to end; an item left
    in `found` with no job has nothing that would ever move it (see `_stuck`)."""
    db = ctx.db
    moving = [state for state in OPEN_STATES if state != "found"]
    return not (
        db.scalar(
            f"SELECT count(*) FROM wanted_items WHERE state IN ({', '.join('?' * len(moving))})", moving
        )
        or db.scalar("SELECT count(*) FROM transfers WHERE finished_at IS NULL")
        or db.scalar("SELECT count(*) FROM jobs WHERE state IN ('ready', 'running')")
    )


def _stuck(ctx: Context, now: float) -> dict[str, Any]:
    """The items still open when the run ends: how many, by state and by their last transfer's
    outcome, and the timelines of two of them."""
    rows = ctx.db.query(
        "SELECT i.id, i.title, i.state, i.state_since, (SELECT outcome FROM transfers t "
        "WHERE t.item_id = i.id ORDER BY t.id DESC LIMIT 1) AS last "
        f"FROM wanted_items i WHERE i.state IN {OPEN_STATES} ORDER BY i.id"
    )
    by: collections.Counter[str] = collections.Counter(
        f"{r['state']} after {r['last'] or 'no transfer'}" for r in rows
    )
    examples = []
    for row in rows[:2]:
        events = ctx.db.query(
            "SELECT kind, code, message FROM events WHERE item_id = ? ORDER BY id", (row["id"],)
        )
        examples.append(
            {
                "id": row["id"],
                "hours": (now - row["state_since"]) / 3600,
                "events": [f"{e['kind']} {e['code']}: {e['message']}" for e in events],
            }
        )
    return {"count": len(rows), "by": dict(by.most_common()), "examples": examples}


def _backlog_figures(
    ctx: Context, items: list[dict[str, Any]], report: dict[str, Any], evaluations: dict[int, float]
) -> dict[str, Any]:
    """The backlog's figures from the database, Harmony's metrics and the fake's record (`report`)."""
    db = ctx.db
    searches = [dict(row) for row in db.query("SELECT * FROM searches ORDER BY id")]
    categories = _categories(db, items, searches)
    budget, window = int(ctx.config["search.budget"]), float(ctx.config["search.window"])
    spend = [float(row["at"]) for row in db.query("SELECT at FROM search_spend")]
    checks = {
        "fake": window_check([t for t, _ in report["created"]], budget, window),
        "search_spend": window_check(spend, budget, window),
        "searches": window_check([float(s["started_at"]) for s in searches], budget, window),
    }
    outcomes = {
        row["outcome"] or row["state"]: row["n"]
        for row in db.query(
            "SELECT outcome, state, count(*) AS n FROM transfers GROUP BY outcome, state ORDER BY n DESC"
        )
    }
    return {
        "states": wanted.counts_by_state(db),
        "categories": categories,
        "searches": len(searches),
        "resolved": sum(e["resolved"] for e in categories.values()),
        "budget": {"limit": budget, "window_s": window, **checks, "refused_by_fake": report["refused"]},
        "enqueue": _enqueue_figures(ctx, searches, report),
        "evaluation": _evaluation_by_variant(searches, evaluations),
        "wrong_files": _wrong_files(db, report),
        "transfer_outcomes": outcomes,
        "metrics": {
            "searches": labelled(ctx, "harmony_searches"),
            "fall_throughs": labelled(ctx, "harmony_fall_throughs").get("all", 0.0),
            "stalls": labelled(ctx, "harmony_transfer_stalls"),
            "list_calls": list_calls(ctx),
        },
    }


def _categories(
    db: Any, items: list[dict[str, Any]], searches: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """By category: items, how they ended, and their searches by why (`SEARCH_KINDS`); an album
    search counts for the category of the item it was made for (its release's first)."""
    category = {raw["track"]["spotify_id"]: raw["category"] for raw in items}
    of_item = {
        row["id"]: category[row["spotify_id"]] for row in db.query("SELECT id, spotify_id FROM wanted_items")
    }
    out: dict[str, dict[str, Any]] = {
        c.name: {"items": 0, "resolved": 0, "not_found": 0, "searches": 0, "kinds": collections.Counter()}
        for c in CATEGORIES
    }
    for row in db.query("SELECT id, state FROM wanted_items"):
        entry = out[of_item[row["id"]]]
        entry["items"] += 1
        entry["resolved"] += row["state"] in RESOLVED_STATES
        entry["not_found"] += row["state"] == "not_found"
    release_of = {
        row["item_id"]: row["release_id"]
        for row in db.query("SELECT item_id, release_id FROM wanted_sources WHERE release_id IS NOT NULL")
    }
    track_searched: set[int] = set()  # items with a track search so far
    album_searched: set[int] = set()  # releases with an album search so far
    for row in searches:  # in the order they were made
        if row["mode"] == "album":
            kind = "album"
            album_searched.add(row["release_id"])
        elif row["variant"] != "primary":
            kind = "later variant"
        elif row["item_id"] in track_searched:
            kind = "again"
        elif release_of.get(row["item_id"]) in album_searched:
            kind = "after album fallback"
        else:
            kind = "first"
        if row["mode"] == "track":
            track_searched.add(row["item_id"])
        entry = out[of_item[row["item_id"]]]
        entry["searches"] += 1
        entry["kinds"][kind] += 1
    for entry in out.values():
        entry["kinds"] = dict(entry["kinds"])
    return out


def _enqueue_figures(ctx: Context, searches: list[dict[str, Any]], report: dict[str, Any]) -> dict[str, Any]:
    """Search start to enqueue as `Transfers._enqueue` observes it (`transfers.requested_at` minus
    the candidate's `searches.started_at`, for every transfer slskd queued whose candidate is still
    known), the first enqueue of each search, and where a search's time went on slskd."""
    db = ctx.db
    waits = db.query(
        "SELECT t.requested_at - s.started_at AS wait, s.ended_at - s.started_at AS running, "
        "s.id AS search_id FROM transfers t JOIN candidates c ON c.id = t.candidate_id "
        "JOIN searches s ON s.id = c.search_id WHERE t.slskd_id IS NOT NULL ORDER BY t.id"
    )
    firsts: dict[int, Any] = {}
    for row in waits:
        firsts.setdefault(row["search_id"], row)
    every = [float(row["wait"]) for row in waits]
    sample = ctx.metrics.registry.get_sample_value
    out = {
        "enqueued": int(db.scalar("SELECT count(*) FROM transfers WHERE slskd_id IS NOT NULL")),
        "matched": len(every),
        "p50": _p50(every),
        "p95": _p95(every),
        "le_20_share": sum(w <= ENQUEUE_P50_TARGET_S for w in every) / max(1, len(every)),
        "histogram": {
            "count": sample("harmony_search_to_enqueue_seconds_count") or 0.0,
            "le_20": sample("harmony_search_to_enqueue_seconds_bucket", {"le": "20.0"}) or 0.0,
        },
    }
    for key in ("wait", "running"):
        values = [float(row[key]) for row in firsts.values()]
        out[f"first_{key}_p50"], out[f"first_{key}_p95"] = _p50(values), _p95(values)
    # From the fake's record: waiting for one of slskd's two network slots, on the network (the
    # last response, then the timeout), then until Harmony's poll saw the search complete.
    seen = {row["slskd_id"]: float(row["ended_at"]) for row in searches if row["ended_at"] is not None}
    spans: dict[str, list[float]] = {"slot": [], "network": [], "poll": []}
    for slskd_id, (created, slot, ended) in report["ran"].items():
        if slot is not None and ended is not None and slskd_id in seen:
            spans["slot"].append(slot - created)
            spans["network"].append(ended - slot)
            spans["poll"].append(seen[slskd_id] - ended)
    for key, values in spans.items():
        out[f"{key}_p50"], out[f"{key}_p95"] = _p50(values), _p95(values)
    return out


def _evaluation_by_variant(
    searches: list[dict[str, Any]], evaluations: dict[int, float]
) -> dict[str, dict[str, float]]:
    """CPU of `search.evaluate` by query variant, beside the files each search brought back."""
    ms: dict[str, list[float]] = collections.defaultdict(list)
    files: dict[str, list[float]] = collections.defaultdict(list)
    for row in searches:
        if row["id"] in evaluations:
            ms[row["variant"]].append(1000 * evaluations[row["id"]])
            files[row["variant"]].append(float(row["files"] or 0))
    return {
        variant: {
            "ms_p50": _p50(ms[variant]),
            "ms_p95": _p95(ms[variant]),
            "cpu_s": sum(ms[variant]) / 1000,
            "files_p50": _p50(files[variant]),
            "files_p95": _p95(files[variant]),
        }
        for variant in sorted(ms, key=lambda name: -len(ms[name]))
    }


def _wrong_files(db: Any, report: dict[str, Any]) -> dict[str, Any]:
    """Each downloaded file against the recording wanted: the fake knows which track each of its
    files holds, and whether it is the original or a trap."""
    wrong, checked = [], 0
    for row in db.query(
        "SELECT t.slskd_id, t.username, t.filename, i.spotify_id FROM transfers t "
        "JOIN wanted_items i ON i.id = t.item_id WHERE t.outcome = 'succeeded'"
    ):
        track_id, variant, _ = report["transfers"].get(row["slskd_id"], [None, None, None])
        checked += 1
        if track_id != row["spotify_id"] or variant != "original":
            wrong.append(f"{row['username']}: {row['filename']} ({variant})")
    return {"checked": checked, "wrong": wrong[:10], "count": len(wrong)}


def _query_costs(ctx: Context, now: float) -> list[dict[str, Any]]:
    """The plan and the time per call, at the end of the run, of the statements the tasks and jobs
    repeat most: the dispatcher's due items and in-flight count, the search poll's running searches,
    album mode's recent-search check, the budget's count and the transfer poll's active rows. The
    statements `harmony/search.py` writes inline are copied here as they are."""
    release = ctx.db.scalar("SELECT max(release_id) FROM wanted_sources") or 0
    statements = [
        ("search_dispatch: due items (`search.SQL_DUE`)", search.SQL_DUE, (now, 16)),
        (
            "search_dispatch: in flight (`Searcher._in_flight`)",
            "SELECT count(*) FROM wanted_items WHERE state = 'searching'",
            (),
        ),
        (
            "search_dispatch and start: budget (`search.SQL_SPENT`)",
            search.SQL_SPENT,
            (now - float(ctx.config["search.window"]),),
        ),
        (
            "dispatch of a release's item: recent album search (`Searcher._album_group`)",
            "SELECT 1 FROM searches WHERE release_id = ? AND mode = 'album' AND started_at > ?",
            (release, now - search.ALBUM_RETRY_S),
        ),
        (
            "search_poll: running searches (`Searcher.poll`)",
            "SELECT * FROM searches WHERE state = 'running'",
            (),
        ),
        ("transfer_poll: active transfers (`transfers.SQL_ACTIVE`)", transfers.SQL_ACTIVE, ()),
    ]
    out = []
    for label, sql, args in statements:
        plan = [row["detail"] for row in ctx.db.query("EXPLAIN QUERY PLAN " + sql, args)]
        timings = []
        for _ in range(30):
            started = time.perf_counter()
            ctx.db.query(sql, args)
            timings.append((time.perf_counter() - started) * 1000)
        out.append({"label": label, "plan": plan, "ms": statistics.median(timings)})
    return out


def found_items(ctx: Context, files: list[dict[str, Any]], now: float) -> list[int]:
    """One manual item per file, moved to `found` as a search would leave it; their ids."""
    ids = []
    for start in range(0, len(files), 500):
        with ctx.db.write() as conn:
            for n, f in enumerate(files[start : start + 500], start):
                track = wanted.Track(
                    f["title"], (f["artist"],), album="Poll Album", duration_ms=180_000 + n % 120
                )
                item, _ = wanted.want(conn, track, wanted.Source("manual"), now=now)
                wanted.transition(conn, item.id, "searching", "bench", "searching", now=now)
                wanted.transition(conn, item.id, "found", "bench", "found", now=now)
                ids.append(item.id)
    return ids


def enqueue_all(ctx: Context, files: list[dict[str, Any]], ids: list[int], chunk: int) -> None:
    """Ask each peer for its files through `Transfers.start_many`, `chunk` files a request."""
    by_user: dict[str, list[tuple[int, transfers.Pick]]] = collections.defaultdict(list)
    for item_id, f in zip(ids, files, strict=True):
        by_user[f["username"]].append(
            (item_id, transfers.Pick(None, f["username"], f["filename"], f["size"]))
        )
    for username, picks in by_user.items():
        for start in range(0, len(picks), chunk):
            ctx.transfers.start_many(username, picks[start : start + chunk])


def timed_polls(sim: Simulation, cycles: int) -> dict[str, Any]:
    """`cycles` polls, one poll interval apart: CPU ms of each, and its list calls by Harmony's
    metric and by the fake's request log."""
    ctx, fakes = sim.ctx, sim.fakes
    interval = float(ctx.config["transfers.poll_interval"])
    cpu_ms, metric_calls, fake_calls, changed = [], [], [], []
    for _ in range(cycles):
        sim.advance_to(sim.now + interval)
        metric, fake = list_calls(ctx), fakes.call("counts")["requests"].get(LIST_ENDPOINT, 0)
        started = time.process_time()
        changed.append(ctx.transfers.poll())
        cpu_ms.append((time.process_time() - started) * 1000)
        metric_calls.append(list_calls(ctx) - metric)
        fake_calls.append(fakes.call("counts")["requests"].get(LIST_ENDPOINT, 0) - fake)
    return {
        "cycles": cycles,
        "p50_ms": _p50(cpu_ms),
        "p95_ms": _p95(cpu_ms),
        "max_ms": max(cpu_ms),
        "metric_calls": sorted(set(metric_calls)),
        "fake_calls": sorted(set(fake_calls)),
        "listed": len(ctx.transfers.last_seen),
        "active": sum(ctx.transfers.counts().values()),
        "states": {k: v for k, v in ctx.transfers.counts().items() if v},
        "changed": sum(changed),
    }


def profiled_polls(sim: Simulation, cycles: int) -> dict[str, Any]:
    """Where a poll's CPU goes: cProfile (timer `process_time`) over `cycles` polls."""
    interval = float(sim.ctx.config["transfers.poll_interval"])
    profile = cProfile.Profile(time.process_time)
    for _ in range(cycles):
        sim.advance_to(sim.now + interval)
        profile.enable()
        sim.ctx.transfers.poll()
        profile.disable()
    stats = pstats.Stats(profile, stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    cumulative: dict[str, float] = {}
    rows = []
    for (filename, line, name), (_, calls, own, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = (
            os.path.relpath(filename, ROOT) if filename.startswith(str(ROOT)) else os.path.basename(filename)
        )
        rows.append(
            {"function": f"{where}:{line}({name})", "calls": calls // cycles, "own_ms": own * 1000 / cycles}
        )
        cumulative[f"{where}:{name}"] = cum * 1000 / cycles
    rows.sort(key=lambda r: r["own_ms"], reverse=True)
    parts = (
        "harmony/slskd.py:downloads",
        "harmony/slskd.py:parse_transfers",
        "harmony/transfers.py:_reconcile",
    )
    return {
        "total_ms": total * 1000 / cycles,
        "top": rows[:10],
        "cumulative_ms": {p: cumulative.get(p, 0.0) for p in parts},
    }


def child_poll(spec: dict[str, Any]) -> dict[str, Any]:
    """1,000 active transfers; timed polls; then with completed downloads left in slskd's list; then
    after `Slskd.remove_completed`."""
    out: dict[str, Any] = {}
    fakes_spec = {"kind": "poll", "active": spec["active"], "history": spec["history"]}
    with (
        FakesProcess(fakes_spec) as fakes,
        opened(bench_config(spec["directory"], fakes.world["options"])) as ctx,
    ):
        world = fakes.world
        sim = Simulation(ctx, fakes, world["start"])
        interval = float(ctx.config["transfers.poll_interval"])
        ids = found_items(ctx, world["active"], sim.now)
        enqueue_all(ctx, world["active"], ids, chunk=50)
        for _ in range(3):  # the first polls move every transfer from requested to where it stays
            sim.advance_to(sim.now + interval)
            ctx.transfers.poll()
        out["active"] = timed_polls(sim, spec["cycles"])
        out["profile"] = profiled_polls(sim, 5)
        history_ids = found_items(ctx, world["history"], sim.now)
        started = time.perf_counter()
        enqueue_all(ctx, world["history"], history_ids, chunk=100)
        out["history_enqueue_s"] = time.perf_counter() - started
        sim.advance_to(sim.now + interval)
        cpu = time.process_time()
        ctx.transfers.poll()
        out["history_poll_ms"] = (time.process_time() - cpu) * 1000
        out["history_succeeded"] = int(
            ctx.db.scalar("SELECT count(*) FROM transfers WHERE outcome = 'succeeded'")
        )
        out["with_history"] = timed_polls(sim, spec["cycles"])
        ctx.slskd.remove_completed()
        out["cleared"] = timed_polls(sim, spec["cycles"])
        out["simulated_s"] = sim.now - world["start"]
        out["fakes_requests"] = fakes.call("counts")["requests"]
    out["maxrss_mb"] = rss_mb()
    return out


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "backlog": child_backlog,
    "poll": child_poll,
}


def child_main(name: str) -> None:
    spec = json.load(sys.stdin)
    logsetup.configure("warning", "text")
    print(json.dumps(CHILDREN[name](spec), default=str))


def run_child(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run `name` in a fresh process (this script with `--child`); its result is stdout's last line.
    Its stderr (progress, warnings) goes to ours."""
    argv = [sys.executable, __file__, "--child", name]
    done = subprocess.run(argv, input=json.dumps(spec), stdout=subprocess.PIPE, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited with {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- 2. the backlog ------------------------------------------------------------------------------------


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 7200 else f"{seconds / 60:.0f} min"


def _verdict(met: bool | None) -> str:
    return "" if met is None else "met" if met else "**not met**"


def _table(header: str, rows: Iterable[Iterable[Any]], align: str = "") -> list[str]:
    """A Markdown table: `header` as "a | b | c", `align` as "l r r" (default: left, then right)."""
    names = [h.strip() for h in header.split("|")]
    marks = align.split() or ["l", *["r"] * (len(names) - 1)]
    rule = "|" + "|".join("---:" if mark == "r" else "---" for mark in marks) + "|"
    lines = ["| " + " | ".join(names) + " |", rule]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def _counts(values: dict[str, float], fmt: str = "{:,.0f}") -> str:
    return ", ".join(f"{key} {fmt.format(value)}" for key, value in values.items() if value) or "none"


def backlog(sizes: Sizes, directory: str) -> list[str]:
    """Section 2: the backlog worked through on the simulated clock."""
    spec = {"items": sizes.items, "directory": os.path.join(directory, "backlog"), "limit_s": 14 * 86400.0}
    r = run_child("backlog", spec)
    n, resolved, searches = sizes.items, r["resolved"], r["searches"]
    per_resolved = searches / max(1, resolved)
    budget, enqueue, run, cfg, stuck = r["budget"], r["enqueue"], r["run"], r["settings"], r["stuck"]
    fake_check, spend_check = budget["fake"], budget["search_spend"]
    violations = fake_check["violations"] + spend_check["violations"]
    wrong = r["wrong_files"]
    categories = r["categories"]
    kinds: collections.Counter[str] = collections.Counter()
    for entry in categories.values():
        kinds.update(entry["kinds"])

    def without(*names: str) -> float:
        kept = [categories[c.name] for c in CATEGORIES if c.name not in names]
        return sum(e["searches"] for e in kept) / max(1, sum(e["resolved"] for e in kept))

    target, window = SEARCHES_PER_RESOLVED_TARGET, budget["window_s"]
    cpu_ms = 1000 * run["cpu_s"] / max(1, resolved)
    summary = [
        (
            "searches per resolved item",
            f"**{per_resolved:.2f}** ({searches:,} searches / {resolved:,} items downloaded of {n:,})",
            f"≤ {target}",
            per_resolved <= target,
        ),
        (
            "budget violations: sliding windows over budget",
            f"**{violations}** (the fake's record {fake_check['violations']}, `search_spend` "
            f"{spend_check['violations']}; at most {fake_check['max_in_window']} searches in any "
            f"{window:g} s window)",
            "0",
            violations == 0,
        ),
        (
            "search start → enqueue, p50 / p95 (simulated)",
            f"**{enqueue['p50']:.1f} s / {enqueue['p95']:.1f} s** ({enqueue['matched']:,} enqueues, "
            f"{_percent(enqueue['le_20_share'])} within 20 s)",
            f"p50 ≤ {ENQUEUE_P50_TARGET_S:.0f} s",
            enqueue["p50"] <= ENQUEUE_P50_TARGET_S,
        ),
        (
            "downloaded files that are not the wanted recording",
            f"**{wrong['count']}** of {wrong['checked']:,}",
            "0",
            wrong["count"] == 0,
        ),
        (
            "items left where nothing will move them",
            f"**{stuck['count']}** ({_counts(stuck['by'])})",
            "0",
            stuck["count"] == 0,
        ),
        (
            "simulated time; wall time; Harmony's CPU",
            f"{_hours(run['simulated_s'])}; {run['wall_s']:.0f} s; {run['cpu_s']:.0f} s "
            f"({cpu_ms:.0f} ms per resolved item)",
            "",
            None,
        ),
        (
            "peak RSS (`ru_maxrss`): Harmony's process / the fakes'",
            f"**{r['maxrss_mb']:.0f} MB** / {r['fakes']['maxrss_mb']:.0f} MB",
            "",
            None,
        ),
    ]
    category_rows = []
    for c in CATEGORIES:
        e = categories[c.name]
        why = ", ".join(f"{k} {e['kinds'][k]:,}" for k in SEARCH_KINDS if e["kinds"].get(k))
        per_item = e["searches"] / max(1, e["items"])
        counts = (e["items"], e["resolved"], e["not_found"], e["searches"])
        category_rows.append((f"`{c.name}`", c.means, *(f"{x:,}" for x in counts), f"{per_item:.2f}", why))
    found_by = {k.split("/", 1)[1]: v for k, v in r["metrics"]["searches"].items() if k.startswith("found/")}
    started_by = {
        k.split("/", 1)[1]: v for k, v in r["metrics"]["searches"].items() if k.startswith("started/")
    }
    variant_rows = [
        (
            f"`{variant}`",
            f"{started_by.get(variant, 0):,.0f}",
            f"{found_by.get(variant, 0):,.0f}",
            f"{e['files_p50']:.0f} / {e['files_p95']:.0f}",
            f"{e['ms_p50']:.1f} / {e['ms_p95']:.1f}",
            f"{e['cpu_s']:.1f}",
        )
        for variant, e in r["evaluation"].items()
    ]
    task_rows = [
        (
            f"`{name}`",
            f"{t['calls']:,}",
            t["failures"],
            *(f"{t[k]:.2f}" for k in ("cpu_s", "first_ms", "last_ms")),
        )
        for name, t in r["tasks"].items()
    ]
    job_rows = [
        (f"`{kind}`", f"{j['runs']:,}", f"{j['cpu_s']:.1f}", f"{1000 * j['cpu_s'] / max(1, j['runs']):.2f}")
        for kind, j in r["jobs"].items()
    ]
    query_rows = [(q["label"], f"{q['ms']:.3f}", "; ".join(q["plan"])) for q in r["queries"]]
    tasks = ", ".join(
        f"`{k}` (every {v['interval_s']:g} s, first after {v['first_s']:g} s)"
        for k, v in r["tasks_wired"].items()
    )
    nowhere, queued = categories["nowhere"], categories["remote_queue"]
    summary_rows = [(f, v, t or "no target", _verdict(m)) for f, v, t, m in summary]
    settings = ", ".join(
        f"`{key}` {value:g}{' s' if key.split('.')[1] in SECONDS else ''}" for key, value in cfg.items()
    )
    histogram = enqueue["histogram"]
    in_bucket = _percent(histogram["le_20"] / max(1, histogram["count"]))
    timeout = cfg["search.timeout"]
    # Two slots each held for a search's network time allow this many searches per window.
    by_slots = 2 * budget["window_s"] / max(1e-9, enqueue["network_p50"])
    busiest, limit = fake_check["max_in_window"], cfg["search.budget"]
    pace = (
        "So slskd's two network slots, not the budget, set the pace: on average they allow about "
        f"{by_slots:.0f} searches per {budget['window_s']:g} s; the busiest window held {busiest}, the "
        f"budget is {limit}."
        if busiest < limit
        else f"The budget sets the pace: the busiest windows held {busiest}, the budget."
    )
    lines = [
        f"## Backlog: {n:,} wanted items against the fake slskd on a simulated clock",
        "",
        f"{n:,} wanted items made through `wanted.want` "
        f"({r['fill_s']:.1f} s), then worked through by Harmony's own `Searcher` and `Transfers` as "
        f"`open_context` wires them: the tasks {tasks} at the wheel's intervals, and each job as soon as it "
        "is due through `workers.run_one`, on a simulated clock that Harmony's searcher, budget, transfers "
        "and job queue read and the fakes share. The run ends when nothing can move any more: no item "
        "wanted, searching, queued or downloading, no transfer active, no job due. Items not found wait "
        "for their back-off (1 h, 6 h, 24 h, then 7 d); those searched again before the end count.",
        "",
        f"Settings: Harmony's defaults, so {settings}. A search ends `search.timeout` after its last "
        "response; on a simulated clock that costs no wall time, so it stays at slskd's default rather than "
        "the demo's 5 s. "
        "The fake imitates slskd 0.26: two network search slots (Harmony keeps up to four searches in "
        "flight, the others wait in slskd's queue) and retries of failed downloads. What differs from "
        "production, because of the simulated clock or the length of the run: completed downloads are "
        "cleared from the fake's list after each transfer poll, standing in for slskd's retention "
        "(Harmony never clears them: see the next section); import jobs complete without doing "
        "anything. In the fakes process: the fake's waits take no time, a word index narrows the "
        "files a search tests, its upkeep visits only what can still change, and its two search "
        "slots are kept to two (see the module docstring).",
        "",
        f"The fake world: {r['world']['peers']} peers sharing {r['world']['files']:,} files (built in "
        f"{r['world']['build_s']:.1f} s), each album laid out as the fake's own peers lay theirs out. "
        "How the wanted tracks are shared, and what became of them:",
        "",
        *_table(
            "category | how it is shared | items | downloaded | not found | searches | per item "
            "| searches, by why",
            category_rows,
            "l l r r r r r l",
        ),
        "",
        "A search's why: `first`, an item's first track search; `later variant`, the next query after one "
        "that found nothing acceptable; `album`, a release's album search; `after album fallback`, a "
        "track search after its album search found no complete folder; `again`, the first query again "
        "(the not-found back-off ended, or every candidate of the last search failed).",
        "",
        *_table("figure | measured | target | ", summary_rows, "l l l l"),
        "",
        "Searches per resolved item leaving out the `nowhere` items (nothing to find, "
        f"{nowhere['searches']:,} searches for {nowhere['items']:,} items): {without('nowhere'):.2f}; "
        f"leaving out the `remote_queue` items too ({queued['searches']:,} searches for "
        f"{queued['items']:,} items, {queued['not_found']:,} of them not found): "
        f"{without('nowhere', 'remote_queue'):.2f}. Searches made again: {kinds['again']:,}; later "
        f"variants: {kinds['later variant']:,}.",
        "",
        f"Budget: each record of the searches made, the fake's own ({fake_check['searches']:,} accepted, "
        f"{budget['refused_by_fake']} refused), the `search_spend` rows ({spend_check['searches']:,}) "
        f"and the `searches` rows ({budget['searches']['searches']:,}), was checked over every window "
        "(t − window, t] that ends at a search, the window the budget itself counts.",
        "",
        "Search start to enqueue is `transfers.requested_at` − `searches.started_at` of the candidate's "
        f"search for each transfer slskd queued ({enqueue['matched']:,} of {enqueue['enqueued']:,}; a "
        "candidate is deleted when its item is searched again), the span "
        f"`harmony_search_to_enqueue_seconds` observes (its count: {histogram['count']:,.0f}, {in_bucket} "
        f"at or under 20 s). The first enqueue of each search: p50 {enqueue['first_wait_p50']:.1f} s, "
        f"p95 {enqueue['first_wait_p95']:.1f} s, nearly all of it the search running (p50 "
        f"{enqueue['first_running_p50']:.1f} s until the poll saw it complete; the evaluation and the "
        "transfer job run at once here, where workers would take a moment). Where a search's time goes, "
        "from the fake's record: waiting for one of slskd's two network slots p50 "
        f"{enqueue['slot_p50']:.1f} s (p95 {enqueue['slot_p95']:.1f} s), on the network p50 "
        f"{enqueue['network_p50']:.1f} s (p95 {enqueue['network_p95']:.1f} s: the last response, then the "
        f"{timeout:g} s timeout), until the next poll p50 {enqueue['poll_p50']:.1f} s. {pace}",
        "",
        f"Transfers: {_counts(r['transfer_outcomes'])}; fall-throughs to the next candidate "
        f"{r['metrics']['fall_throughs']:,.0f}; stalls given up {_counts(r['metrics']['stalls'])}. Items at "
        f"the end: {_counts(r['states'])}.",
        "",
    ]
    if stuck["count"]:
        example = stuck["examples"][0]
        lines += [
            f"Left where nothing will move them: {stuck['count']} item(s), {_counts(stuck['by'])}: no job "
            "and no task will ever touch an item in `found` without a transfer under way. One of them, "
            f"after {example['hours']:.1f} h: " + " → ".join(f"`{e}`" for e in example["events"][-3:]) + ".",
            "",
        ]
    lines += [
        "Where Harmony's CPU went (`time.process_time()` in Harmony's process; the fakes, in their own, "
        f"used {r['fakes']['cpu_s']:.0f} s), by task, by job, and evaluation by query variant:",
        "",
        *_table("task | runs | failures | CPU s | ms a run, first tenth | ms a run, last tenth", task_rows),
        "",
        *_table("job | runs | CPU s | ms a run", job_rows),
        "",
        *_table(
            "variant | started | found a file | files returned p50 / p95 | evaluation ms p50 / p95 | CPU s",
            variant_rows,
        ),
        "",
        f"Dead jobs: {_counts(r['dead_jobs'])}. Requests the fake slskd answered: "
        + _counts(dict(sorted(r["fakes"]["requests"].items(), key=lambda kv: -kv[1])))
        + ".",
        "",
        "The statements the tasks repeat, on the database as the run left it (median of 30; plan from "
        "EXPLAIN QUERY PLAN):",
        "",
        *_table("statement | ms | plan", query_rows, "l r l"),
        "",
    ]
    if wrong["wrong"]:
        lines += ["Wrong files: " + "; ".join(wrong["wrong"]), ""]
    return lines


# --- 3. the transfer poll ------------------------------------------------------------------------------


def transfer_poll(sizes: Sizes, directory: str) -> list[str]:
    """Section 3: `Transfers.poll` at 1,000 active transfers, with and without slskd's history."""
    spec = {"active": sizes.active, "history": sizes.history, "cycles": sizes.cycles}
    r = run_child("poll", {**spec, "directory": os.path.join(directory, "poll")})
    extra = r["with_history"]["listed"] - r["active"]["listed"]
    cases = [
        ("active only", r["active"]),
        (f"with {extra:,} completed still listed", r["with_history"]),
        ("after `Slskd.remove_completed()`", r["cleared"]),
    ]
    rows = []
    for name, c in cases:
        calls = "/".join(f"{x:g}" for x in c["metric_calls"]) + " and " + "/".join(map(str, c["fake_calls"]))
        times = (f"**{c['p50_ms']:.1f}**", f"**{c['p95_ms']:.1f}**", f"{c['max_ms']:.1f}")
        rows.append((name, f"{c['active']:,}", f"{c['listed']:,}", *times, calls))
    one_call = all(c["metric_calls"] == [1.0] and c["fake_calls"] == [1] for _, c in cases)
    profile = r["profile"]
    cumulative = profile["cumulative_ms"]
    history, cleared = r["with_history"], r["cleared"]
    per_thousand = (history["p50_ms"] - cleared["p50_ms"]) / max(1e-9, extra / 1000)
    return [
        f"## Transfer poll: {sizes.active:,} active transfers",
        "",
        f"{sizes.active:,} items moved to `found`, each with one file asked of a fake peer through "
        "`Transfers.start_many` (50 files a request): 10 peers upload so slowly that their transfers stay in "
        "progress for hours, 10 keep theirs in a day-long remote queue. After three polls have moved every "
        f"transfer to where it stays ({_counts(r['active']['states'])}), {sizes.cycles} polls "
        "(`Transfers.poll()`), one poll interval apart on the simulated clock, each timed with "
        "`time.process_time()` in Harmony's process (the fakes run in their own). Then a fast peer's "
        f"{sizes.history:,} downloads complete (the poll that found them done took "
        f"{r['history_poll_ms']:,.0f} ms of CPU and marked {r['history_succeeded']:,} succeeded) and stay in "
        "slskd's list, as they do: Harmony never removes a finished download. Then the product's own "
        "`Slskd.remove_completed()` clears them. "
        'List calls per poll: the increase of `harmony_slskd_list_calls_total{outcome="ok"}`, and of the '
        "fake's count of `GET /api/v0/transfers/downloads`, over each poll.",
        "",
        *_table(
            "case | active transfers | records in slskd's list | CPU ms per poll, p50 | p95 | max "
            "| list calls per poll (metric and fake)",
            rows,
            "l r r r r r l",
        ),
        "",
        f"One list call per poll in every case: {'**yes**' if one_call else '**no**'}. Peak RSS "
        f"(`ru_maxrss`) of Harmony's process: **{r['maxrss_mb']:.0f} MB**.",
        "",
        f"Where a poll's CPU goes with {sizes.active:,} active transfers (cProfile with `time.process_time`, "
        f"5 polls; {profile['total_ms']:.0f} ms a poll under the profiler): the list call and its parsing "
        f"(`Slskd.downloads`) {cumulative['harmony/slskd.py:downloads']:.0f} ms, of which parsing "
        f"(`slskd.parse_transfers`) {cumulative['harmony/slskd.py:parse_transfers']:.0f} ms; reconciling "
        f"(`Transfers._reconcile`, one write transaction a transfer) "
        f"{cumulative['harmony/transfers.py:_reconcile']:.0f} ms. The functions with the most own time:",
        "",
        *_table(
            "function | calls per poll | own ms per poll",
            ((f"`{p['function']}`", f"{p['calls']:,}", f"{p['own_ms']:.2f}") for p in profile["top"]),
        ),
        "",
        f"Reading it: one list call per poll however many transfers there are, and the poll's cost follows "
        f"the records slskd lists, not only Harmony's active transfers: each 1,000 completed downloads left "
        f"in the list add about {per_thousand:.0f} ms of CPU to every poll (parsed, then looked up and "
        "dropped), and nothing in Harmony ever removes them.",
        "",
    ]


# --- the report ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: 500 items, 2,000 completed")
    parser.add_argument("--items", type=int, help="the backlog's size (default 10,000; 500 with --quick)")
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench" / "acquire.md"))
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--fakes", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child)
        return
    if args.fakes:
        serve_fakes(args.fakes)
        return

    sizes = Sizes.pick(args.quick)
    if args.items:
        sizes = dataclasses.replace(sizes, items=args.items)
    with open("/proc/loadavg", encoding="ascii") as handle:
        load = " ".join(handle.read().split()[:3])
    started = time.perf_counter()
    sections = [match_corpus()]
    print("match corpus: done", flush=True)
    with tempfile.TemporaryDirectory(prefix="harmony-bench-") as directory:
        for section in (backlog, transfer_poll):
            sections.append(section(sizes, directory))
            print(f"{section.__name__}: done ({time.perf_counter() - started:.0f} s)", flush=True)
    elapsed = time.perf_counter() - started
    mode = ("`--quick`" if args.quick else "full sizes") + (f", `--items {args.items}`" if args.items else "")
    lines = [
        "# Acquisition benchmark",
        "",
        f"Produced by `tools/bench/acquire.py` ({mode}) on {time.strftime('%Y-%m-%d', time.gmtime())}: "
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}; load average "
        f"{load} at the start (the host is shared); the whole run took {elapsed:.0f} s. Sizes: a backlog "
        f"of {sizes.items:,} items; {sizes.active:,} active transfers and {sizes.history:,} completed ones "
        f"for the poll, {sizes.cycles} polls a case.",
        "",
        *(line for section in sections for line in section),
    ]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
