"""An upper bound of the input tokens a request may be billed, including what the provider fetches itself.

The body's bytes bound the tokens of everything written inline in it (docs/decisions/0002). Some parts are not
bounded by their bytes: an image is billed by its pixels (an https URL of 40 bytes, or a tiny base64 image, can
cost hundreds to tens of thousands of tokens); a file, a PDF, an audio clip or a stored conversation is fetched or
decoded by the provider. So:

- every image part adds ``tokens_per_image`` (``model_info.max_input_tokens_per_image``);
- a part the provider expands without a per-part bound (files, audio, documents, stored items, previous
  responses, stored prompts) adds the model's context window (``model_info.max_input_tokens``): a single model
  call cannot be billed more input than fits in it; without a known context window such a request is refused;
- a server-side tool (web search, file search, code interpreter, remote MCP, ...) runs model turns and paid calls
  the gateway cannot bound before forwarding: refused.

The common text-only body costs a few substring searches: the walk over the parsed request runs only when one of
the markers below occurs in the bytes (an escaped letter, ``\\u00XX``, could spell one, so it counts too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledgergate.domain.duplicate_keys import GOVERNED_KEYS, refuse_repeated_keys
from ledgergate.domain.errors import InvalidInput

# OpenAI's documented worst case per image: gpt-4o-mini, high detail, 2,048 x 768 px = 8 tiles of 5,667 tokens
# plus 2,833 (gpt-4o: 1,445; Claude: about 1,600). Deployments set their own with max_input_tokens_per_image.
DEFAULT_MAX_INPUT_TOKENS_PER_IMAGE = 2_833 + 8 * 5_667

_IMAGE_TYPES = frozenset({"image_url", "input_image", "image"})
_IMAGE_KEYS = ("image_url",)
_EXPANDED_TYPES = frozenset({"file", "input_file", "input_audio", "document", "item_reference"})
_EXPANDED_KEYS = ("file_id", "file_data", "file_url", "input_audio")
_EXPANDED_TOP_LEVEL = ("previous_response_id", "conversation", "prompt")
_SERVER_TOOLS_TOP_LEVEL = ("web_search_options", "mcp_servers")
# Tools the client runs (the model only writes their arguments, which are output): every other tool type is a
# server-side tool. Anthropic's client tools are versioned (``bash_20250124``), hence prefixes.
_CLIENT_TOOL_TYPES = frozenset({"function", "custom", "local_shell", "apply_patch", "shell", "computer_use_preview"})
_CLIENT_TOOL_PREFIXES = ("bash_", "text_editor_", "computer_", "memory_")
# One pass over the bytes finds everything that calls for a closer look. Names are quoted, as every JSON key and
# type name is: text that mentions one has its quotes escaped and does not match.
_MARKER_NAMES = frozenset(
    {
        *_IMAGE_TYPES,
        *_IMAGE_KEYS,
        *_EXPANDED_TYPES,
        *_EXPANDED_KEYS,
        *_EXPANDED_TOP_LEVEL,
        *_SERVER_TOOLS_TOP_LEVEL,
    }
)
_SCAN = re.compile(
    rb'"(' + b"|".join(re.escape(name.encode()) for name in sorted(_MARKER_NAMES | set(GOVERNED_KEYS))) + rb')"'
)
# The names above are lowercase letters and "_": only escapes of those (\u0061-\u007a, \u005f) can spell one.
# Plain substring searches, kept apart from _SCAN: a regex restarting at every escape of a non-ASCII body is
# several times slower.
_LETTER_ESCAPES = (b"\\u006", b"\\u007", b"\\u005")


@dataclass(frozen=True, slots=True)
class InputLimits:
    """A deployment's bounds for parts whose tokens their bytes do not bound."""

    tokens_per_image: int = DEFAULT_MAX_INPUT_TOKENS_PER_IMAGE
    context_window_tokens: int | None = None  # model_info.max_input_tokens (or the price catalog's)


@dataclass(slots=True)
class _Found:
    images: int = 0
    expanded_at: str | None = None  # the first part the provider expands, as the client would name it


def _look_closer(body: bytes) -> tuple[bool, bool]:
    """(some object may repeat a governed key, the body may hold a part its bytes do not bound)."""
    if b"\\" in body and any(escape in body for escape in _LETTER_ESCAPES):
        return True, True  # an escaped ASCII letter may spell any name: look at everything
    seen: set[bytes] = set()
    repeat = parts = False
    for match in _SCAN.finditer(body):
        name = match.group(1)
        if name.decode() in _MARKER_NAMES:
            parts = True
        elif name in seen:
            repeat = True
        seen.add(name)
    return repeat, parts


def input_tokens_bound(body: bytes, payload: Mapping[str, Any], limits: InputLimits) -> int:
    """The most input tokens the request can be billed. ``InvalidInput`` naming the part when it has none, or
    naming the key an object repeats (when a repeat could make the upstream read another request)."""
    _refuse_server_tools(payload)  # reads the parsed request only: cheap, and escapes are already decoded
    repeat, parts = _look_closer(body)
    if repeat or parts:
        refuse_repeated_keys(body)  # the parts walked and the caps held must be the ones the upstream reads
    if not parts:
        return len(body)
    found = _scan(payload)
    bound = len(body) + found.images * limits.tokens_per_image
    if found.expanded_at is None:
        return bound
    if limits.context_window_tokens is None:
        raise InvalidInput(
            found.expanded_at,
            "the provider fetches or expands this part, so its input tokens cannot be bounded before forwarding; "
            "the deployment needs model_info.max_input_tokens (its context window) for such requests",
        )
    return bound + limits.context_window_tokens


def _refuse_server_tools(payload: Mapping[str, Any]) -> None:
    for field in _SERVER_TOOLS_TOP_LEVEL:
        if payload.get(field) is not None:
            raise InvalidInput(field, _SERVER_TOOL_RULE)
    tools = payload.get("tools")
    if not isinstance(tools, list):
        return
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        if kind is None or (isinstance(kind, str) and _is_client_tool(kind)):
            continue
        raise InvalidInput(f"tools[{index}].type", f"{kind!r}: {_SERVER_TOOL_RULE}")


_SERVER_TOOL_RULE = (
    "server-side tools are not supported by this gateway: the provider runs extra model turns and paid calls "
    "whose cost cannot be bounded before forwarding (use function tools)"
)


def _is_client_tool(kind: str) -> bool:
    return kind in _CLIENT_TOOL_TYPES or kind.startswith(_CLIENT_TOOL_PREFIXES)


def _scan(payload: Mapping[str, Any]) -> _Found:
    """Count image parts and find the first expanded part anywhere in the request (message content, tool results,
    Responses items), iteratively: a deeply nested body cannot exhaust the stack."""
    found = _Found()
    for field in _EXPANDED_TOP_LEVEL:
        if payload.get(field) is not None:
            found.expanded_at = field
            break
    stack: list[tuple[str, Any]] = [("", dict(payload))]
    while stack:
        path, node = stack.pop()
        if isinstance(node, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(node) if isinstance(item, list | dict))
            continue
        _classify(path, node, found)
        stack.extend(
            (f"{path}.{key}" if path else str(key), value)
            for key, value in node.items()
            if isinstance(value, list | dict)
        )
    return found


def _classify(path: str, part: Mapping[str, Any], found: _Found) -> None:
    # A part counts by its type or by the keys that carry its payload: a part whose ``type`` says "text" but
    # carries an ``image_url`` is still an image for an upstream that reads the key.
    kind = part.get("type")
    if (isinstance(kind, str) and kind in _IMAGE_TYPES) or any(key in part for key in _IMAGE_KEYS):
        found.images += 1
    elif found.expanded_at is None and (
        (isinstance(kind, str) and kind in _EXPANDED_TYPES) or any(key in part for key in _EXPANDED_KEYS)
    ):
        found.expanded_at = path or "body"
