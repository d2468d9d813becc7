"""Readers of single ``general_settings`` values: each checks one setting and names it when it is wrong."""

from __future__ import annotations

import re
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledgergate.config_values import ConfigError, Section
from ledgergate.domain.alerts import parse_alert_thresholds
from ledgergate.domain.errors import InvalidInput

MetricsAuth = Literal["admin", "none"]  # admin: a proxy admin's or proxy admin viewer's key; none: anyone

DEFAULT_REDIS_KEY_PREFIX = "lg"
REDIS_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# The entities that may label the request, token and spend metrics; every label multiplies their series.
METRICS_LABEL_CHOICES = ("model", "key", "team", "tag", "customer")
DEFAULT_METRICS_LABELS = ("model", "team")


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"general_settings.timezone: unknown IANA time zone {name!r}") from exc
    return name


def alerting_settings(section: Section) -> dict[str, Any]:
    """The GatewaySettings fields of ``general_settings.alerting``."""
    fields: dict[str, Any] = {"alerting_webhook_url": section.text("webhook_url")}
    if section.values.get("alert_thresholds") is not None:
        try:
            fields["alert_thresholds"] = parse_alert_thresholds(section.values["alert_thresholds"])
        except InvalidInput as exc:
            raise ConfigError(f"{section.where}.{exc}") from exc
    for key, name in (
        ("webhook_timeout_s", "alerting_webhook_timeout_s"),
        ("webhook_retry_backoff_s", "alerting_webhook_backoff_s"),
        ("resend_interval_s", "alerting_resend_interval_s"),
    ):
        value = section.number(key, None, positive=True)
        if value is not None:
            fields[name] = value
    if (attempts := section.positive_int("webhook_max_attempts")) is not None:
        fields["alerting_webhook_max_attempts"] = attempts
    return fields


def metrics_labels(section: Section) -> tuple[str, ...]:
    value = section.values.get("metrics_labels")
    if value is None:
        return DEFAULT_METRICS_LABELS
    allowed = ", ".join(METRICS_LABEL_CHOICES)
    if not isinstance(value, list) or any(label not in METRICS_LABEL_CHOICES for label in value):
        raise section.fail("metrics_labels", f"must be a list of {allowed}, got {value!r}")
    return tuple(dict.fromkeys(value))


def metrics_auth(section: Section) -> MetricsAuth:
    """``metrics_auth``; the older ``metrics_require_auth`` flag still works when ``metrics_auth`` is not given."""
    legacy = section.flag("metrics_require_auth", True)
    if section.values.get("metrics_auth") is None and "metrics_require_auth" in section.values:
        return "admin" if legacy else "none"
    return cast(MetricsAuth, section.choice("metrics_auth", ("admin", "none")))



MAX_SESSION_S = 366 * 86400


def session_seconds(section: Section, key: str, default: int) -> int:
    value = section.positive_int(key) or default
    if value > MAX_SESSION_S:
        raise section.fail(key, f"must be at most {MAX_SESSION_S} (366 days), got {value!r}")
    return value


def redis_url(section: Section, override: str | None) -> str | None:
    redis_url = override or section.text("redis_url")
    if redis_url and not redis_url.lower().startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"redis_url {redis_url!r} must start with redis://, rediss:// or unix://")
    return redis_url


def redis_key_prefix(section: Section) -> str:
    redis_key_prefix = cast(str, section.text("redis_key_prefix", DEFAULT_REDIS_KEY_PREFIX))
    if not REDIS_KEY_PATTERN.fullmatch(redis_key_prefix):
        raise section.fail(
            "redis_key_prefix", f"must be 1-64 letters, digits, '_', '.' or '-', got {redis_key_prefix!r}"
        )
    return redis_key_prefix
