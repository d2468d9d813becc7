"""Domain validation failures carry the field and the rule so the API can answer 400 without guessing."""

from __future__ import annotations


class InvalidInput(ValueError):
    """A value broke a rule of the domain; ``field`` names it the way the client sent it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class EntityConflict(Exception):
    """An entity store refused a write: the entity exists already (create) or changed since it was read."""
