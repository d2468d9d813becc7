"""The output-cap rules, pure: which field carries the cap, how client caps and n are bounded, what is rewritten."""

from __future__ import annotations

import pytest

from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.output_caps import (
    bounded_cap,
    cap_fields_to_send,
    chat_cap_field,
    completions_per_request,
    exceeds_hold,
    largest_cap,
)


@pytest.mark.parametrize(
    ("upstream_model", "field"),
    [
        ("o1", "max_completion_tokens"),
        ("o3-mini", "max_completion_tokens"),
        ("o4-mini-2025-04-16", "max_completion_tokens"),
        ("gpt-5", "max_completion_tokens"),
        ("gpt-5.1", "max_completion_tokens"),
        ("openai/o3", "max_completion_tokens"),
        ("gpt-4o-mini", "max_tokens"),
        ("gpt-50", "max_tokens"),
        ("o10-local", "max_tokens"),
        ("meta-llama/Llama-3.1-8B", "max_tokens"),
    ],
)
def test_chat_cap_field_is_max_completion_tokens_only_for_openai_reasoning_families(
    upstream_model: str, field: str
) -> None:
    assert chat_cap_field(upstream_model) == field


def test_the_largest_client_cap_counts_and_is_clamped_to_the_deployment_cap() -> None:
    sent = {"max_completion_tokens": 1, "max_tokens": 5000}
    assert largest_cap(sent) == 5000 and largest_cap({}) is None
    assert bounded_cap(5000, 64) == 64
    assert bounded_cap(7, 64) == 7
    assert bounded_cap(None, 64) == 64


def test_every_field_above_the_cap_sent_is_rewritten_and_none_sent_gets_the_default_field() -> None:
    assert cap_fields_to_send({"max_completion_tokens": 1, "max_tokens": 5000}, "max_tokens", 20) == {"max_tokens": 20}
    assert cap_fields_to_send({"max_tokens": 64, "max_output_tokens": 65}, "max_tokens", 64) == {
        "max_output_tokens": 64
    }
    assert cap_fields_to_send({}, "max_output_tokens", 64) == {"max_output_tokens": 64}
    assert cap_fields_to_send({}, None, 64) == {}


def test_n_and_best_of_are_bounded_by_max_n_and_the_larger_multiplies() -> None:
    assert completions_per_request(1, None, 8) == 1
    assert completions_per_request(2, 5, 8) == 5
    assert completions_per_request(8, None, 8) == 8
    with pytest.raises(InvalidInput) as n_error:
        completions_per_request(9, None, 8)
    with pytest.raises(InvalidInput) as best_of_error:
        completions_per_request(1, 9, 8)
    assert (n_error.value.field, best_of_error.value.field) == ("n", "best_of")
    assert "at most 8" in n_error.value.message


def test_an_over_hold_is_more_cost_or_more_output_tokens_than_held() -> None:
    assert not exceeds_hold(100, 10, 100, 10)
    assert exceeds_hold(100, 10, 101, 10)
    assert exceeds_hold(100, 10, 50, 11)
