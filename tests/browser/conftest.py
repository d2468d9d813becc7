"""Fixtures of the dashboard tests: real gateways (tests/support/gateway.py) and Debian's chromium."""

from __future__ import annotations

from tests.support.fixtures import gateway, gateway_factory

__all__ = ["gateway", "gateway_factory"]
