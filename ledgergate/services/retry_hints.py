"""Whether a refused client should retry, and when: the ``x-should-retry`` and ``retry-after`` headers of a 429.

The OpenAI SDKs retry every 429 twice unless ``x-should-retry: false``; retrying a budget refusal that cannot pass
before its window resets only triples the load and the client's wait (SPEC section 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ledgergate.domain.rate_limits import RateLimited
from ledgergate.services.request_charging import Refusal

HOLDS_SETTLE_RETRY_S = 1  # requests in flight settle (or release their holds) within seconds


@dataclass(frozen=True, slots=True)
class RetryHint:
    should_retry: bool
    retry_after_s: int | None  # None: the refusing window never resets (a lifetime budget)

    def headers(self) -> dict[str, str]:
        headers = {"x-should-retry": "true" if self.should_retry else "false"}
        if self.retry_after_s is not None:
            headers["retry-after"] = str(self.retry_after_s)
        return headers


def budget_retry_hint(refusal: Refusal, now_s: float) -> RetryHint:
    """A window whose settled spend alone reaches its limit cannot pass before it resets: do not retry, and say
    when it resets (none for a lifetime window). A window refused only because of holds of requests in flight may
    pass once they settle: retry after a second."""
    limit_nanos = refusal.window.max_budget_nanos or 0
    until_reset_s = max(1, math.ceil(refusal.reset_at_s - now_s)) if refusal.window.duration else None
    if refusal.state.held_nanos > 0 and refusal.state.spent_nanos < limit_nanos:
        return RetryHint(True, HOLDS_SETTLE_RETRY_S)  # never later than the reset: that is at least 1 s away
    return RetryHint(False, until_reset_s)


def rate_limit_retry_hint(refused: RateLimited) -> RetryHint:
    """A rate limit passes again when its minute ends (or a request in flight finishes): retry then."""
    return RetryHint(True, refused.retry_after_s)
