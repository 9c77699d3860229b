"""Soulseek searches: owns `searches`, `search_spend` and `candidates`; spends one global budget.

Searching too fast gets a Soulseek account banned, so every search Harmony creates spends from
one budget (`search.budget` searches per `search.window`), counted in `search_spend` so a
restart does not reset it; `Budget.spend` runs inside the transaction that records the
search, so concurrent callers never overspend. slskd creates one search at a time (the client
queues its own creations).

A search is asynchronous, as slskd's are, and goes in steps of background work:

- `search_dispatch` (task) takes wanted items, and items whose not-found back-off is over, by
  priority (manual, then playlist, then watchlist, then age), as the budget allows, and queues
  a `search.start` job for each (the item is `searching`);
- `Searcher.start` (job) spends, creates the item's next query variant on slskd, and records it;
- `search_poll` (task) reads slskd's search list in one request and queues a
  `search.evaluate` job for each of Harmony's searches that completed;
- `Searcher.evaluate` (job) fetches the responses, ranks them (`ranking.rank`), records the
  candidates with their reasons, deletes the search from slskd, and either hands the item to
  the transfers (`found`), tries the next variant, or marks it `not_found`, to be searched
  again after 1 h, 6 h, 24 h, then every 7 days.

Query variants, in order, stopping at the first that yields an acceptable candidate: the
cleaned "artist title"; the title with album words (for short or common titles); the artist
with the first letter of each word wildcarded (the Soulseek server filters some names); the
title alone (the ranking still demands the artist in the path); and the plain form without
brackets and diacritics. Each query and its response count go on the item's timeline. Every
variant is tried on an item's first pass only; a search after a back-off asks the primary query.

**Album mode**: when at least `search.album_min_tracks` wanted tracks share a release, one
search for "artist album" serves them all, and one folder of one peer whose files map onto the
release's tracks (`ranking.pick_album`) supplies every wanted track; when no folder qualifies,
the items fall back to track searches.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apsw

from . import events, ranking, wanted
from .config import Config
from .db import Database, Row
from .errors import (
    Conflict,
    NotFound,
    TooManyRequests,
    UpstreamCoolingDown,
    UpstreamRejected,
    UpstreamUnavailable,
)
from .jobs import GiveUp, Job, Later, Queue
from .matching import title_spec
from .metrics import Metrics
from .slskd import PeerResponse, Slskd
from .transfers import JOB as TRANSFER_JOB
from .transfers import Pick, Transfers, user_context

log = logging.getLogger(__name__)

JOB_START = "search.start"
JOB_EVALUATE = "search.evaluate"
NOT_FOUND_BACKOFF = (3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0)
# Searches under way at once: slskd runs two on the network and queues the rest, so more would
# only wait there; a finished evaluation starts the next one at once instead.
IN_FLIGHT = 2
ALBUM_RETRY_S = 86400.0  # a release's album search is not repeated within a day
LOST_AFTER_S = 120.0  # beyond its timeout, a search slskd no longer lists is lost
KEPT_REJECTED = 200  # rejected candidates kept per search, for the "why not" view
SPEND_RETENTION_S = 86400.0

SQL_SPENT = "SELECT count(*) AS n, min(at) AS oldest FROM search_spend WHERE at > ?"
SQL_SPEND_AT = "UPDATE search_spend SET at = max(at, ?) WHERE rowid = ?"
# The backlog in order: the wanted items and the not-found ones whose back-off is over, each read
# in order from the `wanted_state` index and merged, so resolved items are never walked past.
SQL_DUE = """
    SELECT id FROM (
        SELECT * FROM (
            SELECT id, priority, source_rank FROM wanted_items WHERE state = 'wanted'
            ORDER BY priority DESC, source_rank DESC, id LIMIT :n)
        UNION ALL
        SELECT * FROM (
            SELECT id, priority, source_rank FROM wanted_items
            WHERE state = 'not_found' AND coalesce(next_action_at, 0) <= :now
            ORDER BY priority DESC, source_rank DESC, id LIMIT :n)
    )
    ORDER BY priority DESC, source_rank DESC, id
    LIMIT :n
"""
SQL_SEARCH_INSERT = """
    INSERT INTO searches (item_id, release_id, mode, variant, query, slskd_id, state, started_at)
    VALUES (?, ?, ?, ?, ?, ?, 'running', ?)
    RETURNING id
"""
SQL_CANDIDATE_INSERT = """
    INSERT INTO candidates (item_id, search_id, username, filename, size, file, peer, accepted, rank,
        reasons, identity, quality, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# The next candidate to try: accepted, untried, and its peer neither blocked nor cooling down
# since the search, nor the file marked bad.
SQL_NEXT = """
    SELECT c.* FROM candidates c
    LEFT JOIN peers p ON p.username = c.username
    WHERE c.item_id = ? AND c.accepted = 1 AND c.tried_at IS NULL
      AND coalesce(p.blocked, 0) = 0 AND coalesce(p.cooldown_until, 0) <= ?
      AND NOT EXISTS (SELECT 1 FROM bad_files b WHERE b.username = c.username AND b.filename = c.filename)
    ORDER BY c.rank
    LIMIT 1
"""


# --- the budget ---------------------------------------------------------------------------------


class Budget:
    """`search.budget` searches per `search.window`, counted in the database."""

    def __init__(
        self, db: Database, live: Callable[[], Config], clock: Callable[[], float] = time.time
    ) -> None:
        self.db, self.live, self.clock = db, live, clock

    def _limits(self) -> tuple[int, float]:
        config = self.live()
        return int(config["search.budget"]), float(config["search.window"])

    def status(self, now: float | None = None) -> dict[str, Any]:
        """Spent and remaining in the window, and when the next search may start."""
        now = self.clock() if now is None else now
        limit, window = self._limits()
        row = self.db.query_one(SQL_SPENT, (now - window,))
        spent = int(row["n"]) if row else 0
        oldest = row["oldest"] if row else None
        next_free = now if spent < limit or oldest is None else float(oldest) + window
        return {
            "limit": limit,
            "window_s": window,
            "spent": spent,
            "remaining": max(0, limit - spent),
            "next_free_at": next_free,
        }

    def spend(self, conn: apsw.Connection, now: float) -> float | None:
        """Spend one search inside the caller's transaction; None if spent, else the seconds to
        wait for the next free slot (nothing spent then)."""
        limit, window = self._limits()
        row = next(conn.execute(SQL_SPENT, (now - window,)))
        if row["n"] >= limit:
            return max(0.1, float(row["oldest"]) + window - now)
        conn.execute("INSERT INTO search_spend (at) VALUES (?)", (now,))
        return None

    def prune(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        with self.db.write() as conn:
            conn.execute(
                "DELETE FROM search_spend WHERE at < ?", (now - max(SPEND_RETENTION_S, self._limits()[1]),)
            )


# --- queries (pure) -----------------------------------------------------------------------------

_BRACKETS = re.compile(r"\s*[\(\[\{【].*?[\)\]\}】]")
_DASH_TAIL = re.compile(r"\s+[-–—]\s+.*$")
_FEAT = re.compile(r"\s+(?:feat\.?|ft\.?|featuring|with)\s+.*$", re.IGNORECASE)
_PUNCTUATION = re.compile(r"[^\w\s*']|_", re.UNICODE)
_SPACES = re.compile(r"\s+")
COMMON_TITLES = frozenset(
    {"intro", "outro", "interlude", "home", "love", "untitled", "run", "stay", "hello", "forever", "reprise"}
)


def _clean(text: str) -> str:
    """Query words: no brackets, no " - suffix", no feat. credit, punctuation to spaces, no
    word starting with "-" (slskd reads that as an exclusion); any script kept as it is."""
    text = _FEAT.sub("", _DASH_TAIL.sub("", _BRACKETS.sub(" ", text)))
    words = _SPACES.sub(" ", _PUNCTUATION.sub(" ", text)).replace("'", "").split()
    return " ".join(word for word in words if len(word) > 1 or word.isdigit() or not word.isascii())


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def queries(item: wanted.Item | wanted.Track, *, album: bool = False) -> list[tuple[str, str]]:
    """The query variants for an item (or, with `album`, for its release), in order, each
    `(variant, query)`, without repeats or queries slskd would refuse."""
    artist = item.album_artist if album and item.album_artist else (item.artists[0] if item.artists else "")
    subject = item.album if album else item.title
    base = _clean(subject)
    spec = title_spec(subject)
    # A version the title asks for (live, a named remix) is part of what to find.
    asked = " ".join([*sorted(spec.requested), *spec.pinned]).replace("_", " ") if not album else ""
    with_version = f"{base} {asked}".strip()
    clean_artist = _clean(artist)
    short = len(base.split()) <= 1 or base.casefold() in COMMON_TITLES
    variants = [("primary", f"{clean_artist} {with_version}")]
    if short and not album and item.album:
        variants.append(("album_words", f"{clean_artist} {_clean(item.album)} {with_version}"))
    wildcard = " ".join(
        f"*{word[1:]}" if len(word) > 2 and word.isalpha() else word for word in clean_artist.split()
    )
    variants.append(("wildcard", f"{wildcard} {with_version}"))
    if not short:
        variants.append(("title_only", with_version))
    variants.append(("plain", _plain(f"{clean_artist} {base}")))
    out, seen = [], set()
    for variant, query in variants:
        query = _SPACES.sub(" ", query).strip()
        key = query.casefold()
        if key in seen or not any(len(word.strip("*")) > 1 for word in query.split()):
            continue
        seen.add(key)
        out.append((variant, query))
    return out


def to_ranking(item: wanted.Item) -> ranking.Wanted:
    year = item.release_date[:4]
    return ranking.Wanted(
        artist=item.artists[0] if item.artists else "",
        title=item.title,
        artists=item.artists,
        album=item.album,
        album_artist=item.album_artist,
        track_number=item.track_number,
        disc_number=item.disc_number,
        total_discs=item.disc_total,
        duration_ms=item.duration_ms or None,
        isrc=item.isrc,
        release_year=int(year) if year.isdigit() else None,
    )


def preferences(config: Config) -> ranking.Preferences:
    return ranking.Preferences(
        formats=tuple(config["search.formats"]),
        min_bitrate_kbps=int(config["search.min_bitrate"]),
        ladder=tuple(ranking.Rung.parse(rung) for rung in config["search.ladder"]),
        duration_tolerance_s=float(config["search.duration_tolerance"]),
        identity_threshold=float(config["search.identity_threshold"]),
        check_size=bool(config["search.check_size"]),
    )


# --- candidates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One row of `candidates`: a file an item's last search found, and its verdict."""

    id: int
    item_id: int
    search_id: int | None
    username: str
    filename: str
    size: int
    file: dict[str, Any]
    peer: dict[str, Any]
    accepted: bool
    rank: int | None
    reasons: tuple[str, ...]
    identity: float
    quality: str
    tried_at: float | None
    created_at: float

    @classmethod
    def from_row(cls, row: Row) -> Candidate:
        values = dict(row)
        values["file"], values["peer"] = json.loads(row["file"]), json.loads(row["peer"])
        values["reasons"] = tuple(json.loads(row["reasons"]))
        values["accepted"] = bool(row["accepted"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["reasons"] = list(self.reasons)
        return out


def next_candidate(conn: apsw.Connection, item_id: int, now: float | None = None) -> Pick | None:
    """The item's next candidate to download (for `Transfers`), or None when all were tried."""
    now = time.time() if now is None else now
    row = next(iter(conn.execute(SQL_NEXT, (item_id, now))), None)
    if row is None:
        return None
    return Pick(row["id"], row["username"], row["filename"], row["size"])


def _file_view(file: Any) -> str:
    return json.dumps(
        {
            "extension": file.extension,
            "bit_rate": file.bit_rate,
            "bit_depth": file.bit_depth,
            "sample_rate": file.sample_rate,
            "length": file.length,
            "vbr": file.vbr,
        }
    )


def _peer_view(peer: PeerResponse | None) -> str:
    if peer is None:
        return "{}"
    return json.dumps(
        {
            "has_free_slot": peer.has_free_slot,
            "upload_speed": peer.upload_speed,
            "queue_length": peer.queue_length,
        }
    )


# --- the searcher -------------------------------------------------------------------------------


class Searcher:
    """Dispatches, starts, polls and evaluates searches (tasks and job handlers)."""

    def __init__(
        self,
        db: Database,
        slskd: Slskd,
        queue: Queue,
        transfers: Transfers,
        metrics: Metrics,
        live: Callable[[], Config],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db, self.slskd, self.queue, self.transfers = db, slskd, queue, transfers
        self.metrics, self.live, self.clock = metrics, live, clock
        self.budget = Budget(db, live, clock)

    # --- reading --------------------------------------------------------------------------------

    def candidates(self, item_id: int) -> list[Candidate]:
        """The candidates of the item's last search: accepted by rank, then the rejected."""
        wanted.get(self.db, item_id)
        rows = self.db.query(
            "SELECT * FROM candidates WHERE item_id = ? ORDER BY accepted DESC, coalesce(rank, 1e9), id",
            (item_id,),
        )
        return [Candidate.from_row(row) for row in rows]

    def searches(self, item_id: int, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT * FROM searches WHERE item_id = ? ORDER BY id DESC LIMIT ?", (item_id, limit)
        )
        return [dict(row) for row in rows]

    # --- dispatch ---------------------------------------------------------------------------------

    def dispatch(self, now: float | None = None) -> int:
        """Task: queue searches for the most important waiting items, as the budget and the
        in-flight cap allow; returns how many items started searching."""
        now = self.clock() if now is None else now
        room = min(self.budget.status(now)["remaining"], IN_FLIGHT - self._in_flight())
        if room <= 0:
            return 0
        started = 0
        for row in self.db.query(SQL_DUE, {"now": now, "n": room * 4}):
            if started >= room:
                break
            started += self._dispatch_item(row["id"], now)
        return started

    def _in_flight(self) -> int:
        return int(self.db.scalar("SELECT count(*) FROM wanted_items WHERE state = 'searching'"))

    def _dispatch_item(self, item_id: int, now: float) -> int:
        with self.db.write() as conn:
            item = wanted.get(self.db, item_id)
            if item.state not in ("wanted", "not_found"):
                return 0
            group = self._album_group(conn, item, now)
            if group:
                release_id, ids = group
                for member in ids:
                    wanted.transition(
                        conn, member, "searching", "album_search", "searching for the whole release", now=now
                    )
                self.queue.enqueue(
                    JOB_START,
                    {"release_id": release_id, "item_ids": ids},
                    key=f"album:{release_id}",
                    priority=5,
                )
                return 1
            wanted.transition(
                conn,
                item_id,
                "searching",
                "search_queued",
                "waiting for a search slot",
                next_action="search",
                now=now,
            )
            self.queue.enqueue(
                JOB_START, {"item_id": item_id, "variant": 0}, key=f"search:{item_id}", priority=5
            )
            return 1

    def _album_group(
        self, conn: apsw.Connection, item: wanted.Item, now: float
    ) -> tuple[int, list[int]] | None:
        """(release id, its waiting items) when enough of a release's tracks wait to search for
        the album, and no album search of it was made in the last day."""
        minimum = int(self.live()["search.album_min_tracks"])
        for source in item.sources:
            release_id = source.get("release_id")
            if source["kind"] != "release" or release_id is None:
                continue
            recent = next(
                iter(
                    conn.execute(
                        "SELECT 1 FROM searches WHERE release_id = ? AND mode = 'album' AND started_at > ?",
                        (release_id, now - ALBUM_RETRY_S),
                    )
                ),
                None,
            )
            if recent:
                continue
            ids = [
                row["id"]
                for row in conn.execute(
                    "SELECT i.id FROM wanted_items i JOIN wanted_sources s ON s.item_id = i.id "
                    "WHERE s.release_id = ? AND (i.state = 'wanted' OR (i.state = 'not_found' "
                    "AND coalesce(i.next_action_at, 0) <= ?)) ORDER BY i.id",
                    (release_id, now),
                )
            ]
            if len(ids) >= minimum and item.id in ids:
                return release_id, ids
        return None

    # --- start ------------------------------------------------------------------------------------

    def start(self, job: Job) -> None:
        """Job: spend and create the next search of an item (or a release). Safe to run again:
        an item not `searching`, or with a search running, is left alone."""
        if "release_id" in job.payload:
            self._start_album(job.payload)
            return
        item_id, variant = job.payload.get("item_id"), job.payload.get("variant", 0)
        if not isinstance(item_id, int) or not isinstance(variant, int):
            raise GiveUp("search job without an item id")
        item = wanted.get(self.db, item_id)
        if item.state != "searching" or self._running(item_id):
            return
        plan = queries(item)
        if variant >= len(plan):
            with self.db.write() as conn:
                self._not_found(conn, item, "no query left to try", self.clock())
            return
        name, query = plan[variant]
        self._create(item_id, None, "track", name, query, variant, len(plan))

    def _running(self, item_id: int) -> bool:
        return (
            self.db.query_one(
                "SELECT 1 FROM searches WHERE item_id = ? AND state IN ('running', 'complete')", (item_id,)
            )
            is not None
        )

    def _create(
        self,
        item_id: int,
        release_id: int | None,
        mode: str,
        variant: str,
        query: str,
        index: int,
        total: int,
    ) -> None:
        now = self.clock()
        slskd_id = str(uuid.uuid4())
        with self.db.write() as conn:
            wait = self.budget.spend(conn, now)
            if wait is not None:
                raise Later(wait, "the search budget is spent")
            spend_id = conn.last_insert_rowid()
            search_id = next(
                conn.execute(SQL_SEARCH_INSERT, (item_id, release_id, mode, variant, query, slskd_id, now))
            )["id"]
        try:
            self.slskd.create_search(query, slskd_id, timeout_s=float(self.live()["search.timeout"]))
        except (UpstreamUnavailable, UpstreamCoolingDown) as exc:
            # Only a refusal (429) or a connection never made proves the search never reached
            # Soulseek: then the budget is given back. After a timeout, a dropped connection or
            # a 5xx, slskd may have started it: the spend stays, dated now.
            refused = (
                isinstance(exc, UpstreamCoolingDown)
                or exc.details.get("status") == 429
                or exc.details.get("sent") is False
            )
            with self.db.write() as conn:
                if refused:
                    conn.execute("DELETE FROM search_spend WHERE rowid = ?", (spend_id,))
                else:
                    conn.execute(SQL_SPEND_AT, (self.clock(), spend_id))
                conn.execute("DELETE FROM searches WHERE id = ?", (search_id,))
            raise Later(30.0, f"slskd: {exc}") from None
        except Exception as exc:  # slskd refused the query itself (400): count it, try the next
            with self.db.write() as conn:
                conn.execute(
                    "UPDATE searches SET state = 'failed', ended_at = ?, error = ? WHERE id = ?",
                    (now, str(exc)[:300], search_id),
                )
            self.queue.enqueue(
                JOB_EVALUATE, {"search_id": search_id}, key=f"evaluate:{search_id}", priority=6
            )
            return
        self.metrics.searches.labels("started", variant).inc()
        with self.db.write() as conn:
            # Dated by slskd's answer, not the spend: a creation that waited (for the creation
            # lock, or a slow slskd) reached Soulseek later than it was counted.
            conn.execute(SQL_SPEND_AT, (self.clock(), spend_id))
            message = f"search {index + 1} of {total}: “{query}” ({variant.replace('_', ' ')})"
            data = {"search_id": search_id, "query": query, "variant": variant}
            if mode == "track":
                wanted.transition(
                    conn,
                    item_id,
                    "searching",
                    "searching",
                    message,
                    next_action="read the results",
                    data=data,
                    now=now,
                )
            events.record(
                conn,
                "search.started",
                item_id=item_id,
                release_id=release_id,
                code=variant,
                message=query,
                data=data,
                now=now,
            )

    def _start_album(self, payload: dict[str, Any]) -> None:
        release_id, ids = payload.get("release_id"), payload.get("item_ids")
        if not isinstance(release_id, int) or not isinstance(ids, list):
            raise GiveUp("album search job without a release")
        if self.db.query_one(
            "SELECT 1 FROM searches WHERE release_id = ? AND mode = 'album' "
            "AND state IN ('running', 'complete')",
            (release_id,),
        ):
            return
        items = [wanted.get(self.db, i) for i in ids if isinstance(i, int)]
        items = [i for i in items if i.state == "searching"]
        if not items:
            return
        variant, query = queries(items[0], album=True)[0]
        self._create(items[0].id, release_id, "album", f"album_{variant}", query, 0, 1)

    # --- poll -------------------------------------------------------------------------------------

    def poll(self, now: float | None = None) -> int:
        """Task: one request for slskd's searches; queue an evaluation of each of Harmony's that
        has completed (or that slskd lost). Returns how many were handed on."""
        now = self.clock() if now is None else now
        running = self.db.query("SELECT * FROM searches WHERE state = 'running'")
        if not running:
            return 0
        try:
            listed = {s.id: s for s in self.slskd.searches()}
        except (UpstreamUnavailable, UpstreamCoolingDown):
            return 0
        timeout = float(self.live()["search.timeout"])
        handed = 0
        for row in running:
            found = listed.get(row["slskd_id"])
            age = now - row["started_at"]
            if found is None and age < timeout + LOST_AFTER_S:
                continue
            if found is not None and not found.complete:
                if age > timeout + 300:  # a search that never ends: stop it, it completes
                    with contextlib.suppress(UpstreamUnavailable, UpstreamCoolingDown):
                        self.slskd.stop_search(row["slskd_id"])
                continue
            state = "complete" if found is not None else "failed"
            with self.db.write() as conn:
                conn.execute(
                    "UPDATE searches SET state = ?, ended_at = ?, responses = ?, files = ?, error = ? "
                    "WHERE id = ?",
                    (
                        state,
                        now,
                        found.response_count if found else 0,
                        found.file_count if found else 0,
                        None if found else "slskd no longer has the search",
                        row["id"],
                    ),
                )
                self.queue.enqueue(
                    JOB_EVALUATE, {"search_id": row["id"]}, key=f"evaluate:{row['id']}", priority=6
                )
            handed += 1
        return handed

    # --- evaluate ---------------------------------------------------------------------------------

    def evaluate(self, job: Job) -> None:
        """Job: rank a completed search's responses and move its item(s) on (see the module
        docstring). Safe to run again: an evaluated search is left alone."""
        search_id = job.payload.get("search_id")
        if not isinstance(search_id, int):
            raise GiveUp("evaluate job without a search id")
        row = self.db.query_one("SELECT * FROM searches WHERE id = ?", (search_id,))
        if row is None or row["state"] == "evaluated":
            return
        responses: list[PeerResponse] = []
        if row["state"] == "complete":
            try:
                responses = self.slskd.search_responses(row["slskd_id"])
            except (UpstreamUnavailable, UpstreamCoolingDown) as exc:
                raise Later(30.0, f"slskd: {exc}") from None
            except UpstreamRejected as exc:
                if exc.details.get("status") != 404:
                    raise
                # slskd no longer has it (its retention ran): there is nothing to read.
        if row["mode"] == "album":
            self._evaluate_album(row, responses)
        else:
            self._evaluate_track(row, responses)
        # Deleted only once the evaluation is recorded: a run cut short after the delete would
        # find the responses gone. If slskd cannot be asked now, its retention removes it.
        with contextlib.suppress(UpstreamUnavailable, UpstreamCoolingDown):
            self.slskd.delete_search(row["slskd_id"])
        self.dispatch()  # a search slot is free: fill it now rather than at the next tick

    def _evaluate_track(self, search: Row, responses: list[PeerResponse]) -> None:
        now = self.clock()
        item = wanted.get(self.db, search["item_id"]) if search["item_id"] else None
        if item is None or item.state != "searching":
            self._finish(search, len(responses), 0, now)
            return
        ranked = ranking.rank(
            to_ranking(item), responses, preferences(self.live()), user_context(self.db, item.id, now)
        )
        accepted = [c for c in ranked if c.accepted]
        peers = {r.username: r for r in responses}
        self.metrics.candidates_per_search.observe(len(accepted))
        self.metrics.searches.labels("found" if accepted else "nothing", search["variant"]).inc()
        with self.db.write() as conn:
            self._finish(search, len(responses), len(accepted), now, conn=conn)
            conn.execute("DELETE FROM candidates WHERE item_id = ?", (item.id,))
            for candidate in [*accepted, *[c for c in ranked if not c.accepted][:KEPT_REJECTED]]:
                self._store(conn, item.id, search["id"], candidate, peers.get(candidate.username), now)
            summary = (
                f"“{search['query']}”: {len(responses)} peers answered, {len(accepted)} acceptable file(s)"
            )
            events.record(
                conn,
                "search.result",
                item_id=item.id,
                code=search["variant"],
                message=summary,
                data={"search_id": search["id"], "responses": len(responses), "accepted": len(accepted)},
                now=now,
            )
            if accepted:
                best = accepted[0]
                wanted.transition(
                    conn,
                    item.id,
                    "found",
                    "found",
                    f"{len(accepted)} acceptable; best: {best.username}'s "
                    f"{_leaf(best.filename)} ({best.quality})",
                    next_action="download the best candidate",
                    data={"search_id": search["id"], "variant": search["variant"]},
                    now=now,
                )
                self.queue.enqueue(TRANSFER_JOB, {"item_id": item.id}, key=f"transfer:{item.id}", priority=10)
                return
            plan = queries(item)
            index = next((n for n, (name, _) in enumerate(plan) if name == search["variant"]), len(plan))
            # Every variant is tried on the first pass; a later pass (after a back-off) asks only
            # the primary query again, so an item nobody shares costs one search per back-off.
            if index + 1 < len(plan) and item.attempts == 0:
                wanted.transition(
                    conn,
                    item.id,
                    "searching",
                    "no_match",
                    f"nothing acceptable for “{search['query']}”; trying another query",
                    next_action="search",
                    now=now,
                )
                self.queue.enqueue(
                    JOB_START, {"item_id": item.id, "variant": index + 1}, key=f"search:{item.id}", priority=5
                )
                return
            tried = len(plan) if item.attempts == 0 else 1
            self._not_found(
                conn, item, f"nothing acceptable in {tried} search{'es' if tried > 1 else ''}", now
            )

    def _not_found(self, conn: apsw.Connection, item: wanted.Item, why: str, now: float) -> None:
        attempts = item.attempts + 1
        wait = NOT_FOUND_BACKOFF[min(attempts, len(NOT_FOUND_BACKOFF)) - 1]
        wanted.transition(
            conn,
            item.id,
            "not_found",
            "not_found",
            f"{why}; searching again in {_span(wait)}",
            attempts=attempts,
            next_action="search again",
            next_action_at=now + wait,
            now=now,
        )

    def _evaluate_album(self, search: Row, responses: list[PeerResponse]) -> None:
        now = self.clock()
        release_id = search["release_id"]
        members = wanted.list_items(self.db, release_id=release_id, limit=500, sort="age")
        tracks = sorted(members, key=lambda i: (i.disc_number or 1, i.track_number or 0, i.id))
        waiting = [n for n, i in enumerate(tracks) if i.state == "searching"]
        context = user_context(self.db, None, now)
        chosen = ranking.pick_album(
            [to_ranking(i) for i in tracks], set(waiting), responses, preferences(self.live()), context
        )
        self.metrics.searches.labels("found" if chosen else "nothing", search["variant"]).inc()
        peer = next((r for r in responses if chosen and r.username == chosen.username), None)
        picks: list[tuple[int, Pick]] = []
        with self.db.write() as conn:
            self._finish(search, len(responses), len(chosen.tracks) if chosen else 0, now, conn=conn)
            summary = f"“{search['query']}”: {len(responses)} peers answered"
            if chosen is None:
                events.record(
                    conn,
                    "search.result",
                    release_id=release_id,
                    code=search["variant"],
                    message=summary + "; no complete folder",
                    now=now,
                )
                for n in waiting:
                    wanted.transition(
                        conn,
                        tracks[n].id,
                        "wanted",
                        "album_fallback",
                        "no folder holds every wanted track of the release; searching track by track",
                        now=now,
                    )
                return
            events.record(
                conn,
                "search.result",
                release_id=release_id,
                code=search["variant"],
                message=f"{summary}; {chosen.username}'s folder {chosen.folder}",
                data={"search_id": search["id"], "username": chosen.username, "folder": chosen.folder},
                now=now,
            )
            for track in chosen.tracks:
                item = tracks[track.index]
                conn.execute("DELETE FROM candidates WHERE item_id = ?", (item.id,))
                candidate_id = self._store(conn, item.id, search["id"], track.candidate, peer, now)
                wanted.transition(
                    conn,
                    item.id,
                    "found",
                    "found_in_album",
                    f"in {chosen.username}'s folder {chosen.folder}: {_leaf(track.candidate.filename)}",
                    next_action="download the folder's wanted files",
                    data={"search_id": search["id"]},
                    now=now,
                )
                picks.append(
                    (
                        item.id,
                        Pick(
                            candidate_id,
                            track.candidate.username,
                            track.candidate.filename,
                            track.candidate.size,
                        ),
                    )
                )
            for n in waiting:  # tracks the folder did not serve (none, as completeness is a gate)
                if tracks[n].id not in {item_id for item_id, _ in picks}:
                    wanted.transition(
                        conn, tracks[n].id, "wanted", "album_fallback", "not in the chosen folder", now=now
                    )
        self.transfers.start_many(chosen.username, picks)

    def _finish(
        self, search: Row, responses: int, accepted: int, now: float, *, conn: apsw.Connection | None = None
    ) -> None:
        sql = (
            "UPDATE searches SET state = 'evaluated', responses = ?, accepted = ?, "
            "ended_at = coalesce(ended_at, ?) WHERE id = ?"
        )
        if conn is not None:
            conn.execute(sql, (responses, accepted, now, search["id"]))
            return
        with self.db.write() as own:
            own.execute(sql, (responses, accepted, now, search["id"]))

    def _store(
        self,
        conn: apsw.Connection,
        item_id: int,
        search_id: int,
        candidate: ranking.Candidate,
        peer: PeerResponse | None,
        now: float,
    ) -> int:
        conn.execute(
            SQL_CANDIDATE_INSERT,
            (
                item_id,
                search_id,
                candidate.username,
                candidate.filename,
                candidate.size,
                _file_view(candidate.file),
                _peer_view(peer),
                int(candidate.accepted),
                candidate.rank,
                json.dumps(list(candidate.reasons), ensure_ascii=False),
                candidate.identity,
                candidate.quality,
                now,
            ),
        )
        return int(conn.last_insert_rowid())

    # --- operator actions ---------------------------------------------------------------------------

    def search_now(self, item_id: int) -> wanted.Item:
        """Search for the item now (its next search spends from the budget): TooManyRequests with
        the seconds to wait when the budget is spent; Conflict naming the state when the item is
        under transfer, importing or done."""
        status = self.budget.status()
        if status["remaining"] <= 0:
            wait = status["next_free_at"] - self.clock()
            raise TooManyRequests(
                f"the search budget is spent; the next search may start in {wait:.0f} s",
                retry_after=round(wait, 1),
            )
        with self.db.write() as conn:
            item = wanted.transition(
                conn,
                item_id,
                "searching",
                "search_now",
                "search asked for by the operator",
                expect=("wanted", "not_found", "found", "searching"),
                next_action="search",
            )
            self.queue.enqueue(
                JOB_START, {"item_id": item_id, "variant": 0}, key=f"search:{item_id}", priority=50
            )
        return item

    def pick(self, item_id: int, candidate_id: int) -> wanted.Item:
        """Download this candidate, whatever its rank (the operator's choice is recorded): a
        transfer under way for the item is cancelled first."""
        row = self.db.query_one(
            "SELECT * FROM candidates WHERE id = ? AND item_id = ?", (candidate_id, item_id)
        )
        if row is None:
            raise NotFound(
                f"item {item_id} has no candidate {candidate_id}", item_id=item_id, candidate_id=candidate_id
            )
        item = wanted.get(self.db, item_id)
        if item.state in ("downloaded", "importing", "done", "skipped", "paused"):
            raise Conflict(
                f"item {item_id} is {item.state}; pick a candidate of an item still being acquired",
                state=item.state,
            )
        for active in self.transfers.list_downloads(item_id=item_id, active=True):
            self.transfers.cancel(active.id)
        item = wanted.get(self.db, item_id)
        with self.db.write() as conn:
            if item.state != "found":
                wanted.transition(
                    conn,
                    item_id,
                    "found",
                    "picked",
                    f"picked by the operator: {row['username']}'s {_leaf(row['filename'])}",
                )
            events.record(
                conn, "candidate.picked", item_id=item_id, code="picked", message=row["filename"][:300]
            )
        self.transfers.start_many(
            row["username"], [(item_id, Pick(row["id"], row["username"], row["filename"], row["size"]))]
        )
        return wanted.get(self.db, item_id)


def _leaf(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:.0f} s"
