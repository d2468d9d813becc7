"""SQL schema (SQLAlchemy Core). Times are integer epoch microseconds/seconds, money integer nanos."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Every admin-managed entity (key, user, team, team_member, organization, customer, tag, budget) shares one
# shape: the columns the hot path and the list filters need, the rest as JSON in `data`.
entities = Table(
    "entities",
    metadata,
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(255), nullable=False),
    Column("alias", String(255), nullable=True),
    Column("user_id", String(255), nullable=True),
    Column("team_id", String(255), nullable=True),
    Column("organization_id", String(255), nullable=True),
    Column("budget_id", String(255), nullable=True),
    Column("blocked", Boolean, nullable=False, default=False),
    Column("expires_at_s", Float, nullable=True),
    Column("data", Text, nullable=False),
    Column("created_at_s", Float, nullable=False),
    Column("updated_at_s", Float, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    PrimaryKeyConstraint("entity_type", "entity_id"),
    Index("ix_entities_user", "entity_type", "user_id"),
    Index("ix_entities_team", "entity_type", "team_id"),
    Index("ix_entities_alias", "entity_type", "alias"),
)

spend_records = Table(
    "spend_records",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("team_id", String(255), nullable=True),
    Column("organization_id", String(255), nullable=True),
    Column("customer_id", String(255), nullable=True),
    Column("tags", Text, nullable=False),
    Column("model", String(255), nullable=False),
    Column("deployment_id", String(255), nullable=False),
    Column("route", String(64), nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cost_nanos", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("charged_at_us", BigInteger, nullable=False),
    Column("ended_at_us", BigInteger, nullable=False),
    Index("ix_spend_records_charged_at", "charged_at_us"),
    Index("ix_spend_records_key", "key_id", "charged_at_us"),
)

# One row per charge target of a record: what counters are rebuilt from and what per-entity reports sum.
spend_charges = Table(
    "spend_charges",
    metadata,
    Column("request_id", String(64), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(255), nullable=False),
    Column("cost_nanos", BigInteger, nullable=False),
    Column("charged_at_us", BigInteger, nullable=False),
    PrimaryKeyConstraint("request_id", "entity_type", "entity_id"),
    Index("ix_spend_charges_entity_time", "entity_type", "entity_id", "charged_at_us"),
)

spend_adjustments = Table(
    "spend_adjustments",
    metadata,
    Column("adjustment_id", String(64), primary_key=True),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(255), nullable=False),
    Column("window", String(32), nullable=False),
    Column("period_start_s", BigInteger, nullable=False),
    Column("previous_nanos", BigInteger, nullable=False),
    Column("new_nanos", BigInteger, nullable=False),
    Column("delta_nanos", BigInteger, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Index("ix_spend_adjustments_entity", "entity_type", "entity_id", "window", "period_start_s"),
)

# Budget alerts: the unique constraint is the claim that makes each alert sent once across instances/restarts.
budget_alerts = Table(
    "budget_alerts",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("event", String(32), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(255), nullable=False),
    Column("entity_name", String(255), nullable=False),
    Column("window", String(32), nullable=False),
    Column("budget_duration", String(32), nullable=True),
    Column("period_start_s", BigInteger, nullable=False),
    Column("period_end_s", BigInteger, nullable=False),
    Column("threshold", String(32), nullable=False),
    Column("spend_nanos", BigInteger, nullable=False),
    Column("max_budget_nanos", BigInteger, nullable=False),
    Column("soft_budget_nanos", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("delivered_at_us", BigInteger, nullable=True),
    # Until when the instance delivering it owns it; the resend sweep takes over only after this instant.
    Column("lease_until_us", BigInteger, nullable=False),
    UniqueConstraint("entity_type", "entity_id", "window", "period_start_s", "threshold", name="uq_budget_alerts_once"),
    Index("ix_budget_alerts_created", "created_at_us"),
    Index("ix_budget_alerts_entity", "entity_type", "entity_id", "created_at_us"),
)
