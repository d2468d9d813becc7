"""Makes the shared fixtures available here until the root ``tests/conftest.py`` imports them for everyone."""

from tests.support.fixtures import fake_upstream

__all__ = ["fake_upstream"]
