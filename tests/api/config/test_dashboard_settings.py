"""general_settings of the dashboard's session cookie: dashboard_secure_cookies and the session timeouts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ledgergate.config import ConfigError, load_config

WriteConfig = Callable[[str], Path]


def test_dashboard_session_settings_default_to_auto_and_twelve_hours() -> None:
    settings = load_config(None, environ={}).settings
    assert settings.dashboard_secure_cookies == "auto"
    assert settings.dashboard_session_idle_timeout_s == 2 * 3600
    assert settings.dashboard_session_max_age_s == 12 * 3600


def test_dashboard_session_settings_are_read(write_config: WriteConfig) -> None:
    path = write_config(
        "general_settings:\n  dashboard_secure_cookies: always\n"
        "  dashboard_session_idle_timeout_s: 900\n  dashboard_session_max_age_s: 3600\n"
    )
    settings = load_config(path, environ={}).settings
    assert (settings.dashboard_secure_cookies, settings.dashboard_session_idle_timeout_s) == ("always", 900)
    assert settings.dashboard_session_max_age_s == 3600
    assert "dashboard_secure_cookies" not in settings.extra


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("dashboard_secure_cookies: yes", r"dashboard_secure_cookies: must be one of auto, always, never"),
        ("dashboard_secure_cookies: sometimes", r"dashboard_secure_cookies: must be one of auto, always, never"),
        ("dashboard_session_idle_timeout_s: 0", r"dashboard_session_idle_timeout_s: must be a positive integer"),
        ("dashboard_session_max_age_s: 1.5", r"dashboard_session_max_age_s: must be a positive integer"),
        ("dashboard_session_max_age_s: 99999999999999999999", r"dashboard_session_max_age_s: must be at most"),
    ],
)
def test_dashboard_session_settings_refuse_bad_values(write_config: WriteConfig, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(f"general_settings:\n  {line}\n"), environ={})
