"""model_info.max_input_tokens and max_input_tokens_per_image become a deployment's input limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ledgergate.config import ConfigError, load_config
from ledgergate.domain.input_bounds import DEFAULT_MAX_INPUT_TOKENS_PER_IMAGE, InputLimits

WriteConfig = Callable[[str], Path]
PRICES = "input_cost_per_token: 0.000001, output_cost_per_token: 0.000002"


def test_input_limits_come_from_model_info_then_the_price_catalog_then_the_defaults(write_config: WriteConfig) -> None:
    path = write_config(
        f"""
model_list:
  - model_name: set
    litellm_params: {{model: openai/unknown-model, api_base: "http://127.0.0.1:9/v1"}}
    model_info: {{{PRICES}, max_input_tokens: 32000, max_input_tokens_per_image: 1445}}
  - model_name: catalog
    litellm_params: {{model: openai/gpt-4o}}
  - model_name: unknown
    litellm_params: {{model: openai/unknown-model, api_base: "http://127.0.0.1:9/v1"}}
    model_info: {{{PRICES}}}
"""
    )
    limits = {
        deployment.model_name: deployment.input_limits for deployment in load_config(path, environ={}).deployments
    }
    assert limits == {
        "set": InputLimits(tokens_per_image=1445, context_window_tokens=32000),
        "catalog": InputLimits(tokens_per_image=DEFAULT_MAX_INPUT_TOKENS_PER_IMAGE, context_window_tokens=128_000),
        "unknown": InputLimits(tokens_per_image=DEFAULT_MAX_INPUT_TOKENS_PER_IMAGE, context_window_tokens=None),
    }


@pytest.mark.parametrize("field", ["max_input_tokens", "max_input_tokens_per_image"])
def test_a_non_positive_input_limit_is_a_config_error_naming_it(write_config: WriteConfig, field: str) -> None:
    path = write_config(
        f"""
model_list:
  - model_name: m
    litellm_params: {{model: openai/gpt-4o}}
    model_info: {{{field}: 0}}
"""
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert field in str(error.value)
