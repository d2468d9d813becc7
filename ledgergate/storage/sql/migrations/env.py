"""Alembic environment: migrations run on a connection handed over by ``ledgergate.storage.sql.engine``."""

from __future__ import annotations

from alembic import context

from ledgergate.storage.sql.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through ledgergate (ledgergate db upgrade), not the alembic CLI")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
