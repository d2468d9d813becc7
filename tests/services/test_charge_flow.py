"""The whole charge flow of one LLM request without HTTP: authenticate -> admit -> forward (a function upstream)
-> settle once -> outcome, on SQLite and in-process counters."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable

import pytest

from ledgergate.container import Container
from ledgergate.services.charge_flow import Reply, RequestRefused, Streaming
from ledgergate.services.errors import NotFound, ServiceError, Unauthenticated
from ledgergate.services.metrics import RefusalReason
from ledgergate.upstream.errors import UpstreamTimeout, UpstreamUnavailable
from tests.services.support import (
    DONE,
    OUTPUT_NANOS_PER_TOKEN,
    FunctionUpstream,
    LineReader,
    bearer,
    chat_request,
    completion,
    flow_over,
    ledger_rows,
    settled,
    sse_completion,
)


async def test_a_reply_is_charged_once_at_its_reported_usage_before_it_is_returned(
    container: Container, key_secret: str
) -> None:
    upstream = FunctionUpstream(answer=lambda body: (200, completion(3)))
    reply = await flow_over(container, upstream).reply(bearer(key_secret), chat_request(max_tokens=4))
    assert isinstance(reply, Reply)
    assert (reply.status, reply.cost_nanos) == (200, 3 * OUTPUT_NANOS_PER_TOKEN)
    # The record is durable when the reply is returned: no waiting for the background settlement.
    rows = await ledger_rows(container)
    assert [(r["request_id"], r["status"], r["cost_nanos"]) for r in rows] == [
        (reply.ticket.call.request_id, "success", 3 * OUTPUT_NANOS_PER_TOKEN)
    ]
    await settled(container)


async def test_the_upstream_is_sent_the_output_cap_the_hold_paid_for(container: Container, key_secret: str) -> None:
    upstream = FunctionUpstream()
    await flow_over(container, upstream).reply(bearer(key_secret), chat_request(max_tokens=None))
    assert upstream.sent[0]["max_tokens"] == 64  # the deployment's max_output_tokens sized the hold
    await settled(container)


async def test_a_reply_without_usage_is_charged_a_conservative_estimate(container: Container, key_secret: str) -> None:
    upstream = FunctionUpstream(answer=lambda body: (200, completion(7, usage=False)))
    request = chat_request(max_tokens=16)
    reply = await flow_over(container, upstream).reply(bearer(key_secret), request)
    [row] = await ledger_rows(container)
    # Input bound = the request's bytes; output = the reply's content bytes (never fewer than its tokens).
    input_bound = request.input_tokens_bound(container.router.pick(request.model))
    assert (row["prompt_tokens"], row["completion_tokens"]) == (input_bound, 7)
    assert reply.cost_nanos == row["cost_nanos"] == 7 * OUTPUT_NANOS_PER_TOKEN
    await settled(container)


@pytest.mark.parametrize("failure", [UpstreamUnavailable("connection refused"), UpstreamTimeout("timed out")])
async def test_an_upstream_failure_answers_its_status_records_an_error_and_frees_the_hold(
    container: Container, key_secret: str, failure: UpstreamUnavailable
) -> None:
    reply = await flow_over(container, FunctionUpstream(failure=failure)).reply(bearer(key_secret), chat_request())
    assert reply.status == failure.status_code
    assert reply.cost_nanos is None
    assert b'"type":"' + failure.error_type.encode() in reply.body
    [row] = await ledger_rows(container)
    assert (row["status"], row["cost_nanos"]) == ("error", 0)
    await settled(container)


async def test_a_non_2xx_reply_is_passed_on_and_charges_nothing(container: Container, key_secret: str) -> None:
    upstream = FunctionUpstream(answer=lambda body: (429, {"error": {"message": "slow down"}}))
    reply = await flow_over(container, upstream).reply(bearer(key_secret), chat_request())
    assert (reply.status, reply.cost_nanos) == (429, None)
    [row] = await ledger_rows(container)
    assert (row["status"], row["cost_nanos"]) == ("error", 0)
    await settled(container)


async def test_a_request_over_budget_is_refused_before_anything_is_forwarded(container: Container) -> None:
    poor = (await container.keys.generate({"max_budget": 0.000004}))["key"]  # 4_000 nanos: two output tokens
    upstream = FunctionUpstream(answer=lambda body: (200, completion(3)))
    flow = flow_over(container, upstream)
    await flow.reply(bearer(poor), chat_request(max_tokens=4))  # spends 6_000: the budget is used up
    await settled(container)
    with pytest.raises(RequestRefused) as refused:
        await flow.reply(bearer(poor), chat_request(max_tokens=4))
    assert refused.value.refusal.state.spent_nanos == 3 * OUTPUT_NANOS_PER_TOKEN
    assert len(upstream.sent) == 1  # the refused request never left
    assert len(await ledger_rows(container)) == 1
    assert await container.counters.held_count() == 0


@pytest.mark.parametrize("headers", [{}, bearer("sk-unknown"), {"authorization": "Bearer "}])
async def test_a_request_without_a_valid_key_is_unauthenticated_and_counted(
    container: Container, headers: dict[str, str]
) -> None:
    upstream = FunctionUpstream()
    before = await _refusals(container, RefusalReason.UNAUTHORIZED)
    with pytest.raises(Unauthenticated):
        await flow_over(container, upstream).reply(headers, chat_request())
    assert await _refusals(container, RefusalReason.UNAUTHORIZED) == before + 1
    assert upstream.sent == []


async def test_an_unknown_model_is_not_found_and_holds_nothing(container: Container, key_secret: str) -> None:
    with pytest.raises(NotFound) as missing:
        await flow_over(container, FunctionUpstream()).reply(bearer(key_secret), chat_request(model="no-such-model"))
    assert (missing.value.status_code, missing.value.param) == (404, "model")
    assert await container.counters.held_count() == 0


async def test_a_route_kind_a_deployment_cannot_serve_is_a_400_before_the_hold(
    container: Container, key_secret: str
) -> None:
    request = dataclasses.replace(chat_request(), unsupported=lambda deployment: "not for this route")
    with pytest.raises(ServiceError) as unsupported:
        await flow_over(container, FunctionUpstream()).reply(bearer(key_secret), request)
    assert (unsupported.value.status_code, unsupported.value.param) == (400, "model")
    assert await container.counters.held_count() == 0


async def test_a_stream_is_charged_before_its_closing_event_is_yielded(container: Container, key_secret: str) -> None:
    flow = flow_over(container, FunctionUpstream(stream_chunks=lambda body: sse_completion(4)))
    outcome = await flow.stream(bearer(key_secret), chat_request(max_tokens=8))
    assert isinstance(outcome, Streaming)
    seen = []
    async for event in outcome.events:
        if event == DONE:
            # The closing event goes out only once the charge is durable.
            assert [(r["status"], r["cost_nanos"]) for r in await ledger_rows(container)] == [
                ("success", 4 * OUTPUT_NANOS_PER_TOKEN)
            ]
        seen.append(event)
    assert seen[-1] == DONE and len(seen) == 6  # 4 content events, the usage event, [DONE]
    await settled(container)


async def test_a_stream_that_will_not_open_answers_the_upstream_error_and_records_it(
    container: Container, key_secret: str
) -> None:
    flow = flow_over(container, FunctionUpstream(failure=UpstreamUnavailable("refused")))
    outcome = await flow.stream(bearer(key_secret), chat_request())
    assert isinstance(outcome, Reply) and outcome.status == 502
    [row] = await ledger_rows(container)
    assert row["status"] == "error"
    await settled(container)


async def test_a_stream_failing_midway_ends_with_an_error_event_and_charges_what_was_generated(
    container: Container, key_secret: str
) -> None:
    upstream = FunctionUpstream(
        stream_chunks=lambda body: sse_completion(3, usage=False)[:-1],
        failure=UpstreamUnavailable("reset"),
        fail_mid_stream=True,
    )
    outcome = await flow_over(container, upstream).stream(bearer(key_secret), chat_request(max_tokens=8))
    assert isinstance(outcome, Streaming)
    events = [event async for event in outcome.events]
    assert b"upstream_unavailable" in events[-1]
    [row] = await ledger_rows(container)
    assert (row["status"], row["completion_tokens"]) == ("error", 3)  # bounded by the content bytes seen
    await settled(container)
    assert upstream.streams[0].closed


async def test_a_stream_the_client_abandons_is_settled_once_as_cancelled(container: Container, key_secret: str) -> None:
    """Attack: the client leaves mid-stream (the generator is closed); the request is still charged, once."""
    gate = asyncio.Event()  # never set: the upstream keeps the stream open
    upstream = FunctionUpstream(stream_chunks=lambda body: sse_completion(2, usage=False)[:-1], gate=gate)
    outcome = await flow_over(container, upstream).stream(bearer(key_secret), chat_request(max_tokens=8))
    assert isinstance(outcome, Streaming)
    assert await anext(outcome.events)
    await outcome.events.aclose()
    await settled(container)
    [row] = await ledger_rows(container)
    assert (row["status"], row["completion_tokens"]) == ("cancelled", 1)
    await _until(lambda: upstream.streams[0].closed)


async def test_a_reply_cancelled_while_forwarding_is_settled_as_cancelled(
    container: Container, key_secret: str
) -> None:
    """Attack: the client disconnects while the upstream works; the hold must not stay pinned."""
    upstream = FunctionUpstream(gate=asyncio.Event())
    task = asyncio.ensure_future(flow_over(container, upstream).reply(bearer(key_secret), chat_request()))
    await _until(lambda: bool(upstream.sent))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await settled(container)
    [row] = await ledger_rows(container)
    assert (row["status"], row["cost_nanos"]) == ("cancelled", 0)


async def test_each_request_gets_its_own_request_id(container: Container, key_secret: str) -> None:
    flow = flow_over(container, FunctionUpstream())
    replies = [await flow.reply(bearer(key_secret), chat_request()) for _ in range(3)]
    ids = [reply.ticket.call.request_id for reply in replies]
    assert len(set(ids)) == 3 and all(len(request_id) == 32 for request_id in ids)
    assert sorted(row["request_id"] for row in await ledger_rows(container)) == sorted(ids)
    await settled(container)


async def test_visible_models_are_those_the_key_may_use(container: Container) -> None:
    limited = (await container.keys.generate({"models": ["flat-output"]}))["key"]
    assert await flow_over(container, FunctionUpstream()).visible_models(bearer(limited)) == ["flat-output"]


async def _refusals(container: Container, reason: RefusalReason) -> float:
    """The refusal counter of ``reason`` as the metrics endpoint exposes it."""
    exposition = (await container.metrics.exposition()).decode()
    pattern = rf'^ledgergate_admissions_refused_total{{[^}}]*reason="{reason.value}"[^}}]*}} (\S+)$'
    match = re.search(pattern, exposition, re.MULTILINE)
    assert match is not None, exposition
    return float(match.group(1))


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never met")


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_body_that_cannot_be_built_after_admission_does_not_pin_the_hold(
    container: Container, key_secret: str, streamed: bool
) -> None:
    """Attack: a failure between the hold and the upstream call (building the body) left the hold pinned until
    its TTL, counting against the budget; it is now settled at once (cancelled, nothing charged)."""

    def broken(deployment: object, max_tokens_to_send: int | None) -> bytes:
        raise ValueError("cannot build the body")

    request = dataclasses.replace(chat_request(), body_for=broken)
    upstream = FunctionUpstream()
    flow = flow_over(container, upstream)
    with pytest.raises(ValueError, match="cannot build"):
        await (flow.stream if streamed else flow.reply)(bearer(key_secret), request)
    await settled(container)
    assert upstream.sent == []
    assert [(row["status"], row["cost_nanos"]) for row in await ledger_rows(container)] == [("cancelled", 0)]


async def test_a_stream_reader_that_cannot_be_made_neither_opens_the_upstream_nor_pins_the_hold(
    container: Container, key_secret: str
) -> None:
    def broken() -> LineReader:
        raise RuntimeError("no reader")

    request = dataclasses.replace(chat_request(), stream_reader=broken)
    upstream = FunctionUpstream()
    with pytest.raises(RuntimeError, match="no reader"):
        await flow_over(container, upstream).stream(bearer(key_secret), request)
    await settled(container)
    assert upstream.streams == []


async def test_a_stream_abandoned_before_its_first_event_is_settled_and_its_upstream_closed(
    container: Container, key_secret: str
) -> None:
    """Attack (reported shape: the client leaves while the status line is being sent): closing a generator that
    never started runs none of its ``finally``, which left the hold pinned to its TTL, no record, and the upstream
    stream open. ``abandon`` settles it as cancelled and closes the upstream."""
    upstream = FunctionUpstream()
    outcome = await flow_over(container, upstream).stream(bearer(key_secret), chat_request(max_tokens=8))
    assert isinstance(outcome, Streaming)
    await outcome.events.aclose()  # what the ASGI layer does: a no-op on a generator that never started
    outcome.abandon()
    await settled(container)
    assert [(row["status"], row["cost_nanos"]) for row in await ledger_rows(container)] == [("cancelled", 0)]
    await _until(lambda: upstream.streams[0].closed)


async def test_abandoning_a_finished_stream_settles_nothing_more(container: Container, key_secret: str) -> None:
    outcome = await flow_over(container, FunctionUpstream()).stream(bearer(key_secret), chat_request(max_tokens=8))
    assert isinstance(outcome, Streaming)
    assert [event async for event in outcome.events][-1] == DONE
    outcome.abandon()
    await settled(container)
    assert [row["status"] for row in await ledger_rows(container)] == ["success"]
