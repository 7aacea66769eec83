"""The web console in a real headless browser (Debian's ``chromium`` driven by selenium through
``chromedriver``): open ``/ui``, see the checkout sagas, open the paused one, see its journal
steps, visit its actor, resume it with the button, and watch the page follow.

Screenshots go to the directory named by ``ACTORS_ARTIFACTS`` (CI keeps ``.ci/artifacts``),
else to pytest's tmp_path. The test is skipped, with the reason, only where chromium or
chromedriver is not installed; under CI (``CI`` set) their absence is a failure, since
``.ci/run`` installs them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

import actors
from actors._http._site import serve_node
from actors.testing import open_test_node
from examples.checkout_saga import TYPES, Checkout, Clients, Order, Stage, app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = (
    "Debian's chromium and chromium-driver are not installed"
    " (apt-get install -y chromium chromium-driver; .ci/run installs them)"
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

WAIT = 20.0
"""Seconds a browser expectation may take (the pages refresh every few seconds)."""


def order(customer: str, *items: str) -> Order:
    return Order(
        customer=customer,
        email=f"{customer}@example.com",
        items=items or ("apple",),
        amount_cents=1250,
        warehouse="north",
    )


def _artifacts(tmp_path: Path) -> Path:
    named = os.environ.get("ACTORS_ARTIFACTS")
    folder = Path(named) if named else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open_browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None and CHROMEDRIVER is not None
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1300,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium-manager never looks for one on the network.
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Browser:
    """The steps of the test, run in a worker thread (selenium blocks)."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots

    def wait(self, condition: Callable[[Any], Any], what: str) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT, poll_frequency=0.1).until(condition, what)

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        found: list[Any] = self.driver.find_elements(By.CSS_SELECTOR, selector)
        return found

    def text_of(self, selector: str) -> str:
        def read(_: Any) -> str | None:
            from selenium.common.exceptions import StaleElementReferenceException

            try:
                text: str = self.css(selector).text
                return text
            except StaleElementReferenceException:
                return None  # the live region was just replaced

        text: str = self.wait(read, f"text of {selector}")
        return text

    def shoot(self, name: str) -> Path:
        """A screenshot of the whole page (the window grows to its height for the shot)."""
        path = self.shots / name
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1300, min(max(int(height) + 120, 1000), 5000))
        try:
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.set_window_size(1300, 1000)
        assert path.stat().st_size > 1000, path
        return path

    def console_errors(self) -> list[str]:
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
        ]


def _drive(
    browser: Browser, *, done: str, declined: str, paused: str, start_another: Callable[[], str]
) -> dict[str, str]:
    from selenium.common.exceptions import StaleElementReferenceException

    d = browser.driver
    seen: dict[str, str] = {}

    # 1. The list: every saga with its key and status; the script is running (the toggle).
    d.get(browser.base + "/ui")
    browser.wait(lambda _: browser.all("#invocations tbody tr"), "the invocations table")
    table = browser.text_of("#invocations")
    for key in ("order-1", "order-2", "order-3", "north"):
        assert key in table, table
    assert "paused" in table and "completed" in table
    toggle = browser.css("#refresh-toggle")
    assert toggle.is_displayed()
    assert toggle.text.startswith("Auto-refresh: every")

    # 2. Auto-refresh: a saga started now appears without reloading the page.
    fresh = start_another()
    browser.wait(
        lambda _: fresh in browser.text_of("#invocations"), "the new saga to appear by itself"
    )
    # The pause toggle stops the refresh (and says so); on again.
    toggle.click()
    assert browser.text_of("#refresh-toggle") == "Auto-refresh: paused"
    browser.css("#refresh-toggle").click()
    assert browser.text_of("#refresh-toggle").startswith("Auto-refresh: every")
    seen["list"] = str(browser.shoot("console-invocations.png"))

    # 3. Filters: paused ones only.
    from selenium.webdriver.support.ui import Select

    Select(browser.css("#filter-status")).select_by_value("paused")
    browser.css("form#filters button[type=submit]").click()
    browser.wait(lambda _: "status=paused" in d.current_url, "the filtered list")
    rows = browser.all("#invocations tbody tr")
    assert len(rows) == 1 and paused in rows[0].text

    # 4. Open the paused saga: its journal steps, their attempts, its error and arguments.
    browser.css(f'a.inv[href="/ui/invocations/{paused}"]').click()
    browser.wait(lambda _: browser.all("#journal li[data-step]"), "the journal")
    steps = [li.get_attribute("data-step") for li in browser.all("#journal li[data-step]")]
    assert steps == ["reserve", "charge"], steps
    journal = browser.text_of("#journal")
    assert "2 attempts" in journal  # the charge retried in place once
    assert "res-order-3" in journal and "ch-order-3" in journal
    assert "mail server timed out" in journal
    assert "carol@example.com" in browser.text_of("#arguments")
    assert browser.css("#output").text == "Not finished yet."
    seen["invocation"] = str(browser.shoot("console-invocation.png"))

    # 5. Its actor: state and mailbox.
    browser.css('p.crumbs a[href="/ui/actors/Checkout/order-3"]').click()
    browser.wait(lambda _: browser.all("#mailbox"), "the actor page")
    assert browser.css("#actor-key").text == "order-3"
    state = browser.text_of("#state")
    assert "order" in state and "carol" in state
    assert paused in browser.text_of("#mailbox")
    seen["actor"] = str(browser.shoot("console-actor.png"))

    # 6. Back to the invocation and resume it: the page follows it to completion.
    browser.css(f'#mailbox a[href="/ui/invocations/{paused}"]').click()
    browser.wait(lambda _: browser.all("#action-resume"), "the resume button")
    browser.css("#action-resume").click()

    def completed(_: Any) -> bool:
        try:
            return "completed" in browser.css("#facts").text
        except StaleElementReferenceException:
            return False

    browser.wait(completed, "the resumed saga to complete")
    flash = browser.text_of("#flash")
    assert flash.startswith("Resume: done"), flash
    output = browser.text_of("#output")
    assert '"stage": "completed"' in output, output
    assert not browser.all("#action-resume")
    seen["resumed"] = str(browser.shoot("console-resumed.png"))

    # 7. A refused action shows the API's message: kill a finished invocation.
    d.get(f"{browser.base}/ui/invocations/{declined}")
    assert '"stage": "failed"' in browser.text_of("#output")
    assert "card declined" in browser.text_of("#output")
    d.get(f"{browser.base}/ui/invocations/{done}")
    steps = [e.text for e in browser.all(".timeline .step")]
    # kept with the retained record: the steps, then the send to fulfillment
    assert steps == ["reserve", "charge", "email", "Fulfillment.request"], steps

    errors = browser.console_errors()
    assert errors == [], errors  # no CSP violation, no script error
    return seen


async def test_console_in_a_browser(tmp_path: Path) -> None:
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {MISSING}")
        pytest.skip(MISSING)
    shots = _artifacts(tmp_path)
    world = Clients()
    world.inventory.stock.update({"apple": 10, "pear": 3})
    world.payments.declined.add("bob")
    options = actors.NodeOptions(
        retry_policy=actors.RetryPolicy(
            initial_interval=timedelta(milliseconds=20), max_attempts=2
        ),
        completed_retention=timedelta(hours=1),
    )
    async with (
        open_test_node(tmp_path / "node", app(world), types=TYPES, options=options) as node,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(partial(serve_node, node, port=0))
        ok = await node.call(Checkout.place, "order-1", order("alice"))
        assert ok.stage is Stage.COMPLETED
        failed = await node.call(Checkout.place, "order-2", order("bob"))
        assert failed.stage is Stage.FAILED and failed.compensated == ("rel-res-order-2",)
        # The third saga's charge retries in place once, then the mailer stays down: it pauses
        # with two steps in its journal.
        world.payments.unreachable = 1
        world.mailer.flaky = 1_000
        paused = await node.send(Checkout.place, "order-3", order("carol", "pear"))
        await node.wait_idle()
        assert node.get_invocation(paused).status is actors.InvocationStatus.PAUSED
        world.mailer.flaky = 0  # the resume button will find the mailer back
        records = node.list_invocations(actor_type="Checkout")
        by_key = {r.actor.key: str(r.id) for r in records}

        def start_another() -> str:
            trio.from_thread.run(node.call, Checkout.place, "order-4", order("dave"))
            return "order-4"

        driver = await trio.to_thread.run_sync(_open_browser, tmp_path / "profile")
        try:
            browser = Browser(driver, f"http://127.0.0.1:{port}", shots)
            seen = await trio.to_thread.run_sync(
                partial(
                    _drive,
                    browser,
                    done=by_key["order-1"],
                    declined=by_key["order-2"],
                    paused=paused,
                    start_another=start_another,
                )
            )
        finally:
            await trio.to_thread.run_sync(driver.quit)
        assert node.get_state("Checkout", "order-3")["stage"] is Stage.COMPLETED
        nursery.cancel_scope.cancel()
    for path in seen.values():
        assert Path(path).is_file()
