"""The input bound: body bytes for inline content, plus per-part bounds for what the provider fetches itself."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ledgergate.domain.duplicate_keys import refuse_repeated_keys
from ledgergate.domain.errors import InvalidInput
from ledgergate.domain.input_bounds import DEFAULT_MAX_INPUT_TOKENS_PER_IMAGE, InputLimits, input_tokens_bound
from ledgergate.domain.output_caps import unreported_output_tokens

LIMITS = InputLimits(tokens_per_image=1_000, context_window_tokens=50_000)


def _bound(payload: dict[str, Any], limits: InputLimits = LIMITS) -> tuple[int, int]:
    body = orjson.dumps(payload)
    return input_tokens_bound(body, orjson.loads(body), limits), len(body)


def test_text_only_body_is_bounded_by_its_bytes() -> None:
    bound, size = _bound({"model": "m", "messages": [{"role": "user", "content": 'an "image_url" in text'}]})
    assert bound == size


def test_default_per_image_bound_is_openais_documented_worst_case() -> None:
    assert DEFAULT_MAX_INPUT_TOKENS_PER_IMAGE == 48_169  # gpt-4o-mini, high detail, 8 tiles


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "https://e.com/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "input_image", "image_url": "https://e.com/a.png"},
        {"type": "input_image", "file_id": "file-1"},
        {"type": "image", "source": {"type": "url", "url": "https://e.com/a.png"}},
        {"type": "text", "text": "hi", "image_url": {"url": "https://e.com/a.png"}},  # typed text, carries an image
    ],
    ids=["chat-https", "chat-data-url", "responses-url", "responses-file-id", "anthropic-url", "text-typed-image"],
)
def test_each_image_part_adds_the_per_image_bound(part: dict[str, Any]) -> None:
    bound, size = _bound({"model": "m", "messages": [{"role": "user", "content": [part, part]}]})
    assert bound == size + 2 * 1_000


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}]},
            "messages[0].content[0]",
        ),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"input": "x", "conversation": "conv_1"}, "conversation"),
        ({"input": "x", "prompt": {"id": "pmpt_1"}}, "prompt"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "base64"}}]}]},
            "messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "t", "file_id": "f"}]}]},
            "messages[0].content[0]",
        ),
    ],
    ids=["chat-file", "item-reference", "conversation", "stored-prompt", "anthropic-document", "text-typed-file"],
)
def test_expanded_parts_add_the_context_window_or_are_refused_without_one(payload: dict[str, Any], where: str) -> None:
    bound, size = _bound({"model": "m", **payload})
    assert bound == size + 50_000
    with pytest.raises(InvalidInput) as refused:
        _bound({"model": "m", **payload}, InputLimits(tokens_per_image=1_000))
    assert refused.value.field == where


def test_an_image_type_spelled_with_json_escapes_is_still_counted() -> None:
    body = b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "\\u0069mage_url", "x": 1}]}]}'
    assert input_tokens_bound(body, orjson.loads(body), LIMITS) == len(body) + 1_000


@pytest.mark.parametrize(
    "kind",
    [
        "web_search",
        "web_search_preview",
        "file_search",
        "code_interpreter",
        "mcp",
        "image_generation",
        "web_search_20250305",
        7,
    ],
)
def test_server_side_tools_are_refused_naming_the_tool(kind: object) -> None:
    payload = {"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}, {"type": kind}]}
    with pytest.raises(InvalidInput) as refused:
        _bound(payload)
    assert refused.value.field == "tools[1].type"


@pytest.mark.parametrize(
    "tool", [{"type": "function", "function": {"name": "f"}}, {"name": "anthropic_custom"}, {"type": "bash_20250124"}]
)
def test_client_tools_are_inline_and_bounded_by_bytes(tool: dict[str, Any]) -> None:
    bound, size = _bound({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [tool]})
    assert bound == size


def test_a_deeply_nested_body_is_walked_without_recursion() -> None:
    body = b'{"model": "m", "x": ' + b"[" * 600 + b'{"type": "image_url"}' + b"]" * 600 + b"}"
    assert input_tokens_bound(body, orjson.loads(body), LIMITS) == len(body) + 1_000


def test_repeated_keys_are_found_at_any_depth_and_named() -> None:
    with pytest.raises(InvalidInput) as refused:
        refuse_repeated_keys(b'{"a": [{"b": 1, "b": 2}]}')
    assert refused.value.field == "b"
    refuse_repeated_keys(b'{"a": {"b": 1}, "c": {"b": 2}}')  # the same key in different objects is fine


def test_unreported_output_is_the_content_bytes_bounded_by_the_held_cap() -> None:
    assert unreported_output_tokens(content_bytes=480, output_tokens_held=1_000) == 480
    assert unreported_output_tokens(content_bytes=5_000, output_tokens_held=1_000) == 1_000
    assert unreported_output_tokens(content_bytes=30, output_tokens_held=0) == 30


def test_a_body_too_deep_for_the_duplicate_check_is_refused_as_too_deep_not_as_repeated() -> None:
    """Attack on the duplicate-key check: orjson reads 1,000 levels, the standard parser it falls back to does not
    (a RecursionError must be a 400 saying why, never a 500)."""
    with pytest.raises(InvalidInput) as refused:
        refuse_repeated_keys(b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}")
    assert (refused.value.field, "nested too deeply" in refused.value.message) == ("body", True)
