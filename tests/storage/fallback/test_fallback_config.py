"""``general_settings.counter_fallback: database`` is accepted only where it can work: with Redis to fall back
from and PostgreSQL (shared by every instance) to fall back to."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ledgergate.config import ConfigError, load_config

POSTGRES = "postgresql://ledgergate@db.internal:5432/ledgergate"
REDIS = "redis://redis.internal:6379/0"


def _config(tmp_path: Path, **general: object) -> Path:
    path = tmp_path / "ledgergate.yaml"
    path.write_text(yaml.safe_dump({"general_settings": {"counter_fallback": "database", **general}}))
    return path


def test_fallback_config_database_with_postgresql_and_redis_is_accepted(tmp_path: Path) -> None:
    """The supported setup loads, and says so in its settings (the container wires the SQL fallback from it)."""
    config = load_config(_config(tmp_path, database_url=POSTGRES, redis_url=REDIS), environ={})
    assert config.settings.counter_fallback == "database"
    assert config.settings.database_url.startswith("postgresql+asyncpg://")


@pytest.mark.parametrize(
    "general",
    [
        {"database_url": POSTGRES},  # no Redis: nothing to fall back from
        {"database_url": "sqlite:///./lg.db", "redis_url": REDIS},  # SQLite is one instance's database
        {"redis_url": REDIS},  # the default database is SQLite
    ],
)
def test_fallback_config_database_without_postgresql_and_redis_is_rejected(
    tmp_path: Path, general: dict[str, str]
) -> None:
    """A fallback that cannot work is a start-up error naming the setting and what it needs, not a silent
    fail-closed (or worse) at the first outage."""
    with pytest.raises(ConfigError, match=r"general_settings\.counter_fallback: 'database' .* needs a redis_url"):
        load_config(_config(tmp_path, **general), environ={})


def test_fallback_config_environment_urls_count(tmp_path: Path) -> None:
    """``LEDGERGATE_DATABASE_URL`` / ``LEDGERGATE_REDIS_URL`` satisfy the requirement as the file would."""
    environ = {"LEDGERGATE_DATABASE_URL": POSTGRES, "LEDGERGATE_REDIS_URL": REDIS}
    assert load_config(_config(tmp_path), environ=environ).settings.counter_fallback == "database"
