"""The LLM routes (hot path): ASGI in, the charge flow (``services/charge_flow.py``), ASGI out.

They run as raw ASGI handlers in front of FastAPI (``ledgergate/app.py``): no routing table walk, middleware, request
object, dependency injection or pydantic on the request path. Every route kind runs the same flow; its ``Dialect``
(``api/dialects.py``) says how its requests are read and sent, its ``ReplyReading`` (a port, given by ``app.py``)
how its replies and streams are read.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from ledgergate.api.asgi_io import HttpRequest, read_request, send_body, send_stream
from ledgergate.api.dialects import ANTHROPIC_MESSAGES, CHAT_COMPLETIONS, EMBEDDINGS, RESPONSES, Dialect
from ledgergate.api.errors import error_response, exception_response
from ledgergate.api.llm_request import ParsedRequest, upstream_body
from ledgergate.api.refusals import refused_response
from ledgergate.deployments import Deployment
from ledgergate.domain.ports import ReplyReading
from ledgergate.services.charge_flow import ChargeFlow, FlowRequest, RequestRefused, Streaming
from ledgergate.services.request_bounds import request_input_bound
from ledgergate.services.request_charging import Ticket

_Handler = Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]


class LlmEndpoints:
    def __init__(self, flow: Callable[[], ChargeFlow], readings: Mapping[str, ReplyReading]) -> None:
        self._flow = flow
        self._readings = readings

    def handler(self, dialect: Dialect, *, streams: bool) -> _Handler:
        reading = self._readings.get(dialect.route)
        if reading is None:  # a wiring mistake: fail when the app is built, not on the route's first request
            raise ValueError(f"no ReplyReading for the LLM route {dialect.route!r}")

        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            await self._serve(scope, receive, send, dialect, reading, streams)

        return handle

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, dialect: Dialect, reading: ReplyReading, streams: bool
    ) -> None:
        request = await read_request(scope, receive)
        if request is None:
            return  # the client left before its request was complete: nothing was admitted
        flow = self._flow()
        try:
            parsed = dialect.parse(request)
            streaming = streams and parsed.stream
            flow_request = _flow_request(dialect, reading, request, parsed, streaming=streaming)
            outcome = await (flow.stream if streaming else flow.reply)(request.headers, flow_request)
            headers = _ticket_headers(outcome.ticket)
            if not isinstance(outcome, Streaming):
                if outcome.cost_nanos is not None:
                    headers["x-ledgergate-cost-nanos"] = str(outcome.cost_nanos)
                await send_body(send, outcome.status, outcome.body, headers, outcome.content_type.encode("latin-1"))
                return
        except RequestRefused as refused:
            await refused_response(refused.refusal, refused.now_s)(scope, receive, send)
            return
        except Exception as exc:
            await exception_response(exc)(scope, receive, send)
            return
        # Past the status line a failure cannot become an error response: the stream ends without its closing event.
        try:
            await send_stream(receive, send, outcome.events, headers)
        finally:
            outcome.abandon()  # settles a stream the client left before its first byte

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive)
        if request is None:
            return
        try:
            names = await self._flow().visible_models(request.headers)
        except Exception as exc:
            await exception_response(exc)(scope, receive, send)
            return
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "ledgergate"} for name in names]
        await send_body(send, 200, orjson.dumps({"object": "list", "data": data}), {})


def _ticket_headers(ticket: Ticket) -> dict[str, str]:
    headers = {"x-ledgergate-request-id": ticket.call.request_id}
    if ticket.output_cap_clamped:
        headers["x-ledgergate-max-tokens-clamped"] = str(ticket.max_tokens_to_send)
    return headers


def _flow_request(
    dialect: Dialect, reading: ReplyReading, request: HttpRequest, parsed: ParsedRequest, *, streaming: bool
) -> FlowRequest:
    """What the charge flow needs of this request and of its route kind."""
    inject_usage = streaming and dialect.inject_usage

    def body_for(deployment: Deployment, max_tokens_to_send: int | None) -> bytes:
        cap_field = dialect.cap_field(deployment) if dialect.cap_field is not None else None
        return upstream_body(parsed, deployment.upstream_model, max_tokens_to_send, inject_usage, cap_field)

    protocol_headers = dialect.protocol_headers
    return FlowRequest(
        route=dialect.route,
        path=dialect.path,
        model=parsed.model,
        input_tokens_bound=lambda deployment: request_input_bound(parsed.body, parsed.payload, deployment),
        requested_max_tokens=parsed.requested_max_tokens,
        n=parsed.n,
        best_of=parsed.best_of,
        produces_output=dialect.cap_field is not None,
        customer_id=parsed.customer_id,
        client_tags=parsed.client_tags,
        body_for=body_for,
        reply_usage=reading.reply_usage,
        output_bytes=reading.output_bytes,
        stream_reader=lambda: reading.stream_reader(parsed.client_wants_usage),
        unsupported=dialect.unsupported,
        protocol_headers=(lambda deployment: protocol_headers(request, deployment)) if protocol_headers else None,
    )


class LlmRoutes:
    """Path -> (method, handler) for the LLM API, with and without the ``/v1`` prefix. ``readings``: each route
    kind's ``ReplyReading`` by its ledger route (``upstream/reply_readings.py`` ``REPLY_READINGS``)."""

    def __init__(self, flow: Callable[[], ChargeFlow], readings: Mapping[str, ReplyReading]) -> None:
        endpoints = LlmEndpoints(flow, readings)
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
