"""The dashboard in a real browser (Debian chromium through Playwright) against a real gateway and upstream.

One scenario, in the order an admin lives it: log in, create a key with two windows (the editor stops a
duplicate window before anything is sent, the server's own refusal is shown), drive traffic until a window
refuses, see the full bar and the 429 reason, reset the window with a reason, see it admit again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.support import REQUEST_COST_NANOS, chat
from tests.support.gateway import MASTER_KEY, GatewayServer
from tests.support.timing import scaled_ms

pytestmark = pytest.mark.browser

MONTHLY_LIMIT_USD = "0.0001"  # five requests of REQUEST_COST_NANOS
REQUESTS_TO_FILL = 100_000 // REQUEST_COST_NANOS
TIMEOUT_MS = scaled_ms(30.0)  # Playwright's waits (actions, expect): a base value, tests/support/timing.py


@pytest.fixture
def page(browser: Browser, gateway: GatewayServer) -> Iterator[Page]:
    context = browser.new_context(
        base_url=gateway.base_url,
        viewport={"width": 1440, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    opened = context.new_page()
    opened.on("pageerror", lambda error: errors.append(str(error)))
    # The dashboard's Content-Security-Policy (issue 12) must not block anything this scenario uses.
    opened.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    try:
        yield opened
    finally:
        context.close()
    assert errors == [], f"JavaScript errors or CSP violations on the page: {errors}"


def _row_ids(page: Page) -> list[str]:
    return [str(row.get_attribute("data-row-id")) for row in page.locator(".wrow").all()]


def _create_key_with_two_windows(page: Page) -> str:
    """Fill the create-key form, going through the client-side and the server-side refusals; returns the secret."""
    page.get_by_role("link", name="New key").click()
    expect(page.get_by_role("heading", name="New key")).to_be_visible()
    page.get_by_label("Alias").fill("browser-key")
    rows = page.locator(".wrow")

    page.get_by_role("button", name="Add window").click()
    rows.nth(0).get_by_label("Duration", exact=True).select_option("hourly")
    rows.nth(0).get_by_label("Max $ per period").fill("5")
    page.get_by_role("button", name="Add window").click()
    rows.nth(1).get_by_label("Duration", exact=True).select_option("custom")
    rows.nth(1).get_by_label("Custom duration").fill("60m")
    rows.nth(1).get_by_label("Max $ per period").fill(MONTHLY_LIMIT_USD)
    duplicate = rows.nth(1).locator("[data-row-error]")
    expect(duplicate).to_have_text("duplicate window: 'hourly' and '60m' cover the same periods")
    expect(rows.nth(0).locator("[data-row-error]")).to_be_empty()

    # The editor refuses to send the form while a row is invalid.
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("[data-form-error]")).to_contain_text("Not sent: one budget window needs fixing")
    assert page.url.endswith("/ui/keys/new")

    rows.nth(1).get_by_label("Duration", exact=True).select_option("monthly")
    expect(duplicate).to_be_empty()
    ids_before = _row_ids(page)

    # What only the server can judge comes back as its 400 message, with the rows kept under the same ids.
    page.get_by_label("Expires after").fill("1x")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("[data-form-error]")).to_contain_text("duration: '1x' is not a duration")
    assert _row_ids(page) == ids_before
    expect(rows.nth(1).get_by_label("Duration", exact=True)).to_have_value("monthly")
    expect(rows.nth(1).get_by_label("Max $ per period")).to_have_value(MONTHLY_LIMIT_USD)

    page.get_by_label("Expires after").fill("")
    page.get_by_role("button", name="Create key").click()
    secret_field = page.locator("[data-secret]")
    expect(secret_field).to_have_value(re.compile(r"^sk-"))
    secret = secret_field.input_value()
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("[data-copy-status]")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    return secret


def _drive_until_refused(gateway: GatewayServer, secret: str) -> dict[str, Any]:
    for _ in range(REQUESTS_TO_FILL):
        assert chat(gateway, secret).status_code == 200
    refused = chat(gateway, secret)
    assert refused.status_code == 429, refused.text
    error: dict[str, Any] = refused.json()["error"]
    assert error["budget_duration"] == "1mo"
    return error


def test_dashboard_budget_window_lifecycle_in_browser(page: Page, gateway: GatewayServer) -> None:
    """Create -> fill -> refuse -> reset through the dashboard: the page shows what the gateway enforces (the
    full bar, the exact 429 message), duplicate windows never reach the server, and a reset admits again."""
    page.goto("/ui/keys")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("Key").fill(MASTER_KEY)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Keys")).to_be_visible()

    secret = _create_key_with_two_windows(page)
    page.get_by_role("link", name="Open the key").click()
    monthly = page.locator('[data-window-row="1mo"]')
    expect(monthly.locator("[data-level]")).to_have_attribute("data-level", "ok")

    error = _drive_until_refused(gateway, secret)
    page.reload()
    expect(monthly.locator("[data-level]")).to_have_attribute("data-level", "full")
    expect(monthly.locator("[data-pct]")).to_have_text("100%")
    expect(page.locator('[data-refusal="1mo"]')).to_have_text(error["message"])
    expect(page.locator('[data-window-row="1h"] [data-level]')).to_have_attribute("data-level", "ok")

    monthly.get_by_role("button", name="Reset…").click()
    dialog = page.get_by_role("dialog", name="Reset the 1mo window")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Current spend (previous value)")
    expect(dialog.locator("[data-reset-summary]")).to_have_text("Spend in this window goes from $0.0001 to $0.")
    dialog.get_by_label("Reason (kept in the adjustment history)").fill("browser test: unblock the batch")
    dialog.get_by_role("button", name="Reset spend").click()

    expect(page.locator(".flash-success")).to_contain_text("Reset the 1mo window of key 'browser-key': $0.0001 → $0.00")
    expect(monthly.locator("[data-level]")).to_have_attribute("data-level", "ok")
    expect(page.locator('[data-refusal="1mo"]')).to_have_count(0)
    history = page.locator("[data-adjustments]")
    expect(history).to_contain_text("browser test: unblock the batch")
    expect(history).to_contain_text("master_key")
    assert chat(gateway, secret).status_code == 200
