"""Screenshots of the main pages, taken from a gateway with a month of history, for the README.

They go to a temporary directory; with LEDGERGATE_UPDATE_SCREENSHOTS=1 they replace docs/screenshots/*.png.
The test also pins what the pictures are meant to show: the near-limit list, a refusing window with its 429
reason, the adjustment history and the editor's duplicate error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.seed import seed_history
from tests.browser.support import screenshot_dir
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import MASTER_KEY, GatewayServer
from tests.support.timing import fresh_period, scaled_ms

pytestmark = pytest.mark.browser
PAGE_TIMEOUT_MS = scaled_ms(30.0)  # Playwright's waits (actions, expect): a base value, tests/support/timing.py


@pytest.fixture
def seeded_gateway(tmp_path: Path, fake_upstream: FakeUpstream) -> Iterator[GatewayServer]:
    # The seeded "this hour" (and "today") spend must still be this hour's when the pages are checked, up to a
    # few minutes later on a loaded machine: start in an hour with that much of it left (an hour boundary is
    # also every day boundary, UTC).
    fresh_period(3600, needed_s=180)
    server = GatewayServer(tmp_path, fake_upstream.base_url)
    # Playwright's sync API keeps an event loop running in this thread, so the seeding gets its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, seed_history(server.config)).result()
    with server:
        yield server


def _login(page: Page) -> None:
    page.goto("/ui/login")
    page.get_by_label("Key").fill(MASTER_KEY)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_dashboard_screenshots_show_history(browser: Browser, seeded_gateway: GatewayServer, tmp_path: Path) -> None:
    """The main pages render a month of ledger history: totals, charts, windows near and at their limit (with
    the 429 reason), the adjustment history, and the editor's duplicate-window error."""
    out = screenshot_dir(tmp_path)
    context = browser.new_context(base_url=seeded_gateway.base_url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    try:
        _login(page)
        near = page.locator("section[aria-labelledby=near-title]")
        expect(near).to_contain_text("search-reindex")
        expect(near).to_contain_text("support-bot-eu")
        page.screenshot(path=out / "overview.png", full_page=True)

        page.goto("/ui/keys?sort=usage&dir=desc")
        expect(page.locator("tbody tr").first).to_contain_text("support-bot-eu")
        page.screenshot(path=out / "keys.png", full_page=True)
        page.get_by_label("Filter").fill("batch")  # by tag or name; filtered in place by htmx, the URL kept shareable
        expect(page.locator("tbody tr")).to_have_count(2)
        expect(page).to_have_url(re.compile(r"q=batch"))
        page.get_by_label("Filter").fill("")
        expect(page.locator("tbody tr")).to_have_count(6)

        page.get_by_role("link", name="support-bot-eu").click()
        expect(page.locator('[data-refusal="1h"]')).to_contain_text(
            "Budget has been exceeded! Key=support-bot-eu window=1h"
        )
        expect(page.locator("[data-adjustments]")).to_contain_text("INC-4711")
        page.screenshot(path=out / "key-detail.png", full_page=True)

        page.goto("/ui/keys/new")
        page.get_by_label("Alias").fill("checkout-service")
        page.get_by_label("Team").select_option("search")
        rows = page.locator(".wrow")
        for preset, maximum in (("hourly", "2"), ("daily", "30"), ("custom", "25")):
            page.get_by_role("button", name="Add window").click()
            row = rows.last
            row.get_by_label("Duration", exact=True).select_option(preset)
            if preset == "custom":
                row.get_by_label("Custom duration").fill("24h")
            row.get_by_label("Max $ per period").fill(maximum)
        expect(rows.last.locator("[data-row-error]")).to_contain_text("duplicate window: 'daily' and '24h'")
        page.screenshot(path=out / "create-key.png", full_page=True)
    finally:
        context.close()
