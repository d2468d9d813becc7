"""Which models a request may call: the intersection of the ``models`` list of every entity that applies to it.

An empty list (or ``all-proxy-models``) allows every model, as in LiteLLM. The entities are the request's charge
targets (key, team, team member, organization, customer, tags) and the key's user, so a restriction set on any
of them cannot be escaped by issuing a key without one.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledgergate.domain.charging import EntityType
from ledgergate.domain.entities import Entity


def first_refusing(model: str, entities: Iterable[Entity]) -> Entity | None:
    """The first entity whose ``models`` list does not allow ``model``; ``None``: every list allows it."""
    for entity in entities:
        if not entity.allows_model(model):
            return entity
    return None


def not_allowed_message(entity: Entity, model: str) -> str:
    if entity.type is EntityType.KEY:
        return f"this key may not use model {model!r}"  # LiteLLM-style wording scripts already match
    return f"{entity.type.value} {entity.display_name()!r} may not use model {model!r}"
