"""Who may use the dashboard and what each role sees, over plain HTTP against a real gateway (no browser needed).

The dashboard must never be a way around the admin API's rules: a team admin sees and changes only their
teams, a viewer changes nothing, forms from elsewhere (no CSRF token) are refused, and a session dies with its key.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.browser.support import admin_api, api_post, chat, csrf_token, dashboard_session, log_in
from tests.support.gateway import GatewayServer


def _team_with_admin(api: httpx.Client) -> tuple[str, str, str]:
    """A team whose admin has a key: ``(team_id, admin key secret, admin user id)``."""
    suffix = uuid.uuid4().hex[:8]
    team_id, user_id = f"team-{suffix}", f"admin-{suffix}"
    api_post(api, "/team/new", {"team_id": team_id, "team_alias": f"Team {suffix}"})
    api_post(api, "/user/new", {"user_id": user_id, "auto_create_key": False})
    api_post(api, "/team/member_add", {"team_id": team_id, "member": {"user_id": user_id, "role": "admin"}})
    secret = api_post(api, "/key/generate", {"key_alias": f"admin-key-{suffix}", "user_id": user_id})["key"]
    return team_id, secret, user_id


def _key(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    fields.setdefault("key_alias", f"k-{uuid.uuid4().hex[:8]}")
    return api_post(api, "/key/generate", fields)


def test_dashboard_pages_require_login(gateway: GatewayServer) -> None:
    """No session, no page: every dashboard URL redirects to the log-in page, keeping where the user wanted to go."""
    with httpx.Client(base_url=gateway.base_url) as client:
        response = client.get("/ui/keys?sort=spend")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login?next=%2Fui%2Fkeys%3Fsort%3Dspend"
    forged_cookie = {"ledgergate_session": "v1.abc.9999999999.forged"}
    with httpx.Client(base_url=gateway.base_url, cookies=forged_cookie) as client:
        assert client.get("/ui/keys").status_code == 303


def test_dashboard_login_refuses_bad_and_plain_keys(gateway: GatewayServer) -> None:
    """Only the master key, proxy admins (and viewers) and team admins may log in; the cookie never holds the secret."""
    with admin_api(gateway) as api, httpx.Client(base_url=gateway.base_url) as client:
        assert log_in(client, "sk-wrong").status_code == 401
        assert log_in(client, "sk-\u00e9t\u00e9").status_code == 401
        plain = _key(api)["key"]  # a key of nobody in particular: an internal user
        refused = log_in(client, plain)
        assert refused.status_code == 403
        assert "may not use the dashboard" in refused.text
        ok = log_in(client, "sk-master", "https://evil.example/")
        assert ok.status_code == 303
        assert ok.headers["location"] == "/ui/"  # no open redirect
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "sk-master" not in cookie


def test_dashboard_team_admin_sees_only_their_teams(gateway: GatewayServer) -> None:
    """A team admin lists only their team's keys, gets 404 for others' and no pages beyond keys and teams; a key
    for another team is refused by the API's own check."""
    with admin_api(gateway) as api:
        team_id, admin_secret, admin_user = _team_with_admin(api)
        other_team, _, _ = _team_with_admin(api)
        mine = _key(api, team_id=team_id)
        theirs = _key(api, team_id=other_team)
    with dashboard_session(gateway, admin_secret) as client:
        listing = client.get("/ui/keys")
        assert listing.status_code == 200
        assert mine["key_alias"] in listing.text
        assert theirs["key_alias"] not in listing.text
        assert client.get(f"/ui/keys/view/{mine['token']}").status_code == 200
        assert client.get(f"/ui/keys/view/{theirs['token']}").status_code == 404
        assert client.get(f"/ui/teams/view/{other_team}").status_code == 404
        assert client.get("/ui/users").status_code == 404
        token = csrf_token(client, "/ui/keys/new")
        refused = client.post("/ui/keys/new", data={"csrf_token": token, "key_alias": "sneaky", "team_id": other_team})
        assert refused.status_code == 403
        assert "only a proxy admin or an admin of the team may create or change this key" in refused.text
        created = client.post(
            "/ui/keys/new", data={"csrf_token": token, "key_alias": f"ok-{admin_user}", "team_id": team_id}
        )
        assert created.status_code == 200
        assert "shown only this once" in created.text


def test_dashboard_viewer_cannot_write(gateway: GatewayServer) -> None:
    """A proxy admin viewer reads every page but no write goes through, whatever it posts."""
    with admin_api(gateway) as api:
        user_id = f"viewer-{uuid.uuid4().hex[:8]}"
        api_post(api, "/user/new", {"user_id": user_id, "user_role": "proxy_admin_viewer", "auto_create_key": False})
        secret = _key(api, user_id=user_id)["key"]
        target = _key(api, max_budget=1, budget_duration="1d")
    with dashboard_session(gateway, secret) as client:
        page = client.get(f"/ui/keys/view/{target['token']}")
        assert page.status_code == 200
        assert "Reset…" not in page.text and ">Edit<" not in page.text
        token = csrf_token(client, "/ui/keys")
        assert client.post("/ui/keys/new", data={"csrf_token": token, "key_alias": "x"}).status_code == 403
        blocked = client.post(f"/ui/keys/block/{target['token']}", data={"csrf_token": token})
        assert blocked.status_code == 303
        assert client.get(blocked.headers["location"]).text.count("only a proxy admin or an admin of the team") == 1
    with admin_api(gateway) as api:
        assert api.get("/key/info", params={"key": target["token"]}).json()["info"]["blocked"] is False


def test_dashboard_refuses_forms_without_csrf_token(gateway: GatewayServer) -> None:
    """A form posted from another site (the session cookie, but no token) changes nothing."""
    with admin_api(gateway) as api:
        key = _key(api, max_budget=0.0001, budget_duration="1mo")
        assert chat(gateway, key["key"]).status_code == 200
    with dashboard_session(gateway, "sk-master") as client:
        forged = client.post(
            f"/ui/keys/reset/{key['token']}", data={"reset_to": "0", "budget_duration": "1mo", "reason": "x"}
        )
        assert forged.status_code == 403
    with admin_api(gateway) as api:
        assert api.get("/spend/adjustments", params={"entity_id": key["token"]}).json() == []


def test_dashboard_reset_shows_the_api_refusal(gateway: GatewayServer) -> None:
    """A reset the API refuses (reset_to above the current spend) writes nothing and shows the API's message."""
    with admin_api(gateway) as api:
        key = _key(api, max_budget=1, budget_duration="1d")
    with dashboard_session(gateway, "sk-master") as client:
        detail = f"/ui/keys/view/{key['token']}"
        token = csrf_token(client, detail)
        response = client.post(
            f"/ui/keys/reset/{key['token']}",
            data={"csrf_token": token, "reset_to": "0.5", "budget_duration": "1d", "reason": "too much"},
        )
        assert response.status_code == 303
        page = client.get(response.headers["location"]).text
        assert "Reset refused (400): reset_to: must be &lt;= the current spend of the 1d window (0)" in page


def test_dashboard_session_ends_when_key_is_blocked(gateway: GatewayServer) -> None:
    """Sessions name the key, which is re-read on every request: blocking it logs its dashboard user out."""
    with admin_api(gateway) as api:
        _, admin_secret, _ = _team_with_admin(api)
        with dashboard_session(gateway, admin_secret) as client:
            assert client.get("/ui/").status_code == 200
            api_post(api, "/key/block", {"key": admin_secret})
            assert client.get("/ui/").status_code == 303


def test_dashboard_odd_cookies_and_tokens_are_refused_not_crashed(gateway: GatewayServer) -> None:
    """Non-ASCII session cookies and CSRF tokens are plain refusals (redirect, 403), never a 5xx."""
    odd_cookie = "ledgergate_session=v1.\u00e9\u00e9.9999999999.\u00e9".encode()
    with httpx.Client(base_url=gateway.base_url) as client:
        assert client.get("/ui/", headers=[(b"cookie", odd_cookie)]).status_code == 303
    with dashboard_session(gateway, "sk-master") as client:
        assert client.post("/ui/logout", data={"csrf_token": "\u00e9t\u00e9"}).status_code == 403
