"""Who pays for a request: charge_targets (ledgergate/domain/charging.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledgergate.domain.charging import (
    GLOBAL_ENTITY_ID,
    EntityRef,
    EntityType,
    RequestParties,
    charge_targets,
    request_tags,
    team_member_id,
)
from tests.domain.strategies import PROPERTY

ids = st.text(alphabet="abc123-", min_size=1, max_size=4)
maybe_ids = st.none() | ids
tag_lists = st.lists(st.sampled_from(["", "prod", "team-a", "batch", "free"]), max_size=4).map(tuple)

parties_strategy = st.builds(
    RequestParties,
    key_id=ids,
    user_id=maybe_ids,
    team_id=maybe_ids,
    team_organization_id=maybe_ids,
    key_organization_id=maybe_ids,
    customer_id=st.none() | st.just("") | ids,
    key_tags=tag_lists,
    team_tags=tag_lists,
    client_tags=tag_lists,
    allow_client_tags=st.booleans(),
    has_global_budget=st.booleans(),
)


def _of_type(targets: tuple[EntityRef, ...], entity_type: EntityType) -> list[str]:
    return [t.id for t in targets if t.type is entity_type]


@PROPERTY
@given(parties=parties_strategy)
def test_charge_targets_always_charge_key_first_without_duplicates(parties: RequestParties) -> None:
    """The key is always checked and charged, and no entity is charged twice for one request."""
    targets = charge_targets(parties)
    assert targets[0] == EntityRef(EntityType.KEY, parties.key_id)
    assert _of_type(targets, EntityType.KEY) == [parties.key_id]
    assert len(set(targets)) == len(targets)
    assert not _of_type(targets, EntityType.BUDGET)


@PROPERTY
@given(parties=parties_strategy.filter(lambda p: p.team_id is not None))
def test_charge_targets_team_key_never_charges_user_personal_budget(parties: RequestParties) -> None:
    """Team key spend goes to the team and the team member, never the user's personal budget.

    LiteLLM bug class (seed 004): "team key spend incorrectly increments user personal spend".
    """
    assert parties.team_id is not None
    targets = charge_targets(parties)
    assert _of_type(targets, EntityType.USER) == []
    assert _of_type(targets, EntityType.TEAM) == [parties.team_id]
    expected_member = [] if parties.user_id is None else [team_member_id(parties.team_id, parties.user_id)]
    assert _of_type(targets, EntityType.TEAM_MEMBER) == expected_member


@PROPERTY
@given(parties=parties_strategy.filter(lambda p: p.team_id is None))
def test_charge_targets_personal_key_charges_user(parties: RequestParties) -> None:
    """A key without a team charges its user's personal budget and no team or team member."""
    targets = charge_targets(parties)
    assert _of_type(targets, EntityType.USER) == ([] if parties.user_id is None else [parties.user_id])
    assert _of_type(targets, EntityType.TEAM) == []
    assert _of_type(targets, EntityType.TEAM_MEMBER) == []


@PROPERTY
@given(parties=parties_strategy)
def test_charge_targets_organization_customer_and_global(parties: RequestParties) -> None:
    """The team's organization wins over the key's; a named customer and a configured global budget are charged."""
    targets = charge_targets(parties)
    organization = parties.team_organization_id or parties.key_organization_id
    assert _of_type(targets, EntityType.ORGANIZATION) == ([] if organization is None else [organization])
    assert _of_type(targets, EntityType.CUSTOMER) == ([parties.customer_id] if parties.customer_id else [])
    assert _of_type(targets, EntityType.GLOBAL) == ([GLOBAL_ENTITY_ID] if parties.has_global_budget else [])


@PROPERTY
@given(parties=parties_strategy)
def test_charge_targets_tags_key_and_team_always_client_only_when_allowed(parties: RequestParties) -> None:
    """A key's and team's tags are always charged (a client cannot drop them); client tags only where allowed."""
    tags = _of_type(charge_targets(parties), EntityType.TAG)
    assert tags == list(request_tags(parties))
    assert len(set(tags)) == len(tags)
    assert "" not in tags
    owned = {t for t in (*parties.key_tags, *parties.team_tags) if t}
    assert owned <= set(tags)
    client_only = {t for t in parties.client_tags if t} - owned
    if parties.allow_client_tags:
        assert client_only <= set(tags)
    else:
        assert set(tags) == owned


def test_charge_targets_full_team_request_in_order() -> None:
    """A team key with every party present charges each entity exactly once, in a fixed order."""
    parties = RequestParties(
        key_id="k1",
        user_id="u1",
        team_id="t1",
        team_organization_id="org-team",
        key_organization_id="org-key",
        customer_id="cust",
        key_tags=("prod",),
        team_tags=("prod", "team-a"),
        client_tags=("batch",),
        allow_client_tags=True,
        has_global_budget=True,
    )
    assert [str(t) for t in charge_targets(parties)] == [
        "key:k1",
        "team:t1",
        "team_member:t1/u1",
        "organization:org-team",
        "customer:cust",
        "tag:prod",
        "tag:team-a",
        "tag:batch",
        "global:global",
    ]


def test_charge_targets_personal_key_uses_key_organization() -> None:
    """Without a team the key's own organization is charged."""
    parties = RequestParties(key_id="k1", user_id="u1", key_organization_id="org-key", client_tags=("x",))
    assert [str(t) for t in charge_targets(parties)] == ["key:k1", "user:u1", "organization:org-key"]
