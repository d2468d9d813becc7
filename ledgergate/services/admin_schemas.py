"""Request bodies of the admin API (LiteLLM field names). Budget rules themselves live in the domain."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator, model_validator
from pydantic_core import PydanticCustomError, to_jsonable_python

from ledgergate.services.body_fields import MAX_NAME_SHOWN, UNKNOWN_FIELD, unknown_field_message

Usd = StrictFloat | StrictInt
# What an entity column (and a charge's entity_id) holds; PostgreSQL refuses longer values, SQLite would not.
Bounded = Annotated[str, Field(max_length=255)]
# A field's stored JSON (metadata, model_max_budget...): entities are cached in every instance, so one key must not
# carry megabytes (the body limit bounds a request, not what accumulates per entity).
MAX_FIELD_JSON_BYTES = 64 * 1024


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class JsonBody(BaseModel):
    """Base of every request body: each field must be storable, or the request is a 400 naming the field.

    JSON parsing accepts what no store does (no input may cause a 5xx): lone surrogates (``"\\ud800"``), which
    neither the JSON encoder nor the database drivers take, integers beyond 64 bits inside ``metadata``, and NUL
    characters, which PostgreSQL refuses in text. A field the model does not have is refused (``unknown_field``),
    naming the closest known field: ignoring it would store something other than what the client asked for.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [str(name) for name in data if name not in cls.model_fields]
            if unknown:
                message = "; ".join(unknown_field_message(name, cls.model_fields) for name in unknown[:5])
                more = f"; and {len(unknown) - 5} more unknown fields" if len(unknown) > 5 else ""
                raise PydanticCustomError(UNKNOWN_FIELD, message + more, {"field": unknown[0][:MAX_NAME_SHOWN]})
        return data

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            return value  # amounts: the domain checks their range, with a message saying what the range is
        try:
            jsonable = to_jsonable_python(value)
            size_bytes = len(orjson.dumps(jsonable))
        except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
            raise ValueError(f"cannot be stored: {exc}") from None
        if size_bytes > MAX_FIELD_JSON_BYTES:
            raise ValueError(f"is too large: {size_bytes} bytes of JSON, at most {MAX_FIELD_JSON_BYTES}")
        if _has_nul(jsonable):
            raise ValueError("cannot be stored: contains a NUL character")
        return value


class BudgetWindowIn(JsonBody):
    budget_duration: str = Field(description="<positive int><unit>, unit s m h d w mo, or hourly/daily/...")
    max_budget: Usd = Field(description="USD per period, >= 0")


class BudgetFieldsIn(JsonBody):
    max_budget: Usd | None = Field(default=None, description="USD; alone: a lifetime limit")
    budget_duration: str | None = None
    budget_limits: list[BudgetWindowIn] | str | None = Field(
        default=None, description="further concurrent windows (a JSON string of the list is accepted)"
    )
    soft_budget: Usd | None = None
    alert_thresholds: list[Usd] | None = Field(
        default=None,
        description="fractions in (0, 1] of each window's max_budget that send an alert; null: the gateway default",
    )
    budget_id: Bounded | None = None


MODEL_MAX_BUDGET_DOC = (
    "windows scoped to one model: {model: {max_budget, budget_duration?, budget_limits?}} (or a JSON string of "
    "it); each limits and is charged only by requests for that model, next to the other windows; null removes them"
)


class RateLimitFieldsIn(JsonBody):
    """Rate limits next to the budgets (keys, users, teams, shared budget objects); null removes the entity's
    own limit, so its shared budget object's applies."""

    rpm_limit: StrictInt | None = Field(default=None, description="requests per minute (a positive integer)")
    tpm_limit: StrictInt | None = Field(default=None, description="tokens (prompt + completion) per minute")
    max_parallel_requests: StrictInt | None = Field(default=None, description="requests in flight at once")


class KeyFieldsIn(BudgetFieldsIn, RateLimitFieldsIn):
    model_max_budget: dict[str, Any] | str | None = Field(default=None, description=MODEL_MAX_BUDGET_DOC)
    key_alias: Bounded | None = None
    models: list[str] | None = None
    metadata: dict[str, Any] | None = None
    tags: list[Bounded] | None = None
    duration: str | None = Field(default=None, description="expiry from now, e.g. 30d")
    user_id: Bounded | None = None
    team_id: Bounded | None = None
    organization_id: Bounded | None = None
    blocked: bool | None = None


class KeyGenerateIn(KeyFieldsIn):
    key: str | None = Field(default=None, description="a custom secret starting with sk-")


class KeyUpdateIn(KeyFieldsIn):
    key: str = Field(description="the key's secret or its token (hash)")


class KeyDeleteIn(JsonBody):
    keys: list[str] = Field(min_length=1)


class KeyRefIn(JsonBody):
    key: str


class ResetSpendIn(JsonBody):
    reset_to: Any = Field(description="USD, a number >= 0 and <= the window's current spend and max_budget")
    budget_duration: str | None = Field(default=None, description="the window to reset; default the primary")
    model: str | None = Field(default=None, description="reset a model_max_budget window of this model")
    reason: str | None = None


def provided(model: BaseModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    """Only the fields the client sent, JSON-shaped: absent means 'unchanged', null means 'remove'."""
    return model.model_dump(mode="json", exclude_unset=True, exclude=exclude)
