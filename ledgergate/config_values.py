"""Typed, located reads of the config's raw YAML values, and ``os.environ/NAME`` expansion.

Every error is a ``ConfigError`` naming where the value lives (``general_settings.hold_ttl_s``,
``model_list[0] (model_name 'x').litellm_params.api_base``) and the rule it broke.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

ENV_REFERENCE_PREFIX = "os.environ/"
T = TypeVar("T")
EMPTY: Mapping[str, Any] = {}  # what a section that is absent (or not a mapping) reads as


class ConfigError(ValueError):
    """The config cannot be used; the message names the file, the entry and the rule.

    ``problems`` lists every problem found (one per line of the message when there are several), so a reader
    fixes the whole file in one pass instead of one error per start attempt.
    """

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems) if problems else (message,)

    @classmethod
    def of(cls, problems: Sequence[str], source: str | None = None) -> ConfigError:
        """One error for all ``problems``, each prefixed by ``source`` (the file) when given."""
        located = [f"{source}: {problem}" if source else problem for problem in problems]
        if len(located) == 1:
            return cls(located[0], located)
        heading = f"{source}: {len(problems)} problems" if source else f"{len(problems)} problems"
        return cls(heading + ":\n" + "\n".join(f"  - {problem}" for problem in problems), located)


class ConfigProblems:
    """Collects every problem of a config instead of stopping at the first."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def attempt(self, read: Callable[[], T], fallback: T) -> T:
        """``read()``, or ``fallback`` after recording the ``ConfigError`` it raised."""
        try:
            return read()
        except ConfigError as exc:
            self.messages.extend(exc.problems)
            return fallback

    def raise_if_any(self) -> None:
        if self.messages:
            raise ConfigError.of(self.messages)


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


def expand_env(value: Any, where: str, environ: Mapping[str, str], problems: ConfigProblems | None = None) -> Any:
    """Replace every ``os.environ/NAME`` string, at any depth, by the variable's value.

    With ``problems``, every unset variable is recorded there (and read as absent) instead of raising at the first.
    """
    if isinstance(value, str) and value.startswith(ENV_REFERENCE_PREFIX):
        name = value.removeprefix(ENV_REFERENCE_PREFIX).strip()
        if name not in environ:
            message = f"{where}: environment variable {name!r} is not set (referenced as {value!r})"
            if problems is None:
                raise ConfigError(message)
            problems.add(message)
            return None
        return environ[name]
    if isinstance(value, Mapping):
        return {key: expand_env(item, f"{where}.{key}", environ, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item, f"{where}[{index}]", environ, problems) for index, item in enumerate(value)]
    return value
