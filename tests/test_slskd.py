"""Harmony's slskd client against the fake slskd, in every version and fault mode.

The fake computes searches and transfers from its clock, so tests advance `fakes.clock` instead
of sleeping. Searches, transfers and downloaded files a test creates on the shared fake are removed
afterwards, and peer and fake settings it changes are put back.

Tests of what the client does with slskd's answers take `version` and run once per imitated
slskd version (0.23, 0.25, 0.26); tests of the transport (URL base, keys, faults, timeouts) run
against the default, 0.26.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import mutagen
import pytest
import urllib3
from conftest import make_config

from harmony.context import Context, opened
from harmony.errors import UpstreamCoolingDown, UpstreamRejected, UpstreamUnavailable
from harmony.fakes import Fakes, start_fakes
from harmony.fakes.peers import ODD_USERNAMES, SharedFile
from harmony.fakes.slskd import PROFILES, Profile
from harmony.fakes.slskd_transfers import CANCELLED_MESSAGE, INACTIVITY_MESSAGE
from harmony.slskd import File, Slskd, Transfer

HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=5))
# Answered by vinylvault after 0.6 s, lockbox (with locked files) after 1.0 s and linux_larry after
# 1.6 s; in Cyrillic, as the artist is named.
QUERY = "Ночной Город Comet of Harbours"
# Also answered by linux_larry, with files without attributes and files without an extension.
ODD_FILES_QUERY = "Mx: Orbit Bright Summer"


@dataclass
class Made:
    """What a test created on the shared fake slskd, to be removed afterwards."""

    transfers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)


@pytest.fixture(autouse=True)
def fake_settings(fakes: Fakes) -> Iterator[None]:
    """Put the fake slskd's settings (version, limits, retries) back after each test."""
    before = fakes.slskd_state.settings()
    yield
    fakes.slskd_state.change(before)


@pytest.fixture(params=list(PROFILES))
def version(fakes: Fakes, request: Any) -> Profile:
    """The slskd version the shared fake imitates for this test."""
    fakes.slskd_state.change({"version": request.param})
    return fakes.slskd_state.profile


@pytest.fixture
def made(fakes: Fakes, ctx: Context) -> Iterator[Made]:
    record = Made()
    yield record
    state = fakes.slskd_state
    with state.lock:
        now = fakes.clock.now()
        for transfer_id in record.transfers:
            transfer = state.transfers.get(transfer_id)
            if transfer is None:
                continue
            if not transfer.done(now):
                transfer.cancelled_at = now
            transfer.removed = True
            if transfer.local_path and os.path.exists(transfer.local_path):
                os.remove(transfer.local_path)
                folder = os.path.dirname(transfer.local_path)
                if folder != state.downloads_dir and not os.listdir(folder):
                    os.rmdir(folder)
        for search_id in record.searches:
            state.searches.pop(search_id, None)


@pytest.fixture
def slskd(ctx: Context) -> Slskd:
    return ctx.slskd


def control(fakes: Fakes, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
    response = HTTP.request(method, fakes.slskd.url + path, body=json.dumps(body or {}).encode())
    assert response.status == 200, response.data
    return json.loads(response.data)


def add_fault(fakes: Fakes, **rule: Any) -> int:
    return int(control(fakes, "/_fake/faults", rule)["id"])


def fault_uses_left(fakes: Fakes, rule_id: int) -> int | None:
    for rule in fakes.slskd_state.faults.rules():
        if rule.id == rule_id:
            return rule.times
    return 0


@contextmanager
def peer_settings(fakes: Fakes, username: str, **changes: Any) -> Iterator[None]:
    """Change a fake peer through the control API and put it back afterwards."""
    before = next(
        p for p in control(fakes, "/_fake/slskd/peers", method="GET")["peers"] if p["username"] == username
    )
    control(fakes, "/_fake/slskd/peers", {"username": username, **changes})
    try:
        yield
    finally:
        control(fakes, "/_fake/slskd/peers", {"username": username, **{k: before[k] for k in changes}})


def shared(fakes: Fakes, username: str, index: int = 0) -> SharedFile:
    return fakes.slskd_state.peers[username].files[index]


def as_file(f: SharedFile) -> File:
    return File(filename=f.path, size=f.size)


def enqueue_one(slskd: Slskd, made: Made, username: str, f: SharedFile | File) -> Transfer:
    wanted = as_file(f) if isinstance(f, SharedFile) else f
    result = slskd.enqueue(username, [wanted])
    assert result.failed == ()
    if result.enqueued:
        [transfer] = result.enqueued
    else:  # slskd <= 0.23 says nothing but 201: the transfer is found by listing
        transfer = next(
            t for t in slskd.downloads() if t.username == username and t.filename == wanted.filename
        )
    made.transfers.append(transfer.id)
    return transfer


def find(slskd: Slskd, transfer_id: str) -> Transfer:
    """The transfer from the single all-downloads poll."""
    return next(t for t in slskd.downloads() if t.id == transfer_id)


# --- application, server and options ------------------------------------------------------------------


def test_state_is_connected_and_logged_in(slskd: Slskd, version: Profile) -> None:
    state = slskd.state()
    assert state.connected and state.logged_in and state.state == {"Connected", "LoggedIn"}
    assert state.version == version.version and state.username == "harmony_fake"
    assert slskd.probe() == f"logged in as harmony_fake (slskd {version.version})"


def test_state_after_logout_is_disconnected_and_probe_fails(slskd: Slskd, fakes: Fakes) -> None:
    control(fakes, "/_fake/slskd/logout")  # the cfg fixture logs in again
    state = slskd.state()
    assert not state.connected and not state.logged_in and state.state == {"Disconnected"}
    with pytest.raises(UpstreamUnavailable, match="not logged in to Soulseek"):
        slskd.probe()
    with pytest.raises(UpstreamRejected) as info:
        slskd.create_search(QUERY)
    assert info.value.details["status"] == 409 and "logged in to perform a search" in info.value.message


def test_options_name_the_downloads_directory_and_the_retries(
    slskd: Slskd, fakes: Fakes, version: Profile
) -> None:
    options = slskd.options()
    assert options.downloads_dir == fakes.downloads_dir
    assert options.incomplete_dir.endswith("incomplete")
    assert options.retry_attempts == (3 if version.retries else 0)


# --- searches -----------------------------------------------------------------------------------------


def test_search_runs_to_completion_on_the_fake_clock(
    slskd: Slskd, fakes: Fakes, made: Made, version: Profile
) -> None:
    search = slskd.create_search(QUERY, search_id=str(uuid.uuid4()))
    made.searches.append(search.id)
    assert search.text == QUERY and not search.complete
    assert search.state <= {"Requested", "InProgress"}
    assert slskd.search_responses(search.id) == []  # stored only once the search completes
    fakes.clock.advance(2)
    running = slskd.search(search.id)
    assert running is not None and running.state == {"InProgress"} and running.response_count > 0
    assert slskd.search_responses(search.id) == []
    fakes.clock.advance(20)  # past the 15 s inactivity timeout after the last response
    done = slskd.search(search.id)
    assert done is not None and done.complete and done.state == {"Completed", "TimedOut"}
    assert done.started_at is not None and done.ended_at is not None and done.ended_at > done.started_at

    responses = {r.username: r for r in slskd.search_responses(search.id)}
    assert {"vinylvault", "linux_larry", "lockbox"} <= set(responses)
    assert len(responses) == done.response_count
    assert sum(len(r.files) for r in responses.values()) == done.file_count
    vinyl = responses["vinylvault"]
    assert vinyl.has_free_slot and vinyl.upload_speed == 1_800_000 and vinyl.queue_length == 0
    first = vinyl.files[0]
    assert (
        first.filename.startswith("@@vinyl\\Music\\") and "\\" in first.filename and "/" not in first.filename
    )
    assert first.extension == "flac" and first.bit_depth == 16 and first.sample_rate == 44100
    assert first.length and first.size > 0
    # lockbox's locked files are told apart only by the list they come in.
    lockbox = responses["lockbox"]
    assert lockbox.files and lockbox.locked_files
    assert not {f.filename for f in lockbox.files} & {f.filename for f in lockbox.locked_files}

    slskd.delete_search(search.id)
    assert slskd.search(search.id) is None
    slskd.delete_search(search.id)  # gone already: fine


def test_search_responses_keep_files_without_attributes_or_extension(
    slskd: Slskd, fakes: Fakes, made: Made
) -> None:
    search = slskd.create_search(ODD_FILES_QUERY)
    made.searches.append(search.id)
    fakes.clock.advance(20)
    responses = {r.username: r for r in slskd.search_responses(search.id)}
    larry = responses["linux_larry"].files
    assert all(f.filename.startswith("@@larry\\media\\music\\") for f in larry)
    bare = [f for f in larry if f.length is None]
    assert bare and all(f.bit_depth is None and f.bit_rate is None and f.sample_rate is None for f in bare)
    assert any(f.extension == "" and f.filename.endswith((".flac", ".mp3")) for f in larry)
    mp3 = next(f for r in responses.values() for f in r.files if f.extension == "mp3")
    assert mp3.bit_rate == 320 and mp3.vbr is False and mp3.bit_depth is None


def test_stopped_search_completes_as_cancelled(slskd: Slskd, fakes: Fakes, made: Made) -> None:
    search = slskd.create_search(QUERY)
    made.searches.append(search.id)
    fakes.clock.advance(0.65)
    slskd.stop_search(search.id)
    stopped = slskd.search(search.id)
    assert stopped is not None and stopped.state == {"Completed", "Cancelled"}
    assert [r.username for r in slskd.search_responses(search.id)] == ["vinylvault"]  # answered at 0.6 s
    slskd.stop_search(str(uuid.uuid4()))  # unknown ids are fine


def test_a_burst_of_five_searches_completes_the_later_ones_after_queued(
    slskd: Slskd, fakes: Fakes, made: Made, version: Profile
) -> None:
    searches = [slskd.create_search(f"{QUERY} {n}" if n else QUERY) for n in range(5)]
    made.searches.extend(s.id for s in searches)
    # Soulseek.NET runs two network searches at a time: the others wait, their timeout not started.
    assert [s.queued for s in searches] == [False, False, True, True, True]
    fakes.clock.advance(2)
    assert [found.queued for s in searches if (found := slskd.search(s.id))] == [
        False,
        False,
        True,
        True,
        True,
    ]
    for _ in range(6):
        fakes.clock.advance(20)
    done = [slskd.search(s.id) for s in searches]
    assert all(d is not None and d.complete and d.state == {"Completed", "TimedOut"} for d in done)
    spans = [d.ended_at - d.started_at for d in done if d and d.ended_at and d.started_at]
    timeout = slskd.search_timeout_ms / 1000
    assert len(spans) == 5 and all(span > timeout + 10 for span in spans[2:])  # waited, then ran


def test_search_creation_busy_429_is_waited_through(slskd: Slskd, fakes: Fakes, made: Made) -> None:
    control(fakes, "/_fake/slskd/search-busy", {"times": 2})
    started = time.monotonic()
    search = slskd.create_search(QUERY)
    made.searches.append(search.id)
    assert time.monotonic() - started < 2.0
    assert fakes.slskd_state.search_busy == 0 and slskd.search(search.id) is not None


def test_search_creation_busy_for_longer_than_the_retries_is_unavailable(
    slskd: Slskd, fakes: Fakes, made: Made
) -> None:
    control(fakes, "/_fake/slskd/search-busy", {"times": 10})
    with pytest.raises(UpstreamUnavailable) as info:
        slskd.create_search(QUERY)
    assert info.value.details["status"] == 429 and "Only one concurrent operation" in info.value.message
    assert fakes.slskd_state.search_busy == 10 - 4  # the first try and three retries


# --- transfers ----------------------------------------------------------------------------------------


def test_download_progresses_to_succeeded_and_the_file_lands(
    slskd: Slskd, fakes: Fakes, made: Made, version: Profile
) -> None:
    f = shared(fakes, "vinylvault", 3)
    transfer = enqueue_one(slskd, made, "vinylvault", f)
    assert transfer.filename == f.path and transfer.size == f.size
    assert transfer.requested_at is not None and transfer.started_at is None
    if not version.empty_enqueue_body:  # <= 0.23 answers once the peer has queued the file
        assert transfer.state == {"Queued", "Locally"}
        fakes.clock.advance(0.55)
        assert find(slskd, transfer.id).state == {"Requested"}
        fakes.clock.advance(0.6)
    assert find(slskd, transfer.id).state == {"Initializing"}
    fakes.clock.advance(5)
    done = find(slskd, transfer.id)
    assert done.succeeded and not done.failed and done.state == {"Completed", "Succeeded"}
    assert done.bytes_transferred == f.size and done.percent == 100.0
    assert done.started_at is not None and done.ended_at is not None and done.elapsed is not None
    assert slskd.transfer("vinylvault", transfer.id) == done

    local = fakes.slskd_state.transfers[transfer.id].local_path
    parts = f.path.split("\\")
    assert os.path.dirname(local) == os.path.join(fakes.downloads_dir, parts[-2])
    assert os.path.basename(local).startswith(parts[-1].rsplit(".", 1)[0])
    audio = mutagen.File(local)
    assert audio is not None and audio.info.length == pytest.approx(f.duration, abs=0.01)


def test_downloads_list_every_user_in_one_call(slskd: Slskd, fakes: Fakes, made: Made) -> None:
    ids = {
        enqueue_one(slskd, made, "vinylvault", shared(fakes, "vinylvault", 5)).id,
        enqueue_one(slskd, made, "mp3mike", shared(fakes, "mp3mike", 5)).id,
    }
    listed = {t.id: t for t in slskd.downloads()}
    assert ids <= set(listed)
    assert {listed[i].username for i in ids} == {"vinylvault", "mp3mike"}
    assert slskd.transfer("vinylvault", str(uuid.uuid4())) is None


def test_enqueuing_a_file_already_in_progress_reports_it_failed(
    slskd: Slskd, fakes: Fakes, made: Made, version: Profile
) -> None:
    f, other = shared(fakes, "slowpoke", 2), shared(fakes, "slowpoke", 4)
    enqueue_one(slskd, made, "slowpoke", f)
    if version.empty_enqueue_body:  # <= 0.23 fails the whole request
        with pytest.raises(UpstreamUnavailable, match="Already in progress"):
            slskd.enqueue("slowpoke", [as_file(f)])
        return
    # Whatever shape `failed` has (names in 0.25, `{}` in 0.26), the failed names are known.
    again = slskd.enqueue("slowpoke", [as_file(f), as_file(other)])
    made.transfers.extend(t.id for t in again.enqueued)
    assert [t.filename for t in again.enqueued] == [other.path] and again.failed == (f.path,)


def test_cancel_without_and_with_remove(slskd: Slskd, fakes: Fakes, made: Made, version: Profile) -> None:
    transfer = enqueue_one(slskd, made, "slowpoke", shared(fakes, "slowpoke", 1))
    fakes.clock.advance(3)
    assert find(slskd, transfer.id).state == {"InProgress"}
    slskd.cancel("slowpoke", transfer.id)
    # Cancellation is asynchronous: the next read may still show the transfer running.
    assert find(slskd, transfer.id).state == {"InProgress"}
    cancelled = find(slskd, transfer.id)
    assert cancelled.failed and cancelled.state == {"Completed", "Cancelled"}
    assert cancelled.exception == CANCELLED_MESSAGE and cancelled.ended_at is not None
    slskd.cancel("slowpoke", transfer.id, remove=True)
    assert transfer.id not in {t.id for t in slskd.downloads()}
    slskd.cancel("slowpoke", str(uuid.uuid4()))  # unknown ids are tolerated (<= 0.24: 404)
    slskd.cancel("slowpoke", str(uuid.uuid4()), remove=True)


def test_remove_of_a_running_transfer_cancels_it_on_every_version(
    slskd: Slskd, fakes: Fakes, made: Made, version: Profile
) -> None:
    transfer = enqueue_one(slskd, made, "slowpoke", shared(fakes, "slowpoke", 3))
    # slskd <= 0.24 answers 500 to removing a transfer that has not completed (the client then
    # cancels without removing); 0.25+ cancels and keeps the record until it is removed again.
    slskd.cancel("slowpoke", transfer.id, remove=True)
    find(slskd, transfer.id)  # the read that still shows the old state
    assert find(slskd, transfer.id).state == {"Completed", "Cancelled"}


def test_failing_peers_parse_into_failed_transfers(
    slskd: Slskd, fakes: Fakes, made: Made, version: Profile
) -> None:
    with peer_settings(fakes, "flaky", upload_speed=100_000):
        ids = {user: enqueue_one(slskd, made, user, shared(fakes, user)).id for user in ("flaky", "mp3mike")}
    f = shared(fakes, "mp3mike", 1)
    wrong_size = enqueue_one(slskd, made, "mp3mike", File(filename=f.path, size=f.size + 1))
    missing = File(filename="@@grump\\nowhere\\none.flac", size=10)
    if version.empty_enqueue_body:  # <= 0.23 fails the request when the peer refuses a file
        with pytest.raises(UpstreamUnavailable, match="Transfer rejected: Too many megabytes"):
            slskd.enqueue("grumpy", [as_file(shared(fakes, "grumpy"))])
        with pytest.raises(UpstreamUnavailable, match="File not shared"):
            slskd.enqueue("grumpy", [missing])
    else:
        ids["grumpy"] = enqueue_one(slskd, made, "grumpy", shared(fakes, "grumpy")).id
        ids["missing"] = enqueue_one(slskd, made, "grumpy", missing).id
    fakes.clock.advance(3)
    now = {t.id: t for t in slskd.downloads()}

    errored = now[ids["flaky"]]
    assert errored.state == {"Completed", "Errored"} and errored.exception == "Remote connection closed"
    assert 0 < errored.bytes_transferred < errored.size
    # 0.26 retries it: failed for now, but not for good.
    assert errored.retrying == version.retries and errored.failed != version.retries
    aborted = now[wrong_size.id]
    assert aborted.failed and not aborted.retrying and aborted.state == {"Completed", "Aborted"}
    assert aborted.exception.startswith("Transfer aborted: the remote size of")
    if not version.empty_enqueue_body:
        rejected = now[ids["grumpy"]]
        assert rejected.failed and not rejected.retrying and rejected.state == {"Completed", "Rejected"}
        assert rejected.exception == "Transfer rejected: Too many megabytes"  # match reasons after the prefix
        not_shared = now[ids["missing"]]
        assert not_shared.failed and not_shared.exception == "File not shared."


def test_a_stalled_transfer_ends_timed_out_and_harmony_sees_it(
    slskd: Slskd, fakes: Fakes, made: Made, version: Profile
) -> None:
    with peer_settings(fakes, "staller", upload_speed=100_000):
        transfer = enqueue_one(slskd, made, "staller", shared(fakes, "staller"))
    fakes.clock.advance(3)
    stalled = find(slskd, transfer.id)
    assert (
        stalled.state == {"InProgress"}
        and not stalled.failed
        and 0 < stalled.bytes_transferred < stalled.size
    )
    fakes.clock.advance(16)  # slskd's 15 s inactivity timeout, on the fake clock
    timed_out = find(slskd, transfer.id)
    assert timed_out.state == {"Completed", "TimedOut"} and timed_out.exception == INACTIVITY_MESSAGE
    assert timed_out.bytes_transferred == stalled.bytes_transferred
    if version.retries:  # 0.26 tries twice more before it gives up
        assert timed_out.retrying and not timed_out.failed and timed_out.attempts == 1
        fakes.clock.advance(120)
        timed_out = find(slskd, transfer.id)
        assert timed_out.attempts == 3
    assert timed_out.failed and not timed_out.retrying


def test_a_026_retry_does_not_make_harmony_give_up(slskd: Slskd, fakes: Fakes, made: Made) -> None:
    fakes.slskd_state.change({"version": "0.26"})
    with peer_settings(fakes, "flaky", upload_speed=100_000):
        transfer = enqueue_one(slskd, made, "flaky", shared(fakes, "flaky"))
    fakes.clock.advance(2)
    first = find(slskd, transfer.id)
    assert first.state == {"Completed", "Errored"} and first.attempts == 1 and first.max_attempts == 3
    assert first.retrying and not first.failed and not first.succeeded
    assert first.ended_at is not None
    fakes.clock.advance(first.ended_at + 5.2 - fakes.clock.now())  # the first back-off is 5 s
    again = find(slskd, transfer.id)
    assert again.state == {"Queued", "Locally"} and again.attempts == 2 and not again.failed
    fakes.clock.advance(60)
    final = find(slskd, transfer.id)
    assert final.attempts == 3 and final.failed and not final.retrying


def test_enqueue_from_an_offline_peer_is_unavailable_with_the_reason(slskd: Slskd, fakes: Fakes) -> None:
    with pytest.raises(UpstreamUnavailable) as info:
        slskd.enqueue("ghost_peer", [as_file(shared(fakes, "ghost_peer"))])
    assert info.value.details["status"] == 500 and "ghost_peer appears to be offline" in info.value.message


def test_usernames_that_need_encoding(slskd: Slskd, fakes: Fakes, made: Made, version: Profile) -> None:
    for name in ODD_USERNAMES:
        if "/" in name and not version.decodes_slash:
            # slskd <= 0.24 routes the name with "%2F" still in it: that user is "offline".
            with pytest.raises(UpstreamUnavailable, match="appears to be offline"):
                slskd.enqueue(name, [as_file(shared(fakes, name))])
            continue
        transfer = enqueue_one(slskd, made, name, shared(fakes, name))
        assert transfer.username == name
        assert slskd.transfer(name, transfer.id) is not None
        slskd.cancel(name, transfer.id)


def test_a_burst_of_ten_enqueues_all_land(slskd: Slskd, fakes: Fakes, made: Made, version: Profile) -> None:
    # Each enqueue holds one of slskd's two slots for 0.2 s while it connects to the peer. Three
    # clients (three processes, each queueing its own enqueues) overrun the two slots: the 429s
    # slskd answers are waited out, never surfaced.
    fakes.slskd_state.change({"peer_connect_seconds": 0.2})
    clients = [slskd, *(Slskd(slskd.upstream, fakes.slskd_url, fakes.slskd_api_key) for _ in range(2))]
    files = fakes.slskd_state.peers["vinylvault"].files[20:30]
    errors: list[Exception] = []

    def one(n: int) -> None:
        try:
            enqueue_one(clients[n % 3], made, "vinylvault", files[n])
        except Exception as exc:
            errors.append(exc)

    refused_before = fakes.slskd_state.stats["enqueue_busy"]
    threads = [threading.Thread(target=one, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len({fakes.slskd_state.transfers[t].filename for t in made.transfers}) == 10
    if version.concurrency_limits:
        assert fakes.slskd_state.stats["enqueue_busy"] > refused_before  # slskd did say 429


def test_queued_peer_shows_queued_remotely(slskd: Slskd, fakes: Fakes, made: Made) -> None:
    transfer = enqueue_one(slskd, made, "queue_queen", shared(fakes, "queue_queen"))
    fakes.clock.advance(2)
    queued = find(slskd, transfer.id)
    assert queued.queued_remotely and queued.enqueued_at is not None and not queued.failed


# --- URL base, authentication -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def based_fakes(tmp_path_factory: Any) -> Iterator[Fakes]:
    """A second fake slskd behind the URL base `/slskd`."""
    running = start_fakes(str(tmp_path_factory.mktemp("based-downloads")), slskd_url_base="/slskd")
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("suffix", ["/slskd", "/slskd/"])
def test_url_base_with_or_without_trailing_slash(ctx: Context, based_fakes: Fakes, suffix: str) -> None:
    client = Slskd(ctx.upstream, based_fakes.slskd.url + suffix, based_fakes.slskd_api_key)
    assert client.state().logged_in
    assert client.options().downloads_dir == based_fakes.downloads_dir
    with pytest.raises(UpstreamRejected) as info:
        Slskd(ctx.upstream, based_fakes.slskd.url + suffix, "wrong-key").state()
    assert info.value.details["status"] == 401


def test_wrong_api_key_is_rejected_with_401(ctx: Context, fakes: Fakes) -> None:
    client = Slskd(ctx.upstream, fakes.slskd_url, "not-the-key-at-all")
    with pytest.raises(UpstreamRejected) as info:
        client.state()
    assert info.value.details["status"] == 401 and "(empty body)" in info.value.message


# --- upstream faults ----------------------------------------------------------------------------------


def test_transient_5xx_on_a_get_is_retried(slskd: Slskd, fakes: Fakes) -> None:
    rule = add_fault(
        fakes, kind="status", path="/api/v0/transfers/downloads", method="GET", status=503, times=2
    )
    assert isinstance(slskd.downloads(), list)
    assert fault_uses_left(fakes, rule) == 0


def test_post_is_not_repeated_after_a_5xx(slskd: Slskd, fakes: Fakes) -> None:
    searches = len(fakes.slskd_state.searches)
    rule = add_fault(fakes, kind="status", path="/api/v0/searches", method="POST", status=503, times=3)
    with pytest.raises(UpstreamUnavailable) as info:
        slskd.create_search(QUERY)
    assert info.value.details["status"] == 503
    assert fault_uses_left(fakes, rule) == 2 and len(fakes.slskd_state.searches) == searches


def test_server_error_text_reaches_the_message(slskd: Slskd, fakes: Fakes) -> None:
    add_fault(
        fakes, kind="status", path="/api/v0/application", status=500, message="database is locked", times=1
    )
    with pytest.raises(UpstreamUnavailable, match="slskd answered 500: database is locked"):
        slskd.state()


def test_dropped_connection_on_a_get_is_retried(slskd: Slskd, fakes: Fakes) -> None:
    rule = add_fault(fakes, kind="drop", path="/api/v0/application", times=1)
    assert slskd.state().logged_in
    assert fault_uses_left(fakes, rule) == 0


def test_connections_slskd_closed_while_idle_are_reopened(slskd: Slskd, fakes: Fakes, made: Made) -> None:
    assert slskd.state().logged_in  # leaves a kept-alive connection in Harmony's pool
    assert fakes.slskd.connections(idle=True) >= 1
    fakes.clock.advance(131)  # slskd (Kestrel) closes it after 130 s idle
    assert fakes.slskd.connections(idle=True) == 0
    # The next request, a POST that is never repeated, opens a new connection instead.
    enqueue_one(slskd, made, "mp3mike", shared(fakes, "mp3mike", 9))


def test_dropped_enqueue_is_not_repeated(slskd: Slskd, fakes: Fakes) -> None:
    f = shared(fakes, "mp3mike", 7)
    rule = add_fault(fakes, kind="drop", path="/api/v0/transfers/downloads/mp3mike", method="POST", times=2)
    with pytest.raises(UpstreamUnavailable, match="connection dropped"):
        slskd.enqueue("mp3mike", [as_file(f)])
    assert fault_uses_left(fakes, rule) == 1
    assert not any(t.filename == f.path for t in fakes.slskd_state.transfers.values())


@pytest.fixture
def impatient(tmp_path: Any, fakes: Fakes) -> Iterator[Context]:
    """A context with a 0.3 s read timeout and one retry."""
    with opened(
        make_config(tmp_path / "impatient", fakes, upstream_read_timeout="0.3s", upstream_retries="1")
    ) as ctx:
        yield ctx


def test_read_timeout_is_bounded(impatient: Context, fakes: Fakes, ctx: Context) -> None:
    rule = add_fault(fakes, kind="delay", path="/api/v0/application", seconds=3, times=2)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="timed out"):
        impatient.slskd.state()
    assert time.monotonic() - started < 1.5
    assert fault_uses_left(fakes, rule) == 0  # a GET: tried twice


def test_timed_out_post_is_not_repeated(impatient: Context, fakes: Fakes, ctx: Context) -> None:
    # The fake answers a delayed request after the test; an unknown user keeps that answer harmless.
    path = "/api/v0/transfers/downloads/nobody_here"
    rule = add_fault(fakes, kind="delay", path=path, method="POST", seconds=3, times=2)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="timed out"):
        impatient.slskd.enqueue("nobody_here", [File(filename="@@x\\a\\b.flac", size=1)])
    assert time.monotonic() - started < 1.0
    assert fault_uses_left(fakes, rule) == 1


def test_a_healthy_slskd_ends_its_cooldown_at_the_next_probe(harmony_cooldown: Context, fakes: Fakes) -> None:
    slskd = harmony_cooldown.slskd
    # One 429 with an absurd Retry-After: the cooldown is capped by upstream.max_cooldown.
    add_fault(fakes, kind="rate_limit", path="/api/v0/application", seconds=10**12, times=1)
    started = time.time()
    with pytest.raises(UpstreamCoolingDown) as info:
        slskd.state()
    assert info.value.details["until"] <= started + 61
    assert "cooling down until" in info.value.message
    with pytest.raises(UpstreamCoolingDown):
        slskd.state()  # fails fast, without asking slskd
    # The readiness probe asks anyway; slskd answers, so the cooldown is over.
    assert slskd.probe().startswith("logged in as")
    assert harmony_cooldown.upstream.cooldowns() == {}
    assert slskd.state().logged_in


@pytest.fixture
def harmony_cooldown(tmp_path: Any, fakes: Fakes, ctx: Context) -> Iterator[Context]:
    """A context whose cooldowns last at most a minute."""
    with opened(make_config(tmp_path / "cooldown", fakes, upstream_max_cooldown="60s")) as context:
        yield context


def test_slskd_down_is_unavailable_quickly(slskd: Slskd, fakes: Fakes) -> None:
    fakes.slskd.stop()  # the cfg fixture starts it again
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="connection refused"):
        slskd.state()
    with pytest.raises(UpstreamUnavailable, match="connection refused"):
        slskd.probe()
    assert time.monotonic() - started < 3.0
