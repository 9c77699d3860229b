"""The pipeline under fire (`tools/chaos.py`), short: 50 items, 5 kills; and what its runs found.

The chaos run starts Harmony as a real process against the fakes, kills it with SIGKILL at
random moments, injects faults into both fakes and the disk, and checks that every item comes to
rest with a reason, nothing is lost or duplicated, the library holds one complete tagged file per
done item, nothing is written outside the library root, no job stays leased and the search budget
held (on the fake slskd's own record of search creations). The tests after it pin the bugs its
runs found, so they stay fixed without a chaos run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any

import pytest
from acquire_world import World, track_shared_by, world

from harmony import search, wanted
from harmony.fakes.faults import Rule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_chaos() -> Any:
    spec = importlib.util.spec_from_file_location("chaos", os.path.join(ROOT, "tools", "chaos.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)  # about 90 s; a search a kill cut short costs two minutes more (see the report)
def test_fifty_items_and_five_kills_lose_nothing(tmp_path: Any) -> None:
    """In this process, so that a timeout still runs the tool's cleanup (the Harmony child killed,
    the tmpfs unmounted)."""
    chaos = load_chaos()
    out, workdir = tmp_path / "chaos.md", tmp_path / "run"
    argv = ["--items", "50", "--kills", "5", "--seed", "1", "--out", str(out), "--workdir", str(workdir)]
    status = chaos.main(argv)
    report = out.read_text()
    assert status == 0, report
    assert "every invariant held" in report and "**FAILED**" not in report
    assert len(json.loads((workdir / "kills.json").read_text())) == 5


def test_the_fake_slskd_keeps_a_record_of_every_search_it_created(tmp_path: Any) -> None:
    with world(tmp_path) as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        w.until(item.id, {"found", "queued", "downloading", "downloaded", "done"})
        with w.fakes.slskd_state.lock:
            log = [dict(entry) for entry in w.fakes.slskd_state.search_log]
            held = set(w.fakes.slskd_state.searches)
        assert len(log) == 1 and log[0]["id"] not in held  # Harmony deleted it; the record stays
        assert {"id", "text", "at", "wall", "errored"} <= log[0].keys() and not log[0]["errored"]
        row = w.ctx.db.query_one("SELECT slskd_id FROM searches")
        assert row is not None and log[0]["id"] == row["slskd_id"]


def found(w: World, item: wanted.Item) -> str:
    """Search for the item and stop once it is evaluated, its transfer job queued but not run."""
    w.ctx.searcher.dispatch(w.now)
    w.run_jobs()
    w.advance(10)
    w.ctx.searcher.poll(w.now)
    while w.ctx.workers.run_one(now=w.now + 10**7) is not None:
        if wanted.get(w.ctx.db, item.id).state == "found":
            break
    return wanted.get(w.ctx.db, item.id).state


# --- found by the chaos runs: an item `found` whose transfer ended was stranded ----------------------


def test_a_peer_gone_offline_at_enqueue_sends_the_item_to_its_next_candidate(tmp_path: Any) -> None:
    """The best candidate's peer was offline when slskd was asked: the enqueue was refused, the
    item stayed `found` with nothing scheduled, for ever (chaos run, peer `vinylvault` offline)."""
    with world(tmp_path) as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault", "mp3mike"))
        w.fakes.slskd_state.peers["vinylvault"].behaviour = "offline"
        assert w.until(item.id, {"done", "not_found", "failed"}, steps=30).state == "done"
        tried = [(t["username"], t["outcome"]) for t in w.transfers(item.id)]
        assert tried[0] == ("vinylvault", "enqueue_refused") and tried[-1][1] == "succeeded"


def test_an_enqueue_slskd_never_answered_is_taken_up_when_slskd_is_back(tmp_path: Any) -> None:
    """slskd answered 503 to the enqueue: the transfer was recorded `unknown`, the item stayed
    `found`, and the next poll cancelled the transfer as if the operator had moved the item on."""
    with world(tmp_path, transfers_requested_timeout="30s") as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        assert found(w, item) == "found"
        rule = w.fakes.slskd_state.faults.add(
            Rule(kind="status", path="/api/v0/transfers", method="POST", status=503)
        )
        w.run_jobs()
        assert [t["state"] for t in w.transfers(item.id)] == ["unknown"]
        w.fakes.slskd_state.faults.remove(rule.id)
        assert w.until(item.id, {"done", "not_found", "failed"}, steps=60).state == "done"


def test_a_crash_between_recording_a_transfer_and_asking_slskd_loses_nothing(tmp_path: Any) -> None:
    """The process died after the transfer row was written and before slskd was asked: the row
    is `requested` and the item `found`; the poll gives the transfer up and the item goes on."""
    with world(tmp_path, transfers_requested_timeout="30s") as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault", "mp3mike"))
        assert found(w, item) == "found"
        job = w.ctx.queue.lease(w.now + 10**7)
        assert job is not None and job.type == "transfer.start"
        with w.ctx.db.write() as conn:  # what the transfer job does before it asks slskd ...
            choice = search.next_candidate(conn, item.id)
            assert choice is not None
            w.ctx.transfers._record(conn, item.id, choice, w.now)
        w.ctx.queue.release(job)  # ... and then the process died: the job runs again later
        assert wanted.get(w.ctx.db, item.id).state == "found"
        assert w.until(item.id, {"done", "not_found", "failed"}, steps=60).state == "done"


def test_an_evaluation_cut_short_after_slskd_deleted_the_search_moves_the_item_on(tmp_path: Any) -> None:
    """The evaluation deleted the search on slskd, then the process died before recording it: each
    retry got 404 for the responses until the job was dead, and the item stayed `searching`,
    holding one of the search slots, for ever (chaos run, item 47)."""
    with world(tmp_path) as w:
        item = w.want(track_shared_by(w.fakes, "vinylvault"))
        w.ctx.searcher.dispatch(w.now)
        w.run_jobs()
        w.advance(10)
        w.ctx.searcher.poll(w.now)
        [search_row] = w.ctx.db.query("SELECT * FROM searches")
        assert search_row["state"] == "complete"
        w.ctx.slskd.delete_search(search_row["slskd_id"])  # what the run that died had done
        assert w.until(item.id, {"done", "not_found", "failed"}).state == "done"
        assert not w.ctx.queue.list_jobs(state="dead")
