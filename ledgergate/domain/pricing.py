"""Usage times prices gives an exact cost: rates are integer nano-USD per million tokens, rounded up once."""

from __future__ import annotations

from dataclasses import dataclass

TOKENS_PER_RATE_UNIT = 1_000_000


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """Prices of one deployment in nano-USD per million tokens (1 unit = 1e-15 USD per token)."""

    input_nanos_per_mtok: int
    output_nanos_per_mtok: int
    cache_read_nanos_per_mtok: int | None = None
    cache_write_nanos_per_mtok: int | None = None

    @property
    def is_free(self) -> bool:
        return self.input_nanos_per_mtok == 0 and self.output_nanos_per_mtok == 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the upstream reports them. ``prompt_tokens`` includes cached tokens (OpenAI semantics)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def cost_nanos(usage: Usage, prices: TokenPrices) -> int:
    """Exact cost of ``usage``: the sum of token x rate products, rounded up to a whole nano once per request."""
    cache_read_rate = prices.cache_read_nanos_per_mtok
    cache_write_rate = prices.cache_write_nanos_per_mtok
    cached = usage.cache_read_tokens if cache_read_rate is not None else 0
    written = usage.cache_write_tokens if cache_write_rate is not None else 0
    plain_prompt = max(usage.prompt_tokens - cached - written, 0)
    total = plain_prompt * prices.input_nanos_per_mtok + usage.completion_tokens * prices.output_nanos_per_mtok
    if cache_read_rate is not None:
        total += cached * cache_read_rate
    if cache_write_rate is not None:
        total += written * cache_write_rate
    return _ceil_div(total, TOKENS_PER_RATE_UNIT)


def max_cost_nanos(input_tokens: int, max_output_tokens: int, n: int, prices: TokenPrices) -> int:
    """Upper bound of a request's cost before it runs: the prompt once, ``n`` completions of the output cap."""
    return cost_nanos(Usage(prompt_tokens=input_tokens, completion_tokens=max_output_tokens * n), prices)


def output_tokens_affordable(budget_nanos: int, input_tokens: int, n: int, prices: TokenPrices) -> int:
    """Largest per-choice ``max_tokens`` whose maximum cost fits ``budget_nanos`` (0 if even the prompt does not)."""
    input_cost_units = input_tokens * prices.input_nanos_per_mtok
    remaining_units = budget_nanos * TOKENS_PER_RATE_UNIT - input_cost_units
    if remaining_units < 0:
        return 0
    per_token_units = prices.output_nanos_per_mtok * n
    if per_token_units == 0:
        return 1 << 31
    return remaining_units // per_token_units
