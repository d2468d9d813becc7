"""The output cap a request is held to: the one its hold is sized by is the one the upstream receives.

A hold pays for ``completions x cap_tokens`` output tokens. That bound only holds if the upstream is held to the
same cap, so: every output-cap field the client sent counts and the largest sizes the hold; a client cap above the
deployment's cap is clamped down to it (and the clamped value sent); a request without a cap is sent the
deployment's cap; ``n`` / ``best_of`` are bounded by ``max_n`` and multiply the cap.
"""

from __future__ import annotations

from collections.abc import Mapping

from ledgergate.domain.errors import InvalidInput

# Every field an OpenAI or Anthropic dialect reads as an output cap. All of them count on every route: an upstream
# that honours a field the route does not document must not generate past the hold either.
OUTPUT_CAP_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
DEFAULT_MAX_N = 8
# OpenAI reasoning models refuse ``max_tokens`` (400) and bill reasoning tokens as output: they are capped with
# ``max_completion_tokens``, which bounds reasoning and visible output together.
_REASONING_FAMILIES = ("o1", "o3", "o4", "gpt-5")


def chat_cap_field(upstream_model: str) -> str:
    """The chat completions field the gateway sends when the client sent no cap.

    ``max_tokens`` is understood by every OpenAI-compatible server (vLLM, Ollama, Azure, ...); an upstream that
    ignored an unknown field would not be capped at all. OpenAI's reasoning models reject it, so they get
    ``max_completion_tokens``."""
    name = upstream_model.rsplit("/", 1)[-1].lower()
    if any(name == family or name.startswith((f"{family}-", f"{family}.")) for family in _REASONING_FAMILIES):
        return "max_completion_tokens"
    return "max_tokens"


def completions_per_request(n: int, best_of: int | None, max_n: int) -> int:
    """How many completions the upstream may generate (and bill): ``n``, or ``best_of`` when larger; each is bounded
    by ``max_n`` (a 400 naming the field), so the hold stays bounded."""
    for field, value in (("n", n), ("best_of", best_of)):
        if value is not None and value > max_n:
            raise InvalidInput(field, f"must be at most {max_n} on this gateway (general_settings.max_n), got {value}")
    return max(n, best_of or 0)


def largest_cap(sent: Mapping[str, int]) -> int | None:
    """The largest output cap the client sent, in any field: the one an upstream could honour."""
    return max(sent.values(), default=None)


def bounded_cap(requested: int | None, deployment_cap: int) -> int:
    """The per-completion cap the upstream is held to: the client's, clamped to the deployment's; or the
    deployment's when the client sent none."""
    return deployment_cap if requested is None else min(requested, deployment_cap)


def cap_fields_to_send(sent: Mapping[str, int], default_field: str | None, cap_tokens: int) -> dict[str, int]:
    """The output-cap fields to change in the upstream body so that no field allows more than ``cap_tokens``:
    every field the client sent above it is lowered to it; without any, ``default_field`` is added (``None``: the
    route produces no output tokens)."""
    if not sent:
        return {default_field: cap_tokens} if default_field is not None else {}
    return {field: cap_tokens for field, value in sent.items() if value > cap_tokens}


def exceeds_hold(hold_nanos: int, output_tokens_held: int, cost_nanos: int, completion_tokens: int) -> bool:
    """Whether a settled request cost more than its hold or reported more output than was held: an upstream that
    did not respect the cap it was sent (the charge still follows what it reports)."""
    return cost_nanos > hold_nanos or completion_tokens > output_tokens_held


def unreported_output_tokens(content_bytes: int, output_tokens_held: int) -> int:
    """The output tokens charged for a stream that reported no usage: an upper bound, as for a reply without
    usage. Every token is at least one byte of the text it carries, so the content bytes bound them; the cap the
    upstream was sent bounds them too (``output_tokens_held``; 0 when the route holds no output)."""
    return min(content_bytes, output_tokens_held) if output_tokens_held > 0 else content_bytes
