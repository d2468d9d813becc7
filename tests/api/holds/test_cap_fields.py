"""Which output cap reaches the upstream: every cap field counts, the deployment's cap bounds them, ``n`` and
``best_of`` are bounded by ``max_n``; an upstream that still writes more is charged as reported and counted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error_body, bearer_client, marker, new_key
from tests.api.holds.support import (
    DEPLOYMENT_CAP_TOKENS,
    EMBEDDING,
    GREEDY_CHAT,
    GREEDY_REASONING,
    GREEDY_REASONING_ALIAS,
    MAX_COST_NANOS,
    MISBEHAVING,
    MISBEHAVING_TOKENS,
    OUTPUT_NANOS_PER_TOKEN,
    budget_usd,
    charged,
)
from tests.api.metrics.support import scrape
from tests.api.routes.helpers import sent_with
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import GatewayServer


def _chat(word: str, model: str = GREEDY_CHAT, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": f"hello {word}"}], **fields}


async def test_client_cap_fields_above_the_deployment_cap_are_all_clamped_and_the_largest_sizes_the_hold(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """Bug: max_completion_tokens: 1 + max_tokens: 5000 was held for 1 token and forwarded with 5000. Now the
    largest counts, is clamped to the deployment's cap, and no field sent upstream allows more."""
    key = await new_key(admin, max_budget=1, budget_duration="1d")
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post(
            "/v1/chat/completions", json=_chat(word, max_completion_tokens=1, max_tokens=5000, max_output_tokens=9)
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-ledgergate-max-tokens-clamped"] == str(DEPLOYMENT_CAP_TOKENS)
    (sent,) = sent_with(fake_upstream, word)
    assert (sent["json"]["max_tokens"], sent["json"]["max_completion_tokens"], sent["json"]["max_output_tokens"]) == (
        DEPLOYMENT_CAP_TOKENS,
        1,
        9,
    )
    spend_nanos, _ = await charged(admin, key)
    assert spend_nanos == MAX_COST_NANOS  # the greedy upstream honoured the largest field it got: 64


async def test_a_client_cap_within_the_deployment_cap_is_forwarded_unchanged(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    key = await new_key(admin, max_budget=1, budget_duration="1d")
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=_chat(word, max_tokens=7))
    assert response.status_code == 200, response.text
    assert "x-ledgergate-max-tokens-clamped" not in response.headers
    (sent,) = sent_with(fake_upstream, word)
    assert sent["json"]["max_tokens"] == 7 and "max_completion_tokens" not in sent["json"]
    assert (await charged(admin, key))[0] == 7 * OUTPUT_NANOS_PER_TOKEN


@pytest.mark.parametrize("model", [GREEDY_REASONING, GREEDY_REASONING_ALIAS])
async def test_uncapped_request_to_a_reasoning_model_is_sent_max_completion_tokens(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream, model: str
) -> None:
    """OpenAI's o-series refuse max_tokens: the held cap goes out as max_completion_tokens for them, also behind
    an alias whose model_info.base_model names one."""
    key = await new_key(admin, max_budget=1, budget_duration="1d")
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=_chat(word, model))
    assert response.status_code == 200, response.text
    (sent,) = sent_with(fake_upstream, word)
    assert sent["json"]["max_completion_tokens"] == DEPLOYMENT_CAP_TOKENS and "max_tokens" not in sent["json"]


async def test_n_multiplies_the_bounded_cap_and_spend_stays_within_one_request_of_the_budget(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """Bug: n multiplied a client cap that the deployment's cap did not bound. Now n x the bounded cap is held,
    and a greedy upstream writing the cap for every choice stays within it."""
    budget_nanos = MAX_COST_NANOS * 8 + 1
    key = await new_key(admin, max_budget=budget_usd(budget_nanos), budget_duration="1d")
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        first = await client.post("/v1/chat/completions", json=_chat(word, n=8, max_tokens=100_000))
        second = await client.post("/v1/chat/completions", json=_chat(word, n=8))
        third = await client.post("/v1/chat/completions", json=_chat(word, n=1))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert all(sent["json"]["max_tokens"] == DEPLOYMENT_CAP_TOKENS for sent in sent_with(fake_upstream, word))
    spend_nanos, _ = await charged(admin, key)
    assert spend_nanos == 16 * MAX_COST_NANOS <= budget_nanos + 8 * MAX_COST_NANOS


@pytest.mark.parametrize("field", ["n", "best_of"])
async def test_n_or_best_of_above_max_n_is_a_400_naming_it_and_nothing_is_forwarded_or_held(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream, field: str
) -> None:
    key = await new_key(admin, max_budget=1, budget_duration="1d")
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=_chat(word, **{field: 9}))
        allowed = await client.post("/v1/chat/completions", json=_chat(word, max_tokens=1, **{field: 8}))
    error = assert_error_body(response, 400, "invalid_request_error")
    assert error["param"] == field and "at most 8" in error["message"]
    assert allowed.status_code == 200, allowed.text
    assert len(sent_with(fake_upstream, word)) == 1
    _, rows = await charged(admin, key)
    assert len(rows) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", "5"), ("max_completion_tokens", 0), ("max_output_tokens", True), ("best_of", -1)],
)
async def test_malformed_cap_fields_are_a_400_naming_the_field(
    gateway: GatewayServer, admin: httpx.AsyncClient, field: str, value: object
) -> None:
    key = await new_key(admin, max_budget=1, budget_duration="1d")
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=_chat(marker(), **{field: value}))
    error = assert_error_body(response, 400, "invalid_request_error")
    assert error["param"] == field and "positive integer" in error["message"]


async def test_embeddings_are_sent_no_output_cap(
    gateway: GatewayServer, admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    key = await new_key(admin, max_budget=1, budget_duration="1d")
    word = marker()
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/embeddings", json={"model": EMBEDDING, "input": f"hello {word}"})
    assert response.status_code == 200, response.text
    (sent,) = sent_with(fake_upstream, word)
    assert not {"max_tokens", "max_completion_tokens", "max_output_tokens"} & set(sent["json"])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_upstream_that_ignores_the_cap_is_charged_what_it_reports_and_counted_as_an_over_hold(
    gateway: GatewayServer, admin: httpx.AsyncClient, stream: bool
) -> None:
    """Defence in depth: a misbehaving provider writes 500 tokens against a cap of 64. The ledger charges the 500
    (the truth) and ledgergate_over_holds_total counts the event."""
    before = (await scrape(gateway)).value("ledgergate_over_holds_total", model=MISBEHAVING)
    key = await new_key(admin, max_budget=1, budget_duration="1d")
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post("/v1/chat/completions", json=_chat(marker(), MISBEHAVING, stream=stream))
    assert response.status_code == 200, response.text
    spend_nanos, (row,) = await charged(admin, key)
    assert row["completion_tokens"] == MISBEHAVING_TOKENS
    assert spend_nanos == MISBEHAVING_TOKENS * OUTPUT_NANOS_PER_TOKEN > MAX_COST_NANOS
    after = (await scrape(gateway)).value("ledgergate_over_holds_total", model=MISBEHAVING)
    assert after == before + 1
