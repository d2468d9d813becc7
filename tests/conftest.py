"""Shared fixtures; support code lives in tests/support."""

from tests.support.fixtures import fake_upstream

__all__ = ["fake_upstream"]
