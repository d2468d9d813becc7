"""The metrics settings of general_settings: defaults, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ledgergate.config import ConfigError, load_config


def _load(tmp_path: Path, **general: Any) -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"general_settings": general}), encoding="utf-8")
    return load_config(path, environ={}).settings


def test_metrics_config_defaults(tmp_path: Path) -> None:
    """Model and team labels, 20 budget series, a proxy admin or viewer key: cheap and safe for any deployment."""
    settings = _load(tmp_path)
    assert settings.metrics_labels == ("model", "team")
    assert settings.metrics_top_n == 20
    assert settings.metrics_auth == "admin"


def test_metrics_config_reads_the_settings(tmp_path: Path) -> None:
    """Configured values are used as given; a repeated label counts once."""
    settings = _load(tmp_path, metrics_labels=["customer", "key", "key"], metrics_top_n=0, metrics_auth="none")
    assert settings.metrics_labels == ("customer", "key")
    assert settings.metrics_top_n == 0
    assert settings.metrics_auth == "none"
    assert _load(tmp_path, metrics_require_auth=False).metrics_auth == "none"  # the older flag still works
    assert _load(tmp_path, metrics_require_auth=False, metrics_auth="admin").metrics_auth == "admin"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("metrics_labels", ["model", "user"]),
        ("metrics_labels", "team"),
        ("metrics_top_n", -1),
        ("metrics_top_n", 2.5),
        ("metrics_require_auth", "yes"),
        ("metrics_auth", "viewer"),
        ("metrics_auth", True),
    ],
)
def test_metrics_config_rejects_bad_values(tmp_path: Path, setting: str, value: Any) -> None:
    """A bad value stops start-up with a message naming the setting (an unbounded label is never guessed)."""
    with pytest.raises(ConfigError, match=f"general_settings.{setting}"):
        _load(tmp_path, **{setting: value})
