"""Contract tests of the fake slskd, driven through the real `slskd-api` client and plain urllib3."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import mutagen
import pytest
import requests
import urllib3
from fakes_fixtures import control, http, no_nulls, slskd_client

from harmony.fakes import Fakes, start_fakes
from harmony.fakes.peers import SharedFile

Z_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
LOCAL_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
TIMESPAN = re.compile(r"^(\d+\.)?\d\d:\d\d:\d\d(\.\d{7})?$")


@pytest.fixture
def fakes(tmp_path: Any) -> Iterator[Fakes]:
    running = start_fakes(str(tmp_path / "downloads"), seed=1, slskd_url_base="/slskd")
    try:
        yield running
    finally:
        running.stop()


def api(fakes: Fakes, path: str) -> str:
    return f"{fakes.slskd_url}/api/v0{path}"


def first_file(fakes: Fakes, username: str) -> SharedFile:
    return fakes.slskd_state.peers[username].files[0]


def enqueue(fakes: Fakes, username: str, f: SharedFile) -> dict[str, Any]:
    """Enqueue one file with plain HTTP (slskd-api throws the response body away)."""
    body = json.dumps([{"filename": f.path, "size": f.size}]).encode()
    response = http.request(
        "POST",
        api(fakes, f"/transfers/downloads/{username}"),
        body=body,
        headers={"X-API-Key": fakes.slskd_api_key, "Content-Type": "application/json"},
    )
    assert response.status == 201, response.data
    result = json.loads(response.data)
    assert result["failed"] == []
    return result["enqueued"][0]


def test_application_server_options(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    assert client.application.version() == "0.25.1"
    state = client.application.state()
    assert state["server"]["state"] == "Connected, LoggedIn" and state["server"]["isLoggedIn"] is True
    assert client.server.state()["ipEndPoint"].endswith(":2271")
    assert client.options.get()["directories"]["downloads"] == fakes.downloads_dir
    assert client.users.status("vinylvault") == {"presence": "Online", "isPrivileged": False}
    assert client.users.status("ghost_peer")["presence"] == "Offline"


def test_api_key_url_base_and_trailing_slash(fakes: Fakes) -> None:
    for headers in ({}, {"X-API-Key": "wrong-key-wrong-key"}):
        response = http.request("GET", api(fakes, "/application"), headers=headers)
        assert response.status == 401 and response.data == b""
    good = {"X-API-Key": fakes.slskd_api_key}
    assert http.request("GET", api(fakes, "/server/"), headers=good).status == 200
    # The URL base is optional in front of the API, as with UsePathBase.
    assert http.request("GET", f"{fakes.slskd.url}/api/v0/server", headers=good).status == 200
    assert http.request("GET", api(fakes, "/nope"), headers=good).data == b""
    assert http.request("GET", f"{fakes.slskd.url}/health").status == 200


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


def test_search_traps_and_locked_files(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    bootleg = next(f for f in fakes.slskd_state.peers["bootlegger"].files if f.variant == "live")
    words = bootleg.path.split("\\")[-1].split(" - ", 1)[1].rsplit(".", 1)[0]
    search = client.searches.search_text(words, searchTimeout=5000)
    fakes.clock.advance(60)
    responses = {r["username"]: r for r in client.searches.search_responses(search["id"])}
    assert any("(Live)" in f["filename"] for f in responses["bootlegger"]["files"])
    locked = client.searches.search_text(
        "Music", minimumResponseFileCount=1, responseLimit=500, fileLimit=10**6
    )
    fakes.clock.advance(60)
    by_user = {r["username"]: r for r in client.searches.search_responses(locked["id"])}
    assert by_user["lockbox"]["lockedFileCount"] == len(by_user["lockbox"]["lockedFiles"]) > 0
    larry = client.searches.search_text("media music", responseLimit=1)
    fakes.clock.advance(60)
    assert client.searches.state(larry["id"])["state"] == "Completed, ResponseLimitReached"


def test_search_stop_and_validation(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    search = client.searches.search_text("Aurora Vale")
    assert client.searches.stop(search["id"])
    assert client.searches.state(search["id"])["state"] == "Completed, Cancelled"
    headers = {"X-API-Key": fakes.slskd_api_key}
    for body in (
        {"searchText": "  "},
        {"searchText": "-live -remix"},
        {"searchText": "x", "searchTimeout": 1},
    ):
        response = http.request(
            "POST", api(fakes, "/searches"), body=json.dumps(body).encode(), headers=headers
        )
        assert response.status == 400 and isinstance(json.loads(response.data), str)


def test_one_search_creation_at_a_time(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    control(fakes.slskd.url, "/_fake/slskd/search-busy", {"times": 1})
    with pytest.raises(requests.HTTPError) as err:
        client.searches.search_text("Aurora Vale")
    assert err.value.response.status_code == 429
    assert err.value.response.json().startswith("Only one concurrent operation is permitted")
    assert client.searches.search_text("Aurora Vale")["state"] == "Requested"


def test_download_succeeds_and_lands_where_slskd_puts_it(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    f = first_file(fakes, "vinylvault")
    assert client.transfers.enqueue("vinylvault", [{"filename": f.path, "size": f.size}]) is True
    [group] = client.transfers.get_all_downloads()
    [directory] = group["directories"]
    assert group["username"] == "vinylvault" and directory["directory"] == f.path.rsplit("\\", 1)[0]
    transfer = directory["files"][0]
    assert transfer["state"] == "Queued, Locally" and LOCAL_STAMP.match(transfer["requestedAt"])
    assert no_nulls(transfer) and "startedAt" not in transfer and "endedAt" not in transfer
    fakes.clock.advance(0.7)
    assert client.transfers.get_download("vinylvault", transfer["id"])["state"] == "Requested"
    fakes.clock.advance(5)
    done = client.transfers.get_download("vinylvault", transfer["id"])
    assert done["state"] == "Completed, Succeeded" and done["bytesTransferred"] == f.size
    assert Z_STAMP.match(done["startedAt"]) and Z_STAMP.match(done["endedAt"])
    assert LOCAL_STAMP.match(done["enqueuedAt"]) and TIMESPAN.match(done["elapsedTime"])
    assert done["percentComplete"] == 100.0 and done["bytesRemaining"] == 0
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


def test_name_collision_gets_ticks_suffix(fakes: Fakes) -> None:
    f = first_file(fakes, "vinylvault")
    enqueue(fakes, "vinylvault", f)
    fakes.clock.advance(10)
    slskd_client(fakes).transfers.get_all_downloads()
    enqueue(fakes, "vinylvault", f)  # the old completed record is superseded
    fakes.clock.advance(10)
    [group] = slskd_client(fakes).transfers.get_all_downloads()
    assert len(group["directories"][0]["files"]) == 1
    names = sorted(os.listdir(os.path.join(fakes.downloads_dir, f.path.split("\\")[-2])))
    assert len(names) == 2 and sum(bool(re.search(r"_\d{18}\.flac$", n)) for n in names) == 1


def test_peer_behaviours(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    ids = {
        u: enqueue(fakes, u, first_file(fakes, u))["id"]
        for u in ("queue_queen", "grumpy", "staller", "flaky")
    }
    fakes.clock.advance(2)

    def state(user: str) -> dict[str, Any]:
        return client.transfers.get_download(user, ids[user])

    assert state("queue_queen")["state"] == "Queued, Remotely"
    rejected = state("grumpy")
    assert rejected["state"] == "Completed, Rejected" and rejected["exception"] == "Too many megabytes"
    fakes.clock.advance(400)
    stalled = state("staller")
    assert stalled["state"] == "InProgress" and 0 < stalled["bytesTransferred"] < stalled["size"]
    fakes.clock.advance(300)
    assert state("staller")["bytesTransferred"] == stalled["bytesTransferred"]
    failed = state("flaky")
    assert failed["state"] == "Completed, Errored" and "exception" in failed
    fakes.clock.advance(300)
    assert state("queue_queen")["state"] == "Completed, Succeeded"
    with pytest.raises(requests.HTTPError) as err:
        client.transfers.enqueue(
            "ghost_peer", [{"filename": first_file(fakes, "ghost_peer").path, "size": 1}]
        )
    assert err.value.response.status_code == 500
    assert err.value.response.json() == "User ghost_peer appears to be offline"


def test_cancel_and_remove(fakes: Fakes) -> None:
    client = slskd_client(fakes)
    transfer = enqueue(fakes, "slowpoke", first_file(fakes, "slowpoke"))
    fakes.clock.advance(5)
    assert client.transfers.get_download("slowpoke", transfer["id"])["state"] == "InProgress"
    assert client.transfers.cancel_download("slowpoke", transfer["id"], remove=True)
    cancelled = client.transfers.get_download("slowpoke", transfer["id"])
    assert cancelled["state"] == "Completed, Cancelled" and "endedAt" in cancelled
    # Cancellation is asynchronous in slskd: the record stays until a later remove.
    assert client.transfers.get_downloads("slowpoke")["username"] == "slowpoke"
    assert client.transfers.cancel_download("slowpoke", transfer["id"], remove=True)
    assert client.transfers.get_all_downloads() == []
    assert client.transfers.get_all_downloads(includeRemoved=True)[0]["username"] == "slowpoke"
    response = http.request(
        "DELETE",
        api(fakes, "/transfers/downloads/slowpoke/not-a-guid"),
        headers={"X-API-Key": fakes.slskd_api_key},
    )
    assert response.status == 400


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
    client.transfers.enqueue("vinylvault", [{"filename": "@@vinyl\\Nope\\01 - nothing.flac", "size": 10}])
    fakes.clock.advance(2)
    states = {
        t["filename"]: t
        for d in client.transfers.get_downloads("vinylvault")["directories"]
        for t in d["files"]
    }
    assert states[f.path]["state"] == "Completed, Aborted"
    assert states["@@vinyl\\Nope\\01 - nothing.flac"]["exception"] == "File not shared."


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


def test_fault_kinds(fakes: Fakes) -> None:
    url, headers = fakes.slskd.url, {"X-API-Key": fakes.slskd_api_key}
    target = api(fakes, "/server")
    control(url, "/_fake/faults", {"kind": "status", "path": "/api/v0/server", "status": 503, "times": 1})
    response = http.request("GET", target, headers=headers)
    assert response.status == 503 and isinstance(json.loads(response.data), str)
    assert http.request("GET", target, headers=headers).status == 200  # expired after one use
    control(url, "/_fake/faults", {"kind": "rate_limit", "path": "/api/v0/server", "seconds": 7, "times": 1})
    response = http.request("GET", target, headers=headers)
    assert response.status == 429 and response.headers["Retry-After"] == "7"
    control(url, "/_fake/faults", {"kind": "drop", "path": "/api/v0/server", "method": "GET", "times": 2})
    for _ in range(2):
        with pytest.raises(urllib3.exceptions.ProtocolError):
            http.request("GET", target, headers=headers)
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


def test_clock_control_and_restart(fakes: Fakes) -> None:
    before = fakes.clock.now()
    assert control(fakes.slskd.url, "/_fake/clock", {"advance": 3600})["now"] >= before + 3600
    client = slskd_client(fakes)
    port = fakes.slskd.port
    fakes.slskd.stop()
    with pytest.raises(requests.ConnectionError):
        client.server.state()
    fakes.slskd.start()
    assert fakes.slskd.port == port and client.server.state()["isLoggedIn"]
