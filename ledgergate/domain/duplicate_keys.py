"""Refusing JSON objects that repeat a key: the gateway and the upstream must read the same request.

The gateway parses one value per key (orjson keeps the last) but forwards the client's exact bytes when it
rewrites nothing; an upstream that keeps the first ``max_tokens``, ``n``, ``model`` or ``messages`` would bill a
request other than the one held. Detecting duplicates needs a slower parse, so ``domain/input_bounds.py`` runs
it only when a repeat could matter: a governed key's quoted name occurs more than once in the bytes, an escaped
ASCII letter (``\\u00XX``) could spell one, or the body has parts whose walk must see what the upstream sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ledgergate.domain.errors import InvalidInput

# Keys whose value sizes the hold or decides how the reply is read. Content keys (``messages``, ``input``, ...)
# need no entry: the input bound counts every byte of every copy, and a body with parts its bytes do not bound
# is checked at every depth (``domain/input_bounds.py``).
GOVERNED_KEYS = (
    "model",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "n",
    "best_of",
    "stream",
    "stream_options",
    "background",
    "tools",
)
_RULE = "appears more than once in the JSON object; send each field once"


class _Repeated(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_pairs(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _Repeated(key)
        obj[key] = value
    return obj


def _first_repeated_key(body: bytes) -> str | None:
    try:
        json.loads(body, object_pairs_hook=_unique_pairs)
    except _Repeated as repeated:
        return repeated.key
    except (ValueError, RecursionError) as exc:
        # orjson accepted the body already: only a nesting deeper than the standard parser follows gets here.
        raise InvalidInput("body", "is nested too deeply to be checked for repeated keys") from exc
    return None


def refuse_repeated_keys(body: bytes) -> None:
    """``InvalidInput`` naming the first key any object of the body repeats."""
    key = _first_repeated_key(body)
    if key is not None:
        raise InvalidInput(key, _RULE)
