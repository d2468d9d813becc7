"""Budget alerts: the alert log, whose unique key is the claim that sends each alert once.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_alerts",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("entity_name", sa.String(255), nullable=False),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("budget_duration", sa.String(32), nullable=True),
        sa.Column("period_start_s", sa.BigInteger(), nullable=False),
        sa.Column("period_end_s", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.String(32), nullable=False),
        sa.Column("spend_nanos", sa.BigInteger(), nullable=False),
        sa.Column("max_budget_nanos", sa.BigInteger(), nullable=False),
        sa.Column("soft_budget_nanos", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at_us", sa.BigInteger(), nullable=True),
        sa.Column("lease_until_us", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint(
            "entity_type", "entity_id", "window", "period_start_s", "threshold", name="uq_budget_alerts_once"
        ),
    )
    op.create_index("ix_budget_alerts_created", "budget_alerts", ["created_at_us"])
    op.create_index("ix_budget_alerts_entity", "budget_alerts", ["entity_type", "entity_id", "created_at_us"])


def downgrade() -> None:
    op.drop_table("budget_alerts")
