"""The LLM routes (hot path): authenticate, admit with a hold, forward, settle, answer.

Plain Starlette endpoints: no dependency injection or pydantic on the request path. Every route kind (OpenAI
chat completions, embeddings and responses, Anthropic messages) runs the same admission and charge flow; its
``Dialect`` says how its requests, replies and streams are read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ledgergate.api.errors import ApiError, error_response
from ledgergate.api.llm_request import (
    ParsedRequest,
    parse_llm_request,
    parse_messages_request,
    parse_responses_request,
    upstream_body,
)
from ledgergate.api.refusals import refused_response
from ledgergate.deployments import Deployment
from ledgergate.domain.ledger import RequestStatus, SpendRecord
from ledgergate.domain.ports import CounterStoreUnavailable
from ledgergate.domain.pricing import Usage
from ledgergate.domain.rate_limits import RateLimited
from ledgergate.services.metrics import RefusalReason
from ledgergate.services.request_charging import EntityBlocked, LlmCall, Refusal, RequestCharger, Ticket
from ledgergate.upstream.anthropic_sse import AnthropicStreamTracker
from ledgergate.upstream.errors import UpstreamError, openai_error_body
from ledgergate.upstream.responses_sse import ResponsesStreamTracker
from ledgergate.upstream.sse import DONE_EVENT, StreamTracker
from ledgergate.upstream.usage import (
    anthropic_output_bytes,
    anthropic_reply_usage,
    chat_output_bytes,
    responses_output_bytes,
    responses_reply_usage,
    usage_from_response,
)

log = logging.getLogger("ledgergate.llm")
_T = TypeVar("_T")
_Tracker = TypeVar("_Tracker", bound=StreamTracker)

if False:  # pragma: no cover - typing only, avoids an import cycle with the container
    from ledgergate.container import Container


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ANTHROPIC_VERSION = "2023-06-01"  # sent upstream when the client names none
_FORWARDED_ANTHROPIC_HEADERS = ("anthropic-version", "anthropic-beta")


@dataclass(frozen=True, slots=True)
class Dialect(Generic[_Tracker]):
    """How one route kind's requests, replies and streams are read; the admission and charge flow is shared."""

    route: str  # the ledger's route (``call_type`` in spend logs)
    path: str  # appended to the deployment's ``api_base``
    parse: Callable[[Request], Awaitable[ParsedRequest]]
    reply_usage: Callable[[dict[str, Any]], Usage | None]
    output_bytes: Callable[[Any], int]  # bounds the output tokens of a reply without usage
    tracker: Callable[[ParsedRequest], _Tracker]
    # What the client gets after the charge is durable, and the stream's ledger status.
    ending: Callable[[_Tracker], tuple[bytes, RequestStatus]]
    error_event: Callable[[UpstreamError], bytes]  # a failure after the status line went out
    inject_usage: bool = False  # chat: ask for the usage chunk with ``stream_options``
    unsupported: Callable[[Deployment], str | None] | None = None  # why a deployment cannot serve this route
    protocol_headers: Callable[[Request, Deployment], Mapping[str, str]] | None = None  # replace Bearer auth


def _openai_error_event(exc: UpstreamError) -> bytes:
    return b"data: " + orjson.dumps(exc.to_openai_error()) + b"\n\n"


def _anthropic_error_event(exc: UpstreamError) -> bytes:
    error = {"type": "error", "error": {"type": exc.error_type, "message": exc.message}}
    return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"


def _responses_error_event(exc: UpstreamError) -> bytes:
    error = {"type": "error", "code": exc.code, "message": exc.message, "param": exc.param}
    return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"


def _closing(tracker: AnthropicStreamTracker | ResponsesStreamTracker) -> tuple[bytes, RequestStatus]:
    return tracker.closing_event, RequestStatus.ERROR if tracker.failed else RequestStatus.SUCCESS


def _needs_anthropic(deployment: Deployment) -> str | None:
    if deployment.provider == "anthropic":
        return None
    return (
        f"model {deployment.model_name!r} is not an Anthropic-compatible deployment (use /v1/chat/completions for it)"
    )


def _needs_openai(deployment: Deployment) -> str | None:
    if deployment.provider != "anthropic":
        return None
    return (
        f"model {deployment.model_name!r} is an Anthropic deployment, which has no Responses API "
        "(use /v1/messages for it)"
    )


def _anthropic_headers(request: Request, deployment: Deployment) -> dict[str, str]:
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    for name in _FORWARDED_ANTHROPIC_HEADERS:
        value = request.headers.get(name)
        if value:
            headers[name] = value
    if deployment.api_key:
        headers["x-api-key"] = deployment.api_key
    return headers


CHAT_COMPLETIONS: Dialect[StreamTracker] = Dialect(
    route="chat.completions",
    path="/chat/completions",
    parse=parse_llm_request,
    reply_usage=usage_from_response,
    output_bytes=chat_output_bytes,
    tracker=lambda parsed: StreamTracker(strip_usage_chunk=not parsed.client_wants_usage),
    ending=lambda tracker: (DONE_EVENT, RequestStatus.SUCCESS),
    error_event=_openai_error_event,
    inject_usage=True,
)
EMBEDDINGS = dataclasses.replace(CHAT_COMPLETIONS, route="embeddings", path="/embeddings", inject_usage=False)
ANTHROPIC_MESSAGES: Dialect[AnthropicStreamTracker] = Dialect(
    route="messages",
    path="/messages",
    parse=parse_messages_request,
    reply_usage=anthropic_reply_usage,
    output_bytes=anthropic_output_bytes,
    tracker=lambda parsed: AnthropicStreamTracker(),
    ending=_closing,
    error_event=_anthropic_error_event,
    unsupported=_needs_anthropic,
    protocol_headers=_anthropic_headers,
)
RESPONSES: Dialect[ResponsesStreamTracker] = Dialect(
    route="responses",
    path="/responses",
    parse=parse_responses_request,
    reply_usage=responses_reply_usage,
    output_bytes=responses_output_bytes,
    tracker=lambda parsed: ResponsesStreamTracker(),
    ending=_closing,
    error_event=_responses_error_event,
    unsupported=_needs_openai,
)


class LlmEndpoints:
    def __init__(self) -> None:
        self._background: set[asyncio.Task[Any]] = set()

    async def _admit(
        self, request: Request, parsed: ParsedRequest, dialect: Dialect[Any]
    ) -> tuple[Container, Ticket, dict[str, str]]:
        container = _container(request)
        metrics = container.metrics
        try:
            principal = await container.authenticator.principal(request)
        except ApiError:
            metrics.refused(RefusalReason.UNAUTHORIZED)
            raise
        deployment = container.router.pick(parsed.model)
        if deployment is None:
            raise ApiError(404, f"model {parsed.model!r} is not configured on this gateway", "not_found_error", "model")
        if dialect.unsupported is not None:
            reason = dialect.unsupported(deployment)
            if reason is not None:
                raise ApiError(400, reason, "invalid_request_error", "model")
        if not principal.key.allows_model(parsed.model):
            metrics.refused(RefusalReason.MODEL_NOT_ALLOWED)
            raise ApiError(403, f"this key may not use model {parsed.model!r}", "permission_error", "model")
        call = LlmCall(
            request_id=os.urandom(16).hex(),  # 128 random bits, without building a UUID object
            route=dialect.route,
            model=parsed.model,
            deployment=deployment,
            input_tokens_bound=len(parsed.body),
            requested_max_tokens=parsed.requested_max_tokens,
            n=parsed.n,
            customer_id=parsed.customer_id,
            client_tags=parsed.client_tags,
        )
        try:
            outcome = await container.charger.admit(principal.key, call)
        except CounterStoreUnavailable:
            metrics.refused(RefusalReason.COUNTER_STORE_UNAVAILABLE)
            raise
        if isinstance(outcome, Refusal | RateLimited):
            rate_limited = isinstance(outcome, RateLimited)
            metrics.refused(RefusalReason.RATE_LIMIT_EXCEEDED if rate_limited else RefusalReason.BUDGET_EXCEEDED)
            raise _RefusedError(refused_response(outcome))
        if isinstance(outcome, EntityBlocked):
            metrics.refused(RefusalReason.BLOCKED)
            raise ApiError(403, outcome.reason, "permission_error")
        headers = {"x-ledgergate-request-id": call.request_id}
        requested = parsed.requested_max_tokens or deployment.max_output_tokens
        if outcome.max_tokens_to_send is not None and outcome.max_tokens_to_send < requested:
            headers["x-ledgergate-max-tokens-clamped"] = str(outcome.max_tokens_to_send)
        return container, outcome, headers

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

    def _settlement(self, charger: RequestCharger, ticket: Ticket) -> _Settlement:
        return _Settlement(lambda usage, status: self._background_task(charger.settle(ticket, usage, status)))

    async def json_call(self, request: Request, dialect: Dialect[Any]) -> Response:
        try:
            return await self._forward_json(request, dialect, await dialect.parse(request))
        except _RefusedError as refused:
            return refused.response

    async def _forward_json(self, request: Request, dialect: Dialect[Any], parsed: ParsedRequest) -> Response:
        container, ticket, headers = await self._admit(request, parsed, dialect)
        deployment = ticket.call.deployment
        body = upstream_body(parsed, deployment.upstream_model, ticket.max_tokens_to_send, inject_usage=False)
        protocol = dialect.protocol_headers(request, deployment) if dialect.protocol_headers is not None else None
        settlement = self._settlement(container.charger, ticket)
        try:
            sent_at = time.perf_counter()
            try:
                reply = await container.upstream.send(deployment, dialect.path, body, protocol)
            except UpstreamError as exc:
                await settlement.run(None, RequestStatus.ERROR)
                return _json(orjson.dumps(exc.to_openai_error()), exc.status_code, headers)
            container.metrics.upstream_replied(ticket.call.model, sent_at)
            if not reply.is_success:
                await settlement.run(None, RequestStatus.ERROR)
                return _json(openai_error_body(reply), reply.status, headers)
            try:
                obj = orjson.loads(reply.body)
            except orjson.JSONDecodeError:
                obj = {}
            usage = dialect.reply_usage(obj) if isinstance(obj, dict) else None
            if usage is None:
                usage = Usage(prompt_tokens=ticket.call.input_tokens_bound, completion_tokens=dialect.output_bytes(obj))
            record = await settlement.run(usage, RequestStatus.SUCCESS)
            headers["x-ledgergate-cost-nanos"] = str(record.cost_nanos)
            return Response(reply.body, 200, headers=headers, media_type=reply.content_type or "application/json")
        finally:
            settlement.start(None, RequestStatus.CANCELLED)  # no-op when already settled

    async def stream_call(self, request: Request, dialect: Dialect[_Tracker]) -> Response:
        try:
            parsed = await dialect.parse(request)
            if not parsed.stream:
                return await self._forward_json(request, dialect, parsed)
            container, ticket, headers = await self._admit(request, parsed, dialect)
        except _RefusedError as refused:
            return refused.response
        deployment = ticket.call.deployment
        body = upstream_body(parsed, deployment.upstream_model, ticket.max_tokens_to_send, dialect.inject_usage)
        protocol = dialect.protocol_headers(request, deployment) if dialect.protocol_headers is not None else None
        settlement = self._settlement(container.charger, ticket)
        sent_at = time.perf_counter()
        try:
            upstream = await container.upstream.stream(deployment, dialect.path, body, protocol)
        except UpstreamError as exc:
            await settlement.run(None, RequestStatus.ERROR)
            return _json(orjson.dumps(exc.to_openai_error()), exc.status_code, headers)
        except BaseException:
            settlement.start(None, RequestStatus.CANCELLED)
            raise
        container.metrics.upstream_replied(ticket.call.model, sent_at)
        tracker = dialect.tracker(parsed)

        async def events() -> AsyncIterator[bytes]:
            try:
                try:
                    async for chunk in upstream.chunks():
                        forwarded = tracker.feed(chunk)
                        if forwarded:
                            yield forwarded
                except UpstreamError as exc:
                    # The status line is gone already: the failure travels as an SSE error event.
                    await settlement.run(_stream_usage(ticket, tracker), RequestStatus.ERROR)
                    yield dialect.error_event(exc)
                    return
                tail = tracker.finish()
                if tail:
                    yield tail
                closing, status = dialect.ending(tracker)
                # The charge is durable before the client sees the end of the stream.
                await settlement.run(_stream_usage(ticket, tracker), status)
                if closing:
                    yield closing
            finally:
                # Nothing here may await before both are scheduled: a cancelled generator stops at its first await.
                settlement.start(_stream_usage(ticket, tracker), RequestStatus.CANCELLED)
                self._background_task(upstream.aclose())

        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def models(self, request: Request) -> Response:
        container = _container(request)
        principal = await container.authenticator.principal(request)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "ledgergate"}
            for name in container.router.model_names
            if principal.key.allows_model(name)
        ]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


def _stream_usage(ticket: Ticket, tracker: StreamTracker) -> Usage:
    """The upstream's final usage; without it (client gone, usage missing) a conservative estimate."""
    if tracker.usage is not None:
        return tracker.usage
    return Usage(prompt_tokens=ticket.call.input_tokens_bound, completion_tokens=tracker.content_chunks)


class _Settlement:
    """Exactly one settlement per admitted request, as a task of its own so a cancelled request cannot cut
    it in half (ledger written, counters not)."""

    def __init__(self, schedule: Callable[[Usage | None, RequestStatus], asyncio.Task[SpendRecord]]) -> None:
        self._schedule = schedule
        self._task: asyncio.Task[SpendRecord] | None = None

    def start(self, usage: Usage | None, status: RequestStatus) -> asyncio.Task[SpendRecord]:
        if self._task is None:
            self._task = self._schedule(usage, status)
        return self._task

    async def run(self, usage: Usage | None, status: RequestStatus) -> SpendRecord:
        return await asyncio.shield(self.start(usage, status))


def _json(body: bytes, status: int, headers: dict[str, str]) -> Response:
    return Response(body, status, headers=headers, media_type="application/json")


class _RefusedError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


def _route(path: str, endpoint: Callable[[Request], Awaitable[Response]], methods: list[str]) -> list[Route]:
    return [Route(f"/v1{path}", endpoint, methods=methods), Route(path, endpoint, methods=methods)]


def llm_routes() -> list[Route]:
    endpoints = LlmEndpoints()

    async def chat(request: Request) -> Response:
        return await endpoints.stream_call(request, CHAT_COMPLETIONS)

    async def embeddings(request: Request) -> Response:
        return await endpoints.json_call(request, EMBEDDINGS)

    async def messages(request: Request) -> Response:
        return await endpoints.stream_call(request, ANTHROPIC_MESSAGES)

    async def responses(request: Request) -> Response:
        return await endpoints.stream_call(request, RESPONSES)

    return [
        *_route("/chat/completions", chat, ["POST"]),
        *_route("/embeddings", embeddings, ["POST"]),
        *_route("/messages", messages, ["POST"]),
        *_route("/responses", responses, ["POST"]),
        *_route("/models", endpoints.models, ["GET"]),
    ]


__all__ = ["error_response", "llm_routes"]
