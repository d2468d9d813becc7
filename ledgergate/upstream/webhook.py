"""POSTing a JSON document to a webhook, retried with exponential backoff on failures that may pass."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

USER_AGENT = "ledgergate"
# Statuses a receiver may answer while it is overloaded or restarting; any other non-2xx will not change.
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_ERROR_BODY_CHARS = 200

FailureHook = Callable[[int, str], Awaitable[None]]
"""Called after each failed attempt with (attempts so far, error)."""


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    delivered: bool
    attempts: int  # made in this call
    error: str | None  # the last failure


class WebhookSender:
    """One pooled aiohttp session for every webhook POST; opened on first use, inside the running loop."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @property
    def max_round_s(self) -> float:
        """An upper bound of one ``deliver`` call: every attempt timing out, every backoff slept."""
        backoffs = sum(self._backoff(attempt) for attempt in range(1, self.max_attempts))
        return self.max_attempts * self.timeout_s + backoffs

    def _backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("WebhookSender is closed")
        self._session = aiohttp.ClientSession(
            headers={"user-agent": USER_AGENT},
            cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
            trust_env=True,  # a webhook behind the corporate proxy is the usual case; rare calls, so no cost
        )
        return self._session

    async def _post_once(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[bool, bool, str | None]:
        """(delivered, worth retrying, error)."""
        session = self._session or self._open_session()
        try:
            async with session.post(
                url,
                data=body,
                headers={"content-type": "application/json", **headers},
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                allow_redirects=False,
            ) as response:
                if 200 <= response.status < 300:
                    return True, False, None
                text = (await response.text(errors="replace"))[:_MAX_ERROR_BODY_CHARS]
                return False, response.status in _RETRYABLE_STATUSES, f"HTTP {response.status}: {text}"
        except TimeoutError:
            return False, True, f"timed out after {self.timeout_s:g} s"
        except aiohttp.InvalidURL as exc:
            return False, False, f"invalid webhook URL: {exc}"
        except aiohttp.ClientError as exc:
            return False, True, f"{type(exc).__name__}: {exc}"

    async def deliver(
        self,
        url: str,
        body: bytes,
        *,
        headers: dict[str, str] | None = None,
        on_failure: FailureHook | None = None,
        attempts_before: int = 0,
    ) -> DeliveryResult:
        """POST ``body`` until a 2xx, a failure that retrying cannot fix, or ``max_attempts`` attempts.

        ``attempts_before`` (attempts of earlier rounds) only shifts the numbers passed to ``on_failure``.
        """
        error: str | None = None
        for attempt in range(1, self.max_attempts + 1):
            delivered, retryable, error = await self._post_once(url, body, headers or {})
            if delivered:
                return DeliveryResult(True, attempt, None)
            if on_failure is not None:
                await on_failure(attempts_before + attempt, error or "")
            if not retryable or attempt == self.max_attempts:
                return DeliveryResult(False, attempt, error)
            await asyncio.sleep(self._backoff(attempt))
        return DeliveryResult(False, self.max_attempts, error)

    async def aclose(self) -> None:
        """Close the pool. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
