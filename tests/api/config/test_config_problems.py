"""A config is checked whole: every problem at once, unknown or not-yet-native providers refused, ignored keys
warned about (issue 11: the newcomer's path)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ledgergate.config import ConfigError, load_config

WriteConfig = Callable[[str], Path]
FREE = "model_info: {input_cost_per_token: 0, output_cost_per_token: 0}"


def test_every_problem_of_a_config_is_reported_at_once(write_config: WriteConfig) -> None:
    """Five independent mistakes in settings and two deployments give one error listing all five, not the
    first one only (a newcomer fixes the file in one pass)."""
    path = write_config(
        """
general_settings:
  timezone: Mars/Olympus
  hold_ttl_s: -1
  master_key: os.environ/NOT_SET_ANYWHERE
model_list:
  - model_name: a
    litellm_params: {model: openai/a, timeout: 0}
    model_info: {input_cost_per_token: 0, output_cost_per_token: 0}
  - model_name: b
    litellm_params: {model: openai/unpriced-model-xyz}
"""
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    problems = caught.value.problems
    assert len(problems) == 5, problems
    message = str(caught.value)
    assert message.startswith(f"{path}: 5 problems:\n")
    for expected in (
        "general_settings.timezone: unknown IANA time zone 'Mars/Olympus'",
        "general_settings.hold_ttl_s: must be > 0",
        "environment variable 'NOT_SET_ANYWHERE' is not set",
        "model_list[0] (model_name 'a').litellm_params.timeout: must be > 0",
        "deployment 'b' (model 'openai/unpriced-model-xyz'): no price",
    ):
        assert sum(expected in problem for problem in problems) == 1, (expected, problems)
        assert expected in message


def test_a_single_problem_keeps_the_one_line_message(write_config: WriteConfig) -> None:
    """One problem reads as before: ``<file>: <where>: <rule>`` on one line."""
    path = write_config("general_settings: {budget_mode: lax}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == f"{path}: general_settings.budget_mode: must be one of standard, strict, got 'lax'"


@pytest.mark.parametrize("model", ["opneai/gpt-4o", "meta-llama/Llama-3-8B", "Anthropic-typo/claude"])
def test_unknown_provider_prefix_is_refused_instead_of_sent_to_openai(write_config: WriteConfig, model: str) -> None:
    """Before: an unknown prefix stayed in the model name and the request went to api.openai.com with the
    configured key. Now the load fails, naming the prefix and the OpenAI-compatible way to write it."""
    path = write_config(f"model_list: [{{model_name: m, litellm_params: {{model: {model}}}, {FREE}}}]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    prefix = model.split("/")[0]
    assert f"litellm_params.model: unknown provider prefix {prefix!r}" in message
    assert f"write openai/{model} and set api_base" in message


@pytest.mark.parametrize("provider", ["azure", "bedrock", "vertex_ai", "cohere"])
def test_provider_without_native_support_is_a_clear_error(write_config: WriteConfig, provider: str) -> None:
    """A recognised provider whose own API ledgergate does not speak yet is refused with the workaround, even
    with an api_base (OpenAI requests to Azure's deployment paths or Bedrock would fail on every call)."""
    path = write_config(
        f"model_list: [{{model_name: m, litellm_params: {{model: {provider}/x, api_base: https://h/v1}}, {FREE}}}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert (
        f"provider {provider!r} needs native support (coming): use an OpenAI-compatible endpoint via openai/ + api_base"
    ) in str(caught.value)


def test_working_providers_keep_working(write_config: WriteConfig) -> None:
    """anthropic/ (native /v1/messages, OpenAI-compatible chat), gemini/ (Google's OpenAI-compatible endpoint),
    self-hosted vLLM and a bare model name still load with their endpoints."""
    path = write_config(
        f"""
model_list:
  - {{model_name: claude, litellm_params: {{model: anthropic/claude-x}}, {FREE}}}
  - {{model_name: gem, litellm_params: {{model: gemini/gemini-x}}, {FREE}}}
  - {{model_name: local, litellm_params: {{model: hosted_vllm/org/qwen, api_base: http://vllm:8000/v1}}, {FREE}}}
  - {{model_name: bare, litellm_params: {{model: my-model}}, {FREE}}}
"""
    )
    deployments = load_config(path, environ={}).deployments
    assert [(d.provider, d.upstream_model, d.api_base) for d in deployments] == [
        ("anthropic", "claude-x", "https://api.anthropic.com/v1"),
        ("gemini", "gemini-x", "https://generativelanguage.googleapis.com/v1beta/openai"),
        ("hosted_vllm", "org/qwen", "http://vllm:8000/v1"),
        ("openai", "my-model", "https://api.openai.com/v1"),
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("{model: openai/}", "'openai/' names no model after the provider prefix"),
        ("{model: openai/x, api_base: 'ftp://h/v1'}", "api_base: must be an http:// or https:// URL"),
        ("{model: openai/x, api_base: localhost:8000}", "api_base: must be an http:// or https:// URL"),
        ("{model: null}", "litellm_params.model: is required"),
    ],
)
def test_unusable_model_or_endpoint_is_refused(write_config: WriteConfig, params: str, expected: str) -> None:
    """An empty model after the prefix or an api_base that is not an HTTP URL fails at load, not per request."""
    path = write_config(f"model_list: [{{model_name: m, litellm_params: {params}, {FREE}}}]\n")
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_config(path, environ={})


def test_bad_global_budget_window_is_refused_at_load(write_config: WriteConfig) -> None:
    """Before: a bad global budget_duration passed `config check` and only failed when the gateway started."""
    path = write_config("litellm_settings: {max_budget: 10, budget_duration: fortnight}\n")
    with pytest.raises(ConfigError, match=r"litellm_settings\.budget_duration"):
        load_config(path, environ={})


def test_every_ignored_key_is_warned_about(write_config: WriteConfig) -> None:
    """Keys ledgergate would not read (routing, retries, Azure/AWS/Vertex parameters, LiteLLM-only settings)
    each give one warning naming where they are; keys it reads give none."""
    path = write_config(
        f"""
router_settings: {{routing_strategy: simple-shuffle, num_retries: 2}}
environment_variables: {{A: b}}
litellm_settings: {{num_retries: 3, fallbacks: [{{a: [b]}}], request_timeout: 10, max_budget: 5}}
general_settings: {{master_key: sk-x, store_model_in_db: true, alerting: [slack], upstream_timeout_s: 5}}
model_list:
  - model_name: a
    litellm_params:
      model: openai/a
      api_base: https://h/v1
      api_key: k
      timeout: 3
      extra_headers: {{X: y}}
      api_version: "2024-06-01"
      aws_region_name: eu-west-1
      vertex_project: p
      rpm: 10
    model_info: {{id: a1, mode: chat, max_tokens: 10, input_cost_per_token: 0, output_cost_per_token: 0}}
  - {{model_name: b, litellm_params: {{model: openai/b, api_version: v, timeout: 2}}, {FREE}}}
"""
    )
    warnings = load_config(path, environ={}).warnings
    expected_paths = [
        "router_settings",
        "environment_variables",
        "general_settings.store_model_in_db",
        "general_settings.alerting",
        "litellm_settings.num_retries",
        "litellm_settings.fallbacks",
        "litellm_settings.request_timeout",
        "model_list[].litellm_params.api_version (model_name 'a', 'b')",
        "model_list[].litellm_params.aws_region_name (model_name 'a')",
        "model_list[].litellm_params.vertex_project (model_name 'a')",
        "model_list[].litellm_params.rpm (model_name 'a')",
        "model_list[].model_info.mode (model_name 'a')",
    ]
    assert sorted(warning.split(": ignored")[0] for warning in warnings) == sorted(expected_paths), warnings
    assert all(": ignored, " in warning for warning in warnings)
    assert any("use general_settings.upstream_timeout_s" in warning for warning in warnings)


def test_a_config_of_read_keys_only_has_no_warnings(write_config: WriteConfig) -> None:
    """No false alarms: the documented keys are all read."""
    path = write_config(
        f"""
general_settings: {{master_key: sk-x, timezone: UTC, alerting: {{webhook_url: https://h/x}}}}
litellm_settings: {{max_budget: 5, budget_duration: 30d}}
model_list:
  - {{model_name: a, litellm_params: {{model: openai/a, api_key: k, timeout: 3}}, {FREE}}}
"""
    )
    assert load_config(path, environ={}).warnings == ()


def test_a_bad_global_max_budget_is_reported_once(write_config: WriteConfig) -> None:
    """A negative max_budget next to a valid budget_duration is one problem, not also a second 'bad window'."""
    path = write_config("general_settings: {max_budget: -1, budget_duration: 30d}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert len(caught.value.problems) == 1, caught.value.problems
    assert "general_settings.max_budget: must be >= 0" in str(caught.value)


def test_a_bad_api_base_is_reported_next_to_a_bad_provider(write_config: WriteConfig) -> None:
    """Two problems of one entry (unknown prefix, api_base not a URL) are both reported."""
    path = write_config(f"model_list: [{{model_name: m, litellm_params: {{model: x/y, api_base: h:1}}, {FREE}}}]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert len(caught.value.problems) == 2, caught.value.problems
    assert "unknown provider prefix 'x'" in str(caught.value) and "api_base: must be an http://" in str(caught.value)
