"""Request bodies of the admin API (LiteLLM field names). Budget rules themselves live in the domain."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

Usd = StrictFloat | StrictInt


class BudgetWindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    budget_duration: str = Field(description="<positive int><unit>, unit s m h d w mo, or hourly/daily/...")
    max_budget: Usd = Field(description="USD per period, >= 0")


class BudgetFieldsIn(BaseModel):
    max_budget: Usd | None = Field(default=None, description="USD; alone: a lifetime limit")
    budget_duration: str | None = None
    budget_limits: list[BudgetWindowIn] | str | None = Field(
        default=None, description="further concurrent windows (a JSON string of the list is accepted)"
    )
    soft_budget: Usd | None = None
    budget_id: str | None = None


class KeyFieldsIn(BudgetFieldsIn):
    key_alias: str | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None
    tags: list[str] | None = None
    duration: str | None = Field(default=None, description="expiry from now, e.g. 30d")
    user_id: str | None = None
    team_id: str | None = None
    organization_id: str | None = None
    blocked: bool | None = None


class KeyGenerateIn(KeyFieldsIn):
    key: str | None = Field(default=None, description="a custom secret starting with sk-")


class KeyUpdateIn(KeyFieldsIn):
    key: str = Field(description="the key's secret or its token (hash)")


class KeyDeleteIn(BaseModel):
    keys: list[str] = Field(min_length=1)


class KeyRefIn(BaseModel):
    key: str


class ResetSpendIn(BaseModel):
    reset_to: Any = Field(description="USD, a number >= 0 and <= the window's current spend and max_budget")
    budget_duration: str | None = Field(default=None, description="the window to reset; default the primary")
    reason: str | None = None


def provided(model: BaseModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    """Only the fields the client sent, JSON-shaped: absent means 'unchanged', null means 'remove'."""
    return model.model_dump(mode="json", exclude_unset=True, exclude=exclude)
