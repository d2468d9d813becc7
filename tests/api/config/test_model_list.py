"""model_list entries become Deployments: provider split, defaults, env references, prices, demo models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ledgergate.config import DEMO_API_BASE, ConfigError, load_config, split_provider
from ledgergate.domain.pricing import TokenPrices

WriteConfig = Callable[[str], Path]

PRICED_INFO = "model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}"


def test_split_provider_known_prefix() -> None:
    """A known LiteLLM prefix is the provider; the rest (slashes included) is the upstream model."""
    assert split_provider("anthropic/claude-sonnet-4-5") == ("anthropic", "claude-sonnet-4-5")
    assert split_provider("openrouter/meta-llama/llama-3-8b") == ("openrouter", "meta-llama/llama-3-8b")


def test_split_provider_unknown_prefix_defaults_to_openai() -> None:
    """Without a known prefix the provider is openai and the whole string is the upstream model (for pricing
    lookups; the loader refuses an unknown prefix in litellm_params.model, see test_config_problems.py)."""
    assert split_provider("gpt-4o") == ("openai", "gpt-4o")
    assert split_provider("meta-llama/Llama-3-8B") == ("openai", "meta-llama/Llama-3-8B")


def test_deployment_defaults_from_provider(write_config: WriteConfig) -> None:
    """api_base defaults per provider; deployment_id defaults to model_name#index; timeout to the setting."""
    path = write_config(
        """
general_settings: {upstream_timeout_s: 42}
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
  - model_name: claude
    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: sk-ant}
"""
    )
    first, second = load_config(path, environ={}).deployments
    assert (first.provider, first.upstream_model, first.api_base) == (
        "openai",
        "gpt-4o",
        "https://api.openai.com/v1",
    )
    assert (first.deployment_id, first.timeout_s, first.api_key) == ("gpt-4o#0", 42.0, None)
    assert (second.provider, second.api_base, second.api_key) == (
        "anthropic",
        "https://api.anthropic.com/v1",
        "sk-ant",
    )
    assert second.deployment_id == "claude#1"


def test_deployment_explicit_fields(write_config: WriteConfig) -> None:
    """api_base (minus trailing slash), timeout, extra_headers, model_info.id and output cap are kept."""
    path = write_config(
        """
model_list:
  - model_name: local
    litellm_params:
      model: hosted_vllm/qwen
      api_base: http://vllm:8000/v1/
      timeout: 12.5
      extra_headers: {X-Team: infra}
    model_info: {id: vllm-a, max_tokens: 777, input_cost_per_token: 0, output_cost_per_token: 0}
"""
    )
    (deployment,) = load_config(path, environ={}).deployments
    assert deployment.api_base == "http://vllm:8000/v1"
    assert (deployment.timeout_s, deployment.extra_headers) == (12.5, {"X-Team": "infra"})
    assert (deployment.deployment_id, deployment.max_output_tokens) == ("vllm-a", 777)


def test_deployment_max_output_tokens_precedence(write_config: WriteConfig) -> None:
    """model_info.max_output_tokens beats max_tokens; without either, default_max_output_tokens applies."""
    path = write_config(
        f"""
general_settings: {{default_max_output_tokens: 333}}
model_list:
  - model_name: a
    litellm_params: {{model: openai/a}}
    model_info: {{max_output_tokens: 100, max_tokens: 200, input_cost_per_token: 0, output_cost_per_token: 0}}
  - model_name: b
    litellm_params: {{model: openai/b}}
    {PRICED_INFO}
"""
    )
    first, second = load_config(path, environ={}).deployments
    assert (first.max_output_tokens, second.max_output_tokens) == (100, 333)


def test_deployment_env_references_replaced(write_config: WriteConfig) -> None:
    """os.environ/NAME anywhere in an entry (api_key, api_base, headers) is the variable's value."""
    path = write_config(
        f"""
model_list:
  - model_name: m
    litellm_params:
      model: openai/m
      api_key: os.environ/OPENAI_KEY
      api_base: os.environ/OPENAI_BASE
      extra_headers: {{X-Org: os.environ/ORG}}
    {PRICED_INFO}
"""
    )
    environ = {"OPENAI_KEY": "sk-up", "OPENAI_BASE": "https://proxy.example/v1/", "ORG": "acme"}
    (deployment,) = load_config(path, environ=environ).deployments
    assert (deployment.api_key, deployment.api_base) == ("sk-up", "https://proxy.example/v1")
    assert deployment.extra_headers == {"X-Org": "acme"}


def test_deployment_missing_env_reference_names_entry_and_variable(write_config: WriteConfig) -> None:
    """A missing variable is a ConfigError naming the file, the entry and the variable."""
    path = write_config(
        f"""
model_list:
  - model_name: m
    litellm_params: {{model: openai/m, api_key: os.environ/OPENAI_KEY}}
    {PRICED_INFO}
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{path}: model_list[0] (model_name 'm').litellm_params.api_key")
    assert "'OPENAI_KEY' is not set" in message


def test_deployment_price_from_model_info_exact(write_config: WriteConfig) -> None:
    """Per-token USD in model_info is exact nano-USD per million tokens (2.5e-06 -> 2_500_000_000)."""
    path = write_config(
        """
model_list:
  - model_name: m
    litellm_params: {model: openai/gpt-4o}
    model_info:
      input_cost_per_token: 2.5e-06
      output_cost_per_token: "1e-05"
      cache_read_input_token_cost: 1.25e-06
      cache_creation_input_token_cost: 3.75e-06
"""
    )
    (deployment,) = load_config(path, environ={}).deployments
    assert deployment.prices == TokenPrices(2_500_000_000, 10_000_000_000, 1_250_000_000, 3_750_000_000)


def test_deployment_price_from_genai_prices(write_config: WriteConfig) -> None:
    """Without model_info prices a well-known model is priced from genai-prices."""
    path = write_config("model_list:\n  - model_name: m\n    litellm_params: {model: openai/gpt-4o}\n")
    (deployment,) = load_config(path, environ={}).deployments
    assert deployment.prices.input_nanos_per_mtok > 0
    assert deployment.prices.output_nanos_per_mtok > 0


def test_deployment_priced_zero_is_free(write_config: WriteConfig) -> None:
    """An unknown model explicitly priced 0/0 is valid and free."""
    path = write_config(
        """
model_list:
  - model_name: local
    litellm_params: {model: openai/my-own-llm, api_base: http://llm:8000/v1}
    model_info: {input_cost_per_token: 0, output_cost_per_token: 0}
"""
    )
    (deployment,) = load_config(path, environ={}).deployments
    assert deployment.prices.is_free


def test_deployment_unresolvable_price_names_deployment(write_config: WriteConfig) -> None:
    """A deployment neither model_info nor genai-prices can price stops loading, naming it and the fix."""
    path = write_config("model_list:\n  - model_name: X\n    litellm_params: {model: openai/foo}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == (
        f"{path}: deployment 'X' (model 'openai/foo'): no price in model_info and none in genai-prices; "
        "set model_info.input_cost_per_token/output_cost_per_token (0 for free)"
    )


def test_deployment_half_priced_unknown_model_rejected(write_config: WriteConfig) -> None:
    """Only one of input/output given for a model genai-prices does not know is refused, not half-free."""
    path = write_config(
        """
model_list:
  - model_name: X
    litellm_params: {model: openai/foo}
    model_info: {input_cost_per_token: 0.000001}
"""
    )
    with pytest.raises(ConfigError, match="only input_cost_per_token in model_info and none in genai-prices"):
        load_config(path, environ={})


def test_deployment_negative_price_rejected(write_config: WriteConfig) -> None:
    """A negative model_info price is a ConfigError naming the entry and the field."""
    path = write_config(
        """
model_list:
  - model_name: m
    litellm_params: {model: openai/m}
    model_info: {input_cost_per_token: -1, output_cost_per_token: 0}
"""
    )
    with pytest.raises(ConfigError, match=r"model_list\[0\] \(model_name 'm'\): model_info\.input_cost_per_token"):
        load_config(path, environ={})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("model_list: {a: 1}", r"model_list: must be a list of deployments"),
        ("model_list: [3]", r"model_list\[0\]: must be a mapping with model_name and litellm_params"),
        (
            "model_list: [{litellm_params: {model: openai/x}}]",
            r"model_list\[0\]\.model_name: must be a non-empty",
        ),
        (
            "model_list: [{model_name: m}]",
            r"model_list\[0\] \(model_name 'm'\)\.litellm_params\.model: is required",
        ),
        (
            "model_list: [{model_name: m, litellm_params: [1]}]",
            r"model_list\[0\] \(model_name 'm'\)\.litellm_params: must be a mapping",
        ),
        (
            "model_list: [{model_name: m, litellm_params: {model: hosted_vllm/qwen}}]",
            r"litellm_params\.api_base: is required for provider 'hosted_vllm'",
        ),
        (
            "model_list: [{model_name: m, litellm_params: {model: openai/gpt-4o, timeout: -3}}]",
            r"litellm_params\.timeout: must be > 0",
        ),
    ],
)
def test_deployment_bad_shape_rejected(write_config: WriteConfig, body: str, expected: str) -> None:
    """A malformed model_list entry is a ConfigError naming the entry and the rule."""
    with pytest.raises(ConfigError, match=expected):
        load_config(write_config(body + "\n"), environ={})


def test_deployment_duplicate_id_rejected(write_config: WriteConfig) -> None:
    """Two deployments with the same model_info.id would share ledger rows, so they are refused."""
    path = write_config(
        """
model_list:
  - {model_name: a, litellm_params: {model: openai/gpt-4o}, model_info: {id: same}}
  - {model_name: b, litellm_params: {model: openai/gpt-4o}, model_info: {id: same}}
"""
    )
    with pytest.raises(ConfigError, match=r"model_info\.id 'same' is used by more than one deployment"):
        load_config(path, environ={})


def test_deployment_base_model_prices_alias(write_config: WriteConfig) -> None:
    """model_info.base_model names the model to price when the upstream name is an alias (a proxy's alias)."""
    path = write_config(
        """
model_list:
  - model_name: prod
    litellm_params: {model: openai/my-prod-deployment, api_base: https://gateway.example/v1}
    model_info: {base_model: azure/gpt-4o}
"""
    )
    (deployment,) = load_config(path, environ={}).deployments
    reference = load_config(
        write_config("model_list: [{model_name: r, litellm_params: {model: gpt-4o}}]\n"), environ={}
    )
    assert deployment.upstream_model == "my-prod-deployment"
    assert deployment.prices == reference.deployments[0].prices


def test_demo_adds_priced_mock_models() -> None:
    """demo=True adds 'demo' and 'gpt-4o-mini' on the demo sentinel endpoint at 0.15/0.60 USD per M tokens."""
    deployments = load_config(None, demo=True, environ={}).deployments
    assert [d.model_name for d in deployments] == ["demo", "gpt-4o-mini"]
    for deployment in deployments:
        assert (deployment.provider, deployment.upstream_model) == ("openai", deployment.model_name)
        assert deployment.api_base == DEMO_API_BASE
        assert deployment.prices == TokenPrices(150_000_000, 600_000_000)
        assert deployment.max_output_tokens == 1024


def test_demo_keeps_configured_model(write_config: WriteConfig) -> None:
    """A configured gpt-4o-mini is not shadowed by the demo mock."""
    path = write_config("model_list: [{model_name: gpt-4o-mini, litellm_params: {model: openai/gpt-4o-mini}}]\n")
    deployments = load_config(path, demo=True, environ={}).deployments
    assert [(d.model_name, d.api_base) for d in deployments] == [
        ("gpt-4o-mini", "https://api.openai.com/v1"),
        ("demo", DEMO_API_BASE),
    ]
