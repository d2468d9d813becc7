"""general_settings: defaults, types, env overrides and URL normalisation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ledgergate.config import (
    DEFAULT_DATABASE_URL,
    ConfigError,
    GatewaySettings,
    load_config,
    normalise_database_url,
)

WriteConfig = Callable[[str], Path]


def test_load_config_without_file_gives_defaults() -> None:
    """path=None is an empty config: default settings and no deployments."""
    config = load_config(None, environ={})
    assert config.settings == GatewaySettings()
    assert config.settings.database_url == DEFAULT_DATABASE_URL
    assert config.deployments == ()


def test_load_config_empty_file_gives_defaults(write_config: WriteConfig) -> None:
    """An empty YAML file is the same as no file."""
    config = load_config(write_config(""), environ={})
    assert config.settings == GatewaySettings()


def test_settings_reads_every_supported_key(write_config: WriteConfig) -> None:
    """Every documented general_settings key lands in its typed field."""
    path = write_config(
        """
general_settings:
  master_key: sk-admin
  database_url: postgresql://u:p@db:5432/ledger
  redis_url: redis://cache:6379/0
  budget_mode: strict
  timezone: Europe/Berlin
  allow_client_tags: true
  hold_ttl_s: 120
  default_max_output_tokens: 2048
  max_n: 4
  counter_fallback: fail_closed
  max_budget: 100.5
  budget_duration: 30d
  alerting:
    webhook_url: https://hooks.example/x
  upstream_timeout_s: 30
"""
    )
    settings = load_config(path, environ={}).settings
    assert settings == GatewaySettings(
        master_key="sk-admin",
        database_url="postgresql+asyncpg://u:p@db:5432/ledger",
        redis_url="redis://cache:6379/0",
        budget_mode="strict",
        timezone="Europe/Berlin",
        allow_client_tags=True,
        hold_ttl_s=120.0,
        default_max_output_tokens=2048,
        max_n=4,
        counter_fallback="fail_closed",
        max_budget=100.5,
        budget_duration="30d",
        alerting_webhook_url="https://hooks.example/x",
        upstream_timeout_s=30.0,
    )


def test_settings_unknown_keys_kept_in_extra(write_config: WriteConfig) -> None:
    """LiteLLM-only keys (and LiteLLM's alerting list) are tolerated and kept in extra."""
    path = write_config(
        """
general_settings:
  store_model_in_db: true
  alerting: ["slack"]
  proxy_batch_write_at: 60
"""
    )
    settings = load_config(path, environ={}).settings
    assert settings.extra == {"store_model_in_db": True, "alerting": ["slack"], "proxy_batch_write_at": 60}
    assert settings.alerting_webhook_url is None


def test_settings_global_budget_read_from_litellm_settings(write_config: WriteConfig) -> None:
    """litellm_settings.max_budget/budget_duration (LiteLLM's place) set the global budget too."""
    path = write_config("litellm_settings:\n  max_budget: 10\n  budget_duration: 1mo\n")
    settings = load_config(path, environ={}).settings
    assert (settings.max_budget, settings.budget_duration) == (10.0, "1mo")


def test_settings_env_reference_replaced(write_config: WriteConfig) -> None:
    """An os.environ/NAME value in general_settings is the variable's value."""
    path = write_config("general_settings:\n  master_key: os.environ/ADMIN_KEY\n")
    settings = load_config(path, environ={"ADMIN_KEY": "sk-from-env"}).settings
    assert settings.master_key == "sk-from-env"


def test_settings_missing_env_reference_names_variable(write_config: WriteConfig) -> None:
    """A missing referenced variable is a ConfigError naming the file, the key and the variable."""
    path = write_config("general_settings:\n  master_key: os.environ/ADMIN_KEY\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert str(path) in message
    assert "general_settings.master_key" in message
    assert "'ADMIN_KEY'" in message


def test_settings_ledgergate_env_overrides_win(write_config: WriteConfig) -> None:
    """LEDGERGATE_MASTER_KEY, LEDGERGATE_DATABASE_URL and LEDGERGATE_REDIS_URL win over the file."""
    path = write_config(
        """
general_settings:
  master_key: sk-file
  database_url: sqlite:///file.db
  redis_url: redis://file:6379
"""
    )
    environ = {
        "LEDGERGATE_MASTER_KEY": "sk-env",
        "LEDGERGATE_DATABASE_URL": "postgres://env-db/ledger",
        "LEDGERGATE_REDIS_URL": "rediss://env-cache:6380",
    }
    settings = load_config(path, environ=environ).settings
    assert settings.master_key == "sk-env"
    assert settings.database_url == "postgresql+asyncpg://env-db/ledger"
    assert settings.redis_url == "rediss://env-cache:6380"


def test_settings_empty_env_override_ignored(write_config: WriteConfig) -> None:
    """An override variable set to the empty string does not blank the file's value."""
    path = write_config("general_settings:\n  master_key: sk-file\n")
    settings = load_config(path, environ={"LEDGERGATE_MASTER_KEY": ""}).settings
    assert settings.master_key == "sk-file"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgres://h/d", "postgresql+asyncpg://h/d"),
        ("postgresql+asyncpg://h/d", "postgresql+asyncpg://h/d"),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_normalise_database_url_uses_async_drivers(given: str, expected: str) -> None:
    """Plain PostgreSQL and SQLite URLs become their asyncpg / aiosqlite forms."""
    assert normalise_database_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://h/d", "postgresql+psycopg2://h/d", "ledger.db"])
def test_normalise_database_url_rejects_unsupported(url: str) -> None:
    """Drivers that are not shipped, and non-URLs, are refused with the supported forms."""
    with pytest.raises(ConfigError, match=r"postgresql://\.\.\. or sqlite:///"):
        normalise_database_url(url)


def test_settings_unknown_timezone_rejected(write_config: WriteConfig) -> None:
    """timezone must be an IANA zone name."""
    path = write_config("general_settings:\n  timezone: Mars/Olympus\n")
    with pytest.raises(ConfigError, match=r"general_settings\.timezone: unknown IANA time zone 'Mars/Olympus'"):
        load_config(path, environ={})


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("budget_mode: lenient", r"general_settings\.budget_mode: must be one of standard, strict"),
        (
            "counter_fallback: open",
            r"general_settings\.counter_fallback: must be one of fail_closed, database",
        ),
        ("allow_client_tags: 'yes'", r"general_settings\.allow_client_tags: must be true or false"),
        ("hold_ttl_s: 0", r"general_settings\.hold_ttl_s: must be > 0"),
        ("hold_ttl_s: fast", r"general_settings\.hold_ttl_s: must be a finite number"),
        (
            "default_max_output_tokens: 1.5",
            r"general_settings\.default_max_output_tokens: must be a positive integer",
        ),
        ("max_n: 0", r"general_settings\.max_n: must be a positive integer"),
        ("max_n: many", r"general_settings\.max_n: must be a positive integer"),
        ("max_budget: -1", r"general_settings\.max_budget: must be >= 0"),
        ("max_budget: .nan", r"general_settings\.max_budget: must be a finite number"),
        ("master_key: 42", r"general_settings\.master_key: must be a non-empty string"),
        ("redis_url: http://cache", r"redis_url 'http://cache' must start with redis://"),
    ],
)
def test_settings_wrong_type_rejected(write_config: WriteConfig, line: str, expected: str) -> None:
    """A value of the wrong type or range is a ConfigError naming the key and the rule."""
    path = write_config(f"general_settings:\n  {line}\n")
    with pytest.raises(ConfigError, match=expected):
        load_config(path, environ={})


def test_load_config_invalid_yaml_rejected(write_config: WriteConfig) -> None:
    """Unparseable YAML is a ConfigError naming the file."""
    path = write_config("general_settings: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML") as caught:
        load_config(path, environ={})
    assert str(caught.value).startswith(f"{path}: ")


def test_load_config_non_mapping_document_rejected(write_config: WriteConfig) -> None:
    """The top level of the file must be a mapping."""
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        load_config(write_config("- just\n- a list\n"), environ={})


def test_load_config_general_settings_must_be_mapping(write_config: WriteConfig) -> None:
    """general_settings of the wrong type is refused, not ignored."""
    with pytest.raises(ConfigError, match=r"config\.general_settings: must be a mapping"):
        load_config(write_config("general_settings: 3\n"), environ={})


def test_load_config_missing_file_rejected(tmp_path: Path) -> None:
    """A path that cannot be read is a ConfigError naming it."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read config file") as caught:
        load_config(missing, environ={})
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite+aiosqlite:///"])
def test_normalise_database_url_refuses_a_sqlite_url_without_a_file(url: str) -> None:
    """The ledger's SQLite writer opens its own connections, so an in-memory database would lose every record into
    another, empty one: refused at load, naming database_url, before anything is served."""
    with pytest.raises(ConfigError, match=r"database_url .* names no SQLite file; the ledger needs one"):
        normalise_database_url(url)
