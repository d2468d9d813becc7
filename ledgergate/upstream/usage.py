"""Reading token usage out of upstream replies, refusing anything that cannot be billed exactly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledgergate.domain.pricing import Usage


def _count(value: object) -> int | None:
    """A token count, or None for anything that is not a non-negative int (bools included)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _optional_count(container: Mapping[str, Any], key: str) -> int | None:
    """The count at ``key``: 0 when missing or null, None when present but malformed."""
    value = container.get(key)
    return 0 if value is None else _count(value)


def usage_from_response(obj: Mapping[str, Any]) -> Usage | None:
    """The OpenAI ``usage`` of a reply or stream chunk (chat or embeddings), or None if missing or malformed.

    A missing ``completion_tokens`` (embeddings) is derived from ``total_tokens`` so a provider that only
    reports the total is not undercharged. Cached and cache-write counts are clamped to the prompt because
    ``prompt_tokens`` includes them.
    """
    usage = obj.get("usage")
    if not isinstance(usage, Mapping):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _optional_count(usage, "completion_tokens")
    total = _optional_count(usage, "total_tokens")
    written = _optional_count(usage, "cache_creation_input_tokens")
    details = usage.get("prompt_tokens_details")
    if details is None:
        cached: int | None = 0
    elif isinstance(details, Mapping):
        cached = _optional_count(details, "cached_tokens")
    else:
        cached = None
    if prompt is None or completion is None or total is None or written is None or cached is None:
        return None
    if usage.get("completion_tokens") is None:
        completion = max(total - prompt, 0)
    cache_read = min(cached, prompt)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cache_read_tokens=cache_read,
        cache_write_tokens=min(written, prompt - cache_read),
    )


def usage_from_anthropic(usage: Mapping[str, Any]) -> Usage | None:
    """An Anthropic ``usage`` object as OpenAI-semantics ``Usage``, or None if malformed.

    Anthropic's ``input_tokens`` excludes cache reads and writes, so they are added back into the prompt.
    """
    uncached = _count(usage.get("input_tokens"))
    output = _count(usage.get("output_tokens"))
    cache_read = _optional_count(usage, "cache_read_input_tokens")
    cache_write = _optional_count(usage, "cache_creation_input_tokens")
    if uncached is None or output is None or cache_read is None or cache_write is None:
        return None
    return Usage(
        prompt_tokens=uncached + cache_read + cache_write,
        completion_tokens=output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
