"""Issue 12's dashboard hardening in a real browser (Debian chromium): the Content-Security-Policy fits what the
pages load (no violation on any page, htmx and the window editor included), logging out revokes the session
server-side (the old cookie, put back, gets the log-in page), and no other site can frame the dashboard."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.support import admin_api, api_post, chat
from tests.support.gateway import MASTER_KEY, GatewayServer

pytestmark = pytest.mark.browser

TIMEOUT_MS = 10_000
# Runs before any page script (injected by the browser, not subject to the page's policy).
_RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture
def context(browser: Browser, gateway: GatewayServer) -> Iterator[BrowserContext]:
    opened = browser.new_context(base_url=gateway.base_url, viewport={"width": 1280, "height": 900})
    opened.set_default_timeout(TIMEOUT_MS)
    opened.add_init_script(_RECORD_VIOLATIONS)
    try:
        yield opened
    finally:
        opened.close()


def _console_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def _violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__cspViolations")
    return found


def _log_in(page: Page) -> None:
    page.goto("/ui/keys")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("Key").fill(MASTER_KEY)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Keys")).to_be_visible()


def test_no_content_security_policy_violation_on_any_dashboard_page(
    context: BrowserContext, gateway: GatewayServer
) -> None:
    """Headers added by issue 12: a strict CSP (no inline script or style, no eval). Every page, the htmx filter,
    the budget meter and the window editor work under it, and the browser reports no violation."""
    with admin_api(gateway) as api:
        key = api_post(api, "/key/generate", {"key_alias": "csp-meter", "max_budget": 0.001, "budget_duration": "1d"})
    assert chat(gateway, key["key"]).status_code == 200
    page = context.new_page()
    errors = _console_errors(page)
    _log_in(page)
    assert page.evaluate("typeof htmx") == "object"
    page.get_by_label("Filter").fill("csp-meter")  # htmx swaps the results in, without a page load
    expect(page.locator("#list-results")).to_contain_text("csp-meter")
    expect(page).to_have_url(re.compile(r"q=csp-meter"))
    assert _violations(page) == []
    pages = ["/ui/", f"/ui/keys/view/{key['token']}", "/ui/teams", "/ui/users", "/ui/keys/new", "/ui/keys/view/none"]
    for path in pages:
        page.goto(path)
        assert _violations(page) == [], path
    page.goto(f"/ui/keys/view/{key['token']}")
    meter = page.locator(".meter-spent").first
    assert meter.evaluate("element => getComputedStyle(element).width") != "0px"  # spent 20% of the budget
    page.goto("/ui/keys/new")
    page.get_by_role("button", name="Add window").click()
    expect(page.locator(".wrow")).to_have_count(1)
    assert _violations(page) == []
    assert [error for error in errors if "Content Security Policy" in error or "Refused" in error] == []
    assert [e for e in errors if "404" not in e] == []  # the missing key's page is a 404, nothing else failed


def test_logout_revokes_the_session_in_the_browser(context: BrowserContext) -> None:
    """Bug: logout left the session valid server-side. The old cookie, restored after logging out, is refused."""
    page = context.new_page()
    _log_in(page)
    stolen = [cookie for cookie in context.cookies() if cookie["name"] == "ledgergate_session"]
    assert len(stolen) == 1 and stolen[0]["httpOnly"] and stolen[0]["sameSite"] == "Lax"
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert not any(cookie["name"] == "ledgergate_session" for cookie in context.cookies())
    context.add_cookies(stolen)  # type: ignore[arg-type]
    page.goto("/ui/keys")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))


def test_another_site_cannot_frame_the_dashboard(context: BrowserContext, gateway: GatewayServer) -> None:
    """X-Frame-Options: DENY and frame-ancestors 'none': the log-in page does not render inside a frame."""
    page = context.new_page()
    errors = _console_errors(page)
    page.set_content(f'<iframe id="victim" src="{gateway.base_url}/ui/login"></iframe>')
    page.wait_for_timeout(1000)
    frame = page.frame_locator("#victim")
    expect(frame.get_by_role("button", name="Log in")).to_have_count(0)
    assert any("frame" in error.lower() for error in errors), errors
