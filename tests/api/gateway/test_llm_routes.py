"""The OpenAI-compatible LLM routes through the official SDK: replies, streaming usage, exact spend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from tests.api.helpers import (
    bearer_client,
    chat_body,
    key_info,
    marker,
    new_key,
    spend_logs,
    upstream_requests,
    usd,
)
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import (
    CHAT_INPUT_NANOS_PER_TOKEN,
    CHAT_MODEL,
    CHAT_OUTPUT_NANOS_PER_TOKEN,
    EMBEDDING_INPUT_NANOS_PER_TOKEN,
    EMBEDDING_MODEL,
    GatewayServer,
)


def _chat_cost_nanos(prompt_tokens: int, completion_tokens: int) -> int:
    return prompt_tokens * CHAT_INPUT_NANOS_PER_TOKEN + completion_tokens * CHAT_OUTPUT_NANOS_PER_TOKEN


@pytest.fixture
async def key(admin: httpx.AsyncClient) -> dict[str, Any]:
    return await new_key(admin, max_budget=10)


@pytest.fixture
async def sdk(gateway: GatewayServer, key: dict[str, Any]) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gateway.base_url + "/v1", api_key=key["key"], max_retries=0) as client:
        yield client


async def _assert_ledger(admin: httpx.AsyncClient, key: dict[str, Any], expected_nanos: list[int]) -> None:
    """The spend log holds one row per call, each with the exact cost, and the key's spend is their sum."""
    rows = await spend_logs(admin, key["key"])
    assert sorted(row["cost_nanos"] for row in rows) == sorted(expected_nanos)
    assert all(row["spend"] == usd(row["cost_nanos"]) for row in rows)
    assert all(row["api_key"] == key["token"] and row["status"] == "success" for row in rows)
    info = await key_info(admin, key["token"])
    assert info["spend"] == usd(sum(expected_nanos))
    assert info["lifetime_spend"] == usd(sum(expected_nanos))


async def test_chat_completion_is_charged_usage_times_prices_exactly(
    admin: httpx.AsyncClient, key: dict[str, Any], sdk: openai.AsyncOpenAI, fake_upstream: FakeUpstream
) -> None:
    """Spend is the upstream's reported usage x the deployment's prices, to the nano; no float drift."""
    word = marker()
    raw = await sdk.chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": f"one two three {word}"}], max_tokens=7
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.usage is not None
    expected = _chat_cost_nanos(completion.usage.prompt_tokens, completion.usage.completion_tokens)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4 + 3, 7)
    assert raw.headers["x-ledgergate-cost-nanos"] == str(expected)
    (sent,) = upstream_requests(fake_upstream, word)
    assert sent["json"]["model"] == "gpt-4o-mini"
    assert sent["headers"]["authorization"] == "Bearer x"
    await _assert_ledger(admin, key, [expected])


async def test_chat_stream_strips_usage_chunk_the_client_did_not_ask_for(
    admin: httpx.AsyncClient, key: dict[str, Any], sdk: openai.AsyncOpenAI, fake_upstream: FakeUpstream
) -> None:
    """The gateway asks the upstream for usage to charge the stream, but a client that did not ask never sees
    the usage-only chunk (it breaks clients that expect every chunk to have a choice)."""
    word = marker()
    stream = await sdk.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": f"a b {word}"}], max_tokens=5, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert chunks and all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "This is a mock response."
    (sent,) = upstream_requests(fake_upstream, word)
    assert sent["json"]["stream_options"]["include_usage"] is True
    await _assert_ledger(admin, key, [_chat_cost_nanos(3 + 3, 5)])


async def test_chat_stream_forwards_usage_chunk_when_the_client_asked(
    admin: httpx.AsyncClient, key: dict[str, Any], sdk: openai.AsyncOpenAI, fake_upstream: FakeUpstream
) -> None:
    """A client that set ``stream_options.include_usage`` gets the final usage chunk, and it is what was charged."""
    word = marker()
    stream = await sdk.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": f"a b c d {word}"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    assert all(chunk.usage is None for chunk in chunks[:-1])
    (sent,) = upstream_requests(fake_upstream, word)
    assert sent["json"]["stream_options"]["include_usage"] is True
    await _assert_ledger(admin, key, [_chat_cost_nanos(final.usage.prompt_tokens, final.usage.completion_tokens)])


async def test_embeddings_and_models_work_and_embeddings_are_charged(
    admin: httpx.AsyncClient, key: dict[str, Any], sdk: openai.AsyncOpenAI
) -> None:
    """/v1/embeddings goes through the same admission and charge path; /v1/models lists the routed models."""
    embedding = await sdk.embeddings.create(model=EMBEDDING_MODEL, input="four words in here")
    assert len(embedding.data) == 1 and embedding.data[0].embedding
    assert embedding.usage.prompt_tokens == 4
    models = await sdk.models.list()
    ids = [model.id async for model in models]
    assert CHAT_MODEL in ids and EMBEDDING_MODEL in ids
    await _assert_ledger(admin, key, [4 * EMBEDDING_INPUT_NANOS_PER_TOKEN])


async def test_llm_paths_without_v1_prefix_behave_the_same(
    gateway: GatewayServer, admin: httpx.AsyncClient, key: dict[str, Any]
) -> None:
    """LiteLLM serves every LLM route with and without /v1; clients configured either way must work."""
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key["key"], max_retries=0) as bare:
        completion = await bare.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=2
        )
        stream = await bare.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=3, stream=True
        )
        streamed = [chunk async for chunk in stream]
        embedding = await bare.embeddings.create(model=EMBEDDING_MODEL, input="two words")
        ids = [model.id async for model in await bare.models.list()]
    assert completion.usage is not None and completion.usage.completion_tokens == 2
    assert streamed and all(chunk.choices for chunk in streamed)
    assert embedding.usage.prompt_tokens == 2
    assert CHAT_MODEL in ids
    expected = [_chat_cost_nanos(1 + 3, 2), _chat_cost_nanos(1 + 3, 3), 2 * EMBEDDING_INPUT_NANOS_PER_TOKEN]
    await _assert_ledger(admin, key, expected)


async def test_llm_request_errors_are_openai_shaped_4xx(gateway: GatewayServer, key: dict[str, Any]) -> None:
    """Malformed LLM requests are the client's error: 400/404 with the OpenAI error body, never a 5xx."""
    async with bearer_client(gateway, key["key"]) as client:
        not_json = await client.post("/v1/chat/completions", content=b"{", headers={"content-type": "application/json"})
        no_model = await client.post("/v1/chat/completions", json={"messages": []})
        unknown = await client.post("/v1/chat/completions", json=chat_body("x", "no-such-model"))
        bad_max = await client.post("/v1/chat/completions", json=chat_body("x", CHAT_MODEL, max_tokens=True))
        array = await client.post("/v1/chat/completions", json=[1])
    assert [r.status_code for r in (not_json, no_model, unknown, bad_max, array)] == [400, 400, 404, 400, 400]
    for response in (not_json, no_model, unknown, bad_max, array):
        assert set(response.json()["error"]) >= {"message", "type", "param", "code"}


async def test_llm_request_with_unstorable_customer_or_tag_is_a_400(
    gateway: GatewayServer, key: dict[str, Any]
) -> None:
    """A customer id or client tag the ledger could not store is refused up front, never a failed ledger write
    that would serve a response without a record."""
    async with bearer_client(gateway, key["key"]) as client:
        long_user = await client.post("/v1/chat/completions", json=chat_body("x", CHAT_MODEL, user="u" * 256))
        nul_user = await client.post("/v1/chat/completions", json=chat_body("x", CHAT_MODEL, user="a\x00b"))
        long_tag = await client.post(
            "/v1/chat/completions", json=chat_body("x", CHAT_MODEL, metadata={"tags": ["t" * 300]})
        )
    assert [r.status_code for r in (long_user, nul_user, long_tag)] == [400, 400, 400]
    assert long_user.json()["error"]["param"] == "user"
    assert long_tag.json()["error"]["param"] == "metadata.tags"
