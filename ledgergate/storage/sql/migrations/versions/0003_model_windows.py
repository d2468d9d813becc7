"""Model windows: a window key may carry a model name (``1d@<model>``), so the window columns grow to hold one.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_WIDENED = (("spend_adjustments", "window"), ("budget_alerts", "window"))


def upgrade() -> None:
    # SQLite does not enforce VARCHAR lengths; rebuilding its tables (batch mode) would gain nothing.
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _WIDENED:
        op.alter_column(table, column, type_=sa.String(300), existing_type=sa.String(32), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _WIDENED:
        op.alter_column(table, column, type_=sa.String(32), existing_type=sa.String(300), existing_nullable=False)
