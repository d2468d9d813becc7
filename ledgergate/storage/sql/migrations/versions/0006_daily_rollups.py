"""Daily spend rollups in the gateway's timezone, and their coverage; filled by the gateway, not here.

The migration cannot know the timezone (it is configuration), so it only creates the tables: the first gateway
to start registers its timezone, keeps daily rows from its first write on, and fills the earlier days from the
hourly rollups in the background (storage/sql/daily_rollups.py, docs/decisions/0006).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spend_daily_rollups",
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("day_start_s", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("timezone", "entity_type", "entity_id", "day_start_s", "model"),
    )
    # Covering, in the report's group order (see tables.py).
    op.create_index(
        "ix_spend_daily_rollups_report",
        "spend_daily_rollups",
        [
            "timezone",
            "entity_type",
            "day_start_s",
            "entity_id",
            "model",
            "cost_nanos",
            "requests",
            "prompt_tokens",
            "completion_tokens",
        ],
    )
    op.create_table(
        "rollup_coverage",
        sa.Column("timezone", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("backfilled_before_s", sa.BigInteger(), nullable=True),
        sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rollup_coverage")
    op.drop_index("ix_spend_daily_rollups_report", table_name="spend_daily_rollups")
    op.drop_table("spend_daily_rollups")
