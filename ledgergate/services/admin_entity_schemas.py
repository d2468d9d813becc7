"""Request bodies of the user, team, organization, customer, tag and budget admin routes (LiteLLM field names).
The admin API and the dashboard validate with them alike, which is why they live with the services.

Ids are bounded and free of control characters so that every database accepts them (no input may cause a 5xx);
user and team ids also exclude ``/``, which joins them into a team member's id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ledgergate.services.admin_schemas import MODEL_MAX_BUDGET_DOC, BudgetFieldsIn, JsonBody, RateLimitFieldsIn, Usd

PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
_PRINTABLE_NO_SLASH = r"^[^\x00-\x1f\x7f/]+$"

EntityId = Annotated[str, Field(min_length=1, max_length=255, pattern=PRINTABLE)]
# user and team ids are joined as "team_id/user_id" into a member id that must fit a 255-character column
PartyId = Annotated[str, Field(min_length=1, max_length=120, pattern=_PRINTABLE_NO_SLASH)]
Text = Annotated[str, Field(max_length=255, pattern=r"^[^\x00]*$")]
UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
MemberRole = Literal["admin", "user"]


class EntityBudgetIn(BudgetFieldsIn):
    budget_id: EntityId | None = Field(default=None, description="a shared budget object (/budget/new)")


# ---- users -------------------------------------------------------------------------------------------------


class UserFieldsIn(EntityBudgetIn, RateLimitFieldsIn):
    user_alias: Text | None = None
    user_email: Text | None = None
    user_role: UserRole | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None


class UserNewIn(UserFieldsIn):
    user_id: PartyId | None = Field(default=None, description="generated when absent")
    teams: list[PartyId] | None = Field(default=None, description="teams to join, with role 'user'")
    auto_create_key: bool = Field(default=True, description="also issue a personal key (LiteLLM default)")
    key_alias: Text | None = None


class UserUpdateIn(UserFieldsIn):
    user_id: PartyId


class UserDeleteIn(JsonBody):
    user_ids: list[PartyId] = Field(min_length=1)


# ---- teams -------------------------------------------------------------------------------------------------


class MemberIn(JsonBody):
    user_id: PartyId | None = None
    user_email: Text | None = None
    role: MemberRole = "user"


class TeamFieldsIn(EntityBudgetIn, RateLimitFieldsIn):
    model_max_budget: dict[str, Any] | str | None = Field(default=None, description=MODEL_MAX_BUDGET_DOC)
    team_alias: Text | None = None
    organization_id: EntityId | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None
    tags: list[Text] | None = None
    blocked: bool | None = None


class TeamNewIn(TeamFieldsIn):
    team_id: PartyId | None = Field(default=None, description="generated when absent")
    members_with_roles: list[MemberIn] | None = None


class TeamUpdateIn(TeamFieldsIn):
    team_id: PartyId


class TeamDeleteIn(JsonBody):
    team_ids: list[PartyId] = Field(min_length=1)


class TeamRefIn(JsonBody):
    team_id: PartyId


class MemberAddIn(JsonBody):
    team_id: PartyId
    member: MemberIn | list[MemberIn]
    max_budget_in_team: Usd | None = Field(default=None, description="USD; the member's own limit in the team")


class MemberUpdateIn(JsonBody):
    team_id: PartyId
    user_id: PartyId | None = None
    user_email: Text | None = None
    role: MemberRole | None = None
    max_budget_in_team: Usd | None = None
    budget_duration: str | None = Field(default=None, description="period of max_budget_in_team, e.g. 1d")


class MemberDeleteIn(JsonBody):
    team_id: PartyId
    user_id: PartyId | None = None
    user_email: Text | None = None


# ---- organizations -----------------------------------------------------------------------------------------


class OrganizationFieldsIn(EntityBudgetIn):
    organization_alias: Text | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None


class OrganizationNewIn(OrganizationFieldsIn):
    organization_id: EntityId | None = Field(default=None, description="generated when absent")


class OrganizationUpdateIn(OrganizationFieldsIn):
    organization_id: EntityId


class OrganizationDeleteIn(JsonBody):
    organization_ids: list[EntityId] = Field(min_length=1)


# ---- customers (end users) ---------------------------------------------------------------------------------


class CustomerFieldsIn(EntityBudgetIn):
    alias: Text | None = None
    blocked: bool | None = None
    metadata: dict[str, Any] | None = None


class CustomerIn(CustomerFieldsIn):
    user_id: EntityId = Field(description="the value clients send as the request's `user` field")


class CustomerIdsIn(JsonBody):
    user_ids: list[EntityId] = Field(min_length=1)


# ---- tags --------------------------------------------------------------------------------------------------


class TagFieldsIn(EntityBudgetIn):
    description: Text | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None


class TagIn(TagFieldsIn):
    name: EntityId


class TagDeleteIn(JsonBody):
    name: EntityId


class TagInfoIn(JsonBody):
    names: list[EntityId] = Field(min_length=1)


# ---- shared budget objects ---------------------------------------------------------------------------------


class BudgetNewIn(BudgetFieldsIn, RateLimitFieldsIn):
    budget_id: EntityId | None = Field(default=None, description="generated when absent")


class BudgetUpdateIn(BudgetFieldsIn, RateLimitFieldsIn):
    budget_id: EntityId


class BudgetDeleteIn(JsonBody):
    id: EntityId | None = Field(default=None, description="LiteLLM's name for budget_id")
    budget_id: EntityId | None = None


class BudgetInfoIn(JsonBody):
    budgets: list[EntityId] = Field(min_length=1)
