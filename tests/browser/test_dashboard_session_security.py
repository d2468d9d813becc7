"""Regression tests of issue 12 (dashboard), over plain HTTP against a real gateway: logout did not revoke the
session, the log-in form had no CSRF token, no security headers were sent, the cookie's Secure flag was missing
behind a TLS-terminating proxy, and the master key's session cookie carried sha256(master key)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ledgergate.domain.dashboard_sessions import SecureCookieMode
from tests.browser.support import admin_api, api_post, csrf_token, dashboard_session, log_in
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import MASTER_KEY, GatewayServer

SESSION_COOKIE = "ledgergate_session"
TLS_PROXY = {"x-forwarded-proto": "https"}


def _session_cookie(response: httpx.Response) -> str:
    """The Set-Cookie header of the session cookie."""
    found = [value for value in response.headers.get_list("set-cookie") if SESSION_COOKIE in value.split("=")[0]]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def _cookie_value(header: str) -> str:
    return header.split(";")[0].split("=", 1)[1]


def _log_in_behind_tls(client: httpx.Client, proxy_headers: dict[str, str] = TLS_PROXY) -> httpx.Response:
    """As a browser through a TLS proxy: its Secure cookies are sent back (httpx's jar would not, over http)."""
    page = client.get("/ui/login", headers=proxy_headers)
    login_cookie = page.headers["set-cookie"].split(";")[0]
    assert login_cookie.startswith("__Host-ledgergate_login=")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    data = {"csrf_token": token.group(1), "key": MASTER_KEY}
    return client.post("/ui/login", data=data, headers={**proxy_headers, "cookie": login_cookie})


def _team_admin_key(api: httpx.Client) -> str:
    suffix = uuid.uuid4().hex[:8]
    api_post(api, "/team/new", {"team_id": f"team-{suffix}"})
    api_post(api, "/user/new", {"user_id": f"admin-{suffix}", "auto_create_key": False})
    member = {"user_id": f"admin-{suffix}", "role": "admin"}
    api_post(api, "/team/member_add", {"team_id": f"team-{suffix}", "member": member})
    secret: str = api_post(api, "/key/generate", {"user_id": f"admin-{suffix}"})["key"]
    return secret


@pytest.fixture
def gateway_with_cookies(tmp_path: Path, fake_upstream: FakeUpstream) -> Iterator[dict[str, GatewayServer]]:
    """One gateway per dashboard_secure_cookies mode."""
    servers: dict[str, GatewayServer] = {}
    modes: tuple[SecureCookieMode, ...] = ("always", "never")
    try:
        for mode in modes:
            (tmp_path / mode).mkdir()
            server = GatewayServer(tmp_path / mode, fake_upstream.base_url)
            settings = dataclasses.replace(server.config.settings, dashboard_secure_cookies=mode)
            server.config = dataclasses.replace(server.config, settings=settings)
            servers[mode] = server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def test_logout_revokes_the_session_server_side(gateway: GatewayServer) -> None:
    """Bug: logout only asked the browser to forget the cookie. A copy of it is now refused at once."""
    with dashboard_session(gateway, MASTER_KEY) as client:
        copied = dict(client.cookies)
        token = csrf_token(client, "/ui/")
        assert client.post("/ui/logout", data={"csrf_token": token}).status_code == 303
    with httpx.Client(base_url=gateway.base_url, cookies=copied) as thief:
        refused = thief.get("/ui/keys")
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/ui/login")


def test_logout_revokes_the_session_for_a_restarted_instance(gateway_factory: Callable[[], GatewayServer]) -> None:
    """Sessions live in the database: a restarted (or another) instance honours them and honours their end."""
    server = gateway_factory()
    with dashboard_session(server, MASTER_KEY) as client:
        server.restart()
        assert client.get("/ui/").status_code == 200
        copied = dict(client.cookies)
        client.post("/ui/logout", data={"csrf_token": csrf_token(client, "/ui/")})
        server.restart()
    with httpx.Client(base_url=server.base_url, cookies=copied) as thief:
        assert thief.get("/ui/").status_code == 303


def test_login_without_csrf_token_is_refused(gateway: GatewayServer) -> None:
    """Bug: the log-in form had no CSRF token, so another site could log a browser in to the attacker's session."""
    with httpx.Client(base_url=gateway.base_url) as client:
        bare = client.post("/ui/login", data={"key": MASTER_KEY, "next": "/ui/"})
        assert bare.status_code == 403
        assert "has expired or did not come from the dashboard" in bare.text
        assert not any(SESSION_COOKIE in c for c in bare.headers.get_list("set-cookie"))
        token = csrf_token(client, "/ui/login")
        wrong = client.post("/ui/login", data={"csrf_token": token + "x", "key": MASTER_KEY})
        assert wrong.status_code == 403
    # A cross-site form can copy a token from its own visit, but the browser sends it without our cookie.
    with httpx.Client(base_url=gateway.base_url) as cross_site:
        assert cross_site.post("/ui/login", data={"csrf_token": token, "key": MASTER_KEY}).status_code == 403
    with httpx.Client(base_url=gateway.base_url) as client:
        csrf_token(client, "/ui/login")  # the cookie of this client's own visit, with another visit's token
        assert client.post("/ui/login", data={"csrf_token": token, "key": MASTER_KEY}).status_code == 403
        assert log_in(client, MASTER_KEY).status_code == 303  # the refusal page's fresh token works


def test_security_headers_on_every_dashboard_response(gateway: GatewayServer) -> None:
    """Bug: no X-Frame-Options, CSP or nosniff. Now on pages, redirects, errors and static files alike."""
    with httpx.Client(base_url=gateway.base_url) as anonymous:
        responses = [
            anonymous.get("/ui/login"),
            anonymous.get("/ui/keys"),  # redirect to log-in
            anonymous.get("/ui/static/dashboard.css"),
            anonymous.get("/ui/static/nothing-here.js"),
            anonymous.post("/ui/login", data={"key": "x"}),
        ]
    with dashboard_session(gateway, MASTER_KEY) as client:
        authenticated = [client.get("/ui/"), client.get("/ui/keys"), client.get("/ui/keys/view/nope")]
        authenticated.append(client.post("/ui/keys/new", data={"key_alias": "no-token"}))
    assert [r.status_code for r in responses + authenticated] == [200, 303, 200, 404, 403, 200, 200, 404, 403]
    for response in responses + authenticated:
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert re.search(r"script-src 'self';", csp) and "unsafe" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    for response in authenticated + responses[:2]:
        assert response.headers["cache-control"] == "no-store"
    with httpx.Client(base_url=gateway.base_url) as client:
        assert "x-frame-options" not in client.get("/health/liveliness").headers  # the API is left alone


def test_session_cookie_is_secure_behind_a_tls_terminating_proxy(gateway: GatewayServer) -> None:
    """Bug: Secure was set only when the gateway itself saw https. Behind a TLS proxy (X-Forwarded-Proto: https)
    the cookie is now Secure, HttpOnly, SameSite and __Host- prefixed."""
    with httpx.Client(base_url=gateway.base_url) as client:
        response = _log_in_behind_tls(client)
    assert response.status_code == 303
    header = _session_cookie(response)
    assert header.startswith("__Host-ledgergate_session=")
    flags = {flag.strip().lower() for flag in header.split(";")[1:]}
    assert {"secure", "httponly", "path=/", "samesite=lax"} <= flags
    assert not any(flag.startswith("domain") for flag in flags)
    cookie = f"__Host-ledgergate_session={_cookie_value(header)}"
    with httpx.Client(base_url=gateway.base_url) as client:
        assert client.get("/ui/", headers={**TLS_PROXY, "cookie": cookie}).status_code == 200
        # The un-prefixed name, which a plain-HTTP attacker could plant, is not read behind TLS.
        planted = f"{SESSION_COOKIE}={_cookie_value(header)}"
        assert client.get("/ui/", headers={**TLS_PROXY, "cookie": planted}).status_code == 303


def test_session_cookie_on_plain_http_is_not_secure_by_default(gateway: GatewayServer) -> None:
    with httpx.Client(base_url=gateway.base_url) as client:
        header = _session_cookie(log_in(client, MASTER_KEY))
    assert header.startswith(f"{SESSION_COOKIE}=") and "secure" not in header.lower()
    assert "httponly" in header.lower() and "samesite=lax" in header.lower()


def test_secure_cookie_setting_always_and_never(gateway_with_cookies: dict[str, GatewayServer]) -> None:
    with httpx.Client(base_url=gateway_with_cookies["always"].base_url) as client:
        assert "; secure" in _session_cookie(_log_in_behind_tls(client, {})).lower()
    with httpx.Client(base_url=gateway_with_cookies["never"].base_url, headers=TLS_PROXY) as client:  # ignored
        header = _session_cookie(log_in(client, MASTER_KEY))
    assert header.startswith(f"{SESSION_COOKIE}=") and "secure" not in header.lower()


def test_session_cookie_does_not_contain_a_hash_of_the_master_key(gateway: GatewayServer) -> None:
    """Bug: the master key's cookie was v1.<sha256(master key)>.<expiry>.<signature>."""
    digest = hashlib.sha256(MASTER_KEY.encode()).digest()
    encodings = {digest.hex(), base64.urlsafe_b64encode(digest).decode().rstrip("="), base64.b64encode(digest).decode()}
    values = []
    for _ in range(2):
        with httpx.Client(base_url=gateway.base_url) as client:
            values.append(_cookie_value(_session_cookie(log_in(client, MASTER_KEY))))
    for value in values:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value), value  # 32 random bytes, nothing else
        assert not any(encoded[:16] in value for encoded in encodings)
    assert values[0] != values[1]


def test_offline_guessing_of_the_master_key_is_no_longer_possible(gateway: GatewayServer) -> None:
    """Bug: sha256(master key) in the cookie let anyone holding it test guesses offline at GPU speed. The cookie
    is now independent of the key (fresh randomness per log-in), and the database keeps no fast hash of it."""
    with httpx.Client(base_url=gateway.base_url) as client:
        value = _cookie_value(_session_cookie(log_in(client, MASTER_KEY)))
    candidates = [MASTER_KEY, "sk-admin", "password", "sk-1234"]
    for guess in candidates:  # what an attacker would compute per guess: nothing matches the cookie
        for derived in (hashlib.sha256(guess.encode()).hexdigest(), hashlib.md5(guess.encode()).hexdigest()):
            assert derived not in value
    with sqlite3.connect(gateway.db_path) as database:
        rows = database.execute("SELECT * FROM dashboard_sessions").fetchall()
    stored = repr(rows)
    assert rows and value not in stored
    assert hashlib.sha256(MASTER_KEY.encode()).hexdigest() not in stored


def test_login_replaces_a_planted_session(gateway: GatewayServer) -> None:
    """Session fixation: a session id planted in the browser before the log-in is revoked, never adopted."""
    with dashboard_session(gateway, MASTER_KEY) as attacker:
        planted = attacker.cookies[SESSION_COOKIE]
    with httpx.Client(base_url=gateway.base_url, cookies={SESSION_COOKIE: planted}) as victim:
        issued = _cookie_value(_session_cookie(log_in(victim, MASTER_KEY)))
    assert issued != planted
    with httpx.Client(base_url=gateway.base_url, cookies={SESSION_COOKIE: planted}) as attacker:
        assert attacker.get("/ui/").status_code == 303


def test_blocked_key_session_stays_ended_after_unblock(gateway: GatewayServer) -> None:
    with admin_api(gateway) as api:
        secret = _team_admin_key(api)
        with dashboard_session(gateway, secret) as client:
            assert client.get("/ui/").status_code == 200
            api_post(api, "/key/block", {"key": secret})
            assert client.get("/ui/").status_code == 303
            api_post(api, "/key/unblock", {"key": secret})
            assert client.get("/ui/").status_code == 303  # ended, not suspended


def test_deleted_key_ends_its_session(gateway: GatewayServer) -> None:
    with admin_api(gateway) as api:
        secret = _team_admin_key(api)
        with dashboard_session(gateway, secret) as client:
            api_post(api, "/key/delete", {"keys": [secret]})
            assert client.get("/ui/").status_code == 303


def test_oversized_or_odd_login_input_is_a_plain_refusal(gateway: GatewayServer) -> None:
    with httpx.Client(base_url=gateway.base_url) as client:
        assert log_in(client, "sk-" + "a" * 5000).status_code == 401
        assert log_in(client, "sk-\x00\u00e9").status_code == 401
        token = csrf_token(client, "/ui/login")
        assert (
            client.post("/ui/login", content=b"csrf_token=" + token.encode() + b"&key=" + b"a" * 300_000).status_code
            == 413
        )
        odd = client.post("/ui/login", data={"csrf_token": "\u00e9\u00e9", "key": MASTER_KEY})
        assert odd.status_code == 403


def test_every_dashboard_form_refuses_a_missing_or_foreign_csrf_token(gateway: GatewayServer) -> None:
    """The other forms keep their CSRF protection, now with a random token per session: a token from the
    attacker's own session is as useless as none. Nothing is written, and a forged log-out does not log out."""
    with admin_api(gateway) as api:
        key = api_post(api, "/key/generate", {"key_alias": f"csrf-{uuid.uuid4().hex[:8]}", "max_budget": 1})
    token_id = key["token"]
    with dashboard_session(gateway, MASTER_KEY) as attacker:
        foreign = csrf_token(attacker, "/ui/")
    forms = [
        ("/ui/keys/new", {"key_alias": "forged"}),
        (f"/ui/keys/edit/{token_id}", {"key_alias": "forged"}),
        (f"/ui/keys/reset/{token_id}", {"reset_to": "0", "reason": "forged"}),
        (f"/ui/keys/block/{token_id}", {}),
        ("/ui/logout", {}),
    ]
    with dashboard_session(gateway, MASTER_KEY) as victim:
        own = csrf_token(victim, "/ui/")
        assert own != foreign
        for path, fields in forms:
            for token in (None, foreign, ""):
                data = fields if token is None else {**fields, "csrf_token": token}
                assert victim.post(path, data=data).status_code == 403, (path, token)
        assert victim.get("/ui/").status_code == 200  # still logged in
    with admin_api(gateway) as api:
        info = api.get("/key/info", params={"key": token_id}).json()["info"]
        assert info["blocked"] is False and info["key_alias"] == key["key_alias"]
        listed = api.get("/key/list", params={"key_alias": "forged"}).json()
        assert "forged" not in str(listed)
