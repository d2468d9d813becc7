"""Typed, located reads of the config's raw YAML values, and ``os.environ/NAME`` expansion.

Every error is a ``ConfigError`` naming where the value lives (``general_settings.hold_ttl_s``,
``model_list[0] (model_name 'x').litellm_params.api_base``) and the rule it broke.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, cast

ENV_REFERENCE_PREFIX = "os.environ/"


class ConfigError(ValueError):
    """The config cannot be used; the message names the file, the entry and the rule."""


class Section:
    """Typed reads from one mapping of the config; every error is prefixed with where the value lives."""

    def __init__(self, values: Mapping[str, Any], where: str) -> None:
        self.values = values
        self.where = where

    def fail(self, key: str, rule: str) -> ConfigError:
        return ConfigError(f"{self.where}.{key}: {rule}")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.values.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value.strip()

    def number(self, key: str, default: float | None, *, positive: bool) -> float | None:
        value = self.values.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(key, f"must be a finite number, got {value!r}")
        if value < 0 or (positive and value == 0):
            raise self.fail(key, f"must be {'> 0' if positive else '>= 0'}, got {value!r}")
        return float(value)

    def positive_int(self, key: str) -> int | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.fail(key, f"must be a positive integer, got {value!r}")
        return value

    def count(self, key: str, default: int) -> int:
        value = self.values.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(key, f"must be an integer >= 0, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.values.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.values.get(key, allowed[0])
        if value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(allowed)}, got {value!r}")
        return cast(str, value)

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.values.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a mapping, got {type(value).__name__}")
        return value


def expand_env(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    """Replace every ``os.environ/NAME`` string, at any depth, by the variable's value."""
    if isinstance(value, str) and value.startswith(ENV_REFERENCE_PREFIX):
        name = value.removeprefix(ENV_REFERENCE_PREFIX).strip()
        if name not in environ:
            raise ConfigError(f"{where}: environment variable {name!r} is not set (referenced as {value!r})")
        return environ[name]
    if isinstance(value, Mapping):
        return {key: expand_env(item, f"{where}.{key}", environ) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item, f"{where}[{index}]", environ) for index, item in enumerate(value)]
    return value
