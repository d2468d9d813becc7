"""The deployment the upstream client tests send to: a mock OpenAI model at ``api_base``."""

from __future__ import annotations

from dataclasses import replace

from ledgergate.deployments import Deployment
from ledgergate.domain.pricing import TokenPrices
from tests.support.timing import scaled


def deployment_at(api_base: str, **changes: object) -> Deployment:
    base = Deployment(
        model_name="gpt-test",
        provider="openai",
        upstream_model="mock-gpt",
        api_base=api_base,
        api_key="sk-upstream",
        prices=TokenPrices(input_nanos_per_mtok=1, output_nanos_per_mtok=1),
        max_output_tokens=16,
        timeout_s=scaled(5.0),
    )
    return replace(base, **changes)  # type: ignore[arg-type]
