"""Where the spill directory is (general_settings.ledger_spill_dir and its defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ledgergate.config import ConfigError, GatewaySettings, ledger_spill_directory, load_config


def _settings(tmp_path: Path, general: dict[str, object]) -> GatewaySettings:
    path = tmp_path / "ledgergate.yaml"
    path.write_text(yaml.safe_dump({"general_settings": general, "model_list": []}), encoding="utf-8")
    return load_config(path, environ={}).settings


def test_a_sqlite_database_spills_next_to_its_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"database_url": f"sqlite:///{tmp_path}/lg.db"})
    assert ledger_spill_directory(settings) == Path(f"{tmp_path}/lg.db.ledger-spill")


def test_postgresql_spills_in_a_data_dir_per_database_whatever_its_password(tmp_path: Path) -> None:
    first = _settings(tmp_path, {"database_url": "postgresql://lg:secret1@db:5432/ledger"})
    rotated = _settings(tmp_path, {"database_url": "postgresql://lg:secret2@db:5432/ledger"})
    other = _settings(tmp_path, {"database_url": "postgresql://lg:secret1@db:5432/other"})
    directory = ledger_spill_directory(first)
    assert directory.parent == Path("ledgergate-data")
    assert "secret" not in str(directory)
    assert ledger_spill_directory(rotated) == directory
    assert ledger_spill_directory(other) != directory


def test_an_explicit_spill_dir_is_used_as_given(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"ledger_spill_dir": str(tmp_path / "spill")})
    assert ledger_spill_directory(settings) == tmp_path / "spill"


def test_a_spill_dir_that_is_not_a_string_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ledger_spill_dir"):
        _settings(tmp_path, {"ledger_spill_dir": 12})
