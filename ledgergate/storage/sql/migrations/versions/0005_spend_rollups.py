"""Hourly spend rollups, maintained with every ledger insert; backfilled here from the existing ledger.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Integer division of non-negative integers floors on both SQLite and PostgreSQL.
_HOUR = "(c.charged_at_us / 3600000000) * 3600"
_BACKFILL_CHARGES = f"""
INSERT INTO spend_rollups
    (entity_type, entity_id, model, hour_start_s, cost_nanos, requests, prompt_tokens, completion_tokens)
SELECT c.entity_type, c.entity_id, r.model, {_HOUR}, SUM(c.cost_nanos), COUNT(*),
       SUM(r.prompt_tokens), SUM(r.completion_tokens)
FROM spend_charges c JOIN spend_records r ON r.request_id = c.request_id
GROUP BY c.entity_type, c.entity_id, r.model, {_HOUR}
"""
_BACKFILL_RECORDS = f"""
INSERT INTO spend_rollups
    (entity_type, entity_id, model, hour_start_s, cost_nanos, requests, prompt_tokens, completion_tokens)
SELECT 'record', '*', c.model, {_HOUR}, SUM(c.cost_nanos), COUNT(*), SUM(c.prompt_tokens), SUM(c.completion_tokens)
FROM spend_records c
GROUP BY c.model, {_HOUR}
"""


def upgrade() -> None:
    op.create_table(
        "spend_rollups",
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("hour_start_s", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entity_type", "entity_id", "hour_start_s", "model"),
    )
    op.create_index("ix_spend_rollups_type_hour", "spend_rollups", ["entity_type", "hour_start_s"])
    # The upgrade runs in one transaction (and, on PostgreSQL, under the migration lock): no record is written
    # between the backfill and the first gateway write that maintains the table.
    op.execute(_BACKFILL_CHARGES)
    op.execute(_BACKFILL_RECORDS)


def downgrade() -> None:
    op.drop_index("ix_spend_rollups_type_hour", table_name="spend_rollups")
    op.drop_table("spend_rollups")
