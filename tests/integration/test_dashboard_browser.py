"""`troy dashboard` in a real headless browser: Debian's chromium driven by selenium.

A real run (a work-unit service, a local pilot, one unit failing with a
message on stderr) is served by the dashboard on a free loopback port; the
page must show the pilot, the unit counts and the failed unit's stderr, and
its counts must follow units submitted after it loaded. A screenshot is saved
to $TROY_TEST_ARTIFACTS (else the test's tmp directory; the path is printed),
and to docs/images/dashboard.png when TROY_UPDATE_DOC_IMAGES=1.

The browser comes from `bash scripts/browser.sh install` (scripts/test.sh runs
it); without it the test skips, or fails under TROY_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from services import unavailable

from troy import PilotJobService, WorkUnitService
from troy.plugins.registry import open_coordination

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "bash scripts/browser.sh install"
FLAGS = [
    "--headless=new",
    "--no-sandbox",  # chromium refuses to start as root without it
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,1120",
    # Chromium otherwise looks up update servers in the background: loopback only.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
]
DOC_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "dashboard.png"
WAIT = 60  # seconds: a loaded two-core machine makes a browser 5-10 times slower


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            unavailable(f"no headless browser: {path} is missing ({INSTALL})")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[test]')")
    pytest.importorskip("uvicorn", reason="troy[dashboard] is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    # An explicit driver path keeps selenium-manager from looking for one on the network.
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield browser
    browser.quit()


def sleeper(seconds: float, name: str) -> dict[str, Any]:
    return {"executable": "/bin/sleep", "arguments": [str(seconds)], "name": name}


FAILING = {
    "executable": "/bin/sh",
    "arguments": ["-c", "sleep 0.3; echo 'ValueError: the-unit-said-boom' >&2; exit 3"],
    "name": "failing",
}


def text_of(browser: Any, selector: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        # textContent: as the page wrote it, whatever CSS does to the case
        return str(browser.find_element(By.CSS_SELECTOR, selector).get_attribute("textContent"))
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def wait_for(browser: Any, selector: str, shows: Callable[[str], bool], expected: str) -> None:
    """Wait until ``shows`` the element's text; fail saying what it showed instead."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(browser, WAIT, poll_frequency=0.2).until(
            lambda b: shows(text_of(b, selector))
        )
    except TimeoutException:
        pytest.fail(f"{selector} never showed {expected}; it shows {text_of(browser, selector)!r}")


def wait_for_text(browser: Any, selector: str, expected: str) -> None:
    wait_for(browser, selector, lambda text: expected in text, repr(expected))


def wait_for_count(browser: Any, box: str, expected: int) -> None:
    """Wait until the page's count of ``box`` (a state, or "total") is ``expected``."""
    wait_for(browser, f"#count-{box} b", lambda text: text == str(expected), str(expected))


def choose_state(browser: Any, state: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "filter")).select_by_value(state)


def save_screenshot(browser: Any, tmp_path: Path) -> Path:
    directory = Path(os.environ.get("TROY_TEST_ARTIFACTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / "dashboard.png"
    assert browser.save_screenshot(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"dashboard screenshot: {png}")
    if os.environ.get("TROY_UPDATE_DOC_IMAGES") == "1":
        DOC_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, DOC_IMAGE)
        print(f"dashboard screenshot copied to {DOC_IMAGE}")
    return png


def test_the_page_shows_a_live_run_and_follows_it(
    driver: Any,
    services: tuple[PilotJobService, WorkUnitService],
    coordination_url: str,
    tmp_path: Path,
) -> None:
    from troy.cli import dashboard

    pilots, units = services
    pilot = pilots.create("fork://localhost", {"number_of_processes": 2})
    first = [sleeper(0.2 + 0.1 * (i % 4), f"step-{i}") for i in range(6)]
    submitted = units.submit([*first, FAILING])
    units.wait(timeout=WAIT)
    failed = next(u for u in submitted if u.description.get("name") == "failing")

    coordination = open_coordination(coordination_url, serve=False)
    server, url = dashboard.open_dashboard(coordination, None, "127.0.0.1", 0)
    server.start()
    try:
        driver.get(url)
        wait_for_text(driver, f'[id="pilot-{pilot.id}"]', str(pilot.id))
        wait_for_text(driver, f'[id="pilot-{pilot.id}"]', "fork://localhost")
        wait_for_count(driver, "Done", 6)
        wait_for_count(driver, "Failed", 1)
        wait_for_count(driver, "total", 7)
        wait_for_text(driver, f'[id="failed-{failed.id}"] pre', "ValueError: the-unit-said-boom")
        wait_for_text(driver, "#units", "exit code 3")
        choose_state(driver, "Failed")  # the unit table's filter
        wait_for_text(driver, "#shown", "1 shown")
        assert "step-0" not in text_of(driver, "#units")
        choose_state(driver, "")
        wait_for_text(driver, "#shown", "7 shown")

        # Units submitted after the page loaded: its counts follow them.
        later = units.submit([sleeper(0.3 + 0.1 * i, f"later-{i}") for i in range(4)])
        wait_for_count(driver, "total", 11)
        for unit in later:
            unit.wait(timeout=WAIT)
        wait_for_count(driver, "Done", 10)
        wait_for_text(driver, "#timeline", f"{pilot.id} slot 1")
        save_screenshot(driver, tmp_path)
    finally:
        server.stop()
        coordination.close()
