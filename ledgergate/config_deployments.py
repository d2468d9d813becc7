"""One ``model_list`` entry -> a ``Deployment``: provider, endpoint, prices, caps; every problem of it recorded."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledgergate.config_providers import DEFAULT_API_BASES, served_provider, split_known_prefix
from ledgergate.config_values import EMPTY, ConfigError, ConfigProblems, Section, expand_env
from ledgergate.deployments import Deployment
from ledgergate.domain.input_bounds import DEFAULT_MAX_INPUT_TOKENS_PER_IMAGE, InputLimits
from ledgergate.domain.pricing import TokenPrices
from ledgergate.pricing_catalog import (
    INPUT_COST_KEY,
    OUTPUT_COST_KEY,
    InvalidPriceError,
    known_context_window,
    known_max_output_tokens,
    resolve_prices,
)


def _string_headers(params: Section) -> dict[str, str]:
    headers = params.mapping("extra_headers")
    for name, value in headers.items():
        if not isinstance(value, str):
            raise params.fail(f"extra_headers.{name}", f"must be a string, got {value!r}")
    return {str(name): value for name, value in headers.items()}


def _price_ref(info: Section, provider: str, model: str) -> tuple[str, str]:
    """The (provider, model) whose list price and output cap apply; LiteLLM's ``model_info.base_model`` names
    the priced model when the upstream name is an alias (an Azure deployment name, a proxy's alias)."""
    base_model = info.text("base_model")
    if base_model is None:
        return provider, model
    return split_known_prefix(base_model) or (provider, base_model)


def _prices(model_name: str, litellm_model: str, info: Section, price_ref: tuple[str, str]) -> TokenPrices:
    try:
        prices = resolve_prices(info.values, *price_ref)
    except InvalidPriceError as exc:
        raise ConfigError(f"{info.where.removesuffix('.model_info')}: {exc}") from exc
    if prices is None:
        given = [key for key in (INPUT_COST_KEY, OUTPUT_COST_KEY) if info.values.get(key) is not None]
        found = f"only {given[0]} in model_info" if given else "no price in model_info"
        raise ConfigError(
            f"deployment {model_name!r} (model {litellm_model!r}): {found} and none in genai-prices; "
            f"set model_info.{INPUT_COST_KEY}/{OUTPUT_COST_KEY} (0 for free)"
        )
    return prices


def _max_output_tokens(info: Section, price_ref: tuple[str, str], default_max_output_tokens: int) -> int:
    return (
        info.positive_int("max_output_tokens")
        or info.positive_int("max_tokens")
        or known_max_output_tokens(*price_ref)
        or default_max_output_tokens
    )


def _input_limits(info: Section, price_ref: tuple[str, str]) -> InputLimits:
    return InputLimits(
        tokens_per_image=info.positive_int("max_input_tokens_per_image") or DEFAULT_MAX_INPUT_TOKENS_PER_IMAGE,
        context_window_tokens=info.positive_int("max_input_tokens") or known_context_window(*price_ref),
    )


def _explicit_api_base(params: Section) -> str | None:
    api_base = params.text("api_base")
    if api_base is not None and not api_base.lower().startswith(("http://", "https://")):
        raise params.fail("api_base", f"must be an http:// or https:// URL, got {api_base!r}")
    return None if api_base is None else api_base.rstrip("/")


def _default_api_base(params: Section, provider: str) -> str:
    api_base = DEFAULT_API_BASES.get(provider)
    if api_base is None:
        raise params.fail("api_base", f"is required for provider {provider!r} (it has no default endpoint)")
    return api_base


def _deployment_id(info: Section) -> str | None:
    deployment_id = info.values.get("id")
    if deployment_id is not None and (not isinstance(deployment_id, str | int) or isinstance(deployment_id, bool)):
        raise info.fail("id", f"must be a string or an integer, got {deployment_id!r}")
    return None if deployment_id is None else str(deployment_id)


def parse_deployment(
    raw_entry: Any,
    index: int,
    *,
    upstream_timeout_s: float,
    default_max_output_tokens: int,
    environ: Mapping[str, str],
    problems: ConfigProblems,
) -> Deployment | None:
    """The entry's Deployment, or None after recording every problem it has in ``problems``."""
    where = f"model_list[{index}]"
    if not isinstance(raw_entry, Mapping):
        problems.add(f"{where}: must be a mapping with model_name and litellm_params")
        return None
    model_name = raw_entry.get("model_name")
    if not isinstance(model_name, str) or not model_name.strip():
        problems.add(f"{where}.model_name: must be a non-empty string, got {model_name!r}")
        return None
    where = f"model_list[{index}] (model_name {model_name!r})"
    found_before = len(problems.messages)
    entry = expand_env(raw_entry, where, environ, problems)
    top = Section(entry, where)
    params = Section(problems.attempt(lambda: top.mapping("litellm_params"), EMPTY), f"{where}.litellm_params")
    info = Section(problems.attempt(lambda: top.mapping("model_info"), EMPTY), f"{where}.model_info")
    litellm_model = problems.attempt(lambda: params.text("model"), None)
    served: tuple[str, str] | None = None
    # an unset os.environ/ reference is already recorded; a missing or null model is not
    recorded = problems.messages[found_before:]
    if litellm_model is None and not any(m.startswith((f"{params.where}.model", f"{params.where}:")) for m in recorded):
        problems.add(f"{params.where}.model: is required (e.g. openai/gpt-4o)")
    elif litellm_model is not None:
        try:
            served = served_provider(litellm_model)
        except ConfigError as exc:
            problems.add(f"{params.where}.model: {exc}")
    explicit_api_base = problems.attempt(lambda: _explicit_api_base(params), None)
    api_key = problems.attempt(lambda: params.text("api_key"), None)
    timeout_s = problems.attempt(lambda: params.number("timeout", upstream_timeout_s, positive=True), None)
    deployment_id = problems.attempt(lambda: _deployment_id(info), None)
    extra_headers = problems.attempt(lambda: _string_headers(params), dict[str, str]())
    for cap in ("max_output_tokens", "max_tokens", "max_input_tokens", "max_input_tokens_per_image"):
        problems.attempt(lambda: info.positive_int(cap), None)  # noqa: B023 (called at once)
    if served is None or litellm_model is None:
        return None
    provider, upstream_model = served
    api_base = explicit_api_base or problems.attempt(lambda: _default_api_base(params, provider), None)
    price_ref = problems.attempt(lambda: _price_ref(info, provider, upstream_model), (provider, upstream_model))
    prices = problems.attempt(lambda: _prices(model_name, litellm_model, info, price_ref), None)
    if len(problems.messages) > found_before or api_base is None or prices is None:
        return None
    max_output_tokens = _max_output_tokens(info, price_ref, default_max_output_tokens)
    return Deployment(
        model_name=model_name.strip(),
        provider=provider,
        upstream_model=upstream_model,
        api_base=api_base,
        api_key=api_key,
        prices=prices,
        max_output_tokens=max_output_tokens,
        timeout_s=timeout_s or upstream_timeout_s,
        deployment_id=deployment_id or f"{model_name.strip()}#{index}",
        extra_headers=extra_headers,
        input_limits=_input_limits(info, price_ref),
        base_model=price_ref[1] if problems.attempt(lambda: info.text("base_model"), None) else None,
    )
