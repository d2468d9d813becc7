"""Dashboard sessions kept server-side: the browser holds only a random id (docs/decisions/0008).

Revision ID: 0007_dashboard_sessions
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_dashboard_sessions"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        # sha256 of the cookie's random id: a copy of this table does not yield a usable cookie
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.String(255), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at_s", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_s", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_s", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_dashboard_sessions_principal", "dashboard_sessions", ["principal_kind", "principal_id"])
    op.create_index("ix_dashboard_sessions_expires", "dashboard_sessions", ["expires_at_s"])


def downgrade() -> None:
    op.drop_table("dashboard_sessions")
