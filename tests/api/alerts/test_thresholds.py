"""Which thresholds a window's spend has reached, and how thresholds are given (entity fields, config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgergate.config import ConfigError, GatewaySettings, load_config
from ledgergate.domain.alerts import (
    DEFAULT_ALERT_THRESHOLDS,
    SOFT_BUDGET_THRESHOLD,
    AlertEvent,
    parse_alert_thresholds,
    reached_crossings,
)
from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity
from ledgergate.domain.errors import InvalidInput
from ledgergate.services.budget_fields import apply_budget_fields


def _fractions(spent: int, limit: int, thresholds: tuple[float, ...] = DEFAULT_ALERT_THRESHOLDS) -> list[float]:
    return [c.fraction for c in reached_crossings(spent, limit, thresholds) if c.fraction is not None]


def test_reached_crossings_compare_exactly_at_the_threshold() -> None:
    """80% of 100 nanos is reached at exactly 80 nanos, not one nano later (no float noise in the trigger)."""
    assert _fractions(79, 100) == []
    assert _fractions(80, 100) == [0.8]
    assert _fractions(90, 100) == [0.8, 0.9]
    assert _fractions(100, 100) == [0.8, 0.9, 1.0]
    assert _fractions(7, 10, (0.7,)) == [0.7]  # 0.7 x 10 is 7.000000000000001 in floats


def test_reached_crossings_zero_spend_reaches_nothing() -> None:
    """A zero budget (or soft budget) is not "100% used" before anything was spent."""
    assert reached_crossings(0, 0, DEFAULT_ALERT_THRESHOLDS, soft_budget_nanos=0) == []
    assert _fractions(1, 0) == [0.8, 0.9, 1.0]


def test_reached_crossings_soft_budget_is_its_own_event() -> None:
    """The soft budget is an absolute amount with its own claim key, independent of the fraction thresholds."""
    crossings = reached_crossings(50, 100, DEFAULT_ALERT_THRESHOLDS, soft_budget_nanos=50)
    assert [(c.event, c.threshold, c.fraction) for c in crossings] == [
        (AlertEvent.SOFT_BUDGET, SOFT_BUDGET_THRESHOLD, None)
    ]
    assert reached_crossings(49, 100, DEFAULT_ALERT_THRESHOLDS, soft_budget_nanos=50) == []


def test_parse_alert_thresholds_sorts_and_deduplicates() -> None:
    """Equal thresholds share one claim key (1 and 1.0), so they can never alert twice."""
    assert parse_alert_thresholds([1, 0.5, 1.0, 0.5]) == (0.5, 1.0)


@pytest.mark.parametrize("value", [[0], [1.5], [-0.1], ["0.8"], [True], 0.8, [float("nan")], [0.1] * 21])
def test_parse_alert_thresholds_rejects_non_fractions(value: object) -> None:
    """Only numbers in (0, 1] are fractions of a budget; anything else is a 400 naming the field."""
    with pytest.raises(InvalidInput) as caught:
        parse_alert_thresholds(value)
    assert caught.value.field.startswith("alert_thresholds")


def test_apply_budget_fields_stores_alert_thresholds_in_extra() -> None:
    """alert_thresholds is accepted on every entity, kept with its other extra fields; null restores the default."""
    entity = Entity(EntityType.TEAM, "t", extra={"members_with_roles": []})
    updated = apply_budget_fields(entity, {"alert_thresholds": [0.9, 0.5]})
    assert updated.extra == {"members_with_roles": [], "alert_thresholds": [0.5, 0.9]}
    assert apply_budget_fields(updated, {"max_budget": 1}).extra == updated.extra
    assert apply_budget_fields(updated, {"alert_thresholds": None}).extra == {"members_with_roles": []}
    with pytest.raises(InvalidInput):
        apply_budget_fields(entity, {"alert_thresholds": [2]})


def _load(tmp_path: Path, alerting: str) -> GatewaySettings:
    path = tmp_path / "config.yaml"
    path.write_text(f"general_settings:\n  alerting:\n{alerting}", encoding="utf-8")
    return load_config(path, environ={}).settings


def test_config_alerting_settings_defaults_and_overrides(tmp_path: Path) -> None:
    """general_settings.alerting carries the webhook, the default thresholds and the retry schedule."""
    settings = _load(tmp_path, "    webhook_url: http://hooks.example/x\n")
    assert settings.alert_thresholds == (0.8, 0.9, 1.0)
    assert settings.alerting_webhook_max_attempts == 5
    settings = _load(
        tmp_path,
        "    alert_thresholds: [0.5, 1]\n    webhook_max_attempts: 3\n    webhook_timeout_s: 2\n"
        "    webhook_retry_backoff_s: 0.5\n    resend_interval_s: 60\n",
    )
    assert (
        settings.alert_thresholds,
        settings.alerting_webhook_max_attempts,
        settings.alerting_webhook_timeout_s,
        settings.alerting_webhook_backoff_s,
        settings.alerting_resend_interval_s,
    ) == ((0.5, 1.0), 3, 2.0, 0.5, 60.0)


@pytest.mark.parametrize(
    ("alerting", "message"),
    [
        ("    alert_thresholds: [0.5, 2]\n", "general_settings.alerting.alert_thresholds[1]"),
        ("    webhook_max_attempts: 0\n", "general_settings.alerting.webhook_max_attempts"),
        ("    webhook_timeout_s: -1\n", "general_settings.alerting.webhook_timeout_s"),
    ],
)
def test_config_alerting_settings_errors_name_the_key(tmp_path: Path, alerting: str, message: str) -> None:
    """A wrong alerting value is a config error naming its full path."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _load(tmp_path, alerting)
