"""Price resolution: exact model_info conversion; genai-prices lookups agree with the package itself."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from ledgergate.domain.pricing import TokenPrices
from ledgergate.pricing_catalog import (
    InvalidPriceError,
    _find_model,
    catalog_prices,
    known_max_output_tokens,
    resolve_prices,
    usd_per_token_to_nanos_per_mtok,
)

# Below every tier threshold, so calc_price charges the base tier just as the catalog does.
SAMPLE_TOKENS = 1_000
NANOS_PER_USD = 10**9
TOKENS_PER_MTOK = 10**6


def _package_nanos_per_mtok(price_usd: Decimal) -> Decimal:
    """What genai-prices charged for SAMPLE_TOKENS, as nano-USD per million tokens."""
    return price_usd * NANOS_PER_USD * TOKENS_PER_MTOK / SAMPLE_TOKENS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (2.5e-06, 2_500_000_000),
        ("1e-05", 10_000_000_000),
        (0.000003, 3_000_000_000),
        (1.1e-07, 110_000_000),
        (0, 0),
        (Decimal("0.00000015"), 150_000_000),
    ],
)
def test_usd_per_token_to_nanos_per_mtok_exact(raw: object, expected: int) -> None:
    """USD per token times 1e15 is the integer rate, exactly, from floats (via repr), strings and Decimals."""
    assert usd_per_token_to_nanos_per_mtok(raw, "f") == expected


def test_usd_per_token_to_nanos_per_mtok_rounds_up_sub_unit() -> None:
    """A rate finer than 1e-15 USD per token rounds up, so a deployment is never undercharged."""
    assert usd_per_token_to_nanos_per_mtok("1.0000000000000001e-6", "f") == 1_000_000_001


@pytest.mark.parametrize("raw", [-1e-6, float("nan"), float("inf"), True, "cheap", [1], None])
def test_usd_per_token_to_nanos_per_mtok_rejects_non_prices(raw: object) -> None:
    """Negative, non-finite, boolean and non-numeric prices are refused with the field name."""
    with pytest.raises(InvalidPriceError, match=r"model_info\.input_cost_per_token"):
        usd_per_token_to_nanos_per_mtok(raw, "model_info.input_cost_per_token")


def test_resolve_prices_model_info_wins_over_catalog() -> None:
    """Both rates in model_info are the whole price, even for a model genai-prices knows."""
    info = {"input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06}
    assert resolve_prices(info, "openai", "gpt-4o") == TokenPrices(1_000_000_000, 2_000_000_000)


def test_resolve_prices_partial_model_info_fills_from_catalog() -> None:
    """A single model_info rate overrides that rate only; the others come from genai-prices."""
    listed = resolve_prices({}, "openai", "gpt-4o")
    merged = resolve_prices({"output_cost_per_token": 0.00002}, "openai", "gpt-4o")
    assert listed is not None and merged is not None
    assert merged.output_nanos_per_mtok == 20_000_000_000
    assert merged.input_nanos_per_mtok == listed.input_nanos_per_mtok


def test_resolve_prices_explicit_zero_is_free() -> None:
    """0 and 0 in model_info resolves (as free) even for a model no database knows."""
    prices = resolve_prices({"input_cost_per_token": 0, "output_cost_per_token": "0"}, "openai", "nobody-knows")
    assert prices is not None and prices.is_free


def test_resolve_prices_unknown_model_is_none() -> None:
    """Without model_info prices, a model genai-prices does not list is unresolvable."""
    assert resolve_prices({}, "openai", "definitely-not-a-model") is None
    assert resolve_prices({}, "hosted_vllm", "gpt-4o") is None


def test_catalog_prices_gpt_4o_matches_package() -> None:
    """openai gpt-4o is priced, and its rates equal what genai-prices' calc_price charges."""
    prices = resolve_prices({}, "openai", "gpt-4o")
    assert prices is not None
    assert prices.input_nanos_per_mtok > 0 and prices.output_nanos_per_mtok > 0
    usage = Usage(input_tokens=SAMPLE_TOKENS, output_tokens=SAMPLE_TOKENS)
    charged = calc_price(usage, "gpt-4o", provider_id="openai")
    assert prices.input_nanos_per_mtok == _package_nanos_per_mtok(charged.input_price)
    assert prices.output_nanos_per_mtok == _package_nanos_per_mtok(charged.output_price)
    cached = calc_price(
        Usage(input_tokens=SAMPLE_TOKENS, cache_read_tokens=SAMPLE_TOKENS), "gpt-4o", provider_id="openai"
    )
    assert prices.cache_read_nanos_per_mtok == _package_nanos_per_mtok(cached.input_price)


def test_catalog_prices_tiered_model_uses_base_tier() -> None:
    """A tiered model (claude-sonnet-4-5) is priced at its base tier: what a short prompt pays."""
    prices = resolve_prices({}, "anthropic", "claude-sonnet-4-5")
    assert prices is not None
    charged = calc_price(Usage(input_tokens=SAMPLE_TOKENS), "claude-sonnet-4-5", provider_id="anthropic")
    assert prices.input_nanos_per_mtok == _package_nanos_per_mtok(charged.input_price)
    assert prices.cache_write_nanos_per_mtok is not None and prices.cache_read_nanos_per_mtok is not None


@pytest.mark.parametrize("on_date", [date(2026, 7, 29), date(2026, 7, 30)])
def test_catalog_prices_follows_dated_price_change(on_date: date) -> None:
    """The price in force on the given date is used (gpt-5.6-luna changed price on 2026-07-30)."""
    prices = catalog_prices("openai", "gpt-5.6-luna", on_date)
    assert prices is not None
    at = datetime(on_date.year, on_date.month, on_date.day, 12, tzinfo=UTC)
    charged = calc_price(
        Usage(input_tokens=SAMPLE_TOKENS), "gpt-5.6-luna", provider_id="openai", genai_request_timestamp=at
    )
    assert prices.input_nanos_per_mtok == _package_nanos_per_mtok(charged.input_price)


def test_catalog_prices_time_of_day_takes_peak() -> None:
    """With peak/off-peak prices (deepseek-chat) the highest applies, so no hour is undercharged."""
    prices = catalog_prices("deepseek", "deepseek-chat", date(2026, 1, 5))
    assert prices is not None
    hourly = [
        calc_price(
            Usage(input_tokens=SAMPLE_TOKENS),
            "deepseek-chat",
            provider_id="deepseek",
            genai_request_timestamp=datetime(2026, 1, 5, hour, tzinfo=UTC),
        ).input_price
        for hour in range(24)
    ]
    assert len(set(hourly)) > 1
    assert prices.input_nanos_per_mtok == _package_nanos_per_mtok(max(hourly))


def test_catalog_prices_embedding_model_has_zero_output() -> None:
    """An embedding model listed with an input rate only has output rate 0."""
    prices = resolve_prices({}, "openai", "text-embedding-3-small")
    assert prices is not None
    assert prices.input_nanos_per_mtok > 0 and prices.output_nanos_per_mtok == 0


def test_catalog_prices_litellm_provider_names() -> None:
    """LiteLLM provider prefixes (azure, together_ai, xai) find their genai-prices provider."""
    assert resolve_prices({}, "azure", "gpt-4o") == resolve_prices({}, "openai", "gpt-4o")
    assert catalog_prices("xai", "grok-3", date(2026, 1, 5)) is not None


def test_known_max_output_tokens_absent_in_package() -> None:
    """genai-prices 0.2.3 has no output caps, so the caller falls back to its own default."""
    assert known_max_output_tokens("openai", "gpt-4o") is None
    assert known_max_output_tokens("openai", "definitely-not-a-model") is None


def test_resolve_prices_hundred_deployments_look_each_model_up_once() -> None:
    """Resolving 100 deployments at start-up searches the catalog once per distinct model (lookups are
    cached); how fast that is belongs in bench/, not here."""
    models = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "text-embedding-3-small", "unknown-model"]
    _find_model.cache_clear()
    first = [resolve_prices({}, "openai", models[index % len(models)]) for index in range(100)]
    searched = _find_model.cache_info().misses
    assert searched <= len(models)
    again = [resolve_prices({}, "openai", models[index % len(models)]) for index in range(100)]
    assert again == first and _find_model.cache_info().misses == searched
