"""Ids in query strings and paths, bounded like ids in bodies (``services/admin_entity_schemas.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from ledgergate.services.admin_entity_schemas import PRINTABLE

QueryId = Annotated[str | None, Query(min_length=1, max_length=255, pattern=PRINTABLE)]
PathId = Annotated[str, Path(min_length=1, max_length=255, pattern=PRINTABLE)]
