"""The LLM routes (hot path): authenticate, admit with a hold, forward, settle, answer.

Plain Starlette endpoints: no dependency injection or pydantic on the request path.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ledgergate.api.errors import ApiError, error_response
from ledgergate.api.llm_request import ParsedRequest, parse_llm_request, upstream_body
from ledgergate.api.refusals import refusal_response
from ledgergate.domain.ledger import RequestStatus, SpendRecord
from ledgergate.domain.pricing import Usage
from ledgergate.services.request_charging import EntityBlocked, LlmCall, Refusal, RequestCharger, Ticket
from ledgergate.upstream.errors import UpstreamError, openai_error_body
from ledgergate.upstream.sse import DONE_EVENT, StreamTracker
from ledgergate.upstream.usage import usage_from_response

log = logging.getLogger("ledgergate.llm")
_T = TypeVar("_T")

if False:  # pragma: no cover - typing only, avoids an import cycle with the container
    from ledgergate.container import Container


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _output_bytes(obj: Any) -> int:
    """UTF-8 bytes of generated text: an upper bound of its tokens when the upstream reports no usage."""
    total = 0
    choices = obj.get("choices") if isinstance(obj, dict) else None
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content.encode())
    return total


class LlmEndpoints:
    def __init__(self) -> None:
        self._background: set[asyncio.Task[Any]] = set()

    async def _admit(
        self, request: Request, parsed: ParsedRequest, route: str
    ) -> tuple[Container, Ticket, dict[str, str]]:
        container = _container(request)
        principal = await container.authenticator.principal(request)
        deployment = container.router.pick(parsed.model)
        if deployment is None:
            raise ApiError(404, f"model {parsed.model!r} is not configured on this gateway", "not_found_error", "model")
        if not principal.key.allows_model(parsed.model):
            raise ApiError(403, f"this key may not use model {parsed.model!r}", "permission_error", "model")
        call = LlmCall(
            request_id=uuid.uuid4().hex,
            route=route,
            model=parsed.model,
            deployment=deployment,
            input_tokens_bound=len(parsed.body),
            requested_max_tokens=parsed.requested_max_tokens,
            n=parsed.n,
            customer_id=parsed.customer_id,
            client_tags=parsed.client_tags,
        )
        outcome = await container.charger.admit(principal.key, call)
        if isinstance(outcome, Refusal):
            raise _RefusedError(refusal_response(outcome))
        if isinstance(outcome, EntityBlocked):
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

    async def json_call(self, request: Request, route: str, path: str) -> Response:
        try:
            parsed = await parse_llm_request(request)
            container, ticket, headers = await self._admit(request, parsed, route)
        except _RefusedError as refused:
            return refused.response
        deployment = ticket.call.deployment
        body = upstream_body(parsed, deployment.upstream_model, ticket.max_tokens_to_send, inject_usage=False)
        settlement = self._settlement(container.charger, ticket)
        try:
            try:
                reply = await container.upstream.send(deployment, path, body)
            except UpstreamError as exc:
                await settlement.run(None, RequestStatus.ERROR)
                return _json(orjson.dumps(exc.to_openai_error()), exc.status_code, headers)
            if not reply.is_success:
                await settlement.run(None, RequestStatus.ERROR)
                return _json(openai_error_body(reply), reply.status, headers)
            try:
                obj = orjson.loads(reply.body)
            except orjson.JSONDecodeError:
                obj = {}
            usage = usage_from_response(obj) if isinstance(obj, dict) else None
            if usage is None:
                usage = Usage(prompt_tokens=ticket.call.input_tokens_bound, completion_tokens=_output_bytes(obj))
            record = await settlement.run(usage, RequestStatus.SUCCESS)
            headers["x-ledgergate-cost-nanos"] = str(record.cost_nanos)
            return Response(reply.body, 200, headers=headers, media_type=reply.content_type or "application/json")
        finally:
            settlement.start(None, RequestStatus.CANCELLED)  # no-op when already settled

    async def stream_call(self, request: Request, route: str, path: str) -> Response:
        try:
            parsed = await parse_llm_request(request)
            if not parsed.stream:
                return await self.json_call(request, route, path)
            container, ticket, headers = await self._admit(request, parsed, route)
        except _RefusedError as refused:
            return refused.response
        deployment = ticket.call.deployment
        body = upstream_body(parsed, deployment.upstream_model, ticket.max_tokens_to_send, inject_usage=True)
        settlement = self._settlement(container.charger, ticket)
        try:
            upstream = await container.upstream.stream(deployment, path, body)
        except UpstreamError as exc:
            await settlement.run(None, RequestStatus.ERROR)
            return _json(orjson.dumps(exc.to_openai_error()), exc.status_code, headers)
        except BaseException:
            settlement.start(None, RequestStatus.CANCELLED)
            raise
        tracker = StreamTracker(strip_usage_chunk=not parsed.client_wants_usage)

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
                    yield b"data: " + orjson.dumps(exc.to_openai_error()) + b"\n\n"
                    return
                tail = tracker.finish()
                if tail:
                    yield tail
                # The charge is durable before the client sees the end of the stream.
                await settlement.run(_stream_usage(ticket, tracker), RequestStatus.SUCCESS)
                yield DONE_EVENT
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
        return await endpoints.stream_call(request, "chat.completions", "/chat/completions")

    async def embeddings(request: Request) -> Response:
        return await endpoints.json_call(request, "embeddings", "/embeddings")

    return [
        *_route("/chat/completions", chat, ["POST"]),
        *_route("/embeddings", embeddings, ["POST"]),
        *_route("/models", endpoints.models, ["GET"]),
    ]


__all__ = ["error_response", "llm_routes"]
