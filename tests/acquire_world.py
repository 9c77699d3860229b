"""A test world for acquisition: Harmony in-process against its own fakes, with one clock for both.

Harmony's clocks (searcher, budget, transfers) and the fakes' clock move together through
`World.advance`, so a test walks the pipeline step by step without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from client import Client
from conftest import make_config

from harmony import auth, wanted
from harmony.context import Context, opened
from harmony.fakes import Fakes, start_fakes
from harmony.fakes.peers import SharedFile
from harmony.wanted import Source
from harmony.web import make_app


@dataclass
class World:
    ctx: Context
    fakes: Fakes
    now: float

    def clock(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.fakes.clock.advance(seconds)

    def run_jobs(self) -> int:
        ran = 0
        while self.ctx.workers.run_one(now=self.now + 10**7) is not None:
            ran += 1
        return ran

    def step(self, seconds: float = 2.0) -> None:
        """One turn of the background work: dispatch, start, let time pass, poll, evaluate, transfer."""
        self.ctx.searcher.dispatch(self.now)
        self.run_jobs()
        self.advance(seconds)
        self.ctx.searcher.poll(self.now)
        self.run_jobs()
        self.ctx.transfers.poll(self.now)
        self.run_jobs()

    def until(self, item_id: int, states: set[str], *, steps: int = 40, seconds: float = 2.0) -> wanted.Item:
        for _ in range(steps):
            item = wanted.get(self.ctx.db, item_id)
            if item.state in states:
                return item
            self.step(seconds)
        raise AssertionError(f"item {item_id} stayed {wanted.get(self.ctx.db, item_id).state}, not {states}")

    def want(self, track_id: str) -> wanted.Item:
        """Want a catalogue track by its id, as a manual request does."""
        results = self.ctx.requests.want(track_id)
        return results[0][0]

    def shared_by(self, username: str, item: wanted.Item) -> SharedFile:
        """The file `username` shares for the item's track (the original, not a trap)."""
        peer = self.fakes.slskd_state.peers[username]
        cat = self.fakes.catalogue
        isrc = cat.tracks[item.spotify_id].isrc if item.spotify_id else None
        for f in peer.files:
            if f.variant == "original" and f.track_id and cat.tracks[f.track_id].isrc == isrc:
                return f
        raise AssertionError(f"{username} does not share {item.title}")

    def transfers(self, item_id: int) -> list[dict[str, Any]]:
        return [d.to_dict() for d in reversed(self.ctx.transfers.list_downloads(item_id=item_id, limit=100))]

    def spent(self) -> int:
        return int(self.ctx.db.scalar("SELECT count(*) FROM search_spend"))


def track_shared_by(fakes: Fakes, *usernames: str, album_type: str = "album") -> str:
    """A catalogue track (of a released album, or `album_type`) that every one of `usernames`
    shares as the original."""
    cat = fakes.catalogue
    sets = []
    for username in usernames:
        peer = fakes.slskd_state.peers[username]
        sets.append(
            {cat.tracks[f.track_id].isrc for f in peer.files if f.variant == "original" and f.track_id}
        )
    common = set.intersection(*sets)
    for track in sorted(cat.tracks.values(), key=lambda t: t.id):
        album = cat.albums[track.album_id]
        if (
            track.isrc in common
            and not album.future
            and album.album_type == album_type
            and album.duplicate_of is None
        ):
            return track.id
    raise AssertionError(f"no track shared by all of {usernames}")


@contextmanager
def world(tmp_path: Any, **options: str) -> Iterator[World]:
    fakes = start_fakes(str(tmp_path / "slskd"))
    try:
        flags = {"spotify_rate": "50", "search_timeout": "5s", "jobs_max_attempts": "20", **options}
        with opened(make_config(tmp_path, fakes, **flags)) as ctx:
            w = World(ctx, fakes, time.time())
            for part in (ctx.searcher, ctx.searcher.budget, ctx.transfers, ctx.importer):
                part.clock = w.clock
            yield w
    finally:
        fakes.stop()


def admin(w: World) -> Client:
    """An API client of the world's Harmony, with an admin key."""
    return Client(make_app(w.ctx), auth.create_key(w.ctx.db, "admin", "admin")[0])


def manual() -> Source:
    return Source("manual")
