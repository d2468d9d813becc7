"""A gateway whose deployments price input like the adversarial review's config: the fake upstream bills every
image part 765 input tokens and every file part 1,000, whatever their bytes (as OpenAI does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ledgergate.config import load_config
from tests.support.gateway import BudgetModeName, GatewayServer

INPUT_NANOS_PER_TOKEN = 1_000  # $0.000001 per input token, $0.00001 per output token: the review's prices
OUTPUT_NANOS_PER_TOKEN = 10_000
OUTPUT_CAP_TOKENS = 10
IMAGE_TOKENS = 765  # what the fake upstream bills per image part

VISION_DEFAULT = "vision-default"  # no per-image setting, no context window: the defaults apply
VISION_765 = "vision-765"  # model_info.max_input_tokens_per_image: 765, max_input_tokens: 128000
CLAUDE_VISION = "claude-vision"  # Anthropic, max_input_tokens: 200000
CONTEXT_WINDOW_TOKENS = 128_000
BATCHY = "batchy"  # streams 20 tokens per chunk and reports no usage


def _deployment(name: str, model: str, base_url: str, headers: dict[str, str], **info: int) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {"model": model, "api_base": base_url, "api_key": "x", "extra_headers": headers},
        "model_info": {
            "input_cost_per_token": INPUT_NANOS_PER_TOKEN / 1e9,
            "output_cost_per_token": OUTPUT_NANOS_PER_TOKEN / 1e9,
            "max_output_tokens": OUTPUT_CAP_TOKENS,
            **info,
        },
    }


def fetched_input_gateway(workdir: Path, upstream_base_url: str, budget_mode: BudgetModeName) -> GatewayServer:
    server = GatewayServer(workdir, upstream_base_url, budget_mode=budget_mode)
    document = yaml.safe_load(server.config_path.read_text(encoding="utf-8"))
    window = {"max_input_tokens": CONTEXT_WINDOW_TOKENS}
    batchy_headers = {"x-mock-no-usage": "1", "x-mock-words-per-chunk": "20", "x-mock-completion-tokens": "100"}
    document["model_list"] = [
        _deployment(VISION_DEFAULT, "openai/gpt-vision-fake", upstream_base_url, {}),
        _deployment(
            VISION_765, "openai/gpt-vision-fake", upstream_base_url, {}, max_input_tokens_per_image=765, **window
        ),
        _deployment(CLAUDE_VISION, "anthropic/claude-vision-fake", upstream_base_url, {}, max_input_tokens=200_000),
        {
            **_deployment(BATCHY, "openai/batchy", upstream_base_url, batchy_headers),
            "model_info": {
                "input_cost_per_token": INPUT_NANOS_PER_TOKEN / 1e9,
                "output_cost_per_token": OUTPUT_NANOS_PER_TOKEN / 1e9,
                "max_output_tokens": 1000,
            },
        },
    ]
    server.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    server.config = load_config(server.config_path, environ={})
    return server


def https_images(count: int) -> list[dict[str, Any]]:
    return [
        {"type": "image_url", "image_url": {"url": f"https://e.com/{index}.png", "detail": "high"}}
        for index in range(count)
    ]
