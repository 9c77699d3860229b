"""The web UI in a real browser: Debian's Chromium, headless, driven by selenium against a real
`harmony demo` process (the fake Spotify and slskd, a connected user, three watched artists).

The flows a user follows, with script on (htmx, the event stream) and off (plain forms): log in,
add an artist, pause and resume it, change its priority, see a release become wanted (the
wanted page updating itself over server-sent events), open an item and its history, skip and
unskip it; open an item and see its candidates with their reasons, mark its file wrong and see
it wanted again, pick a slow peer's file, watch the download's progress bar advance over
server-sent events, see the album arrive in the library with its cover; retry a quarantined
file and read the refusal next to its row; cancel a download; log out. On every page: no CSP
violation or script error in the console, no serious or critical axe-core finding, nothing
wider than a 375 px phone, and a screenshot at desktop and phone width in reports/ui/. Skipped,
saying why, where Chromium or its driver is missing; .ci/run installs both.

The fakes' clock is Harmony's demo clock for Spotify and slskd: the tests move it forward to
release a single and to make a slow peer's download progress. While an item's file is picked,
a fault on the fake slskd keeps its search from finishing, so the item stays `searching` (a
state a pick is allowed in) however slow the machine is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from test_boot import free_port, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOTS = os.path.join(ROOT, "reports", "ui")
AXE = os.path.join(ROOT, "tests", "vendor", "axe-core", "axe.min.js")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

try:
    from selenium import webdriver
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
        WebDriverException,
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - the test extras install selenium
    webdriver = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(webdriver is None, reason="selenium is not installed (pip install -e '.[test]')"),
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)",
    ),
]

DESKTOP, PHONE = 1280, 375


class Harmony:
    """A `harmony demo` child process on a free port, with its admin key and fake Spotify."""

    def __init__(self, tmp: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = open(os.path.join(tmp, "stdout.txt"), "w+")  # noqa: SIM115 - closed in stop()
        self.err = open(os.path.join(tmp, "stderr.txt"), "w+")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if not k.startswith("HARMONY_")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harmony",
                "demo",
                "--data-dir",
                os.path.join(tmp, "data"),
                "--server-port",
                str(self.port),
                "--server-threads",
                "12",
                "--transfers-poll-interval",
                "2s",
            ],
            stdout=self.out,
            stderr=self.err,
            env=env,
            text=True,
        )
        self.key = self.spotify = self.slskd = ""
        deadline = time.monotonic() + 30
        while not self.key:
            self.out.seek(0)
            text = self.out.read()
            if match := re.search(r"Admin API key: (\S+)", text):
                self.key = match.group(1)
                self.spotify = re.search(r"fake Spotify at (\S+),", text).group(1)  # type: ignore[union-attr]
                self.slskd = re.search(r"fake slskd at (\S+)", text).group(1)  # type: ignore[union-attr]
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                self.err.seek(0)
                pytest.fail(f"harmony demo did not start: {text} {self.err.read()[-2000:]}")
            else:
                time.sleep(0.1)
        wait_until(f"{self.url}/live", 200, 20)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"X-API-Key": self.key, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def advance_fake_clock(self, seconds: float) -> None:
        request = urllib.request.Request(
            self.spotify + "/_fake/clock",
            data=json.dumps({"advance": seconds}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=5).close()

    def fault(self, rule: dict[str, Any]) -> int:
        """Add a fault rule to the fake slskd; returns its id."""
        request = urllib.request.Request(
            self.slskd + "/_fake/faults",
            data=json.dumps(rule).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(json.loads(resp.read())["id"])

    def clear_fault(self, number: int) -> None:
        request = urllib.request.Request(f"{self.slskd}/_fake/faults/{number}", method="DELETE")
        urllib.request.urlopen(request, timeout=5).close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any) -> Iterator[Harmony]:
    running = Harmony(str(tmp_path_factory.mktemp("browser")))
    try:
        yield running
    finally:
        running.stop()


def make_driver(tmp: str, *, script: bool = True) -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp}",
        f"--window-size={DESKTOP},900",
    ):
        options.add_argument(flag)
    if not script:
        options.add_argument("--blink-settings=scriptEnabled=false")
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: Any) -> Iterator[Any]:
    driver = make_driver(str(tmp_path_factory.mktemp("chromium")))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def plain(tmp_path_factory: Any) -> Iterator[Any]:
    """A second browser with script switched off: only plain links and forms."""
    driver = make_driver(str(tmp_path_factory.mktemp("chromium-noscript")), script=False)
    try:
        yield driver
    finally:
        driver.quit()


# --- helpers -----------------------------------------------------------------------------------


def wait(driver: Any, condition: Any, seconds: float = 15, message: str = "") -> Any:
    # A swap or a page load may replace an element between finding it and reading it: look
    # again (Chromium then says the node is stale, or that it "does not belong to the document").
    ignored = (StaleElementReferenceException, NoSuchElementException, WebDriverException)
    return WebDriverWait(driver, seconds, poll_frequency=0.1, ignored_exceptions=ignored).until(
        condition, message
    )


def css(driver: Any, selector: str) -> Any:
    return driver.find_element(By.CSS_SELECTOR, selector)


def text_of(driver: Any, selector: str = "main") -> str:
    """The element's text; looked up again if a swap replaced it between finding and reading."""
    for _ in range(4):
        try:
            return str(css(driver, selector).text)
        except StaleElementReferenceException:
            time.sleep(0.1)
    return str(css(driver, selector).text)


def settled(driver: Any) -> None:
    """The page has loaded and htmx has nothing in flight."""
    wait(driver, lambda d: d.execute_script("return document.readyState") == "complete")
    wait(
        driver,
        lambda d: d.execute_script("return !document.querySelector('.htmx-request')") is not False,
    )


def console_problems(driver: Any) -> list[str]:
    """Console entries that mean something is wrong: CSP violations, script errors, failed loads."""
    problems = []
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        if entry.get("level") == "SEVERE" or "Content Security Policy" in message or "Refused to" in message:
            problems.append(message)
    return problems


def axe_findings(driver: Any) -> list[str]:
    """Serious and critical axe-core violations on the current page."""
    with open(AXE, encoding="utf-8") as handle:
        driver.execute_script(handle.read())  # through the driver, so the page's CSP does not apply
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations), e => done(String(e)));"
    )
    assert isinstance(result, list), result
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result
        if v.get("impact") in ("serious", "critical")
    ]


def screenshot(driver: Any, name: str) -> None:
    """The whole page at desktop and at phone width, into reports/ui/; the phone view must not
    be wider than the phone."""
    os.makedirs(SHOTS, exist_ok=True)
    for label, width in (("desktop", DESKTOP), ("phone", PHONE)):
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width == PHONE},
        )
        height = min(3000, int(driver.execute_script("return document.documentElement.scrollHeight")))
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": max(600, height), "deviceScaleFactor": 1, "mobile": width == PHONE},
        )
        if width == PHONE:
            wide = driver.execute_script("return document.documentElement.scrollWidth")
            assert wide <= PHONE + 1, f"{name} is {wide} px wide on a {PHONE} px phone"
        driver.save_screenshot(os.path.join(SHOTS, f"{name}-{label}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def check_page(driver: Any, name: str, shots: bool = True) -> None:
    """Every page: clean console, no serious accessibility finding, screenshots."""
    settled(driver)
    assert not console_problems(driver), f"{name}: {console_problems(driver)}"
    findings = axe_findings(driver)
    assert not findings, f"{name}: " + "\n".join(findings)
    if shots:
        screenshot(driver, name)
    assert not console_problems(driver), name


def log_in(driver: Any, server: Harmony) -> None:
    driver.get(server.url + "/ui/")
    wait(driver, lambda d: "/ui/login" in d.current_url)
    css(driver, "#api_key").send_keys(server.key)
    css(driver, "form.stack button[type=submit]").click()
    wait(driver, lambda d: d.current_url.rstrip("/").endswith("/ui"), message="not sent to the dashboard")
    assert "Dashboard" in driver.title


def artist_id(server: Harmony, name: str) -> int:
    for artist in server.api("GET", "/api/v1/artists?limit=100")["items"]:
        if artist["name"] == name:
            return int(artist["id"])
    raise AssertionError(f"{name} is not watched")


# --- with script on -------------------------------------------------------------------------------

PAGES = (
    ("dashboard", "/ui/"),
    ("watchlist", "/ui/watchlist"),
    ("wanted", "/ui/wanted"),
    ("downloads", "/ui/downloads"),
    ("library", "/ui/library"),
    ("library-albums", "/ui/library/albums"),
    ("library-tracks", "/ui/library/tracks"),
    ("quarantine", "/ui/quarantine"),
    ("playlists", "/ui/playlists"),
    ("playlists-mine", "/ui/playlists/mine"),
    ("activity", "/ui/activity"),
    ("jobs", "/ui/jobs"),
    ("settings", "/ui/settings"),
    ("keys", "/ui/keys"),
    ("spotify", "/ui/spotify"),
    ("system", "/ui/system"),
)


def test_login_page_is_clean(browser: Any, server: Harmony) -> None:
    browser.get(server.url + "/ui/login")
    check_page(browser, "login")


def test_log_in_and_every_page_is_clean(browser: Any, server: Harmony) -> None:
    log_in(browser, server)
    for name, path in PAGES:
        browser.get(server.url + path)
        check_page(browser, name)


def test_add_an_artist_by_search(browser: Any, server: Harmony) -> None:
    browser.get(server.url + "/ui/watchlist")
    box = css(browser, "#q")
    box.send_keys("Kite Theory")
    box.submit()
    wait(browser, lambda d: "q=Kite" in d.current_url)
    settled(browser)
    check_page(browser, "watchlist-search")
    css(browser, "button[aria-label='Watch Kite Theory']").click()
    wait(browser, lambda d: "Watching Kite Theory" in text_of(d, "#flash"), message="no confirmation")
    assert "Kite Theory" in text_of(browser, "table")
    assert not console_problems(browser)


def test_pause_resume_and_priority_update_the_row_in_place(browser: Any, server: Harmony) -> None:
    number = artist_id(server, "Kite Theory")
    browser.get(server.url + "/ui/watchlist")
    settled(browser)
    browser.execute_script("document.body.dataset.marker = 'same page'")  # gone after a full load
    row = f"#artist-{number}"
    css(browser, f"{row} button[aria-label='Pause Kite Theory']").click()
    wait(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} button[aria-label='Resume Kite Theory']")
    )
    assert "paused" in text_of(browser, row)
    assert server.api("GET", f"/api/v1/artists/{number}")["paused"] is True
    css(browser, f"{row} button[aria-label='Resume Kite Theory']").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"{row} button[aria-label='Pause Kite Theory']"))
    assert server.api("GET", f"/api/v1/artists/{number}")["paused"] is False
    field = css(browser, f"#priority-{number}")
    field.clear()
    field.send_keys("42")
    field.submit()
    wait(browser, lambda d: server.api("GET", f"/api/v1/artists/{number}")["priority"] == 42)
    wait(browser, lambda d: css(d, f"#priority-{number}").get_attribute("value") == "42")
    assert browser.execute_script("return document.body.dataset.marker") == "same page"  # fragments only
    assert "now has priority 42" in text_of(browser, "#flash")
    assert not console_problems(browser)


def test_a_release_becomes_wanted_and_the_wanted_page_updates_itself(browser: Any, server: Harmony) -> None:
    number = artist_id(server, "Sigrún Hólm")
    browser.get(server.url + f"/ui/wanted?artist={number}")
    settled(browser)
    assert "0 item(s) match" in text_of(browser, "#wanted-table")
    browser.execute_script("document.body.dataset.marker = 'same page'")
    # Her single comes out at the fake Spotify's next midnight: move its clock past it and scan.
    server.advance_fake_clock(600)
    server.api("POST", f"/api/v1/artists/{number}/scan")
    try:
        wait(browser, lambda d: "0 item(s) match" not in text_of(d, "#wanted-table"), 30)
    except TimeoutException:
        pytest.fail(f"the wanted page did not update: {text_of(browser, '#wanted-table')}")
    assert browser.execute_script("return document.body.dataset.marker") == "same page"  # over SSE
    assert not console_problems(browser)
    browser.get(server.url + f"/ui/artists/{number}")
    settled(browser)
    assert "wanted" in text_of(browser, "main")
    check_page(browser, "artist")


def test_open_an_item_see_its_history_skip_and_unskip(browser: Any, server: Harmony) -> None:
    number = artist_id(server, "Sigrún Hólm")
    browser.get(server.url + f"/ui/wanted?artist={number}")
    settled(browser)
    css(browser, "#wanted-table td a").click()
    wait(browser, lambda d: "History" in text_of(d) and re.search(r"/ui/wanted/\d+$", d.current_url))
    settled(browser)
    assert "item.created" in text_of(browser)
    check_page(browser, "wanted-item")
    css(browser, "form[action$='/skip'] button").click()
    wait(browser, lambda d: "skipped by the operator" in text_of(d, "#wanted-live"))
    css(browser, "form[action$='/unskip'] button").click()
    wait(browser, lambda d: "unskipped by the operator" in text_of(d, "#wanted-live"))
    assert "skipped → wanted" in text_of(browser, "#wanted-live")
    assert not console_problems(browser)


# Items the acquisition flows have used (each wants a done item of its own).
USED: set[int] = set()
# Searches never finish while this rule is on: an item stays `searching`, where a pick is allowed.
HELD_SEARCHES = {"kind": "status", "path": "/api/v0/searches", "method": "GET", "status": 503}


def eventually(check: Callable[[], Any], seconds: float, message: str) -> Any:
    """`check()`'s first truthy value, polled every half second; a failure after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.5)


def done_item_with(server: Harmony, username: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A done item (not used by another test) whose last search found `username`'s file
    acceptable, and that candidate; waits for the demo's pipeline to make one."""

    def find() -> tuple[dict[str, Any], dict[str, Any]] | None:
        for item in server.api("GET", "/api/v1/wanted?state=done&limit=200")["items"]:
            if item["id"] in USED:
                continue
            found = server.api("GET", f"/api/v1/wanted/{item['id']}/candidates")["items"]
            mine = [c for c in found if c["username"] == username and c["accepted"]]
            if mine:
                USED.add(item["id"])
                return item, mine[0]
        return None

    return eventually(find, 180, f"no done item had an acceptable file of {username}")  # type: ignore[no-any-return]


def state_of(server: Harmony, item_id: int) -> str:
    return str(server.api("GET", f"/api/v1/wanted/{item_id}")["state"])


def requeue_and_pick(driver: Any, server: Harmony, item: dict[str, Any], pick: dict[str, Any]) -> None:
    """On the item's page: mark its file wrong (it is wanted again), search now, pick `pick`."""
    page = f"{server.url}/ui/wanted/{item['id']}"
    fault = server.fault(HELD_SEARCHES)
    try:
        css(driver, "form[action$='/wrong'] button").click()
        wait(driver, lambda d: "wanted anew" in text_of(d, "#flash"), 20, "no confirmation of the wrong file")
        assert "was the wrong file" in text_of(driver, "main")
        assert state_of(server, item["id"]) in ("wanted", "searching"), "the item is wanted again"
        if driver.find_elements(By.CSS_SELECTOR, "form[action$='/search'] button"):
            css(driver, "form[action$='/search'] button").click()
            wait(
                driver,
                lambda d: "searching now" in text_of(d, "#flash") or "Not searched" in text_of(d, "#flash"),
            )
        eventually(lambda: state_of(server, item["id"]) == "searching", 60, "the item was not searched again")
        button = f"#candidate-{pick['id']} form[action$='/pick'] button"
        if not driver.find_elements(By.CSS_SELECTOR, button):
            driver.get(page)  # without script nothing updates the page by itself
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, button), 20, "no pick button")
        css(driver, button).click()
        wait(driver, lambda d: f"downloading {pick['username']}'s" in text_of(d, "#flash"), 20, "not picked")
    finally:
        server.clear_fault(fault)


def progress_of(driver: Any, transfer_id: int) -> float:
    return float(css(driver, f"#transfer-{transfer_id} progress").get_attribute("value"))


def test_an_items_candidates_pick_progress_over_sse_and_the_album_in_the_library(
    browser: Any, server: Harmony
) -> None:
    server.api("PATCH", "/api/v1/settings", {"search.budget": 1000})  # the demo spends it fast
    item, slow = done_item_with(server, "slowpoke")
    browser.get(f"{server.url}/ui/wanted/{item['id']}")
    settled(browser)
    row = text_of(browser, f"#candidate-{slow['id']}")
    assert "slowpoke" in row and "accepted" in row and slow["reasons"][0] in row, row
    assert "Last search:" in text_of(browser, "#wanted-live")
    check_page(browser, "wanted-item-candidates")

    requeue_and_pick(browser, server, item, slow)
    transfer = eventually(
        lambda: server.api("GET", f"/api/v1/downloads?item={item['id']}&active=true")["items"],
        30,
        "no download under way",
    )[0]
    assert transfer["username"] == "slowpoke"

    browser.get(server.url + "/ui/downloads")
    settled(browser)
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"#transfer-{transfer['id']} progress"))
    browser.execute_script("document.body.dataset.marker = 'same page'")
    for _ in range(3):  # the slow peer sends more as its clock moves; the stream tells the page
        before = progress_of(browser, transfer["id"])
        server.advance_fake_clock(15)
        wait(
            browser,
            lambda d, b=before: progress_of(d, transfer["id"]) > b,
            30,
            "the progress bar stood still",
        )
    assert 0 < progress_of(browser, transfer["id"]) < 100
    assert browser.execute_script("return document.body.dataset.marker") == "same page"  # over SSE
    assert "gives up" in text_of(browser, "#downloads-live") and "unless new bytes arrive" in text_of(
        browser, f"#transfer-{transfer['id']}"
    )
    check_page(browser, "downloads-progress")

    server.advance_fake_clock(600)
    eventually(lambda: state_of(server, item["id"]) == "done", 90, "the picked file was not imported")
    artist = item["album_artist"] or item["artists"][0]
    browser.get(f"{server.url}/ui/library/albums?{urlencode({'artist': artist})}")
    settled(browser)
    link = next(
        a for a in browser.find_elements(By.CSS_SELECTOR, "ul.albums li a") if item["album"] in a.text
    )
    image = link.find_element(By.CSS_SELECTOR, "img")
    # The demo's covers are the fake Spotify's 1x1 JPEG; the placeholder is a 160 px drawing.
    wait(
        browser,
        lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) == 1,
    )
    check_page(browser, "library-albums-cover")
    assert not console_problems(browser)


def test_a_quarantined_files_refusal_is_shown_next_to_its_row(browser: Any, server: Harmony) -> None:
    held = eventually(
        lambda: server.api("GET", "/api/v1/quarantine")["items"], 120, "nothing was quarantined"
    )[0]
    browser.get(server.url + "/ui/quarantine")
    settled(browser)
    row = f"#held-{held['id']}"
    assert held["reason"] in text_of(browser, row)
    css(browser, f"{row} form[action$='/retry'] button").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f"{row}-error"), 20, "no reason next to the row")
    assert text_of(browser, f"{row}-error")  # 409 (its item is done) or 422 (still fails verification)
    check_page(browser, "quarantine-refused")


def test_log_out(browser: Any, server: Harmony) -> None:
    browser.get(server.url + "/ui/")
    settled(browser)
    css(browser, "form.logout button").click()
    wait(browser, lambda d: "/ui/login" in d.current_url)
    browser.get(server.url + "/ui/wanted")
    wait(browser, lambda d: "/ui/login" in d.current_url)
    assert not console_problems(browser)


# --- with script off ------------------------------------------------------------------------------


def test_without_script_the_same_flows_work_as_plain_forms(plain: Any, server: Harmony) -> None:
    log_in(plain, server)
    plain.get(server.url + "/ui/watchlist?q=Saffron+Drift")
    css(plain, "button[aria-label='Watch Saffron Drift']").click()
    wait(plain, lambda d: "Watching Saffron Drift" in text_of(d, "#flash"))
    assert artist_id(server, "Saffron Drift")
    number = artist_id(server, "Aurora Vale")
    plain.get(server.url + "/ui/watchlist")
    css(plain, f"#artist-{number} button[aria-label='Pause Aurora Vale']").click()
    wait(
        plain,
        lambda d: d.find_elements(
            By.CSS_SELECTOR, f"#artist-{number} button[aria-label='Resume Aurora Vale']"
        ),
    )
    assert "Paused Aurora Vale" in text_of(plain, "#flash")
    css(plain, f"#artist-{number} button[aria-label='Resume Aurora Vale']").click()
    wait(plain, lambda d: "Resumed Aurora Vale" in text_of(d, "#flash"))
    field = css(plain, f"#priority-{number}")
    field.clear()
    field.send_keys("7")
    css(plain, f"#artist-{number} form[hx-post] button[type=submit]").click()
    wait(plain, lambda d: "now has priority 7" in text_of(d, "#flash"))
    assert server.api("GET", f"/api/v1/artists/{number}")["priority"] == 7

    item = wait(plain, lambda d: server.api("GET", "/api/v1/wanted?limit=1&state=wanted")["items"], 30)[0]
    plain.get(server.url + f"/ui/wanted/{item['id']}")
    assert "History" in text_of(plain)
    css(plain, "form[action$='/skip'] button").click()
    wait(plain, lambda d: "skipped by the operator" in text_of(d))
    css(plain, "form[action$='/unskip'] button").click()
    wait(plain, lambda d: "unskipped by the operator" in text_of(d))
    assert (
        server.api("GET", f"/api/v1/wanted/{item['id']}")["state"] != "skipped"
    )  # wanted, or already searching

    css(plain, "form.logout button").click()
    wait(plain, lambda d: "/ui/login" in d.current_url)
    assert not console_problems(plain)


def test_without_script_an_item_is_requeued_picked_and_its_download_cancelled(
    plain: Any, server: Harmony
) -> None:
    plain.get(server.url + "/ui/login")
    plain.delete_all_cookies()  # signed out, whatever the test before left
    log_in(plain, server)
    server.api("PATCH", "/api/v1/settings", {"search.budget": 1000})
    item, pick = done_item_with(server, "slowpoke")
    plain.get(f"{server.url}/ui/wanted/{item['id']}")
    assert pick["reasons"][0] in text_of(plain, f"#candidate-{pick['id']}")
    requeue_and_pick(plain, server, item, pick)
    transfer = eventually(
        lambda: server.api("GET", f"/api/v1/downloads?item={item['id']}&active=true")["items"],
        30,
        "no download under way",
    )[0]
    plain.get(server.url + "/ui/downloads")
    row = f"#transfer-{transfer['id']}"
    assert css(plain, f"{row} progress").get_attribute("max") == "100"
    css(plain, f"{row} form[action$='/cancel'] button").click()
    wait(plain, lambda d: "Cancelled" in text_of(d, "#flash"), 20, "not cancelled")
    assert server.api("GET", f"/api/v1/downloads/{transfer['id']}")["state"] == "cancelled"

    plain.get(server.url + "/ui/library")
    css(plain, "form[action='/ui/library/scan'] button").click()
    wait(plain, lambda d: "Library scan" in text_of(d, "#flash") or "already running" in text_of(d, "#flash"))
    css(plain, "form.logout button").click()
    wait(plain, lambda d: "/ui/login" in d.current_url)
    assert not console_problems(plain)
