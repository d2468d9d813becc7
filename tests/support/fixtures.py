"""Shared pytest fixtures; ``tests/conftest.py`` imports them so every test package can request them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_upstream import FakeUpstream


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    """One mock provider for the whole session; call ``.reset()`` before asserting on ``.received()``."""
    with FakeUpstream() as upstream:
        yield upstream
