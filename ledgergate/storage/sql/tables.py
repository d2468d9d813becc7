"""SQL schema (SQLAlchemy Core). Times are integer epoch microseconds/seconds, money integer nanos."""

from __future__ import annotations

from typing import Any

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
# A window key: its period (at most "lifetime") and, for a model window, "@" and a model name (as spend_records).
WINDOW_KEY_LENGTH = 300

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
    Column("window", String(WINDOW_KEY_LENGTH), nullable=False),
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
    Column("window", String(WINDOW_KEY_LENGTH), nullable=False),
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

# Admission counters in SQL (counter_fallback: database), see storage/sql/sql_counters.py. `counter_key` is the
# canonical JSON of every CounterKey field, so the table follows the key's shape; spent_nanos NULL marks a row
# created but not yet loaded from the ledger.
counters = Table(
    "counters",
    metadata,
    Column("counter_key", String(1024), primary_key=True),
    Column("spent_nanos", BigInteger, nullable=True),
    Column("held_nanos", BigInteger, nullable=False),
    Column("period_end_s", BigInteger, nullable=False),
    Column("incarnation", String(32), nullable=False),  # new on every load: tells a settle whether it is exact
    Column("stale", Boolean, nullable=False),  # recount from the ledger once no hold is on it
    Index("ix_counters_period_end", "period_end_s"),
)

counter_holds = Table(
    "counter_holds",
    metadata,
    Column("hold_id", String(255), primary_key=True),
    Column("amount_nanos", BigInteger, nullable=False),
    Column("placed_on", Text, nullable=False),  # JSON [[counter_key, incarnation], ...], one per line
    Column("expires_at_s", Float, nullable=False),
    Column("state", String(8), nullable=False),  # held | expired | settled
    Column("forget_after_s", Float, nullable=False),  # the row is deleted after this instant unless still held
    Index("ix_counter_holds_due", "state", "expires_at_s"),
    Index("ix_counter_holds_forget", "forget_after_s"),
)

# Which store admits (redis | database), shared by every instance; one row. See storage/fallback_counters.py.
counter_store_mode = Table(
    "counter_store_mode",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mode", String(16), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("changed_at_s", Float, nullable=False),
)

# One heartbeat per running instance: whether it can reach Redis (the switch back waits for all of them).
counter_store_members = Table(
    "counter_store_members",
    metadata,
    Column("instance_id", String(64), primary_key=True),
    Column("redis_ok", Boolean, nullable=False),
    Column("seen_at_s", Float, nullable=False),
)

# Hourly sums of the ledger, written in the transaction that inserts the records (storage/sql/ledger.py), so they
# are always exactly the sums of spend_charges per hour: counter loads, lifetime spend and reports read whole
# hours here and only partial edge hours from the raw rows (docs/decisions/0005). One row per charge target, and
# one per record under ROLLUP_RECORD_TYPE (the whole ledger, what per-model reports sum).
ROLLUP_RECORD_TYPE = "record"
ROLLUP_RECORD_ID = "*"
ROLLUP_HOUR_S = 3600
ROLLUP_SUMS = ("cost_nanos", "requests", "prompt_tokens", "completion_tokens")


def _rollup_columns(bucket_column: str) -> list[Column[Any]]:
    """The columns every rollup table has: who, which model, the bucket's start, and the sums."""
    return [
        Column("entity_type", String(32), nullable=False),
        Column("entity_id", String(255), nullable=False),
        Column("model", String(255), nullable=False),
        Column(bucket_column, BigInteger, nullable=False),
        *(Column(name, BigInteger, nullable=False) for name in ROLLUP_SUMS),
    ]


spend_rollups = Table(
    "spend_rollups",
    metadata,
    *_rollup_columns("hour_start_s"),
    # hour before model: an entity's time range is one index range whether or not a model narrows it
    PrimaryKeyConstraint("entity_type", "entity_id", "hour_start_s", "model"),
    Index("ix_spend_rollups_type_hour", "entity_type", "hour_start_s"),
)

# Daily sums of the ledger per local day of one timezone (the gateway's), what /spend/report reads for whole days
# (docs/decisions/0006). Written with the records like the hourly rows, under the same keys plus the timezone;
# only valid for a timezone whose rollup_coverage row says "complete".
DAILY_REPORT_COLUMNS = ("model", "cost_nanos", "requests", "prompt_tokens", "completion_tokens")
spend_daily_rollups = Table(
    "spend_daily_rollups",
    metadata,
    Column("timezone", String(64), nullable=False),
    *_rollup_columns("day_start_s"),
    PrimaryKeyConstraint("timezone", "entity_type", "entity_id", "day_start_s", "model"),
    # Covering, in the report's group order: a 90-day report by key (90,000 rows) reads this index alone, in
    # order, with no table lookups and no sort.
    Index(
        "ix_spend_daily_rollups_report", "timezone", "entity_type", "day_start_s", "entity_id", *DAILY_REPORT_COLUMNS
    ),
)

# Which timezone the writers keep daily rows in, and whether those rows hold every record yet: "backfilling"
# until the days written before the writers kept them are filled from the hourly rows, then "complete";
# "unsupported" when some such day does not start on a whole hour (the hourly rows cannot split it).
DAILY_BACKFILLING = "backfilling"
DAILY_COMPLETE = "complete"
DAILY_UNSUPPORTED = "unsupported"
rollup_coverage = Table(
    "rollup_coverage",
    metadata,
    Column("timezone", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    # the backfill's progress: every day starting before this has been filled (None: not started)
    Column("backfilled_before_s", BigInteger, nullable=True),
    Column("updated_at_us", BigInteger, nullable=False),
)
