"""Virtual key lifecycle over HTTP: issue, read, update, list, block, delete, expire, restrict."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from datetime import datetime

import httpx

from tests.api.helpers import assert_error_body, bearer_client, chat_body, key_info, new_key
from tests.support.gateway import CHAT_MODEL, GatewayServer


async def _chat(gateway: GatewayServer, secret: str, model: str = CHAT_MODEL) -> httpx.Response:
    async with bearer_client(gateway, secret) as client:
        return await client.post("/v1/chat/completions", json=chat_body("hello there", model, max_tokens=4))


async def test_key_generate_shows_secret_once_and_stores_only_its_hash(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """Keys are stored hashed: the secret is returned once, ``token`` is its sha256, and the DB never holds it."""
    created = await new_key(admin)
    secret, token = created["key"], created["token"]
    assert secret.startswith("sk-")
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    assert token == hashlib.sha256(secret.encode()).hexdigest()
    info = await key_info(admin, secret)
    assert "key" not in info and info["token"] == token
    files = [path for path in gateway.workdir.iterdir() if path.name.startswith(gateway.db_path.name)]
    stored = b"".join(path.read_bytes() for path in files)
    assert token.encode() in stored, "the key row is not where this test looks"
    assert secret.encode() not in stored


async def test_key_info_by_secret_and_by_token_show_the_same_key(admin: httpx.AsyncClient) -> None:
    """Admins name a key by its secret or by its hash; both resolve to the one key."""
    created = await new_key(admin, max_budget=1.5)
    by_secret = await admin.get("/key/info", params={"key": created["key"]})
    by_token = await admin.get("/key/info", params={"key": created["token"]})
    assert by_secret.status_code == by_token.status_code == 200
    assert by_secret.json()["info"] == by_token.json()["info"]
    info = by_token.json()["info"]
    assert info["token"] == created["token"]
    assert info["key_alias"] == created["key_alias"]
    assert info["max_budget"] == 1.5
    assert info["spend"] == 0


async def test_key_update_changes_fields_and_list_finds_the_key(admin: httpx.AsyncClient) -> None:
    """/key/update applies only the sent fields; /key/list returns the key's token under its alias."""
    created = await new_key(admin, tags=["a"], max_budget=2)
    response = await admin.post(
        "/key/update", json={"key": created["token"], "max_budget": 3, "budget_duration": "1d", "tags": ["b"]}
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["max_budget"] == 3
    assert updated["budget_duration"] == "1d"
    assert updated["tags"] == ["b"]
    assert updated["key_alias"] == created["key_alias"]
    info = await key_info(admin, created["key"])
    assert (info["max_budget"], info["budget_duration"], info["tags"]) == (3, "1d", ["b"])
    listed = await admin.get("/key/list", params={"key_alias": created["key_alias"]})
    assert listed.status_code == 200, listed.text
    assert listed.json()["keys"] == [created["token"]]
    full = await admin.get("/key/list", params={"key_alias": created["key_alias"], "return_full_object": "true"})
    assert [item["token"] for item in full.json()["keys"]] == [created["token"]]


async def test_key_block_refuses_with_401_and_unblock_restores(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A blocked key is refused with a 401 whose message says it is blocked; unblocking lets it in again."""
    created = await new_key(admin)
    assert (await _chat(gateway, created["key"])).status_code == 200
    blocked = await admin.post("/key/block", json={"key": created["key"]})
    assert blocked.status_code == 200 and blocked.json()["blocked"] is True
    error = assert_error_body(await _chat(gateway, created["key"]), 401, "authentication_error")
    assert "blocked" in error["message"] and created["key_alias"] in error["message"]
    unblocked = await admin.post("/key/unblock", json={"key": created["token"]})
    assert unblocked.status_code == 200 and unblocked.json()["blocked"] is False
    assert (await _chat(gateway, created["key"])).status_code == 200


async def test_key_delete_makes_the_secret_invalid(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """A deleted key authenticates nothing (no stale cache entry keeps it alive)."""
    created = await new_key(admin)
    assert (await _chat(gateway, created["key"])).status_code == 200
    deleted = await admin.post("/key/delete", json={"keys": [created["key"]]})
    assert deleted.status_code == 200 and deleted.json()["deleted_keys"] == [created["key"]]
    assert_error_body(await _chat(gateway, created["key"]), 401, "authentication_error")
    assert_error_body(await admin.get("/key/info", params={"key": created["key"]}), 404)


async def test_key_expired_is_refused_with_401(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """``duration`` sets an expiry; a key past it is refused, not silently served."""
    created = await new_key(admin, duration="1s")
    assert created["expires"] is not None
    expires_s = datetime.fromisoformat(created["expires"].replace("Z", "+00:00")).timestamp()
    await asyncio.sleep(max(0.0, expires_s - time.time()) + 0.1)  # until the expiry the gateway told, not a guess
    error = assert_error_body(await _chat(gateway, created["key"]), 401, "authentication_error")
    assert "expired" in error["message"]


async def test_key_unknown_or_missing_is_refused_with_401(gateway: GatewayServer) -> None:
    """A secret that was never issued, or no secret, gets a 401 with the OpenAI error body."""
    assert_error_body(await _chat(gateway, "sk-never-issued-0123456789"), 401, "authentication_error")
    async with httpx.AsyncClient(base_url=gateway.base_url) as anonymous:
        response = await anonymous.post("/v1/chat/completions", json=chat_body("hi", CHAT_MODEL))
    assert_error_body(response, 401, "authentication_error")


async def test_key_models_restriction_refuses_other_models_with_403(
    gateway: GatewayServer, admin: httpx.AsyncClient
) -> None:
    """A key limited to ``models: ["other"]`` may not call gpt-4o-mini, and /v1/models hides it."""
    created = await new_key(admin, models=["other"])
    error = assert_error_body(await _chat(gateway, created["key"]), 403, "permission_error")
    assert CHAT_MODEL in error["message"]
    async with bearer_client(gateway, created["key"]) as client:
        models = await client.get("/v1/models")
    assert models.status_code == 200
    assert CHAT_MODEL not in [model["id"] for model in models.json()["data"]]


async def test_key_non_admin_cannot_administer_keys(gateway: GatewayServer, admin: httpx.AsyncClient) -> None:
    """A plain virtual key is not a proxy admin: generating, updating or listing others' keys is a 403."""
    caller = await new_key(admin)
    other = await new_key(admin)
    async with bearer_client(gateway, caller["key"]) as client:
        assert_error_body(await client.post("/key/generate", json={}), 403, "permission_error")
        assert_error_body(await client.post("/key/update", json={"key": other["token"], "max_budget": 9}), 403)
        assert_error_body(await client.get("/key/info", params={"key": other["token"]}), 403)
        own = await client.get("/key/info")
    assert own.status_code == 200 and own.json()["info"]["token"] == caller["token"]
