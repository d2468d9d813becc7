"""POST /key/{key}/reset_spend (seed 000): validated, authorised, recorded, and enforced at once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error_body, bearer_client, chat_body, key_info, new_key, usd
from tests.support.gateway import FLAT_MODEL, FLAT_OUTPUT_NANOS_PER_TOKEN, GatewayServer

TOKENS = 10
COST_NANOS = TOKENS * FLAT_OUTPUT_NANOS_PER_TOKEN
MAX_BUDGET_NANOS = COST_NANOS // 2  # one request overshoots it (standard mode), so spend > max_budget


async def _chat(gateway: GatewayServer, secret: str) -> httpx.Response:
    async with bearer_client(gateway, secret) as client:
        return await client.post("/v1/chat/completions", json=chat_body("go", FLAT_MODEL, max_tokens=TOKENS))


async def _exhausted_key(gateway: GatewayServer, admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A key whose 1h window is spent past its max_budget, so it is refused."""
    key = await new_key(admin, max_budget=usd(MAX_BUDGET_NANOS), budget_duration="1h", **fields)
    assert (await _chat(gateway, key["key"])).status_code == 200
    assert (await _chat(gateway, key["key"])).status_code == 429
    return key


@pytest.mark.parametrize(
    ("reset_to", "says"),
    [
        (True, "bool"),
        (False, "bool"),
        ("0", "string"),
        (None, "number"),
        (-0.000001, ">= 0"),
        (usd(COST_NANOS + 1), "current spend"),
        (usd(MAX_BUDGET_NANOS + 1), "max_budget"),
    ],
    ids=["true", "false", "string", "null", "negative", "above-spend", "above-max-budget"],
)
async def test_key_reset_spend_rejects_invalid_reset_to_with_400(
    gateway: GatewayServer, admin: httpx.AsyncClient, reset_to: object, says: str
) -> None:
    """``reset_to`` must be a number (not a bool or string), >= 0, <= current spend and <= max_budget; anything
    else is a 400 naming ``reset_to`` and nothing changes."""
    key = await _exhausted_key(gateway, admin)
    response = await admin.post(f"/key/{key['key']}/reset_spend", json={"reset_to": reset_to})
    error = assert_error_body(response, 400, "invalid_request_error")
    assert "reset_to" in error["message"] and says in error["message"], error
    assert (await key_info(admin, key["token"]))["spend"] == usd(COST_NANOS)
    adjustments = await admin.get("/spend/adjustments", params={"entity_type": "key", "entity_id": key["token"]})
    assert adjustments.json() == []


async def test_key_reset_spend_missing_body_field_is_400(admin: httpx.AsyncClient) -> None:
    """A body without ``reset_to`` is a 400, not a 5xx."""
    key = await new_key(admin, max_budget=1)
    assert_error_body(await admin.post(f"/key/{key['token']}/reset_spend", json={}), 400)
    assert_error_body(await admin.post(f"/key/{key['token']}/reset_spend", content=b"nope"), 400)


async def test_key_reset_spend_unknown_key_is_404(admin: httpx.AsyncClient) -> None:
    """Resetting a key that does not exist names it as not found instead of creating anything."""
    response = await admin.post("/key/sk-does-not-exist-123456/reset_spend", json={"reset_to": 0})
    assert_error_body(response, 404, "not_found_error")
    response = await admin.post(f"/key/{'0' * 64}/reset_spend", json={"reset_to": 0})
    assert_error_body(response, 404, "not_found_error")


async def test_key_reset_spend_by_a_non_admin_is_403(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """A key may not forgive its own spend: only a proxy admin (or its team's admin) may reset it."""
    key = await _exhausted_key(gateway, admin)
    async with bearer_client(gateway, key["key"]) as client:
        response = await client.post(f"/key/{key['token']}/reset_spend", json={"reset_to": 0})
    assert_error_body(response, 403, "permission_error")
    assert (await key_info(admin, key["token"]))["spend"] == usd(COST_NANOS)


async def test_key_reset_spend_is_recorded_and_enforced_at_once(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A reset writes an adjustment record (previous -> new, by whom) and the very next request sees the new
    spend: the refused key is admitted again; the charges themselves stay in the ledger."""
    key = await _exhausted_key(gateway, admin)
    response = await admin.post(f"/key/{key['token']}/reset_spend", json={"reset_to": 0, "reason": "refund"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["previous_spend"] == usd(COST_NANOS)
    assert result["spend"] == 0
    assert (result["budget_duration"], result["max_budget"]) == ("1h", usd(MAX_BUDGET_NANOS))
    assert isinstance(result["reset_at"], str)
    adjustments = await admin.get("/spend/adjustments", params={"entity_type": "key", "entity_id": key["token"]})
    assert adjustments.status_code == 200, adjustments.text
    (adjustment,) = adjustments.json()
    assert (adjustment["previous_spend"], adjustment["new_spend"]) == (usd(COST_NANOS), 0)
    assert adjustment["actor"] == "master_key" and adjustment["reason"] == "refund"
    info = await key_info(admin, key["token"])
    assert info["spend"] == 0
    assert info["lifetime_spend"] == usd(COST_NANOS)
    assert (await _chat(gateway, key["key"])).status_code == 200
    assert (await key_info(admin, key["token"]))["spend"] == usd(COST_NANOS)


async def test_key_reset_spend_of_a_named_window_leaves_the_others(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """``budget_duration`` picks the window to reset; the key's other windows keep their spend."""
    key = await _exhausted_key(gateway, admin, budget_limits=[{"budget_duration": "1d", "max_budget": 1}])
    response = await admin.post(
        f"/key/{key['key']}/reset_spend", json={"reset_to": usd(COST_NANOS // 4), "budget_duration": "daily"}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["budget_duration"], response.json()["spend"]) == ("1d", usd(COST_NANOS // 4))
    info = await key_info(admin, key["token"])
    assert info["spend"] == usd(COST_NANOS)
    assert info["budget_limits"][0]["spend"] == usd(COST_NANOS // 4)
    missing = await admin.post(f"/key/{key['key']}/reset_spend", json={"reset_to": 0, "budget_duration": "1w"})
    assert_error_body(missing, 404)
