"""Downloads on slskd: owns `transfers`, `peers` (blocklist, cooldowns, history) and `bad_files`.

slskd's transfer list is the source of truth. `Transfers.poll` (a task, every
`transfers.poll_interval`) reads it with one request whatever the number of transfers and
reconciles each of Harmony's transfers by slskd's transfer id (never by file name: slskd
renames collisions, and 0.26 keeps one record per attempt). A transfer is done only when its
latest attempt succeeded and every byte arrived; a failure slskd will still retry is
`retrying`, not failed. Per-state timeouts give up on a transfer that stops moving:

- requested but never queued by the peer: `transfers.requested_timeout`;
- in progress with no new bytes: `transfers.stall_timeout`;
- queued at the peer with no better place: `transfers.queue_timeout`;
- from request to done, whatever the progress: `transfers.item_ceiling`.

A timeout, a rejection or a failure cancels and removes the transfer on slskd, records why,
cools the peer down (`transfers.user_cooldown`, doubling), and falls through to the item's
next candidate of the same search: `Transfers.start` (job `transfer.start`) picks it without
spending a search. When slskd cannot be reached, nothing changes state: the transfers show as
`unknown` and the poll tries again.

The composition root passes two functions in, so this module needs neither the search nor the
import: `pick(conn, item_id)` (the next candidate to try) and `downloaded(conn, transfer)`
(hand a finished file to import).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from . import events, wanted
from .config import Config
from .db import Database, Row
from .errors import Conflict, Invalid, NotFound, UpstreamCoolingDown, UpstreamRejected, UpstreamUnavailable
from .jobs import GiveUp, Job, Later, Queue
from .metrics import Metrics
from .ranking import UserContext
from .slskd import File, Slskd
from .slskd import Transfer as SlskdTransfer

log = logging.getLogger(__name__)

JOB = "transfer.start"
ACTIVE = ("requested", "queued", "remote_queued", "in_progress", "retrying", "unknown")
COOLDOWN_CAP_S = 7 * 86400.0
UNSEEN_POLLS = 3  # a transfer missing from this many polls in a row is gone

SQL_GET = "SELECT * FROM transfers WHERE id = ?"
SQL_ACTIVE = "SELECT * FROM transfers WHERE finished_at IS NULL ORDER BY id"
SQL_INSERT = """
    INSERT INTO transfers (item_id, candidate_id, username, filename, size, state, requested_at)
    VALUES (?, ?, ?, ?, ?, 'requested', ?)
    RETURNING *
"""
SQL_SEARCHED_AT = """
    SELECT searches.started_at FROM candidates JOIN searches ON searches.id = candidates.search_id
    WHERE candidates.id = ?
"""
SQL_LAST_SUCCEEDED = (
    "SELECT * FROM transfers WHERE item_id = ? AND outcome = 'succeeded' ORDER BY id DESC LIMIT 1"
)
SQL_BAD_PEERS = "SELECT count(DISTINCT username) AS n FROM bad_files WHERE item_id = ?"
SQL_PEER = """
    INSERT INTO peers (username, updated_at) VALUES (?, ?)
    ON CONFLICT (username) DO NOTHING
"""


class PeerRefused(Exception):
    """slskd could not queue a file with the peer (offline, or it refused)."""


@dataclass(frozen=True)
class Pick:
    """A candidate chosen for download: which file of which peer, for which item."""

    candidate_id: int | None
    username: str
    filename: str
    size: int


@dataclass(frozen=True)
class Download:
    """One row of `transfers`."""

    id: int
    item_id: int | None
    candidate_id: int | None
    username: str
    filename: str
    size: int
    slskd_id: str | None
    state: str
    slskd_state: str | None
    bytes: int
    percent: float
    speed: float
    place: int | None
    attempts: int
    requested_at: float
    queued_at: float | None
    progress_at: float | None
    best_place: int | None
    place_at: float | None
    seen_at: float | None
    finished_at: float | None
    outcome: str | None
    reason: str | None
    local_path: str | None = None  # where slskd put the finished file (the import finds it)
    library_path: str | None = None  # where the import filed it, relative to the library

    @classmethod
    def from_row(cls, row: Row) -> Download:
        return cls(**row)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


# --- peers: blocklist, cooldowns, history, bad files ------------------------------------------------


def user_context(db: Database, item_id: int | None = None, now: float | None = None) -> UserContext:
    """What the ranking needs to know of users: blocked, cooling down, each one's history, and
    the files never to take again (marked wrong or failed verification, and for `item_id` every
    file whose transfer already failed)."""
    now = time.time() if now is None else now
    blocked, cooling, history = set(), set(), {}
    for row in db.query("SELECT * FROM peers"):
        if row["blocked"]:
            blocked.add(row["username"])
        elif row["cooldown_until"] and row["cooldown_until"] > now:
            cooling.add(row["username"])
        history[row["username"]] = (row["successes"], row["failures"])
    wrong = {
        (row["username"], row["filename"]) for row in db.query("SELECT username, filename FROM bad_files")
    }
    if item_id is not None:
        tried = db.query(
            "SELECT username, filename FROM transfers WHERE item_id = ? AND outcome IS NOT NULL "
            "AND outcome != 'succeeded'",
            (item_id,),
        )
        wrong |= {(row["username"], row["filename"]) for row in tried}
    return UserContext(frozenset(blocked), frozenset(cooling), frozenset(wrong), history)


def peer_failed(conn: apsw.Connection, username: str, why: str, base_s: float, now: float) -> float:
    """Count a failure against a peer and cool it down: `base_s`, doubling with each failure in a
    row, up to a week. Returns until when."""
    conn.execute(SQL_PEER, (username, now))
    row = next(conn.execute("SELECT cooldown_s FROM peers WHERE username = ?", (username,)))
    seconds = min(COOLDOWN_CAP_S, float(row["cooldown_s"] or base_s))
    conn.execute(
        "UPDATE peers SET failures = failures + 1, last_failure = ?, cooldown_until = ?, cooldown_s = ?, "
        "updated_at = ? WHERE username = ?",
        (why[:300], now + seconds, min(COOLDOWN_CAP_S, seconds * 2), now, username),
    )
    return now + seconds


def peer_succeeded(conn: apsw.Connection, username: str, now: float) -> None:
    conn.execute(SQL_PEER, (username, now))
    conn.execute(
        "UPDATE peers SET successes = successes + 1, cooldown_s = NULL, updated_at = ? WHERE username = ?",
        (now, username),
    )


def mark_bad(
    conn: apsw.Connection, username: str, filename: str, item_id: int | None, why: str, now: float
) -> None:
    """Never take this file of this peer again (for any item)."""
    conn.execute(
        "INSERT OR REPLACE INTO bad_files (username, filename, item_id, reason, at) VALUES (?, ?, ?, ?, ?)",
        (username, filename, item_id, why[:300], now),
    )


def block(db: Database, username: str, reason: str) -> dict[str, Any]:
    if not isinstance(username, str) or not 0 < len(username) <= 200 or not username.isprintable():
        raise Invalid("username must be 1 to 200 printable characters", field="username")
    now = time.time()
    with db.write() as conn:
        conn.execute(SQL_PEER, (username, now))
        conn.execute(
            "UPDATE peers SET blocked = 1, blocked_reason = ?, blocked_at = ?, updated_at = ? "
            "WHERE username = ?",
            (reason[:300], now, now, username),
        )
        events.record(conn, "peer.blocked", code="blocked", message=f"{username}: {reason}"[:300])
    return blocked_user(db, username)


def unblock(db: Database, username: str) -> None:
    with db.write() as conn:
        conn.execute(
            "UPDATE peers SET blocked = 0, blocked_reason = NULL, blocked_at = NULL "
            "WHERE username = ? AND blocked = 1",
            (username,),
        )
        if not conn.changes():
            raise NotFound(f"{username} is not blocked", username=username[:200])
        events.record(conn, "peer.unblocked", code="unblocked", message=username[:200])


def blocked_user(db: Database, username: str) -> dict[str, Any]:
    row = db.query_one(
        "SELECT username, blocked_reason AS reason, blocked_at FROM peers WHERE username = ? AND blocked = 1",
        (username,),
    )
    if row is None:
        raise NotFound(f"{username} is not blocked", username=username[:200])
    return dict(row)


def list_blocked(
    db: Database, *, after: tuple[Any, ...] | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    where = ""
    args: tuple[Any, ...] = ()
    if after is not None:
        where, args = " AND username > ?", (after[0],)
    rows = db.query(
        f"SELECT username, blocked_reason AS reason, blocked_at FROM peers WHERE blocked = 1 {where} "
        "ORDER BY username LIMIT ?",
        (*args, limit),
    )
    return [dict(row) for row in rows]


# --- the transfers ------------------------------------------------------------------------------------


class Transfers:
    """Starts downloads, reconciles them with slskd (task) and falls through on failure."""

    def __init__(
        self,
        db: Database,
        slskd: Slskd,
        queue: Queue,
        metrics: Metrics,
        live: Callable[[], Config],
        *,
        pick: Callable[[apsw.Connection, int, float], Pick | None],
        downloaded: Callable[[apsw.Connection, Download], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db, self.slskd, self.queue, self.metrics = db, slskd, queue, metrics
        self.live, self.pick, self.downloaded, self.clock = live, pick, downloaded, clock
        self._unseen: dict[int, int] = {}  # transfer id -> polls in a row that did not find it
        self.last_poll_ok: float | None = None  # when slskd last answered a poll
        self.last_seen: dict[str, SlskdTransfer] = {}  # slskd id -> the transfer at the last poll

    # --- reading --------------------------------------------------------------------------------

    def get(self, transfer_id: int) -> Download:
        row = self.db.query_one(SQL_GET, (transfer_id,))
        if row is None:
            raise NotFound(f"no transfer {transfer_id}", id=transfer_id)
        return Download.from_row(row)

    def list_downloads(
        self,
        *,
        after: tuple[Any, ...] | None = None,
        limit: int = 50,
        active: bool | None = None,
        item_id: int | None = None,
    ) -> list[Download]:
        """Transfers newest first."""
        where = ""
        args: tuple[Any, ...] = ()
        if active is not None:
            where += " AND finished_at IS NULL" if active else " AND finished_at IS NOT NULL"
        if item_id is not None:
            where += " AND item_id = ?"
            args += (item_id,)
        if after is not None:
            where += " AND id < ?"
            args += (after[0],)
        rows = self.db.query(
            f"SELECT * FROM transfers WHERE 1 {where} ORDER BY id DESC LIMIT ?", (*args, limit)
        )
        return [Download.from_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIVE, 0)
        for row in self.db.query(
            "SELECT state, count(*) AS n FROM transfers WHERE finished_at IS NULL GROUP BY state"
        ):
            counts[row["state"]] = row["n"]
        return counts

    def live_view(self, downloads: Sequence[Download]) -> tuple[bool, list[dict[str, Any]]]:
        """The downloads with what slskd says of them now: state, bytes, percent, speed, place.
        Uses the last poll when it is recent; else asks slskd once. When slskd cannot be reached,
        the live fields are null and `live` is False."""
        now = self.clock()
        fresh = (
            self.last_poll_ok is not None
            and now - self.last_poll_ok <= 2 * self.live()["transfers.poll_interval"]
        )
        live = fresh
        if not fresh and any(d.finished_at is None for d in downloads):
            try:
                self.last_seen = {t.id: t for t in self.slskd.downloads()}
                self.last_poll_ok, live = now, True
            except (UpstreamUnavailable, UpstreamCoolingDown):
                live = False
        elif not any(d.finished_at is None for d in downloads):
            live = True
        out = []
        for download in downloads:
            view = download.to_dict()
            seen = self.last_seen.get(download.slskd_id or "") if live else None
            view["live"] = {
                "state": ", ".join(sorted(seen.state)) if seen else None,
                "bytes": seen.bytes_transferred if seen else None,
                "percent": seen.percent if seen else None,
                "speed": seen.average_speed if seen else None,
                "place": seen.place_in_queue if seen else None,
            }
            out.append(view)
        return live, out

    # --- starting -------------------------------------------------------------------------------

    def start(self, job: Job) -> None:
        """Job: download the item's next candidate. Safe to run again: an item with a transfer
        under way, or no longer `found`, is left alone."""
        item_id = job.payload.get("item_id")
        if not isinstance(item_id, int):
            raise GiveUp("transfer job without an item id")
        now = self.clock()
        with self.db.write() as conn:
            row = next(iter(conn.execute("SELECT state FROM wanted_items WHERE id = ?", (item_id,))), None)
            if row is None or row["state"] != "found":
                return
            if next(
                iter(
                    conn.execute(
                        "SELECT 1 FROM transfers WHERE item_id = ? AND finished_at IS NULL", (item_id,)
                    )
                ),
                None,
            ):
                return
            choice = self.pick(conn, item_id, now)
            if choice is None:
                # Every candidate of the last search was tried: search again (a new search, from the budget).
                wanted.transition(
                    conn,
                    item_id,
                    "wanted",
                    "candidates_exhausted",
                    "every candidate of the last search failed; searching again",
                )
                return
            download = self._record(conn, item_id, choice, now)
        self._enqueue(choice.username, [(download, choice)])
        if self.get(download.id).outcome in ("enqueue_refused", "enqueue_failed"):
            # The item fell through to `found`, but the job that would take its next candidate
            # has this job's key: run this one again instead.
            raise Later(0.0, "slskd could not queue the file: the next candidate")

    def start_many(self, username: str, picks: Sequence[tuple[int, Pick]]) -> None:
        """Download several items' files from one peer at once (album mode), in one enqueue."""
        now = self.clock()
        with self.db.write() as conn:
            rows = [(self._record(conn, item_id, choice, now), choice) for item_id, choice in picks]
        self._enqueue(username, rows)

    def _record(self, conn: apsw.Connection, item_id: int, choice: Pick, now: float) -> Download:
        """The transfer row is written before slskd is asked, so a crash in between leaves a
        `requested` row that the next poll adopts or gives up, never an untracked download."""
        row = next(
            conn.execute(
                SQL_INSERT, (item_id, choice.candidate_id, choice.username, choice.filename, choice.size, now)
            )
        )
        if choice.candidate_id is not None:
            conn.execute("UPDATE candidates SET tried_at = ? WHERE id = ?", (now, choice.candidate_id))
        return Download.from_row(row)

    def _enqueue(self, username: str, rows: Sequence[tuple[Download, Pick]]) -> None:
        files = [File(filename=choice.filename, size=choice.size) for _, choice in rows]
        try:
            try:
                result = self.slskd.enqueue(username, files)
            except UpstreamUnavailable as exc:
                # slskd answers 500 when the peer is offline or refuses: that is the peer's doing.
                if exc.details.get("status") == 500:
                    raise PeerRefused(exc.message) from None
                raise
        except (UpstreamUnavailable, UpstreamCoolingDown) as exc:
            # slskd is down or busy: the rows stay `requested`, the poll finds them queued or gives up.
            log.warning("enqueue_failed", extra={"fields": {"user": username, "error": str(exc)}})
            with self.db.write() as conn:
                for download, _ in rows:
                    self._update(conn, download.id, state="unknown", reason=f"slskd: {exc}"[:300])
            return
        except (PeerRefused, UpstreamRejected) as exc:  # this user or these files were refused
            why = exc.message if isinstance(exc, UpstreamRejected) else str(exc)
            with self.db.write() as conn:
                for n, (download, _) in enumerate(rows):
                    # One refusal counts once against the peer, however many files it covered.
                    why_this = f"slskd could not queue it: {why}"
                    self._fail(conn, download, "enqueue_refused", why_this, cancel=False, blame=n == 0)
            return
        by_name = {t.filename: t for t in result.enqueued}
        now = self.clock()
        with self.db.write() as conn:
            for download, choice in rows:
                if choice.filename in result.failed:
                    self._fail(conn, download, "enqueue_failed", "slskd did not queue the file", cancel=False)
                    continue
                found = by_name.get(choice.filename)
                if found is not None:
                    self._update(
                        conn, download.id, slskd_id=found.id, state="queued", slskd_state=_state(found)
                    )
                searched = next(iter(conn.execute(SQL_SEARCHED_AT, (download.candidate_id,))), None)
                if searched is not None:
                    self.metrics.search_to_enqueue.observe(max(0.0, now - searched["started_at"]))
                if download.item_id is not None:
                    wanted.transition(
                        conn,
                        download.item_id,
                        "queued",
                        "enqueued",
                        f"asked {username} for {_leaf(choice.filename)}",
                        next_action="waiting for the peer to queue it",
                        next_action_at=now + self.live()["transfers.requested_timeout"],
                        data={"transfer_id": download.id, "username": username, "filename": choice.filename},
                        now=now,
                    )
        self.metrics.transfers_started.inc(len(rows))

    # --- reconciling -----------------------------------------------------------------------------

    def poll(self, now: float | None = None) -> int:
        """Task: reconcile every active transfer with one list call; returns how many changed."""
        now = self.clock() if now is None else now
        active = [Download.from_row(row) for row in self.db.query(SQL_ACTIVE)]
        if not active:
            return 0
        try:
            listed = self.slskd.downloads()
        except (UpstreamUnavailable, UpstreamCoolingDown) as exc:
            self.metrics.slskd_list_calls.labels("error").inc()
            log.info("transfers_unreachable", extra={"fields": {"error": str(exc), "active": len(active)}})
            return 0  # nothing changes state because slskd was briefly away
        self.metrics.slskd_list_calls.labels("ok").inc()
        self.last_poll_ok = now
        by_id = {t.id: t for t in listed}
        self.last_seen = by_id
        changed = 0
        config = self.live()
        for download in active:
            seen = by_id.get(download.slskd_id) if download.slskd_id else self._adopt(download, listed)
            with self.db.write() as conn:
                if self._reconcile(conn, download, seen, config, now):
                    changed += 1
        return changed

    def _adopt(self, download: Download, listed: Iterable[SlskdTransfer]) -> SlskdTransfer | None:
        """A transfer whose id slskd never told (slskd <= 0.23, or a crash between asking and
        recording): the one of that user and file requested since. Only here is a name used."""
        for transfer in listed:
            if (
                transfer.username == download.username
                and transfer.filename == download.filename
                and (transfer.requested_at or 0) >= download.requested_at - 5
                and not self.db.query_one("SELECT 1 FROM transfers WHERE slskd_id = ?", (transfer.id,))
            ):
                with self.db.write() as conn:
                    self._update(conn, download.id, slskd_id=transfer.id)
                return transfer
        return None

    def _reconcile(
        self,
        conn: apsw.Connection,
        download: Download,
        seen: SlskdTransfer | None,
        config: Config,
        now: float,
    ) -> bool:
        item = next(
            iter(conn.execute("SELECT state FROM wanted_items WHERE id = ?", (download.item_id,))), None
        )
        if item is not None and item["state"] == "found" and download.item_id is not None:
            # Recorded, but slskd's answer to the enqueue never came (slskd was away, or the
            # process died in between): the item waits on this transfer, as after an answer.
            wanted.transition(
                conn,
                download.item_id,
                "queued",
                "enqueue_unanswered",
                f"asked {download.username} for {_leaf(download.filename)}; slskd's answer was lost",
                next_action="waiting for the peer to queue it",
                data={"transfer_id": download.id, "username": download.username},
                now=now,
            )
            item = {"state": "queued"}
        if item is None or item["state"] not in ("queued", "downloading"):
            # The operator skipped, paused or deleted the item meanwhile: stop the download.
            why = f"the item is {item['state']}" if item else "the item was deleted"
            self._fail(conn, download, "cancelled", why, blame=False, fall_through=False)
            return True
        if seen is None:
            misses = self._unseen.get(download.id, 0) + 1
            self._unseen[download.id] = misses
            never_known = (
                download.slskd_id is None
                and now - download.requested_at > config["transfers.requested_timeout"]
            )
            if (misses >= UNSEEN_POLLS and download.slskd_id is not None) or never_known:
                self._fail(conn, download, "vanished", "slskd no longer lists this transfer", cancel=False)
                return True
            return False
        self._unseen.pop(download.id, None)
        state = _kind(seen)
        place = seen.place_in_queue
        # Bytes moving, or the transfer starting after a wait in the peer's queue: the stall clock
        # runs from here, not from when the file was queued.
        started = state == "in_progress" and download.state != "in_progress"
        progress_at = now if seen.bytes_transferred > download.bytes or started else download.progress_at
        changes: dict[str, Any] = {
            "state": state,
            "slskd_state": _state(seen),
            "bytes": seen.bytes_transferred,
            "percent": seen.percent,
            "speed": seen.average_speed,
            "place": place,
            "attempts": seen.attempts,
            "seen_at": now,
            "progress_at": progress_at,
        }
        if seen.enqueued_at and not download.queued_at:
            changes["queued_at"] = now
        if place is not None and (download.best_place is None or place < download.best_place):
            changes["best_place"], changes["place_at"] = place, now
        elif state == "remote_queued" and download.place_at is None:
            changes["place_at"] = now
        self._update(conn, download.id, **changes)
        if seen.succeeded and seen.bytes_transferred >= seen.size:
            self._succeeded(conn, download, now)
            return True
        if seen.failed:
            outcome = _outcome(seen)
            self._fail(
                conn,
                download,
                outcome,
                seen.exception or _state(seen),
                cancel=False,
                blame=outcome != "cancelled",
            )
            return True
        stall = self._stalled(download, state, changes, config, now)
        if stall:
            kind, why = stall
            self.metrics.stalls.labels(kind).inc()
            self._fail(conn, download, f"stalled_{kind}", why)
            return True
        if (
            state == "in_progress"
            and download.item_id is not None
            and item is not None
            and item["state"] == "queued"
        ):
            wanted.transition(
                conn,
                download.item_id,
                "downloading",
                "downloading",
                f"downloading from {download.username}",
                next_action="done when every byte has arrived",
                data={"transfer_id": download.id},
                now=now,
            )
        return state != download.state

    def _stalled(
        self, download: Download, state: str, changes: dict[str, Any], config: Config, now: float
    ) -> tuple[str, str] | None:
        if now - download.requested_at > config["transfers.item_ceiling"]:
            return "ceiling", f"not done {config['transfers.item_ceiling'] / 3600:g} h after it was requested"
        never_queued = (
            state in ("requested", "queued") and not changes.get("queued_at") and not download.queued_at
        )
        if never_queued and now - download.requested_at > config["transfers.requested_timeout"]:
            return "never_queued", "the peer never queued the file"
        if state == "in_progress":
            since = changes["progress_at"] or download.queued_at or download.requested_at
            if now - since > config["transfers.stall_timeout"]:
                return "no_progress", f"no new bytes for {now - since:.0f} s"
        if state == "remote_queued":
            since = (
                changes.get("place_at") or download.place_at or download.queued_at or download.requested_at
            )
            if now - since > config["transfers.queue_timeout"]:
                return (
                    "queue",
                    f"no better place in {download.username}'s queue for {(now - since) / 60:.0f} min",
                )
        return None

    def _succeeded(self, conn: apsw.Connection, download: Download, now: float) -> None:
        if download.slskd_id:
            # slskd keeps every finished record in the list each poll reads: Harmony's own go once
            # reconciled (the file stays, and its event still names it for the import).
            with contextlib.suppress(UpstreamUnavailable, UpstreamCoolingDown, UpstreamRejected):
                self.slskd.cancel(download.username, download.slskd_id, remove=True)
        self._update(
            conn,
            download.id,
            state="succeeded",
            finished_at=now,
            outcome="succeeded",
            reason="every byte arrived",
        )
        peer_succeeded(conn, download.username, now)
        self.metrics.transfers_finished.labels("succeeded").inc()
        if download.item_id is not None:
            wanted.transition(
                conn,
                download.item_id,
                "downloaded",
                "downloaded",
                f"downloaded {_leaf(download.filename)} from {download.username}",
                next_action="import: verify, tag and file it",
                data={"transfer_id": download.id},
                now=now,
            )
            self.downloaded(conn, self._row(conn, download.id))

    def _fail(
        self,
        conn: apsw.Connection,
        download: Download,
        outcome: str,
        why: str,
        *,
        cancel: bool = True,
        blame: bool = True,
        fall_through: bool = True,
    ) -> None:
        """End a transfer that will not finish: cancel it on slskd if it may still run, cool the
        peer down, and let the item try its next candidate."""
        now = self.clock()
        if cancel and download.slskd_id:
            # If slskd cannot be asked now it gives the transfer up itself; the row ends either way.
            with contextlib.suppress(UpstreamUnavailable, UpstreamCoolingDown):
                self.slskd.cancel(download.username, download.slskd_id, remove=True)
        state = (
            "stalled"
            if outcome.startswith("stalled")
            else "cancelled"
            if outcome == "cancelled"
            else "failed"
        )
        self._update(conn, download.id, state=state, finished_at=now, outcome=outcome, reason=why[:500])
        self.metrics.transfers_finished.labels(outcome).inc()
        if blame:
            until = peer_failed(conn, download.username, why, self.live()["transfers.user_cooldown"], now)
            self.metrics.cooldowns.inc()
            events.record(
                conn,
                "peer.cooldown",
                item_id=download.item_id,
                code=outcome,
                message=f"{download.username} avoided for {(until - now) / 60:.0f} min: {why}"[:300],
                now=now,
            )
        if not fall_through or download.item_id is None:
            return
        item = next(
            iter(conn.execute("SELECT state FROM wanted_items WHERE id = ?", (download.item_id,))), None
        )
        # `found`: the enqueue itself was refused, before the item was ever `queued`.
        if item is None or item["state"] not in ("found", "queued", "downloading"):
            return
        wanted.transition(
            conn,
            download.item_id,
            "found",
            outcome,
            f"{download.username}: {why}"[:300],
            next_action="try the next candidate of the same search",
            data={"transfer_id": download.id},
            now=now,
        )
        self.metrics.fall_throughs.inc()
        self.queue.enqueue(
            JOB, {"item_id": download.item_id}, key=f"transfer:{download.item_id}", priority=10
        )

    def _update(self, conn: apsw.Connection, transfer_id: int, **changes: Any) -> None:
        assignments = ", ".join(f"{column} = ?" for column in changes)
        conn.execute(f"UPDATE transfers SET {assignments} WHERE id = ?", (*changes.values(), transfer_id))

    def _row(self, conn: apsw.Connection, transfer_id: int) -> Download:
        return Download.from_row(next(conn.execute(SQL_GET, (transfer_id,))))

    # --- operator actions ------------------------------------------------------------------------

    def cancel(self, transfer_id: int) -> Download:
        """Cancel a transfer under way; its item tries the next candidate. Conflict when done."""
        download = self.get(transfer_id)
        if download.finished_at is not None:
            raise Conflict(f"transfer {transfer_id} is already {download.state}", state=download.state)
        with self.db.write() as conn:
            self._fail(conn, download, "cancelled", "cancelled by the operator", blame=False)
        return self.get(transfer_id)

    def file_rejected(self, conn: apsw.Connection, download: Download, code: str, why: str) -> None:
        """The import refused the transfer's file: never take it again, cool its peer down, and
        send the item to its next candidate; after `transfers.max_bad_peers` peers' files were
        refused, the item waits for the operator instead (`failed`, code `needs_attention`)."""
        now = self.clock()
        config = self.live()
        mark_bad(conn, download.username, download.filename, download.item_id, f"{code}: {why}", now)
        peer_failed(
            conn,
            download.username,
            f"a file failed verification ({code})",
            config["transfers.user_cooldown"],
            now,
        )
        self.metrics.cooldowns.inc()
        self._update(conn, download.id, reason=f"file refused: {why}"[:500])
        if download.item_id is None:
            return
        bad_peers = next(conn.execute(SQL_BAD_PEERS, (download.item_id,)))["n"]
        if bad_peers >= config["transfers.max_bad_peers"]:
            wanted.transition(
                conn,
                download.item_id,
                "failed",
                "needs_attention",
                f"files from {bad_peers} peers failed verification; the last ({download.username}): {why}"[
                    :300
                ],
                next_action="pick a candidate, or retry to search again (refused files stay refused)",
                data={"transfer_id": download.id, "check": code},
                now=now,
            )
            return
        wanted.transition(
            conn,
            download.item_id,
            "found",
            f"bad_{code}",
            f"{_leaf(download.filename)} from {download.username} failed verification: {why}"[:300],
            next_action="try the next candidate of the same search",
            data={"transfer_id": download.id, "check": code},
            now=now,
        )
        self.metrics.fall_throughs.inc()
        self.queue.enqueue(
            JOB, {"item_id": download.item_id}, key=f"transfer:{download.item_id}", priority=10
        )

    def wrong(self, conn: apsw.Connection, item_id: int) -> Download:
        """In the caller's transaction: the file the item got is not the right one. Never take
        that file of that peer again, cool the peer down, and want the item anew (refused files
        stay refused). Returns the transfer that brought the file; Conflict when none did."""
        now = self.clock()
        item = wanted.get(self.db, item_id)
        last = next(iter(conn.execute(SQL_LAST_SUCCEEDED, (item_id,))), None)
        if last is None:
            raise Conflict(f"item {item_id} has no downloaded file to call wrong", state=item.state)
        download = Download.from_row(last)
        mark_bad(conn, download.username, download.filename, item_id, "marked wrong by the operator", now)
        peer_failed(
            conn, download.username, "a file marked wrong", self.live()["transfers.user_cooldown"], now
        )
        wanted.transition(
            conn,
            item_id,
            "wanted",
            "wrong_file",
            f"{_leaf(download.filename)} from {download.username} was the wrong file; searching again",
            attempts=0,
            data={"transfer_id": download.id},
            now=now,
        )
        return download


def _state(transfer: SlskdTransfer) -> str:
    return ", ".join(sorted(transfer.state))


def _kind(transfer: SlskdTransfer) -> str:
    """slskd's state as one of `transfers.state`'s values."""
    flags = transfer.state
    if transfer.retrying:
        return "retrying"
    if "Completed" in flags:
        return "succeeded" if "Succeeded" in flags else "failed"
    if {"InProgress"} & flags or "Initializing" in flags:
        return "in_progress"
    if {"Queued", "Remotely"} <= flags:
        return "remote_queued"
    return "requested" if "Requested" in flags else "queued"


def _outcome(transfer: SlskdTransfer) -> str:
    for flag, outcome in (
        ("Rejected", "rejected"),
        ("Cancelled", "cancelled"),
        ("TimedOut", "timed_out"),
        ("Aborted", "aborted"),
        ("Errored", "errored"),
    ):
        if flag in transfer.state:
            return outcome
    return "failed"


def _leaf(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]
