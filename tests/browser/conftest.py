"""Fixtures of the dashboard tests: real gateways (tests/support/gateway.py) and Debian's chromium."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.browser.support import CHROMIUM_ARGS, require_chromium
from tests.support.fixtures import gateway, gateway_factory
from tests.support.timing import scaled_ms

__all__ = ["gateway", "gateway_factory"]

# Playwright's assertions (expect) wait 5 s by default, apart from the contexts' default timeout: scale them too.
expect.set_options(timeout=scaled_ms(30.0))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
