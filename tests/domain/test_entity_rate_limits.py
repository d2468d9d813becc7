"""An entity's rate limits are typed once, from its stored ``extra``, not parsed again on every request."""

from __future__ import annotations

from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.rate_limits import RateLimitField


def test_an_entity_carries_its_rate_limits_typed_from_extra() -> None:
    key = Entity(EntityType.KEY, "k", extra={"rpm_limit": 5, "tpm_limit": 100, "key_name": "sk-...x"})
    assert dict(key.rate_limits.limits) == {RateLimitField.RPM: 5, RateLimitField.TPM: 100}


def test_a_changed_entity_has_the_rate_limits_of_its_new_extra() -> None:
    key = Entity(EntityType.KEY, "k", extra={"rpm_limit": 5})
    changed = key.updated(extra={"max_parallel_requests": 2})
    assert dict(changed.rate_limits.limits) == {RateLimitField.PARALLEL: 2}


def test_malformed_stored_limits_are_ignored_not_raised() -> None:
    """Hand-written rows: booleans, strings, zero and negatives limit nothing (as before)."""
    key = Entity(EntityType.KEY, "k", extra={"rpm_limit": True, "tpm_limit": "7", "max_parallel_requests": -1})
    assert dict(key.rate_limits.limits) == {}


def test_rate_limits_do_not_take_part_in_equality() -> None:
    assert Entity(EntityType.KEY, "k", extra={"rpm_limit": 5}) == Entity(EntityType.KEY, "k", extra={"rpm_limit": 5})
