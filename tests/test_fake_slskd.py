"""Contract tests of the fake slskd, driven through the real `slskd-api` client and plain urllib3.

The tests taking `fakes` run once per imitated slskd version (0.23, 0.25, 0.26); those taking
`latest` run against the default, 0.26. One fake serves the module; each test starts from an
empty state (no searches, transfers, events, faults or downloaded files, default settings).
Where the real client fails against the real behaviour, the test says so rather than bend the
fake (`slskd-api` does not encode "/" in usernames).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import mutagen
import pytest
import requests
import urllib3
from fakes_fixtures import control, http, no_nulls, slskd_client

from harmony.fakes import Fakes, start_fakes
from harmony.fakes.peers import ODD_USERNAMES, SharedFile
from harmony.fakes.slskd import DEFAULT_VERSION, PROFILES, SETTINGS, Profile, SlskdState
from harmony.fakes.slskd_transfers import ACK_LIMIT_MESSAGE, CANCELLED_MESSAGE, INACTIVITY_MESSAGE
from harmony.fakes.slskd_wire import BUSY_MESSAGE

Z_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$")
LOCAL_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
TIMESPAN = re.compile(r"^(\d+\.)?\d\d:\d\d:\d\d(\.\d{7})?$")
DEFAULTS = {name: getattr(SlskdState, name) for name in SETTINGS}


@pytest.fixture(scope="module")
def running(tmp_path_factory: Any) -> Iterator[Fakes]:
    fakes = start_fakes(str(tmp_path_factory.mktemp("downloads")), seed=1, slskd_url_base="/slskd")
    try:
        yield fakes
    finally:
        fakes.stop()


def reset(fakes: Fakes, version: str) -> Fakes:
    state = fakes.slskd_state
    with state.lock:
        state.searches.clear()
        state.retired_searches.clear()
        state.transfers.clear()
        state.events.clear()
        state.logged_in, state.search_busy = True, 0
        state.change({**DEFAULTS, "version": version})
    state.faults.clear()
    for name in os.listdir(fakes.downloads_dir):
        shutil.rmtree(os.path.join(fakes.downloads_dir, name))
    return fakes


@pytest.fixture(params=list(PROFILES))
def fakes(running: Fakes, request: Any) -> Fakes:
    return reset(running, request.param)


@pytest.fixture
def latest(running: Fakes) -> Fakes:
    return reset(running, DEFAULT_VERSION)


def profile(fakes: Fakes) -> Profile:
    return fakes.slskd_state.profile


def api(fakes: Fakes, path: str) -> str:
    return f"{fakes.slskd_url}/api/v0{path}"


def first_file(fakes: Fakes, username: str) -> SharedFile:
    return fakes.slskd_state.peers[username].files[0]


def post(
    fakes: Fakes, path: str, data: Any, content_type: str = "application/json"
) -> urllib3.BaseHTTPResponse:
    headers = {"X-API-Key": fakes.slskd_api_key, "Content-Type": content_type}
    return http.request("POST", api(fakes, path), body=json.dumps(data).encode(), headers=headers)


def get(fakes: Fakes, path: str) -> Any:
    response = http.request("GET", api(fakes, path), headers={"X-API-Key": fakes.slskd_api_key})
    assert response.status == 200, (response.status, response.data)
    return json.loads(response.data)


def enqueue(fakes: Fakes, username: str, *files: SharedFile) -> urllib3.BaseHTTPResponse:
    """Enqueue with plain HTTP (slskd-api throws the response body away)."""
    body = [{"filename": f.path, "size": f.size} for f in files]
    return post(fakes, f"/transfers/downloads/{quote(username, safe='')}", body)


def enqueue_one(fakes: Fakes, username: str, f: SharedFile) -> dict[str, Any]:
    """Enqueue one file and return its transfer (found by listing where the version says nothing)."""
    response = enqueue(fakes, username, f)
    assert response.status == 201, response.data
    if profile(fakes).empty_enqueue_body:
        assert response.data == b""
        groups = get(fakes, f"/transfers/downloads/{quote(username, safe='')}")
        return next(t for d in groups["directories"] for t in d["files"] if t["filename"] == f.path)
    result = json.loads(response.data)
    assert result["failed"] == []
    return dict(result["enqueued"][0])


def transfer(fakes: Fakes, transfer_id: str) -> dict[str, Any]:
    return dict(get(fakes, f"/transfers/downloads/anyone/{transfer_id}"))


# --- application, server, options ---------------------------------------------------------------------


def test_application_server_options(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    assert client.application.version() == profile(fakes).version
    state = client.application.state()
    assert state["server"]["state"] == "Connected, LoggedIn" and state["server"]["isLoggedIn"] is True
    assert client.server.state()["ipEndPoint"].endswith(":2271")
    options = client.options.get()
    assert options["directories"]["downloads"] == fakes.downloads_dir
    retry = options.get("transfers", {}).get("download", {}).get("retry")
    assert (retry["attempts"] == 3) if profile(fakes).retries else retry is None
    assert client.users.status("vinylvault") == {"presence": "Online", "isPrivileged": False}
    assert client.users.status("ghost_peer")["presence"] == "Offline"


def test_api_key_url_base_trailing_slash_and_bare_errors(latest: Fakes) -> None:
    fakes = latest
    for headers in ({}, {"X-API-Key": "wrong-key-wrong-key"}):
        response = http.request("GET", api(fakes, "/application"), headers=headers)
        assert response.status == 401 and response.data == b""
    good = {"X-API-Key": fakes.slskd_api_key}
    assert http.request("GET", api(fakes, "/server/"), headers=good).status == 200
    # The URL base is optional in front of the API, as with UsePathBase.
    assert http.request("GET", f"{fakes.slskd.url}/api/v0/server", headers=good).status == 200
    missing = http.request("GET", api(fakes, "/nope"), headers=good)
    assert missing.status == 404 and missing.data == b"" and "Content-Type" not in missing.headers
    bad_id = http.request("GET", api(fakes, "/transfers/downloads/u/not-a-guid"), headers=good)
    assert bad_id.status == 400 and bad_id.data == b""
    assert http.request("GET", f"{fakes.slskd.url}/health").status == 200


def test_posts_that_are_not_json_get_415(latest: Fakes) -> None:
    f = first_file(latest, "vinylvault")
    files = [{"filename": f.path, "size": f.size}]
    assert post(latest, "/transfers/downloads/vinylvault", files, "text/plain").status == 415
    assert (
        post(latest, "/searches", {"searchText": "Aurora"}, "application/x-www-form-urlencoded").status == 415
    )
    assert (
        post(latest, "/searches", {"searchText": "Aurora"}, "application/json; charset=utf-8").status == 200
    )
    assert latest.slskd_state.transfers == {}


# --- searches -----------------------------------------------------------------------------------------


def test_search_lifecycle(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    album = next(a for a in fakes.catalogue.albums.values() if a.name == "Golden Lights")
    track = fakes.catalogue.tracks[album.track_ids[0]]
    created = client.searches.search_text(f"The Velvet Hours {track.name}")
    assert created["state"] == "Requested" and created["responses"] == [] and "endedAt" not in created
    running = client.searches.state(created["id"])
    assert running["state"] == "InProgress" and running["isComplete"] is False
    assert client.searches.search_responses(created["id"]) == []  # stored only at completion
    fakes.clock.advance(2)
    assert client.searches.state(created["id"])["responseCount"] > 0
    assert client.searches.search_responses(created["id"]) == []
    fakes.clock.advance(20)
    done = client.searches.state(created["id"], includeResponses=True)
    assert done["state"] == "Completed, TimedOut" and done["isComplete"] is True
    assert Z_STAMP.match(done["startedAt"]) and Z_STAMP.match(done["endedAt"])
    responses = client.searches.search_responses(created["id"])
    assert responses == done["responses"] and len(responses) == done["responseCount"]
    assert sum(r["fileCount"] for r in responses) == done["fileCount"]
    assert no_nulls(responses)
    users = {r["username"] for r in responses}
    assert "vinylvault" in users
    for response in responses:
        for f in response["files"] + response["lockedFiles"]:
            assert f["filename"].startswith("@@") and "\\" in f["filename"] and "/" not in f["filename"]
            assert f["isLocked"] is False and f["code"] == 1
            assert track.name.split()[0].lower() in f["filename"].lower()
    assert [s["id"] for s in client.searches.get_all()] == [created["id"]]
    assert client.searches.get_all()[0]["responses"] == []
    assert client.searches.delete(created["id"])
    with pytest.raises(requests.HTTPError) as err:
        client.searches.state(created["id"])
    assert err.value.response.status_code == 404 and err.value.response.content == b""


def test_two_network_search_slots_queue_the_rest(latest: Fakes) -> None:
    client = slskd_client(latest)
    ids = [
        client.searches.search_text(text, searchTimeout=5000)["id"] for text in ("Aurora", "Mx Orbit", "Kite")
    ]
    states = [client.searches.state(i)["state"] for i in ids]
    assert states == ["InProgress", "InProgress", "Queued"]
    queued = client.searches.search_text("Saffron Drift", searchTimeout=5000)
    assert queued["state"] == "Queued"  # the POST already says so
    latest.clock.advance(60)  # long after its own timeout: it counts only once it has a slot
    assert client.searches.state(ids[2])["state"] == "Completed, TimedOut"
    last = client.searches.state(queued["id"])
    assert last["state"] == "Completed, TimedOut" and last["responseCount"] > 0
    first_end = min(time_of(client.searches.state(i)["endedAt"]) for i in ids[:2])
    # It waited for a slot, so its inactivity timeout ran later than startedAt + 5 s.
    assert time_of(last["endedAt"]) - time_of(last["startedAt"]) > 5 + (
        first_end - time_of(last["startedAt"])
    )
    # Stopping a queued search cancels it without it ever running.
    waiting = [client.searches.search_text(t, searchTimeout=5000)["id"] for t in ("Aurora", "Kite", "Nova")]
    assert (
        client.searches.stop(waiting[2])
        and client.searches.state(waiting[2])["state"] == "Completed, Cancelled"
    )


def time_of(stamp: str) -> float:
    from harmony.slskd import parse_time

    value = parse_time(stamp)
    assert value is not None
    return value


def test_search_traps_attributes_and_locked_files(latest: Fakes) -> None:
    client = slskd_client(latest)
    bootleg = next(f for f in latest.slskd_state.peers["bootlegger"].files if f.variant == "live")
    words = bootleg.path.split("\\")[-1].split(" - ", 1)[1].rsplit(".", 1)[0]
    search = client.searches.search_text(words, searchTimeout=5000)
    latest.clock.advance(60)
    responses = {r["username"]: r for r in client.searches.search_responses(search["id"])}
    assert any("(Live)" in f["filename"] for f in responses["bootlegger"]["files"])
    everything = client.searches.search_text(
        "Music", filterResponses=False, responseLimit=500, fileLimit=10**6, searchTimeout=5000
    )
    latest.clock.advance(60)
    by_user: dict[str, list[dict[str, Any]]] = {}
    for r in client.searches.search_responses(everything["id"]):
        by_user.setdefault(r["username"], []).append(r)
    assert by_user["lockbox"][0]["lockedFileCount"] == len(by_user["lockbox"][0]["lockedFiles"]) > 0
    # Only locked files: with the default filter such a response would not even arrive.
    vault = by_user["locked_vault"][0]
    assert vault["fileCount"] == 0 and vault["files"] == [] and vault["lockedFileCount"] > 0
    hifi = by_user["hifi_hanna"][0]["files"][0]
    assert hifi["extension"] == "flac" and hifi["bitRate"] > 0 and hifi["bitDepth"] == 16
    assert len(by_user["echo_echo"]) == 2  # a peer that answers twice
    filtered = client.searches.search_text("Music", responseLimit=500, fileLimit=10**6, searchTimeout=5000)
    latest.clock.advance(60)
    assert "locked_vault" not in {r["username"] for r in client.searches.search_responses(filtered["id"])}
    vbr = client.searches.search_text("Downloads MP3", filterResponses=False, searchTimeout=5000)
    latest.clock.advance(60)
    vbr_files = [
        f
        for r in client.searches.search_responses(vbr["id"])
        if r["username"] == "vbr_vince"
        for f in r["files"]
    ]
    assert vbr_files and all(f["isVariableBitRate"] is True and f["bitRate"] == 245 for f in vbr_files)
    larry = client.searches.search_text("media music", responseLimit=1)
    latest.clock.advance(60)
    assert client.searches.state(larry["id"])["state"] == "Completed, ResponseLimitReached"
    nobody = client.searches.search_text("zzqx nothingmatches", searchTimeout=5000)
    latest.clock.advance(60)
    none = client.searches.state(nobody["id"])
    assert none["state"] == "Completed, TimedOut" and none["responseCount"] == 0


def test_search_stop_and_validation(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    search = client.searches.search_text("Aurora Vale")
    assert client.searches.stop(search["id"])
    assert client.searches.state(search["id"])["state"] == "Completed, Cancelled"
    for body in (
        {"searchText": "  "},
        {"searchText": "x", "searchTimeout": 1},
        {"searchText": "a", "id": "nope"},
    ):
        response = post(fakes, "/searches", body)
        assert response.status == 400 and isinstance(json.loads(response.data), str)
    assert len(fakes.slskd_state.searches) == 1  # refused before a record was saved


def test_a_search_that_fails_to_start_leaves_an_errored_record(fakes: Fakes) -> None:
    search_id = str(uuid.uuid4())
    response = post(fakes, "/searches", {"id": search_id, "searchText": "a b -live"})  # no usable term
    assert response.status == 400
    errored = get(fakes, f"/searches/{search_id}")
    assert errored["state"] == "Completed, Errored" and errored["endedAt"] == errored["startedAt"]
    again = post(fakes, "/searches", {"id": search_id, "searchText": "Aurora Vale"})
    assert again.status == 500  # the id is used up
    control(fakes.slskd.url, "/_fake/slskd/logout")
    other = str(uuid.uuid4())
    assert post(fakes, "/searches", {"id": other, "searchText": "Aurora Vale"}).status == 409
    assert get(fakes, f"/searches/{other}")["state"] == "Completed, Errored"


def test_one_search_creation_at_a_time(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    control(fakes.slskd.url, "/_fake/slskd/search-busy", {"times": 1})
    with pytest.raises(requests.HTTPError) as err:
        client.searches.search_text("Aurora Vale")
    assert err.value.response.status_code == 429
    assert err.value.response.json().startswith("Only one concurrent operation is permitted")
    assert client.searches.search_text("Aurora Vale")["state"] == "Requested"


# --- transfers ----------------------------------------------------------------------------------------


def test_enqueue_response_and_transfer_keys_by_version(fakes: Fakes) -> None:
    p = profile(fakes)
    f, missing = first_file(fakes, "mp3mike"), SharedFile("@@mike\\gone\\nothing.mp3", "mp3", 10.0)
    if p.empty_enqueue_body:
        assert enqueue(fakes, "mp3mike", f).data == b""
        refused = enqueue(fakes, "mp3mike", missing)
        assert refused.status == 500 and "File not shared." in json.loads(refused.data)
    else:
        result = json.loads(enqueue(fakes, "mp3mike", f).data)
        assert result["failed"] == [] and Z_STAMP.match(result["enqueued"][0]["requestedAt"])
        again = json.loads(enqueue(fakes, "mp3mike", f).data)  # already in progress: skipped
        assert again["enqueued"] == [] and again["failed"] == ([{}] if p.failed_as_objects else [f.path])
    [record] = [t for t in fakes.slskd_state.transfers.values()]
    view = transfer(fakes, record.id)
    assert ("startOffset" in view) == p.start_offset and ("stateDescription" in view) == p.state_description
    assert ("removed" in view) == p.removed_field and ("attempts" in view) == p.attempts_field
    assert LOCAL_STAMP.match(view["requestedAt"]) and no_nulls(view)


def test_download_succeeds_and_lands_where_slskd_puts_it(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    f = first_file(fakes, "vinylvault")
    assert client.transfers.enqueue("vinylvault", [{"filename": f.path, "size": f.size}]) is True
    [group] = client.transfers.get_all_downloads()
    [directory] = group["directories"]
    assert group["username"] == "vinylvault" and directory["directory"] == f.path.rsplit("\\", 1)[0]
    first = directory["files"][0]
    assert LOCAL_STAMP.match(first["requestedAt"]) and no_nulls(first) and "endedAt" not in first
    if profile(fakes).empty_enqueue_body:
        assert first["state"] == "Initializing"  # <= 0.23 answered once the peer had queued it
    else:
        assert first["state"] == "Queued, Locally" and "startedAt" not in first
        fakes.clock.advance(0.7)
        assert client.transfers.get_download("vinylvault", first["id"])["state"] == "Requested"
    fakes.clock.advance(5)
    done = client.transfers.get_download("vinylvault", first["id"])
    assert done["state"] == "Completed, Succeeded" and done["bytesTransferred"] == f.size
    assert Z_STAMP.match(done["startedAt"]) and Z_STAMP.match(done["endedAt"])
    assert LOCAL_STAMP.match(done["enqueuedAt"]) and TIMESPAN.match(done["elapsedTime"])
    assert done["percentComplete"] == 100.0 and done["bytesRemaining"] == 0
    assert done["remainingTime"] == "00:00:00"
    parts = f.path.split("\\")
    local = os.path.join(fakes.downloads_dir, parts[-2], parts[-1])
    assert os.path.getsize(local) == f.size
    audio = mutagen.File(local)
    assert audio is not None and abs(audio.info.length - f.duration) < 0.01
    assert [n for n in os.listdir(os.path.dirname(local)) if n.startswith(".")] == []
    events = http.request("GET", api(fakes, "/events"), headers={"X-API-Key": fakes.slskd_api_key})
    assert events.headers["X-Total-Count"] == "1"
    assert json.loads(json.loads(events.data)[0]["data"])["localFilename"] == local
    assert client.transfers.remove_completed_downloads()
    assert client.transfers.get_all_downloads() == []
    with pytest.raises(requests.HTTPError) as err:
        client.transfers.get_downloads("vinylvault")
    assert err.value.response.status_code == 404


def test_name_collision_gets_ticks_suffix(latest: Fakes) -> None:
    f = first_file(latest, "vinylvault")
    enqueue_one(latest, "vinylvault", f)
    latest.clock.advance(10)
    slskd_client(latest).transfers.get_all_downloads()
    enqueue_one(latest, "vinylvault", f)  # the old completed record is superseded
    latest.clock.advance(10)
    [group] = slskd_client(latest).transfers.get_all_downloads()
    assert len(group["directories"][0]["files"]) == 1
    names = sorted(os.listdir(os.path.join(latest.downloads_dir, f.path.split("\\")[-2])))
    assert len(names) == 2 and sum(bool(re.search(r"_\d{18}\.flac$", n)) for n in names) == 1


def test_peer_behaviours_and_their_real_texts(fakes: Fakes) -> None:
    p = profile(fakes)
    users = (
        ("queue_queen", "staller", "flaky")
        if p.empty_enqueue_body
        else ("queue_queen", "grumpy", "staller", "flaky")
    )
    ids = {u: enqueue_one(fakes, u, first_file(fakes, u))["id"] for u in users}
    fakes.clock.advance(2)
    assert transfer(fakes, ids["queue_queen"])["state"] == "Queued, Remotely"
    if p.empty_enqueue_body:  # <= 0.23 waited for the peer: a refusal fails the whole POST
        refused = enqueue(fakes, "grumpy", first_file(fakes, "grumpy"))
        assert refused.status == 500 and "Transfer rejected: Too many megabytes" in json.loads(refused.data)
    else:
        rejected = transfer(fakes, ids["grumpy"])
        assert rejected["state"] == "Completed, Rejected"
        assert rejected["exception"] == "Transfer rejected: Too many megabytes"
    fakes.clock.advance(400)
    stalled = transfer(fakes, ids["staller"])
    assert stalled["state"] == "Completed, TimedOut" and stalled["exception"] == INACTIVITY_MESSAGE
    assert 0 < stalled["bytesTransferred"] < stalled["size"]
    failed = transfer(fakes, ids["flaky"])
    assert failed["state"] == "Completed, Errored" and failed["exception"] == "Remote connection closed"
    assert failed.get("attempts", 0) == (3 if p.retries else 0)
    fakes.clock.advance(600)
    assert transfer(fakes, ids["queue_queen"])["state"] == "Completed, Succeeded"
    with pytest.raises(requests.HTTPError) as err:
        slskd_client(fakes).transfers.enqueue(
            "ghost_peer", [{"filename": first_file(fakes, "ghost_peer").path, "size": 1}]
        )
    assert err.value.response.status_code == 500
    assert err.value.response.json() == "User ghost_peer appears to be offline"


def test_a_stalled_transfer_times_out_after_15_seconds_without_bytes(fakes: Fakes) -> None:
    fakes.slskd_state.change({"retry_attempts": 1})
    with peer(fakes, "staller", upload_speed=100_000):
        record = enqueue_one(fakes, "staller", first_file(fakes, "staller"))
    fakes.clock.advance(2)
    stalling = transfer(fakes, record["id"])
    assert stalling["state"] == "InProgress" and stalling["bytesTransferred"] > 0
    fakes.clock.advance(12)  # the bytes stopped within the first two seconds
    assert transfer(fakes, record["id"])["state"] == "InProgress"
    fakes.clock.advance(6)
    timed_out = transfer(fakes, record["id"])
    assert (
        timed_out["state"] == "Completed, TimedOut"
        and timed_out["bytesTransferred"] == stalling["bytesTransferred"]
    )


def test_an_enqueue_the_peer_never_acknowledges_fails_after_180_seconds(fakes: Fakes) -> None:
    fakes.slskd_state.change({"retry_attempts": 1})
    with peer(fakes, "mp3mike", behaviour="unresponsive"):
        record = enqueue_one(fakes, "mp3mike", first_file(fakes, "mp3mike"))
        fakes.clock.advance(170)
        assert transfer(fakes, record["id"])["state"] == "Requested"
        fakes.clock.advance(20)
        late = transfer(fakes, record["id"])
    if profile(fakes).enqueue_ack_limit:
        assert late["state"] == "Completed, TimedOut" and late["exception"] == ACK_LIMIT_MESSAGE
    else:
        assert late["state"] == "Requested"  # <= 0.23 has no hard limit


def test_version_026_retries_errored_downloads(latest: Fakes) -> None:
    fakes = latest
    with peer(fakes, "flaky", upload_speed=100_000):
        f = first_file(fakes, "flaky")
        record = enqueue_one(fakes, "flaky", f)
        assert record["attempts"] == 0
        fakes.clock.advance(2)
        first = transfer(fakes, record["id"])
        assert first["state"] == "Completed, Errored" and first["attempts"] == 1
        again = json.loads(enqueue(fakes, "flaky", f).data)  # the retry has not given up yet
        assert again["enqueued"] == [] and again["failed"] == [{}]
        # The first back-off is 5 s; then the record is `Queued, Locally` for half a second.
        fakes.clock.advance(time_of(first["endedAt"]) + 5.2 - fakes.clock.now())
        retrying = transfer(fakes, record["id"])
        assert retrying["state"] == "Queued, Locally" and retrying["attempts"] == 2
        assert "exception" not in retrying and "endedAt" not in retrying
        fakes.clock.advance(60)
        final = transfer(fakes, record["id"])
        assert final["state"] == "Completed, Errored" and final["attempts"] == 3
        fakes.clock.advance(600)
        assert transfer(fakes, record["id"])["attempts"] == 3  # attempts used up: final
    rejected = enqueue_one(fakes, "grumpy", first_file(fakes, "grumpy"))
    fakes.clock.advance(60)
    assert transfer(fakes, rejected["id"])["attempts"] == 1  # a rejection is never retried


def test_cancel_is_asynchronous_and_remove_only_hides_completed(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    record = enqueue_one(fakes, "slowpoke", first_file(fakes, "slowpoke"))
    fakes.clock.advance(5)
    assert client.transfers.get_download("slowpoke", record["id"])["state"] == "InProgress"
    if profile(fakes).remove_before_complete_fails:
        with pytest.raises(requests.HTTPError) as err:
            client.transfers.cancel_download("slowpoke", record["id"], remove=True)
        assert err.value.response.status_code == 500  # <= 0.24: cancelled, then the remove failed
    else:
        assert client.transfers.cancel_download("slowpoke", record["id"], remove=True)
    # The download task notices its cancellation later: one more read shows the old state.
    assert client.transfers.get_download("slowpoke", record["id"])["state"] == "InProgress"
    cancelled = client.transfers.get_download("slowpoke", record["id"])
    assert cancelled["state"] == "Completed, Cancelled" and cancelled["exception"] == CANCELLED_MESSAGE
    assert "endedAt" in cancelled
    assert client.transfers.get_downloads("slowpoke")["username"] == "slowpoke"  # still listed
    assert client.transfers.cancel_download("slowpoke", record["id"], remove=True)
    assert client.transfers.get_all_downloads() == []
    assert client.transfers.get_all_downloads(includeRemoved=True)[0]["username"] == "slowpoke"
    unknown = http.request(
        "DELETE",
        api(fakes, f"/transfers/downloads/slowpoke/{uuid.uuid4()}?remove=true"),
        headers={"X-API-Key": fakes.slskd_api_key},
    )
    assert unknown.status == (404 if profile(fakes).remove_before_complete_fails else 204)


def test_enqueue_validation_and_mismatches(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    f = first_file(fakes, "vinylvault")
    for files in ([], [{"filename": "@@x\\..\\a.flac", "size": 1}], [{"size": 1}]):
        with pytest.raises(requests.HTTPError) as err:
            client.transfers.enqueue("vinylvault", files)
        assert err.value.response.status_code == 400
    with pytest.raises(requests.HTTPError) as err:
        client.transfers.enqueue("vinylvault", [{"filename": f.path, "size": f.size}] * 2)
    assert err.value.response.status_code == 500
    client.transfers.enqueue("vinylvault", [{"filename": f.path, "size": f.size + 1}])
    fakes.clock.advance(2)
    [aborted] = [t for d in client.transfers.get_downloads("vinylvault")["directories"] for t in d["files"]]
    assert aborted["state"] == "Completed, Aborted"
    assert (
        aborted["exception"]
        == f"Transfer aborted: the remote size of {f.size} does not match expected size {f.size + 1}"
    )
    missing = [{"filename": "@@vinyl\\Nope\\01 - nothing.flac", "size": 10}]
    if profile(fakes).empty_enqueue_body:
        with pytest.raises(requests.HTTPError):
            client.transfers.enqueue("vinylvault", missing)
    else:
        client.transfers.enqueue("vinylvault", missing)
        fakes.clock.advance(2)
        states = {
            t["filename"]: t
            for d in client.transfers.get_downloads("vinylvault")["directories"]
            for t in d["files"]
        }
        assert states[missing[0]["filename"]]["exception"] == "File not shared."


def test_two_enqueue_slots_and_429_for_a_third(fakes: Fakes) -> None:
    fakes.slskd_state.change({"peer_connect_seconds": 0.5})
    statuses: list[int] = []
    bodies: list[Any] = []

    def one(index: int) -> None:
        response = enqueue(fakes, "vinylvault", fakes.slskd_state.peers["vinylvault"].files[index])
        statuses.append(response.status)
        bodies.append((response.status, response.headers.get("Retry-After"), response.data))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(5)
    if profile(fakes).concurrency_limits:
        assert sorted(statuses) == [201, 201, 429]
        [(_, retry_after, body)] = [b for b in bodies if b[0] == 429]
        assert retry_after is None and json.loads(body) == BUSY_MESSAGE
    else:
        assert statuses == [201, 201, 201]


def test_usernames_that_need_encoding(latest: Fakes) -> None:
    client = slskd_client(latest)
    for name in ODD_USERNAMES:
        record = enqueue_one(latest, name, first_file(latest, name))
        assert record["username"] == name
        assert get(latest, f"/transfers/downloads/{quote(name, safe='')}")["username"] == name
        assert (
            get(latest, f"/transfers/downloads/{quote(name, safe='')}/{record['id']}")["id"] == record["id"]
        )
        cancel = http.request(
            "DELETE",
            api(latest, f"/transfers/downloads/{quote(name, safe='')}/{record['id']}"),
            headers={"X-API-Key": latest.slskd_api_key},
        )
        assert cancel.status == 204
        if "/" not in name:  # slskd-api quotes with safe="/": only a "/" breaks it
            assert client.transfers.get_downloads(name)["username"] == name
    # slskd-api sends "Lo/Fi fan" as two path segments ("Lo", then "Fi fan" taken for a transfer
    # id), and real slskd routes that the same way: the client's quoting is at fault.
    with pytest.raises(requests.HTTPError) as err:
        client.transfers.get_downloads("Lo/Fi fan")
    assert err.value.response.status_code == 400


def test_old_versions_keep_a_slash_encoded(fakes: Fakes) -> None:
    response = enqueue(fakes, "Lo/Fi fan", first_file(fakes, "Lo/Fi fan"))
    if profile(fakes).decodes_slash:
        assert response.status == 201
    else:  # the username arrives as "Lo%2FFi fan", which is nobody
        assert response.status == 500 and "Lo%2FFi fan appears to be offline" in json.loads(response.data)


def test_connections_are_kept_alive_and_closed_when_idle(latest: Fakes) -> None:
    pool = urllib3.HTTPConnectionPool("127.0.0.1", latest.slskd.port, maxsize=1, retries=False)
    headers = {"X-API-Key": latest.slskd_api_key}
    for _ in range(5):
        assert pool.request("GET", "/slskd/api/v0/application", headers=headers).status == 200
    assert pool.num_connections == 1  # one connection served all five
    latest.clock.advance(131)  # Kestrel closes a connection idle for 130 s
    assert latest.slskd.connections(idle=True) == 0
    # The client sees the close before it sends, and connects again.
    assert pool.request("GET", "/slskd/api/v0/application", headers=headers).status == 200
    pool.close()


def test_logout_control(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    control(fakes.slskd.url, "/_fake/slskd/logout")
    server = client.server.state()
    assert server["state"] == "Disconnected"
    assert "address" not in server and server["isLoggedIn"] is False
    with pytest.raises(requests.HTTPError) as err:
        client.searches.search_text("Aurora Vale")
    assert err.value.response.status_code == 409 and "currently: Disconnected" in err.value.response.json()
    f = first_file(fakes, "vinylvault")
    with pytest.raises(requests.HTTPError) as err:
        client.transfers.enqueue("vinylvault", [{"filename": f.path, "size": f.size}])
    assert err.value.response.status_code == 500
    control(fakes.slskd.url, "/_fake/slskd/login")
    assert client.server.state()["state"] == "Connected, LoggedIn"
    assert client.server.disconnect() and not client.server.state()["isLoggedIn"]
    assert client.server.connect() and client.server.state()["isLoggedIn"]


def test_settings_control(latest: Fakes) -> None:
    url = latest.slskd.url
    assert control(url, "/_fake/slskd/settings", method="GET")["version"] == DEFAULT_VERSION
    changed = control(url, "/_fake/slskd/settings", {"version": "0.25", "retry_attempts": 5})
    assert changed["version"] == "0.25" and changed["retry_attempts"] == 5
    assert slskd_client(latest).application.version() == "0.25.1"
    for bad in ({"version": "9.9"}, {"nope": 1}):
        assert (
            http.request("POST", url + "/_fake/slskd/settings", body=json.dumps(bad).encode()).status == 400
        )


def test_fault_kinds(latest: Fakes) -> None:
    fakes = latest
    url, headers = fakes.slskd.url, {"X-API-Key": fakes.slskd_api_key}
    target = api(fakes, "/server")
    control(url, "/_fake/faults", {"kind": "status", "path": "/api/v0/server", "status": 503, "times": 1})
    response = http.request("GET", target, headers=headers)
    assert response.status == 503 and isinstance(json.loads(response.data), str)
    assert http.request("GET", target, headers=headers).status == 200  # expired after one use
    control(url, "/_fake/faults", {"kind": "rate_limit", "path": "/api/v0/server", "seconds": 7, "times": 1})
    response = http.request("GET", target, headers=headers)
    assert response.status == 429 and response.headers["Retry-After"] == "7"
    control(url, "/_fake/faults", {"kind": "edge", "path": "/api/v0/server", "times": 1})
    response = http.request("GET", target, headers=headers)
    assert response.status == 502 and b"<title>502 Bad Gateway</title>" in response.data
    assert "Retry-After" not in response.headers
    control(url, "/_fake/faults", {"kind": "drop", "path": "/api/v0/server", "method": "GET", "times": 2})
    for _ in range(2):
        with pytest.raises(urllib3.exceptions.ProtocolError):
            http.request("GET", target, headers=headers, retries=False)
    assert http.request("GET", target, headers=headers).status == 200
    rule = control(url, "/_fake/faults", {"kind": "delay", "path": "/api/v0/server", "seconds": 0.4})
    assert rule["times"] is None
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        http.request("GET", target, headers=headers, timeout=urllib3.Timeout(connect=1, read=0.1))
    started = time.monotonic()
    assert http.request("GET", target, headers=headers).status == 200
    assert time.monotonic() - started >= 0.4
    assert len(control(url, "/_fake/faults", method="GET")["faults"]) == 1
    control(url, "/_fake/faults", method="DELETE")
    assert control(url, "/_fake/faults", method="GET")["faults"] == []
    bad = http.request("POST", url + "/_fake/faults", body=b'{"kind": "explode"}')
    assert bad.status == 400


def test_clock_control_and_restart(tmp_path: Any) -> None:
    fakes = start_fakes(str(tmp_path / "downloads"))
    try:
        before = fakes.clock.now()
        assert control(fakes.slskd.url, "/_fake/clock", {"advance": 3600})["now"] >= before + 3600
        client = slskd_client(fakes)
        port = fakes.slskd.port
        assert client.server.state()["isLoggedIn"]  # a kept-alive connection in the client's pool
        fakes.slskd.stop()
        with pytest.raises(requests.ConnectionError):
            client.server.state()
        fakes.slskd.start()
        assert fakes.slskd.port == port and client.server.state()["isLoggedIn"]
    finally:
        fakes.stop()


@contextmanager
def peer(fakes: Fakes, username: str, **changes: Any) -> Iterator[None]:
    """Change a fake peer through the control API for a block, then put it back."""
    url = fakes.slskd.url
    before = next(
        p for p in control(url, "/_fake/slskd/peers", method="GET")["peers"] if p["username"] == username
    )
    control(url, "/_fake/slskd/peers", {"username": username, **changes})
    try:
        yield
    finally:
        control(url, "/_fake/slskd/peers", {"username": username, **{k: before[k] for k in changes}})
