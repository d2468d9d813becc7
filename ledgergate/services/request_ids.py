"""Request ids: the ledger's idempotency key of one LLM request."""

from __future__ import annotations

import random
import time


def new_request_id() -> str:
    """32 hex digits: 48 bits of wall-clock milliseconds, then 80 random bits (ordered like a UUIDv7, without building
    one). Ordered ids append at the end of the ledger's request-id indexes instead of dirtying a random page each.
    The random part only has to be unique, not secret: no system call for it (``random`` is reseeded in forked
    workers)."""
    return f"{time.time_ns() // 1_000_000:012x}{random.getrandbits(80):020x}"
