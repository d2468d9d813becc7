"""The webhook sender against a real receiver: retries what may pass, gives up on what cannot."""

from __future__ import annotations

import socket

import orjson

from ledgergate.upstream.webhook import WebhookSender
from tests.api.alerts.receiver import WebhookReceiver

BODY = orjson.dumps({"event": "budget_threshold_crossed"})


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


async def test_webhook_sender_retries_server_errors_until_delivered(receiver: WebhookReceiver) -> None:
    """5xx answers are retried (with backoff) and every failed attempt is reported with its running number."""
    receiver.fail_next(2, status=503)
    failures: list[tuple[int, str]] = []

    async def on_failure(attempts: int, error: str) -> None:
        failures.append((attempts, error))

    sender = WebhookSender(max_attempts=5, backoff_s=0.01)
    try:
        result = await sender.deliver(receiver.url, BODY, on_failure=on_failure, attempts_before=4)
    finally:
        await sender.aclose()
    assert (result.delivered, result.attempts, result.error) == (True, 3, None)
    assert failures == [(5, "HTTP 503: nope"), (6, "HTTP 503: nope")]
    assert [post["json"] for post in receiver.posts()] == [orjson.loads(BODY)] * 3


async def test_webhook_sender_does_not_retry_a_client_error(receiver: WebhookReceiver) -> None:
    """A 4xx (other than 408/425/429) will not change by resending: one attempt, reported as failed."""
    receiver.fail_next(5, status=404)
    sender = WebhookSender(max_attempts=5, backoff_s=0.01)
    try:
        result = await sender.deliver(receiver.url, BODY)
    finally:
        await sender.aclose()
    assert (result.delivered, result.attempts, result.error) == (False, 1, "HTTP 404: nope")


async def test_webhook_sender_gives_up_after_max_attempts_on_an_unreachable_receiver() -> None:
    """Retries are bounded: a receiver that never answers costs max_attempts connection attempts, no more."""
    sender = WebhookSender(max_attempts=3, backoff_s=0.01)
    try:
        result = await sender.deliver(_dead_url(), BODY)
    finally:
        await sender.aclose()
    assert (result.delivered, result.attempts) == (False, 3)
    assert result.error is not None and "Connect" in result.error


def test_webhook_sender_round_bound_covers_every_attempt_and_backoff() -> None:
    """The lease a deliverer takes is sized from this bound, so it must include every timeout and backoff."""
    sender = WebhookSender(timeout_s=10, max_attempts=5, backoff_s=1, max_backoff_s=3)
    assert sender.max_round_s == 5 * 10 + (1 + 2 + 3 + 3)
