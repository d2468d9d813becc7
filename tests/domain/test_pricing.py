"""Cost arithmetic: exact integer products, rounded up once per request (ledgergate/domain/pricing.py)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledgergate.domain.pricing import TokenPrices, Usage, cost_nanos, max_cost_nanos, output_tokens_affordable
from tests.domain.strategies import PROPERTY

tokens = st.integers(min_value=0, max_value=2_000_000)
rates = st.integers(min_value=0, max_value=100_000_000_000)  # up to 100 USD per million tokens
optional_rates = st.none() | rates


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    prompt = draw(tokens)
    cache_read = draw(st.integers(min_value=0, max_value=prompt))
    cache_write = draw(st.integers(min_value=0, max_value=prompt - cache_read))
    return Usage(prompt, draw(tokens), cache_read, cache_write)


prices_strategy = st.builds(TokenPrices, rates, rates, optional_rates, optional_rates)


def exact_cost(usage: Usage, prices: TokenPrices) -> Fraction:
    """The cost in nanos as an exact rational number, written independently of the code under test."""
    per_token = Fraction(1, 1_000_000)
    cached = usage.cache_read_tokens if prices.cache_read_nanos_per_mtok is not None else 0
    written = usage.cache_write_tokens if prices.cache_write_nanos_per_mtok is not None else 0
    total = Fraction(usage.prompt_tokens - cached - written) * prices.input_nanos_per_mtok * per_token
    total += Fraction(usage.completion_tokens) * prices.output_nanos_per_mtok * per_token
    total += Fraction(cached) * (prices.cache_read_nanos_per_mtok or 0) * per_token
    total += Fraction(written) * (prices.cache_write_nanos_per_mtok or 0) * per_token
    return total


@PROPERTY
@given(usage=usages(), prices=prices_strategy)
def test_cost_nanos_is_ceiling_of_exact_cost(usage: Usage, prices: TokenPrices) -> None:
    """The charge is the exact rational cost rounded up once: never under-charged, over by less than a nano."""
    exact = exact_cost(usage, prices)
    cost = cost_nanos(usage, prices)
    assert cost == math.ceil(exact)
    assert exact <= cost < exact + 1


@PROPERTY
@given(usage=usages(), prices=prices_strategy, extra_prompt=tokens, extra_completion=tokens)
def test_cost_nanos_is_monotone_in_tokens(
    usage: Usage, prices: TokenPrices, extra_prompt: int, extra_completion: int
) -> None:
    """More prompt or completion tokens never cost less (so a hold on the maximum always covers the actual)."""
    more = Usage(
        usage.prompt_tokens + extra_prompt,
        usage.completion_tokens + extra_completion,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
    )
    assert cost_nanos(more, prices) >= cost_nanos(usage, prices)


@PROPERTY
@given(usage=usages(), prices=prices_strategy)
def test_cost_nanos_rounds_once_not_per_component(usage: Usage, prices: TokenPrices) -> None:
    """Rounding the sum once never charges more than rounding each line item separately."""
    parts = [
        Usage(prompt_tokens=usage.prompt_tokens - usage.cache_read_tokens - usage.cache_write_tokens),
        Usage(completion_tokens=usage.completion_tokens),
    ]
    per_part = sum(cost_nanos(part, prices) for part in parts)
    without_cache = Usage(
        usage.prompt_tokens - usage.cache_read_tokens - usage.cache_write_tokens, usage.completion_tokens
    )
    assert cost_nanos(without_cache, prices) <= per_part


def test_cost_nanos_rounds_sub_nano_up_once() -> None:
    """Three tokens at 0.4 nano each are 1.2 nanos, charged as 2, not 3 x 1."""
    prices = TokenPrices(input_nanos_per_mtok=400_000, output_nanos_per_mtok=400_000)
    assert cost_nanos(Usage(prompt_tokens=2, completion_tokens=1), prices) == 2
    assert cost_nanos(Usage(), prices) == 0


def test_cost_nanos_bills_cached_tokens_at_cache_rate_only_when_priced() -> None:
    """Cached prompt tokens use the cache rate when the deployment has one, else the input rate."""
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=0, cache_read_tokens=600_000, cache_write_tokens=100_000)
    with_cache = TokenPrices(
        1_000_000_000, 0, cache_read_nanos_per_mtok=100_000_000, cache_write_nanos_per_mtok=2 * 10**9
    )
    assert cost_nanos(usage, with_cache) == 300_000_000 + 60_000_000 + 200_000_000
    assert cost_nanos(usage, TokenPrices(1_000_000_000, 0)) == 1_000_000_000


@pytest.mark.parametrize(
    ("input_tokens", "max_output", "n", "expected"),
    [(1000, 100, 1, 1_000_000 + 200_000), (1000, 100, 3, 1_000_000 + 600_000), (0, 0, 1, 0)],
)
def test_max_cost_nanos_counts_prompt_once_and_output_n_times(
    input_tokens: int, max_output: int, n: int, expected: int
) -> None:
    """n choices share one prompt but each may generate max_tokens."""
    prices = TokenPrices(input_nanos_per_mtok=1_000_000_000, output_nanos_per_mtok=2_000_000_000)
    assert max_cost_nanos(input_tokens, max_output, n, prices) == expected


@PROPERTY
@given(
    budget=st.integers(min_value=0, max_value=10**12),
    input_tokens=tokens,
    n=st.integers(min_value=1, max_value=8),
    input_rate=rates,
    output_rate=st.integers(min_value=1, max_value=100_000_000_000),
)
def test_output_tokens_affordable_is_largest_fitting_cap(
    budget: int, input_tokens: int, n: int, input_rate: int, output_rate: int
) -> None:
    """Strict mode's clamp: the returned max_tokens fits the headroom and one more token per choice would not."""
    prices = TokenPrices(input_rate, output_rate)
    k = output_tokens_affordable(budget, input_tokens, n, prices)
    assert k >= 0
    if max_cost_nanos(input_tokens, 0, n, prices) > budget:
        assert k == 0
        return
    assert max_cost_nanos(input_tokens, k, n, prices) <= budget
    assert max_cost_nanos(input_tokens, k + 1, n, prices) > budget


@PROPERTY
@given(budget=st.integers(min_value=0, max_value=10**12), input_tokens=tokens, n=st.integers(1, 8), input_rate=rates)
def test_output_tokens_affordable_free_output_is_unbounded(
    budget: int, input_tokens: int, n: int, input_rate: int
) -> None:
    """Free output tokens never need clamping once the prompt fits."""
    prices = TokenPrices(input_rate, 0)
    assume(max_cost_nanos(input_tokens, 0, n, prices) <= budget)
    assert output_tokens_affordable(budget, input_tokens, n, prices) >= 2**31
