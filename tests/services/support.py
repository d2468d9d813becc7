"""The charge flow without HTTP: the real container on a SQLite file with in-process counters, and an upstream
that is a plain Python object (no sockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from ledgergate.container import Container
from ledgergate.deployments import Deployment
from ledgergate.domain.ledger import RequestStatus
from ledgergate.domain.ports import UpstreamFailure
from ledgergate.domain.pricing import Usage
from ledgergate.services.charge_flow import ChargeFlow, FlowRequest
from ledgergate.upstream.usage import chat_output_bytes, usage_from_response

MODEL = "flat-output"  # tests/support/gateway.py: free input, 2_000 nanos per output token, cap 64 tokens
OUTPUT_NANOS_PER_TOKEN = 2_000
DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class FunctionReply:
    status: int
    body: bytes
    content_type: str = "application/json"

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def error_body(self) -> bytes:
        return self.body


class FunctionStream:
    def __init__(self, chunks: list[bytes], failure: UpstreamFailure | None, gate: asyncio.Event | None) -> None:
        self._chunks = chunks
        self._failure = failure
        self._gate = gate
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        if self._gate is not None:
            await self._gate.wait()
        if self._failure is not None:
            raise self._failure

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FunctionUpstream:
    """The ``Upstream`` port as plain functions of the body sent: what it answers, streams, or raises."""

    answer: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]] = lambda body: (200, completion(3))
    stream_chunks: Callable[[dict[str, Any]], list[bytes]] = lambda body: sse_completion(3)
    failure: UpstreamFailure | None = None  # raised by send / stream (or after the chunks, ``fail_mid_stream``)
    fail_mid_stream: bool = False
    gate: asyncio.Event | None = None  # the reply (or the stream's end) waits for it
    sent: list[dict[str, Any]] = field(default_factory=list)
    streams: list[FunctionStream] = field(default_factory=list)

    async def send(
        self, deployment: Deployment, path: str, body: bytes, protocol_headers: Mapping[str, str] | None = None
    ) -> FunctionReply:
        self.sent.append(json.loads(body))
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        status, reply = self.answer(self.sent[-1])
        return FunctionReply(status, json.dumps(reply).encode())

    async def stream(
        self, deployment: Deployment, path: str, body: bytes, protocol_headers: Mapping[str, str] | None = None
    ) -> FunctionStream:
        self.sent.append(json.loads(body))
        if self.failure is not None and not self.fail_mid_stream:
            raise self.failure
        opened = FunctionStream(self.stream_chunks(self.sent[-1]), self.failure, self.gate)
        self.streams.append(opened)
        return opened


def completion(output_tokens: int, *, usage: bool = True) -> dict[str, Any]:
    reply: dict[str, Any] = {"choices": [{"message": {"role": "assistant", "content": "x" * output_tokens}}]}
    if usage:
        reply["usage"] = {"prompt_tokens": 5, "completion_tokens": output_tokens, "total_tokens": 5 + output_tokens}
    return reply


def sse_completion(output_tokens: int, *, usage: bool = True) -> list[bytes]:
    chunks = [b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n' for _ in range(output_tokens)]
    if usage:
        numbers = {"prompt_tokens": 5, "completion_tokens": output_tokens, "total_tokens": 5 + output_tokens}
        chunks.append(b"data: " + json.dumps({"choices": [], "usage": numbers}).encode() + b"\n\n")
    return [*chunks, DONE]


class LineReader:
    """A ``StreamReader`` for ``sse_completion`` streams: forwards each event, keeps the usage, holds back [DONE]."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.content_bytes = 0

    def feed(self, chunk: bytes) -> bytes:
        if chunk == DONE:
            return b""
        data = json.loads(chunk.removeprefix(b"data: "))
        if data.get("usage"):
            self.usage = Usage(data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"])
        else:
            delta = data["choices"][0]["delta"] if data.get("choices") else {}
            self.content_bytes += len(str(delta.get("content") or "").encode())
        return chunk

    def finish(self) -> bytes:
        return b""

    def ending(self) -> tuple[bytes, RequestStatus]:
        return DONE, RequestStatus.SUCCESS

    def error_event(self, failure: UpstreamFailure) -> bytes:
        return b"data: " + json.dumps(failure.to_openai_error()).encode() + b"\n\n"


def chat_request(max_tokens: int | None = 4, *, model: str = MODEL, body: bytes | None = None) -> FlowRequest:
    payload: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    raw = body if body is not None else json.dumps(payload).encode()

    def body_for(deployment: Deployment, max_tokens_to_send: int | None) -> bytes:
        sent = {**payload, "model": deployment.upstream_model}
        if max_tokens_to_send is not None:
            sent["max_tokens"] = max_tokens_to_send
        return json.dumps(sent).encode()

    return FlowRequest(
        route="chat.completions",
        path="/chat/completions",
        model=model,
        input_tokens_bound=lambda deployment: len(raw),
        requested_max_tokens=max_tokens,
        n=1,
        best_of=None,
        produces_output=True,
        customer_id=None,
        client_tags=(),
        body_for=body_for,
        reply_usage=usage_from_response,
        output_bytes=chat_output_bytes,
        stream_reader=LineReader,
    )


def flow_over(container: Container, upstream: FunctionUpstream) -> ChargeFlow:
    """The container's own collaborators, with the function upstream in place of the HTTP client."""
    return ChargeFlow(
        authenticate=container.authenticator.principal_from_headers,
        router=container.router,
        charger=container.charger,
        upstream=upstream,
        metrics=container.metrics,
        clock=container.clock,
    )


async def ledger_rows(container: Container) -> list[dict[str, Any]]:
    async with container.engine.connect() as connection:
        query = text("SELECT request_id, status, cost_nanos, prompt_tokens, completion_tokens FROM spend_records")
        rows = (await connection.execute(query)).mappings().all()
    return [dict(row) for row in rows]


async def settled(container: Container) -> None:
    """Waits until no hold is left (settlements finish in tasks of their own)."""
    for _ in range(200):
        if await container.counters.held_count() == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("a hold was never settled or released")


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}
