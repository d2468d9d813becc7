"""Admission through SQL while Redis is unreachable: counters, holds, the shared counter store mode.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "counters",
        sa.Column("counter_key", sa.String(1024), primary_key=True),
        sa.Column("spent_nanos", sa.BigInteger(), nullable=True),
        sa.Column("held_nanos", sa.BigInteger(), nullable=False),
        sa.Column("period_end_s", sa.BigInteger(), nullable=False),
        sa.Column("incarnation", sa.String(32), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_counters_period_end", "counters", ["period_end_s"])
    op.create_table(
        "counter_holds",
        sa.Column("hold_id", sa.String(255), primary_key=True),
        sa.Column("amount_nanos", sa.BigInteger(), nullable=False),
        sa.Column("placed_on", sa.Text(), nullable=False),
        sa.Column("expires_at_s", sa.Float(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("forget_after_s", sa.Float(), nullable=False),
    )
    op.create_index("ix_counter_holds_due", "counter_holds", ["state", "expires_at_s"])
    op.create_index("ix_counter_holds_forget", "counter_holds", ["forget_after_s"])
    mode = op.create_table(
        "counter_store_mode",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("changed_at_s", sa.Float(), nullable=False),
    )
    op.bulk_insert(mode, [{"id": 1, "mode": "redis", "epoch": 0, "changed_at_s": 0.0}])
    op.create_table(
        "counter_store_members",
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.Column("redis_ok", sa.Boolean(), nullable=False),
        sa.Column("seen_at_s", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("counter_store_members")
    op.drop_table("counter_store_mode")
    op.drop_table("counter_holds")
    op.drop_table("counters")
