"""The charge flow of one LLM request: authenticate -> who pays -> admit (hold) -> forward through the ``Upstream``
port -> settle exactly once (or release) -> outcome.

The HTTP layer (``api/llm_routes.py``) only reads the client's request into a ``FlowRequest`` and writes the
outcome (``Reply``, ``Streaming``, or a raised ``RequestRefused`` / ``ServiceError``) back; everything between runs
here, so charging a request can run (and be tested) without HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from ledgergate.deployments import Deployment
from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.model_access import first_refusing
from ledgergate.domain.output_caps import unreported_output_tokens
from ledgergate.domain.ports import (
    Authenticate,
    Clock,
    CounterStoreUnavailable,
    Headers,
    StreamReader,
    Upstream,
    UpstreamFailure,
)
from ledgergate.domain.pricing import Usage
from ledgergate.domain.rate_limits import RateLimited
from ledgergate.services.errors import Forbidden, NotFound, ServiceError, Unauthenticated
from ledgergate.services.metrics import GatewayMetrics, RefusalReason
from ledgergate.services.request_charging import (
    EntityBlocked,
    LlmCall,
    ModelNotAllowed,
    Refusal,
    RequestCharger,
    Ticket,
)
from ledgergate.services.request_ids import new_request_id
from ledgergate.services.router import ModelRouter
from ledgergate.services.settlement import RecordWritten, Settlement

log = logging.getLogger("ledgergate.llm")
_T = TypeVar("_T")
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class FlowRequest:
    """One LLM request as the flow needs it: the fields governance reads, and how this route kind's body is sent
    and its replies and streams are read."""

    route: str  # the ledger's route (``call_type`` in spend logs)
    path: str  # appended to the deployment's ``api_base``
    model: str
    input_tokens_bound: Callable[[Deployment], int]  # an upper bound of what the deployment bills as input
    requested_max_tokens: int | None
    n: int
    best_of: int | None
    produces_output: bool
    customer_id: str | None
    client_tags: tuple[str, ...]
    body_for: Callable[[Deployment, int | None], bytes]  # the body sent upstream, held to the cap the hold paid for
    reply_usage: Callable[[dict[str, Any]], Usage | None]
    output_bytes: Callable[[Any], int]  # bounds the output tokens of a reply without usage
    stream_reader: Callable[[], StreamReader]
    unsupported: Callable[[Deployment], str | None] | None = None  # why a deployment cannot serve this route
    protocol_headers: Callable[[Deployment], Mapping[str, str]] | None = None  # replace Bearer auth


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole reply to send: the upstream's (charged) or its error."""

    ticket: Ticket
    status: int
    body: bytes
    content_type: str
    cost_nanos: int | None = None  # the charge of a successful reply


@dataclass(frozen=True, slots=True)
class Streaming:
    """An open stream: iterate ``events`` to the client; its end (or cancellation) settles the request. Call
    ``abandon`` once the client is done with it: a stream never iterated (the client left before its first byte)
    runs no ``finally`` of its own, so that settles it and closes the upstream (a no-op otherwise)."""

    ticket: Ticket
    events: AsyncGenerator[bytes, None]
    abandon: Callable[[], None]


class RequestRefused(Exception):
    """A budget or rate limit refused the request before anything was forwarded (the 429)."""

    def __init__(self, refusal: Refusal | RateLimited, now_s: float) -> None:
        super().__init__("refused by a budget or rate limit")
        self.refusal = refusal
        self.now_s = now_s


class ChargeFlow:
    def __init__(
        self,
        *,
        authenticate: Authenticate,
        router: ModelRouter,
        charger: RequestCharger,
        upstream: Upstream[Deployment],
        metrics: GatewayMetrics,
        clock: Clock,
    ) -> None:
        self._authenticate = authenticate
        self._router = router
        self._charger = charger
        self._upstream = upstream
        self._metrics = metrics
        self._clock = clock
        self._background: set[asyncio.Task[Any]] = set()

    async def admit(self, headers: Headers, request: FlowRequest) -> Ticket:
        """Authenticate, pick the deployment and place the hold; or raise what the client is answered."""
        metrics = self._metrics
        try:
            principal = await self._authenticate(headers)
        except Unauthenticated:
            metrics.refused(RefusalReason.UNAUTHORIZED)
            raise
        deployment = self._router.pick(request.model)
        if deployment is None:
            raise NotFound(f"model {request.model!r} is not configured on this gateway", "model")
        if request.unsupported is not None:
            reason = request.unsupported(deployment)
            if reason is not None:
                raise ServiceError(reason, "model")
        call = LlmCall(
            request_id=new_request_id(),
            route=request.route,
            model=request.model,
            deployment=deployment,
            input_tokens_bound=request.input_tokens_bound(deployment),
            requested_max_tokens=request.requested_max_tokens,
            n=request.n,
            best_of=request.best_of,
            produces_output=request.produces_output,
            customer_id=request.customer_id,
            client_tags=request.client_tags,
        )
        try:
            outcome = await self._charger.admit(principal.key, call)
        except CounterStoreUnavailable:
            metrics.refused(RefusalReason.COUNTER_STORE_UNAVAILABLE)
            raise
        if isinstance(outcome, Refusal | RateLimited):
            rate_limited = isinstance(outcome, RateLimited)
            metrics.refused(RefusalReason.RATE_LIMIT_EXCEEDED if rate_limited else RefusalReason.BUDGET_EXCEEDED)
            raise RequestRefused(outcome, self._clock.now_s())
        if isinstance(outcome, ModelNotAllowed):  # the key's, its user's, team's, organization's or a tag's list
            metrics.refused(RefusalReason.MODEL_NOT_ALLOWED)
            raise Forbidden(outcome.reason, "model")
        if isinstance(outcome, EntityBlocked):
            metrics.refused(RefusalReason.BLOCKED)
            raise Forbidden(outcome.reason)
        return outcome

    async def reply(self, headers: Headers, request: FlowRequest) -> Reply:
        """A request answered by one whole upstream reply, charged before it is returned."""
        ticket = await self.admit(headers, request)
        deployment = ticket.call.deployment
        settlement = self._settlement(ticket)
        try:
            # Inside the try: whatever fails once the hold is placed settles it (never left pinned to its TTL).
            body = request.body_for(deployment, ticket.max_tokens_to_send)
            protocol = request.protocol_headers(deployment) if request.protocol_headers is not None else None
            sent_at = time.perf_counter()
            try:
                upstream_reply = await self._upstream.send(deployment, request.path, body, protocol)
            except UpstreamFailure as exc:
                await settlement.run(None, RequestStatus.ERROR)
                return Reply(ticket, exc.status_code, orjson.dumps(exc.to_openai_error()), JSON)
            self._metrics.upstream_replied(ticket.call.model, sent_at)
            if not upstream_reply.is_success:
                await settlement.run(None, RequestStatus.ERROR)
                return Reply(ticket, upstream_reply.status, upstream_reply.error_body(), JSON)
            record = await settlement.run(reply_usage(ticket, request, upstream_reply.body), RequestStatus.SUCCESS)
            content_type = upstream_reply.content_type or JSON
            return Reply(ticket, 200, upstream_reply.body, content_type, record.cost_nanos)
        finally:
            settlement.start(None, RequestStatus.CANCELLED)  # no-op when already settled

    async def stream(self, headers: Headers, request: FlowRequest) -> Streaming | Reply:
        """A streamed request: the open stream, or the upstream's error when it would not open (charged as such)."""
        ticket = await self.admit(headers, request)
        deployment = ticket.call.deployment
        settlement = self._settlement(ticket)
        try:
            # Before the upstream is opened: whatever fails once the hold is placed settles it.
            body = request.body_for(deployment, ticket.max_tokens_to_send)
            protocol = request.protocol_headers(deployment) if request.protocol_headers is not None else None
            reader = request.stream_reader()
            sent_at = time.perf_counter()
            upstream = await self._upstream.stream(deployment, request.path, body, protocol)
        except UpstreamFailure as exc:
            await settlement.run(None, RequestStatus.ERROR)
            return Reply(ticket, exc.status_code, orjson.dumps(exc.to_openai_error()), JSON)
        except BaseException:
            settlement.start(None, RequestStatus.CANCELLED)
            raise
        self._metrics.upstream_replied(ticket.call.model, sent_at)

        async def events() -> AsyncGenerator[bytes, None]:
            try:
                try:
                    async for chunk in upstream.chunks():
                        forwarded = reader.feed(chunk)
                        if forwarded:
                            yield forwarded
                except UpstreamFailure as exc:
                    # The status line is gone already: the failure travels as an event of the stream.
                    await settlement.run(stream_usage(ticket, reader), RequestStatus.ERROR)
                    yield reader.error_event(exc)
                    return
                tail = reader.finish()
                if tail:
                    yield tail
                closing, status = reader.ending()
                # The charge is durable before the client sees the end of the stream.
                await settlement.run(stream_usage(ticket, reader), status)
                if closing:
                    yield closing
            finally:
                # Nothing here may await before both are scheduled: a cancelled generator stops at its first await.
                settlement.start(stream_usage(ticket, reader), RequestStatus.CANCELLED)
                self._background_task(upstream.aclose())

        def abandon() -> None:
            if not settlement.started:  # ``events`` never ran: nothing settled, nothing closed
                settlement.start(stream_usage(ticket, reader), RequestStatus.CANCELLED)
                self._background_task(upstream.aclose())

        return Streaming(ticket, events(), abandon)

    async def visible_models(self, headers: Headers) -> list[str]:
        """The configured model names the caller's key may use (``/v1/models``)."""
        principal = await self._authenticate(headers)
        gates = await self._charger.model_gates(principal.key)
        return [name for name in self._router.model_names if first_refusing(name, gates) is None]

    def _settlement(self, ticket: Ticket) -> Settlement:
        charger = self._charger

        def schedule(usage: Usage | None, status: RequestStatus, recorded: RecordWritten) -> asyncio.Task[Any]:
            return self._background_task(charger.settle(ticket, usage, status, recorded))

        return Settlement(schedule)

    def _background_task(self, coroutine: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        """A task the request's cancellation cannot cut short; failures are logged, never dropped."""
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background settlement failed", exc_info=task.exception())


def reply_usage(ticket: Ticket, request: FlowRequest, body: bytes) -> Usage:
    """The reply's usage; without one a conservative estimate: the request's bytes in, the reply's output out."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = {}
    usage = request.reply_usage(obj) if isinstance(obj, dict) else None
    if usage is None:
        usage = Usage(prompt_tokens=ticket.call.input_tokens_bound, completion_tokens=request.output_bytes(obj))
    return usage


def stream_usage(ticket: Ticket, reader: StreamReader) -> Usage:
    """The upstream's final usage; without it (client gone, usage missing) an upper bound (docs/api.md): the
    streamed content bytes as tokens, at most the output tokens held."""
    if reader.usage is not None:
        return reader.usage
    output_bound = unreported_output_tokens(reader.content_bytes, ticket.output_tokens_held)
    return Usage(prompt_tokens=ticket.call.input_tokens_bound, completion_tokens=output_bound)
