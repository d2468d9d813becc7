"""Redis unreachable: the gateway fails closed. No request is forwarded without its hold, whatever budget is
left; the client gets a 503 it can retry. (Needs no service: the Redis URL points at a closed port.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import FLAT_MODEL, MAX_TOKENS, GatewayProcess, cluster_config, free_port
from tests.e2e.traffic import ADMIN_HEADERS, http_client
from tests.support.fake_upstream import FakeUpstream


@pytest.fixture
def gateway_without_redis(tmp_path: Path, fake_upstream: FakeUpstream) -> Iterator[GatewayProcess]:
    document = cluster_config(fake_upstream.base_url, "unused", "lgdown", hold_ttl_s=30)
    settings = document["general_settings"]
    settings["database_url"] = f"sqlite:///{tmp_path / 'lg.db'}"
    settings["redis_url"] = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    gateway = GatewayProcess("no-redis", tmp_path, document).start()
    try:
        yield gateway
    finally:
        gateway.stop()


async def test_redis_unavailable_llm_requests_fail_closed_with_503(
    gateway_without_redis: GatewayProcess, fake_upstream: FakeUpstream
) -> None:
    """With the counter store unreachable, LLM requests (plain and streaming) get 503 ``service_unavailable``
    and never reach the upstream: a budget is never bypassed (fail open)."""
    word = f"marker{uuid.uuid4().hex}"
    body = {"model": FLAT_MODEL, "messages": [{"role": "user", "content": word}], "max_tokens": MAX_TOKENS}
    url = f"{gateway_without_redis.base_url}/v1/chat/completions"
    async with http_client() as http:
        for stream in (False, True):
            # The master key: a virtual key cannot be created without Redis (its view reads the counters).
            response = await http.post(url, json={**body, "stream": stream}, headers=ADMIN_HEADERS)
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert error["type"] == "service_unavailable" and error["code"] == "503"
            assert response.headers["retry-after"] == "1"
        liveliness = await http.get(f"{gateway_without_redis.base_url}/health/liveliness")
        assert liveliness.status_code == 200
        # Reported for alerting, without taking the instance out of rotation (docs/deployment.md).
        readiness = await http.get(f"{gateway_without_redis.base_url}/health/readiness")
        assert readiness.status_code == 200
        assert readiness.json()["redis"].startswith("error: ")
    assert not [r for r in fake_upstream.received() if word in str(r.get("json"))]
