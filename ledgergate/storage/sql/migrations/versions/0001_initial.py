"""Initial schema: entities, spend records and their per-target charges, adjustments.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("alias", sa.String(255), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("team_id", sa.String(255), nullable=True),
        sa.Column("organization_id", sa.String(255), nullable=True),
        sa.Column("budget_id", sa.String(255), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("expires_at_s", sa.Float(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at_s", sa.Float(), nullable=False),
        sa.Column("updated_at_s", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("entity_type", "entity_id"),
    )
    op.create_index("ix_entities_user", "entities", ["entity_type", "user_id"])
    op.create_index("ix_entities_team", "entities", ["entity_type", "team_id"])
    op.create_index("ix_entities_alias", "entities", ["entity_type", "alias"])
    op.create_table(
        "spend_records",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("team_id", sa.String(255), nullable=True),
        sa.Column("organization_id", sa.String(255), nullable=True),
        sa.Column("customer_id", sa.String(255), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("deployment_id", sa.String(255), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("charged_at_us", sa.BigInteger(), nullable=False),
        sa.Column("ended_at_us", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_spend_records_charged_at", "spend_records", ["charged_at_us"])
    op.create_index("ix_spend_records_key", "spend_records", ["key_id", "charged_at_us"])
    op.create_table(
        "spend_charges",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("charged_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "entity_type", "entity_id"),
    )
    op.create_index("ix_spend_charges_entity_time", "spend_charges", ["entity_type", "entity_id", "charged_at_us"])
    op.create_table(
        "spend_adjustments",
        sa.Column("adjustment_id", sa.String(64), primary_key=True),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("period_start_s", sa.BigInteger(), nullable=False),
        sa.Column("previous_nanos", sa.BigInteger(), nullable=False),
        sa.Column("new_nanos", sa.BigInteger(), nullable=False),
        sa.Column("delta_nanos", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_spend_adjustments_entity",
        "spend_adjustments",
        ["entity_type", "entity_id", "window", "period_start_s"],
    )


def downgrade() -> None:
    op.drop_table("spend_adjustments")
    op.drop_table("spend_charges")
    op.drop_table("spend_records")
    op.drop_table("entities")
