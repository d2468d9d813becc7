"""A deployment's token prices: its own ``model_info`` rates first, then the ``genai-prices`` database.

Every rate leaves this module as integer nano-USD per million tokens (see ``TokenPrices``); the Decimal
conversion happens once, here, so no float ever reaches money arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from genai_prices import data_snapshot, types

from ledgergate.domain.pricing import TokenPrices

# model_info keys (LiteLLM names, USD per token) -> TokenPrices fields.
INPUT_COST_KEY = "input_cost_per_token"
OUTPUT_COST_KEY = "output_cost_per_token"
CACHE_READ_COST_KEY = "cache_read_input_token_cost"
CACHE_WRITE_COST_KEY = "cache_creation_input_token_cost"

# USD per token -> nano-USD per million tokens is a shift by 9 + 6 decimal places.
_USD_PER_TOKEN_TO_NANOS_PER_MTOK_EXPONENT = 15
# genai-prices quotes USD per million tokens -> nano-USD per million tokens.
_USD_PER_MTOK_TO_NANOS_PER_MTOK_EXPONENT = 9

# LiteLLM provider prefixes whose genai-prices id is not found by genai-prices' own provider matching.
_CATALOG_PROVIDER_IDS = {"fireworks_ai": "fireworks", "xai": "x-ai", "together_ai": "together"}


class InvalidPriceError(ValueError):
    """A model_info price that is not a finite, non-negative number."""


def _ceil_to_int(value: Decimal) -> int:
    # A rate finer than the unit rounds up: a budget gateway may overcharge by 1e-15 USD, never undercharge.
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def usd_per_token_to_nanos_per_mtok(raw: object, field_name: str) -> int:
    """Exact conversion of a LiteLLM per-token USD price (number or numeric string) to nanos per M tokens."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise InvalidPriceError(f"{field_name} must be a number (USD per token), got {raw!r}")
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise InvalidPriceError(f"{field_name} must be finite, got {raw!r}")
        # The shortest repr is what the author wrote: 2.5e-06 means exactly 2.5e-06, not its binary neighbour.
        amount = Decimal(repr(raw))
    else:
        try:
            amount = Decimal(raw.strip() if isinstance(raw, str) else raw)
        except InvalidOperation as exc:
            raise InvalidPriceError(f"{field_name} must be a number (USD per token), got {raw!r}") from exc
    if not amount.is_finite() or amount < 0:
        raise InvalidPriceError(f"{field_name} must be a finite number >= 0, got {raw!r}")
    return _ceil_to_int(amount.scaleb(_USD_PER_TOKEN_TO_NANOS_PER_MTOK_EXPONENT))


def _model_info_rate(model_info: Mapping[str, Any], key: str) -> int | None:
    raw = model_info.get(key)
    return None if raw is None else usd_per_token_to_nanos_per_mtok(raw, f"model_info.{key}")


def resolve_prices(
    model_info: Mapping[str, Any],
    provider: str,
    upstream_model: str,
    *,
    price_date: date | None = None,
) -> TokenPrices | None:
    """The deployment's prices, or None when neither model_info nor genai-prices can price it.

    model_info wins: when it sets both input and output rates it is the whole price (cache rates only from
    model_info too, so a negotiated price is never mixed with list prices); 0 and 0 is an explicitly free
    deployment. When it sets only some rates, each missing one comes from genai-prices. Raises
    ``InvalidPriceError`` for a model_info rate that is not a finite number >= 0.

    ``price_date`` (UTC, default today) picks among genai-prices' dated price changes.
    """
    input_rate = _model_info_rate(model_info, INPUT_COST_KEY)
    output_rate = _model_info_rate(model_info, OUTPUT_COST_KEY)
    cache_read_rate = _model_info_rate(model_info, CACHE_READ_COST_KEY)
    cache_write_rate = _model_info_rate(model_info, CACHE_WRITE_COST_KEY)
    if input_rate is not None and output_rate is not None:
        return TokenPrices(input_rate, output_rate, cache_read_rate, cache_write_rate)
    listed = catalog_prices(provider, upstream_model, price_date or datetime.now(UTC).date())
    if listed is None:
        return None
    return TokenPrices(
        input_nanos_per_mtok=listed.input_nanos_per_mtok if input_rate is None else input_rate,
        output_nanos_per_mtok=listed.output_nanos_per_mtok if output_rate is None else output_rate,
        cache_read_nanos_per_mtok=listed.cache_read_nanos_per_mtok if cache_read_rate is None else cache_read_rate,
        cache_write_nanos_per_mtok=(
            listed.cache_write_nanos_per_mtok if cache_write_rate is None else cache_write_rate
        ),
    )


@lru_cache(maxsize=4096)
def _find_model(provider: str, upstream_model: str) -> types.ModelInfo | None:
    provider_id = _CATALOG_PROVIDER_IDS.get(provider.lower(), provider)
    snapshot = data_snapshot.get_snapshot()
    try:
        _, model = snapshot.find_provider_model(upstream_model, None, provider_id, None)
    except LookupError:
        return None
    found: types.ModelInfo = model
    return found


def _base_rate(value: object) -> Decimal | None:
    # Tiered prices (e.g. a higher rate above 200k prompt tokens) contribute their base tier only.
    if isinstance(value, types.TieredPrices):
        base: Decimal = value.base
        return base
    return value if isinstance(value, Decimal) else None


def _rate_of(prices: types.ModelPrice, key: str) -> Decimal | None:
    return _base_rate(prices.__dict__.get(key))


def _max_rate(rates: list[Decimal | None]) -> Decimal | None:
    present = [rate for rate in rates if rate is not None]
    return max(present) if present else None


def _effective_price_sets(model: types.ModelInfo, on_date: date) -> list[types.ModelPrice]:
    """The price sets that may apply to a request made on ``on_date``, whatever its time of day.

    Dated changes: the last unconstrained or already-started price wins (genai-prices' precedence).
    Time-of-day prices listed after it (peak/off-peak, e.g. DeepSeek) all stay candidates, because a
    start-up price cannot know the request's hour; the caller takes the highest so peak hours are not
    undercharged.
    """
    if isinstance(model.prices, types.ModelPrice):
        return [model.prices]
    conditional: list[types.ConditionalPrice] = list(model.prices)
    chosen_index = 0
    for index, candidate in enumerate(conditional):
        constraint = candidate.constraint
        if constraint is None or (
            isinstance(constraint, types.StartDateConstraint) and constraint.start_date <= on_date
        ):
            chosen_index = index
    later_time_of_day = [
        candidate.prices
        for candidate in conditional[chosen_index + 1 :]
        if isinstance(candidate.constraint, types.TimeOfDateConstraint)
    ]
    return [conditional[chosen_index].prices, *later_time_of_day]


def _usd_per_mtok_to_nanos(rate: Decimal | None) -> int | None:
    return None if rate is None else _ceil_to_int(rate.scaleb(_USD_PER_MTOK_TO_NANOS_PER_MTOK_EXPONENT))


@lru_cache(maxsize=4096)
def catalog_prices(provider: str, upstream_model: str, on_date: date) -> TokenPrices | None:
    """List prices from genai-prices for ``upstream_model`` at ``provider`` on ``on_date``, or None.

    Choices where the database is richer than ``TokenPrices``:
    - tiered rates: the base tier (the rate below the first token threshold);
    - dated changes: the price in force on ``on_date``; time-of-day variants: the highest of them;
    - request variants (service tier, batch): ignored, i.e. the standard tier;
    - cache writes: the default (5-minute) cache write rate, not the 1-hour one;
    - a model listed with an input rate but no output rate (embeddings) has output 0; a model with no
      input token rate (priced per request, per page, per audio hour, or not priced) is unresolvable.
    """
    model = _find_model(provider, upstream_model)
    if model is None:
        return None
    price_sets = _effective_price_sets(model, on_date)
    input_rate = _usd_per_mtok_to_nanos(_max_rate([_rate_of(p, "input_mtok") for p in price_sets]))
    if input_rate is None:
        return None
    output_rate = _usd_per_mtok_to_nanos(_max_rate([_rate_of(p, "output_mtok") for p in price_sets]))
    return TokenPrices(
        input_nanos_per_mtok=input_rate,
        output_nanos_per_mtok=output_rate or 0,
        cache_read_nanos_per_mtok=_usd_per_mtok_to_nanos(
            _max_rate([_rate_of(p, "cache_read_mtok") for p in price_sets])
        ),
        cache_write_nanos_per_mtok=_usd_per_mtok_to_nanos(
            _max_rate([_rate_of(p, "cache_write_mtok") for p in price_sets])
        ),
    )


def known_max_output_tokens(provider: str, upstream_model: str) -> int | None:
    """The model's output-token cap if genai-prices records one, else None.

    genai-prices 0.2.3 records only ``context_window`` (an input limit, far too large to size a hold), so this
    returns None today; it reads ``max_output_tokens`` should a later release add it.
    """
    model = _find_model(provider, upstream_model)
    cap = getattr(model, "max_output_tokens", None) if model is not None else None
    return cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else None


def known_context_window(provider: str, upstream_model: str) -> int | None:
    """The model's context window (most input tokens one call can take) if genai-prices records one, else None."""
    model = _find_model(provider, upstream_model)
    window = getattr(model, "context_window", None) if model is not None else None
    return window if isinstance(window, int) and not isinstance(window, bool) and window > 0 else None
