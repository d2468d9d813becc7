"""Fixtures of the dashboard tests: real gateways (tests/support/gateway.py) and Debian's chromium."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.fixtures import gateway, gateway_factory
from tests.support.timing import scaled_ms

__all__ = ["gateway", "gateway_factory"]

# Playwright's assertions (expect) wait 5 s by default, apart from the contexts' default timeout: scale them too.
expect.set_options(timeout=scaled_ms(30.0))
