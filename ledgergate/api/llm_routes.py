"""The LLM routes (hot path): authenticate, admit with a hold, forward, settle, answer.

They run as raw ASGI handlers in front of FastAPI (``ledgergate/app.py``): no routing table walk, middleware, request
object, dependency injection or pydantic on the request path. Every route kind runs the same admission and charge
flow; its ``Dialect`` (``api/dialects.py``) says how its requests, replies and streams are read.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ledgergate.api.asgi_io import HttpRequest, read_request, send_body, send_stream
from ledgergate.api.dialects import (
    ANTHROPIC_MESSAGES,
    CHAT_COMPLETIONS,
    EMBEDDINGS,
    RESPONSES,
    Dialect,
    Tracker,
)
from ledgergate.api.errors import ApiError, error_response, exception_response
from ledgergate.api.llm_request import ParsedRequest, upstream_body
from ledgergate.api.refusals import refused_response
from ledgergate.container import Container
from ledgergate.domain.ledger import RequestStatus, SpendRecord
from ledgergate.domain.model_access import first_refusing
from ledgergate.domain.ports import CounterStoreUnavailable
from ledgergate.domain.pricing import Usage
from ledgergate.domain.rate_limits import RateLimited
from ledgergate.services.errors import Unauthenticated
from ledgergate.services.metrics import RefusalReason
from ledgergate.services.request_charging import (
    EntityBlocked,
    LlmCall,
    ModelNotAllowed,
    Refusal,
    RequestCharger,
    Ticket,
)
from ledgergate.upstream.errors import UpstreamError, openai_error_body
from ledgergate.upstream.sse import StreamTracker

log = logging.getLogger("ledgergate.llm")
_T = TypeVar("_T")

_Handler = Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]


class _Refused(Exception):
    """A request answered before forwarding (refusal, upstream failure): the response to send instead."""

    def __init__(self, response: Response) -> None:
        super().__init__("answered before forwarding")
        self.response = response


class LlmEndpoints:
    def __init__(self, container: Callable[[], Container]) -> None:
        self._container = container
        self._background: set[asyncio.Task[Any]] = set()

    async def _admit(
        self, container: Container, request: HttpRequest, parsed: ParsedRequest, dialect: Dialect[Any]
    ) -> tuple[Ticket, dict[str, str]]:
        metrics = container.metrics
        try:
            principal = await container.authenticator.principal_from_headers(request.headers)
        except Unauthenticated:
            metrics.refused(RefusalReason.UNAUTHORIZED)
            raise
        deployment = container.router.pick(parsed.model)
        if deployment is None:
            raise ApiError(404, f"model {parsed.model!r} is not configured on this gateway", "not_found_error", "model")
        if dialect.unsupported is not None:
            reason = dialect.unsupported(deployment)
            if reason is not None:
                raise ApiError(400, reason, "invalid_request_error", "model")
        call = LlmCall(
            request_id=_request_id(),
            route=dialect.route,
            model=parsed.model,
            deployment=deployment,
            input_tokens_bound=len(parsed.body),
            requested_max_tokens=parsed.requested_max_tokens,
            n=parsed.n,
            best_of=parsed.best_of,
            produces_output=dialect.cap_field is not None,
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
            raise _Refused(refused_response(outcome, container.clock.now_s()))
        if isinstance(outcome, ModelNotAllowed):  # the key's, its user's, team's, organization's or a tag's list
            metrics.refused(RefusalReason.MODEL_NOT_ALLOWED)
            raise ApiError(403, outcome.reason, "permission_error", "model")
        if isinstance(outcome, EntityBlocked):
            metrics.refused(RefusalReason.BLOCKED)
            raise ApiError(403, outcome.reason, "permission_error")
        headers = {"x-ledgergate-request-id": call.request_id}
        if outcome.output_cap_clamped:
            headers["x-ledgergate-max-tokens-clamped"] = str(outcome.max_tokens_to_send)
        return outcome, headers

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
        return _Settlement(
            lambda usage, status, recorded: self._background_task(charger.settle(ticket, usage, status, recorded))
        )

    def handler(self, dialect: Dialect[Any], *, streams: bool) -> _Handler:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            await self._serve(scope, receive, send, dialect, streams)

        return handle

    async def _serve(self, scope: Scope, receive: Receive, send: Send, dialect: Dialect[Any], streams: bool) -> None:
        request = await read_request(scope, receive)
        if request is None:
            return  # the client left before its request was complete: nothing was admitted
        container = self._container()
        try:
            parsed = dialect.parse(request)
            if not (streams and parsed.stream):
                status, body, headers, content_type = await self._forward_json(container, request, parsed, dialect)
                await send_body(send, status, body, headers, content_type)
                return
            events, headers = await self._open_stream(container, request, parsed, dialect)
        except _Refused as refused:
            await refused.response(scope, receive, send)
            return
        except Exception as exc:
            await exception_response(exc)(scope, receive, send)
            return
        # Past the status line a failure cannot become an error response: the stream ends without its closing event.
        await send_stream(receive, send, events, headers)

    async def _forward_json(
        self, container: Container, request: HttpRequest, parsed: ParsedRequest, dialect: Dialect[Any]
    ) -> tuple[int, bytes, dict[str, str], bytes]:
        ticket, headers = await self._admit(container, request, parsed, dialect)
        deployment = ticket.call.deployment
        body = _upstream_body(parsed, dialect, ticket, inject_usage=False)
        protocol = dialect.protocol_headers(request, deployment) if dialect.protocol_headers is not None else None
        settlement = self._settlement(container.charger, ticket)
        try:
            sent_at = time.perf_counter()
            try:
                reply = await container.upstream.send(deployment, dialect.path, body, protocol)
            except UpstreamError as exc:
                await settlement.run(None, RequestStatus.ERROR)
                return exc.status_code, orjson.dumps(exc.to_openai_error()), headers, b"application/json"
            container.metrics.upstream_replied(ticket.call.model, sent_at)
            if not reply.is_success:
                await settlement.run(None, RequestStatus.ERROR)
                return reply.status, openai_error_body(reply), headers, b"application/json"
            try:
                obj = orjson.loads(reply.body)
            except orjson.JSONDecodeError:
                obj = {}
            usage = dialect.reply_usage(obj) if isinstance(obj, dict) else None
            if usage is None:
                usage = Usage(prompt_tokens=ticket.call.input_tokens_bound, completion_tokens=dialect.output_bytes(obj))
            record = await settlement.run(usage, RequestStatus.SUCCESS)
            headers["x-ledgergate-cost-nanos"] = str(record.cost_nanos)
            content_type = (reply.content_type or "application/json").encode("latin-1")
            return 200, reply.body, headers, content_type
        finally:
            settlement.start(None, RequestStatus.CANCELLED)  # no-op when already settled

    async def _open_stream(
        self, container: Container, request: HttpRequest, parsed: ParsedRequest, dialect: Dialect[Tracker]
    ) -> tuple[AsyncGenerator[bytes, None], dict[str, str]]:
        ticket, headers = await self._admit(container, request, parsed, dialect)
        deployment = ticket.call.deployment
        body = _upstream_body(parsed, dialect, ticket, inject_usage=dialect.inject_usage)
        protocol = dialect.protocol_headers(request, deployment) if dialect.protocol_headers is not None else None
        settlement = self._settlement(container.charger, ticket)
        sent_at = time.perf_counter()
        try:
            upstream = await container.upstream.stream(deployment, dialect.path, body, protocol)
        except UpstreamError as exc:
            await settlement.run(None, RequestStatus.ERROR)
            error = Response(orjson.dumps(exc.to_openai_error()), exc.status_code, headers, "application/json")
            raise _Refused(error) from exc
        except BaseException:
            settlement.start(None, RequestStatus.CANCELLED)
            raise
        container.metrics.upstream_replied(ticket.call.model, sent_at)
        tracker = dialect.tracker(parsed)

        async def events() -> AsyncGenerator[bytes, None]:
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

        return events(), headers

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive)
        if request is None:
            return
        container = self._container()
        try:
            principal = await container.authenticator.principal_from_headers(request.headers)
        except Exception as exc:
            await exception_response(exc)(scope, receive, send)
            return
        gates = await container.charger.model_gates(principal.key)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "ledgergate"}
            for name in container.router.model_names
            if first_refusing(name, gates) is None
        ]
        await send_body(send, 200, orjson.dumps({"object": "list", "data": data}), {})


def _request_id() -> str:
    """32 hex digits: 48 bits of wall-clock milliseconds, then 80 random bits (ordered like a UUIDv7, without building
    one). Ordered ids append at the end of the ledger's request-id indexes instead of dirtying a random page each.
    The random part only has to be unique, not secret: no system call for it (``random`` is reseeded in forked
    workers)."""
    return f"{time.time_ns() // 1_000_000:012x}{random.getrandbits(80):020x}"


def _upstream_body(parsed: ParsedRequest, dialect: Dialect[Any], ticket: Ticket, *, inject_usage: bool) -> bytes:
    """The body sent upstream, held to the output cap its hold paid for."""
    deployment = ticket.call.deployment
    cap_field = dialect.cap_field(deployment) if dialect.cap_field is not None else None
    return upstream_body(parsed, deployment.upstream_model, ticket.max_tokens_to_send, inject_usage, cap_field)


def _stream_usage(ticket: Ticket, tracker: StreamTracker) -> Usage:
    """The upstream's final usage; without it (client gone, usage missing) a conservative estimate."""
    if tracker.usage is not None:
        return tracker.usage
    return Usage(prompt_tokens=ticket.call.input_tokens_bound, completion_tokens=tracker.content_chunks)


class _Settlement:
    """Exactly one settlement per admitted request, as a task of its own so a cancelled request cannot cut it in
    half (ledger written, counters not). The response waits for the durable record only: turning the hold into
    spend in the counters continues in that task (with Redis, one round trip less before the client's answer;
    until then the counter still holds the request's maximum cost, never less than it spent)."""

    def __init__(
        self, schedule: Callable[[Usage | None, RequestStatus, Callable[[SpendRecord], None]], asyncio.Task[Any]]
    ) -> None:
        self._schedule = schedule
        self._recorded: asyncio.Future[SpendRecord] | None = None

    def start(self, usage: Usage | None, status: RequestStatus) -> asyncio.Future[SpendRecord]:
        if self._recorded is None:
            recorded: asyncio.Future[SpendRecord] = asyncio.get_running_loop().create_future()
            self._recorded = recorded

            def record_written(record: SpendRecord) -> None:
                if not recorded.done():
                    recorded.set_result(record)

            def settled(task: asyncio.Task[Any]) -> None:
                if recorded.done():
                    return
                if task.cancelled():
                    recorded.cancel()
                elif (exc := task.exception()) is not None:
                    recorded.set_exception(exc)
                    recorded.exception()  # retrieved: a request that no longer waits must not warn about it
                else:
                    recorded.set_result(task.result())

            self._schedule(usage, status, record_written).add_done_callback(settled)
        return self._recorded

    async def run(self, usage: Usage | None, status: RequestStatus) -> SpendRecord:
        return await asyncio.shield(self.start(usage, status))


class LlmRoutes:
    """Path -> (method, handler) for the LLM API, with and without the ``/v1`` prefix."""

    def __init__(self, container: Callable[[], Container]) -> None:
        endpoints = LlmEndpoints(container)
        by_path: dict[str, tuple[str, _Handler]] = {
            "/chat/completions": ("POST", endpoints.handler(CHAT_COMPLETIONS, streams=True)),
            "/embeddings": ("POST", endpoints.handler(EMBEDDINGS, streams=False)),
            "/messages": ("POST", endpoints.handler(ANTHROPIC_MESSAGES, streams=True)),
            "/responses": ("POST", endpoints.handler(RESPONSES, streams=True)),
            "/models": ("GET", endpoints.models),
        }
        self._routes = {**by_path, **{f"/v1{path}": route for path, route in by_path.items()}}

    def match(self, scope: Scope) -> _Handler | None:
        """The handler for this request, or ``None`` to let the admin app answer."""
        route = self._routes.get(scope["path"])
        if route is None:
            return None
        method, handle = route
        return handle if scope["method"] == method else _method_not_allowed(method)


def _method_not_allowed(allowed: str) -> _Handler:
    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(405, "Method Not Allowed", "invalid_request_error", headers={"allow": allowed})
        await response(scope, receive, send)

    return refuse
