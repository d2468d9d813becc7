"""Usage parsing: only well-formed, non-negative integer counts are ever billed."""

from __future__ import annotations

from typing import Any

import pytest

from ledgergate.domain.pricing import Usage
from ledgergate.upstream.usage import usage_from_anthropic, usage_from_response


def test_usage_from_response_reads_chat_usage() -> None:
    """A chat completion's prompt, completion and cached counts map onto Usage."""
    obj = {
        "usage": {
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 100},
        }
    }
    assert usage_from_response(obj) == Usage(prompt_tokens=120, completion_tokens=30, cache_read_tokens=100)


def test_usage_from_response_reads_embeddings_usage() -> None:
    """Embeddings report only prompt and total tokens; completion is zero."""
    assert usage_from_response({"usage": {"prompt_tokens": 7, "total_tokens": 7}}) == Usage(prompt_tokens=7)


def test_usage_from_response_derives_missing_completion_from_total() -> None:
    """Without completion_tokens, total minus prompt is billed rather than nothing."""
    obj = {"usage": {"prompt_tokens": 7, "total_tokens": 10}}
    assert usage_from_response(obj) == Usage(prompt_tokens=7, completion_tokens=3)


def test_usage_from_response_treats_null_details_as_no_cache() -> None:
    """Null optional fields (as some providers send) mean zero, not malformed."""
    obj = {"usage": {"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": None}}
    assert usage_from_response(obj) == Usage(prompt_tokens=5, completion_tokens=2)


def test_usage_from_response_clamps_cache_counts_to_prompt() -> None:
    """Cached and cache-write tokens are part of the prompt, so they can never exceed it."""
    obj = {
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": 8},
            "cache_creation_input_tokens": 50,
        }
    }
    assert usage_from_response(obj) == Usage(
        prompt_tokens=10, completion_tokens=1, cache_read_tokens=8, cache_write_tokens=2
    )


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"usage": None},
        {"usage": []},
        {"usage": {}},
        {"usage": {"completion_tokens": 3}},
        {"usage": {"prompt_tokens": -1, "completion_tokens": 3}},
        {"usage": {"prompt_tokens": 1, "completion_tokens": -3}},
        {"usage": {"prompt_tokens": 1.5, "completion_tokens": 3}},
        {"usage": {"prompt_tokens": "1", "completion_tokens": 3}},
        {"usage": {"prompt_tokens": True, "completion_tokens": 3}},
        {"usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": "4"}},
        {"usage": {"prompt_tokens": 1, "completion_tokens": 3, "prompt_tokens_details": 5}},
        {
            "usage": {
                "prompt_tokens": 1,
                "completion_tokens": 3,
                "prompt_tokens_details": {"cached_tokens": -1},
            }
        },
    ],
)
def test_usage_from_response_rejects_malformed(obj: dict[str, Any]) -> None:
    """Missing usage, missing prompt, negative, fractional, string or bool counts yield None."""
    assert usage_from_response(obj) is None


def test_usage_from_anthropic_adds_cache_tokens_to_prompt() -> None:
    """Anthropic's input_tokens excludes cache reads/writes; OpenAI semantics include them in the prompt."""
    usage = {
        "input_tokens": 10,
        "output_tokens": 4,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
    }
    assert usage_from_anthropic(usage) == Usage(
        prompt_tokens=130, completion_tokens=4, cache_read_tokens=100, cache_write_tokens=20
    )


def test_usage_from_anthropic_rejects_malformed() -> None:
    """A missing output count or a negative cache count yields None."""
    assert usage_from_anthropic({"input_tokens": 10}) is None
    assert usage_from_anthropic({"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": -2}) is None
