"""Admin writes as services (issue 13 item 4): the admin API's routes and the dashboard's forms call the same
``AdminCommands``, so the authorization rules hold without any HTTP layer in front of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledgergate.container import Container
from ledgergate.domain.charging import EntityType
from ledgergate.domain.principals import Principal
from ledgergate.services.admin_entity_schemas import TagIn, TeamNewIn, TeamUpdateIn, UserNewIn, UserUpdateIn
from ledgergate.services.admin_schemas import KeyGenerateIn, KeyUpdateIn, ResetSpendIn
from ledgergate.services.errors import Forbidden, NotFound, Unauthenticated
from tests.services.edge_services import MASTER_KEY, embedded_services, principal_of


async def _team_admin(container: Container, master: Principal) -> tuple[Principal, str]:
    """A team admin of ``team-a`` (its own key), and the secret of an ``internal_user`` key with no team."""
    commands = container.admin_commands
    await commands.create_user(master, UserNewIn(user_id="alice", auto_create_key=False))
    await commands.create_team(
        master, TeamNewIn(team_id="team-a", members_with_roles=[{"user_id": "alice", "role": "admin"}])
    )
    await commands.create_team(master, TeamNewIn(team_id="team-b"))
    alice = await commands.generate_key(master, KeyGenerateIn(user_id="alice", team_id="team-a"))
    plain = await commands.generate_key(master, KeyGenerateIn())
    return await principal_of(container, alice["key"]), plain["key"]


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Container]:
    async with embedded_services(tmp_path) as container:
        yield container


async def test_team_admin_cannot_reset_their_own_teams_spend_through_the_shared_command(services: Container) -> None:
    """The rule the dashboard used to re-implement (``permitted``): a team admin resetting their own team's
    spend would make its budget meaningless. Now one command refuses it for both edges: 403."""
    master = await principal_of(services, MASTER_KEY)
    admin_of_a, _ = await _team_admin(services, master)
    with pytest.raises(Forbidden) as refused:
        await services.admin_commands.reset_spend(admin_of_a, EntityType.TEAM, "team-a", ResetSpendIn(reset_to=0))
    assert refused.value.status_code == 403
    result = await services.admin_commands.reset_spend(master, EntityType.TEAM, "team-a", ResetSpendIn(reset_to=0))
    assert result["team_id"] == "team-a"


async def test_team_admin_issues_keys_only_inside_their_team(services: Container) -> None:
    """A team admin may issue a key for their team, not for another team and not as a teamless (admin-scope) key."""
    master = await principal_of(services, MASTER_KEY)
    admin_of_a, _ = await _team_admin(services, master)
    commands = services.admin_commands
    created = await commands.generate_key(admin_of_a, KeyGenerateIn(team_id="team-a"))
    assert created["team_id"] == "team-a"
    with pytest.raises(Forbidden):
        await commands.generate_key(admin_of_a, KeyGenerateIn(team_id="team-b"))
    with pytest.raises(Forbidden):
        await commands.update_key(admin_of_a, KeyUpdateIn(key=created["key"], team_id="team-b"))
    assert (await services.keys.get(created["key"])).team_id == "team-a"  # nothing half-written


async def test_a_plain_key_cannot_use_any_admin_only_command(services: Container) -> None:
    """Commands the API guards with its ``Admin`` dependency check the same rule themselves, so the dashboard
    (which has no FastAPI dependency) cannot skip it: create/update team and tag, block a team, admin resets."""
    master = await principal_of(services, MASTER_KEY)
    _, plain_secret = await _team_admin(services, master)
    plain = await principal_of(services, plain_secret)
    commands = services.admin_commands
    attempts = [
        commands.create_team(plain, TeamNewIn(team_id="mine")),
        commands.update_team(plain, TeamUpdateIn(team_id="team-a", max_budget=1)),
        commands.set_team_blocked(plain, "team-a", True),
        commands.create_tag(plain, TagIn(name="free-money")),
        commands.reset_spend(plain, EntityType.USER, "alice", ResetSpendIn(reset_to=0)),
        commands.reset_spend(plain, EntityType.TAG, "anything", ResetSpendIn(reset_to=0)),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden):
            await attempt
    assert await services.directory.get(EntityType.TEAM, "mine") is None
    team_a = await services.directory.get(EntityType.TEAM, "team-a")
    assert team_a is not None and not team_a.blocked


async def test_a_kind_without_a_spend_reset_is_not_found_not_a_crash(services: Container) -> None:
    """A budget or team member reset asked of the command (no edge offers one) is a 404, never a 5xx."""
    master = await principal_of(services, MASTER_KEY)
    for kind in (EntityType.BUDGET, EntityType.TEAM_MEMBER, EntityType.GLOBAL):
        with pytest.raises(NotFound):
            await services.admin_commands.reset_spend(master, kind, "x", ResetSpendIn(reset_to=0))


async def test_authentication_is_a_service_refusal_with_the_apis_401(services: Container) -> None:
    """The authenticator moved out of the HTTP layer: a missing, unknown or blocked key is ``Unauthenticated``
    (401, ``authentication_error``), which both edges answer as before."""
    master = await principal_of(services, MASTER_KEY)
    created = await services.admin_commands.generate_key(master, KeyGenerateIn())
    await services.admin_commands.set_key_blocked(master, created["key"], True)
    for headers in ({}, {"authorization": "Bearer sk-nobody"}, {"authorization": f"Bearer {created['key']}"}):
        with pytest.raises(Unauthenticated) as refused:
            await services.authenticator.principal_from_headers(headers)
        assert (refused.value.status_code, refused.value.error_type) == (401, "authentication_error")


async def test_viewer_team_admin_userless_key_acts_as_the_viewer_not_as_internal_user(services: Container) -> None:
    """Attack: a team admin whose own role is ``internal_user_viewer`` issues a team key without a user; a key
    without a user acts as ``internal_user``, a role above the issuer's ("nobody grants what they do not hold").
    Found by test_authz_machine while testing issue 13 (also on 54b1124, where it was a 200). Now the key is bound to
    its issuer and acts with the issuer's own role."""
    master = await principal_of(services, MASTER_KEY)
    commands = services.admin_commands
    lead = await commands.create_user(master, UserNewIn(user_id="lead-b", user_role="internal_user"))
    await commands.create_team(
        master, TeamNewIn(team_id="team-b", members_with_roles=[{"user_id": "lead-b", "role": "admin"}])
    )
    await commands.update_user(master, UserUpdateIn(user_id="lead-b", user_role="internal_user_viewer"))
    viewer_lead = await principal_of(services, lead["key"])
    # A key a team admin issues without a user is bound to that admin (security.md), so it acts with their role.
    issued = await commands.generate_key(viewer_lead, KeyGenerateIn(team_id="team-b", user_id=None))
    assert issued["user_id"] == "lead-b"
    assert (await principal_of(services, issued["key"])).role.value == "internal_user_viewer"
