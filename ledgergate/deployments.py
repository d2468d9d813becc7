"""A deployment is one upstream model a public model name routes to, with its resolved prices."""

from __future__ import annotations

from dataclasses import dataclass, field

from ledgergate.domain.input_bounds import InputLimits
from ledgergate.domain.pricing import TokenPrices


@dataclass(frozen=True, slots=True)
class Deployment:
    model_name: str  # the public name clients send
    provider: str  # "openai", "anthropic", ... (prefix of litellm_params.model, default "openai")
    upstream_model: str  # the name sent upstream (litellm_params.model without the provider prefix)
    api_base: str  # e.g. "https://api.openai.com/v1" (no trailing slash)
    api_key: str | None
    prices: TokenPrices
    max_output_tokens: int  # cap used for holds when the client sets no max_tokens
    timeout_s: float = 600.0
    deployment_id: str = ""  # stable id for the ledger; defaults to f"{model_name}#{index}"
    extra_headers: dict[str, str] = field(default_factory=dict)
    base_model: str | None = None  # model_info.base_model (without provider prefix): the model behind an alias
    # Bounds of input its bytes do not bound (images, files, ...): model_info.max_input_tokens_per_image and
    # max_input_tokens (domain/input_bounds.py).
    input_limits: InputLimits = field(default_factory=InputLimits)
