"""Rules of dashboard sessions: expiry and the cookie's Secure flag (issue 12: Secure depended on the scheme
alone, so it was missing behind a TLS-terminating proxy)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledgergate.domain.dashboard_sessions import (
    PrincipalKind,
    SecureCookieMode,
    SessionPolicy,
    cookie_is_secure,
    cookie_name,
    is_alive,
    needs_touch,
    new_record,
)

POLICY = SessionPolicy(idle_timeout_s=100, max_age_s=1000)
POLICY_LONG = SessionPolicy(idle_timeout_s=7200, max_age_s=43200)


@pytest.mark.parametrize(
    ("mode", "scheme", "forwarded_proto", "secure"),
    [
        ("auto", "http", None, False),
        ("auto", "https", None, True),
        ("auto", "http", "https", True),  # behind a TLS-terminating proxy
        ("auto", "http", "HTTPS, http", True),  # the first hop is the browser's
        ("auto", "http", "http, https", False),
        ("auto", "http", "", False),
        ("always", "http", None, True),
        ("never", "https", "https", False),
    ],
)
def test_secure_flag_follows_the_mode_and_the_browsers_scheme(
    mode: SecureCookieMode, scheme: str, forwarded_proto: str | None, secure: bool
) -> None:
    assert cookie_is_secure(mode, scheme, forwarded_proto) is secure


def test_secure_cookies_carry_the_host_prefix() -> None:
    assert cookie_name("ledgergate_session", True) == "__Host-ledgergate_session"
    assert cookie_name("ledgergate_session", False) == "ledgergate_session"


def test_session_is_alive_until_idle_or_absolute_end() -> None:
    record = new_record(PrincipalKind.KEY, "k", "t", 5000.5, POLICY)
    assert record.expires_at_s == 6000
    assert is_alive(record, 5099, POLICY)
    assert not is_alive(record, 5100, POLICY)  # idle
    recently_used = new_record(PrincipalKind.KEY, "k", "t", 5000, POLICY)
    assert not is_alive(replace(recently_used, last_seen_s=5990), 6000, POLICY)  # absolute end


@pytest.mark.parametrize(("idle_s", "max_s"), [(0, 10), (10, 0), (-1, 10)])
def test_session_policy_refuses_non_positive_timeouts(idle_s: int, max_s: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        SessionPolicy(idle_s, max_s)


def test_a_short_idle_timeout_is_touched_often_enough_to_keep_an_active_session() -> None:
    """With idle_timeout_s=20 a session used every 10 s must not be taken for idle (touch every 5 s, not 60)."""
    policy = SessionPolicy(idle_timeout_s=20, max_age_s=1000)
    record = new_record(PrincipalKind.KEY, "k", "t", 0, policy)
    assert not needs_touch(record, 4, policy)
    assert needs_touch(record, 5, policy)
    assert needs_touch(record, 10, policy) and is_alive(record, 10, policy)
    assert not needs_touch(record, 59, POLICY_LONG)
    assert needs_touch(record, 60, POLICY_LONG)
