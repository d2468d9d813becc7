"""Issue 12 part 4: request body size limits. Bodies over ``general_settings.max_request_body_bytes`` (admin API) or
``max_llm_request_body_bytes`` (LLM routes) are a 413 with the JSON error body, decided from ``Content-Length``
before the body is read, or while a chunked body arrives: the gateway never buffers more than the limit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from ledgergate.config import (
    DEFAULT_MAX_LLM_REQUEST_BODY_BYTES,
    DEFAULT_MAX_REQUEST_BODY_BYTES,
    ConfigError,
    load_config,
)
from tests.api.helpers import (
    admin_client,
    assert_error_body,
    bearer_client,
    chat_body,
    marker,
    new_key,
    upstream_requests,
)
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import FLAT_MODEL, MASTER_KEY, GatewayServer

ADMIN_LIMIT_BYTES = 4096
LLM_LIMIT_BYTES = 16384


class LimitedGateway(GatewayServer):
    """The test gateway with small body limits."""

    def __init__(self, workdir: Path, upstream_base_url: str) -> None:
        super().__init__(workdir, upstream_base_url)
        document = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        document["general_settings"].update(
            max_request_body_bytes=ADMIN_LIMIT_BYTES, max_llm_request_body_bytes=LLM_LIMIT_BYTES
        )
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        self.config = load_config(self.config_path, environ={})


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[LimitedGateway]:
    with LimitedGateway(tmp_path_factory.mktemp("limited"), fake_upstream.base_url) as server:
        yield server


@pytest.fixture
async def limited_admin(limited: LimitedGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(limited) as client:
        yield client


async def _chunks(payload: bytes, size: int = 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


async def test_admin_body_over_the_limit_is_a_413_and_creates_nothing(limited_admin: httpx.AsyncClient) -> None:
    """Regression (issue 12: no request-size limit; 20 MB of metadata per key). A declared Content-Length over the
    admin limit is refused with the JSON error body, and nothing is written."""
    alias = f"big-{uuid.uuid4().hex[:8]}"
    response = await limited_admin.post("/key/generate", json={"key_alias": alias, "metadata": {"x": "y" * 8000}})
    error = assert_error_body(response, 413, "request_too_large")
    assert error["param"] == "body" and str(ADMIN_LIMIT_BYTES) in error["message"]
    listed = await limited_admin.get("/key/list", params={"key_alias": alias})
    assert listed.json()["keys"] == []
    small = await limited_admin.post("/key/generate", json={"key_alias": alias, "metadata": {"x": "y" * 1000}})
    assert small.status_code == 200, small.text


async def test_chunked_admin_body_is_counted_as_it_arrives(limited_admin: httpx.AsyncClient) -> None:
    """A body without Content-Length (chunked) cannot slip past the limit."""
    payload = orjson.dumps({"key_alias": "chunked", "metadata": {"x": "y" * 8000}})
    response = await limited_admin.post(
        "/key/generate", content=_chunks(payload), headers={"content-type": "application/json"}
    )
    assert_error_body(response, 413, "request_too_large")


async def test_llm_body_over_the_limit_is_a_413_and_is_not_forwarded(
    limited: LimitedGateway, limited_admin: httpx.AsyncClient, fake_upstream: FakeUpstream
) -> None:
    """Regression (issue 12: 50 MB LLM bodies were forwarded). Over max_llm_request_body_bytes: 413, declared or
    chunked, and the upstream sees nothing; a body under it is served."""
    key = await new_key(limited_admin, max_budget=1)
    word = marker()
    big = chat_body(f"{word} " + "z" * LLM_LIMIT_BYTES, FLAT_MODEL, max_tokens=1)
    async with bearer_client(limited, key["key"]) as client:
        declared = await client.post("/v1/chat/completions", json=big)
        chunked = await client.post(
            "/v1/chat/completions", content=_chunks(orjson.dumps(big)), headers={"content-type": "application/json"}
        )
        served = await client.post("/v1/chat/completions", json=chat_body(word, FLAT_MODEL, max_tokens=1))
    for response in (declared, chunked):
        error = assert_error_body(response, 413, "request_too_large")
        assert str(LLM_LIMIT_BYTES) in error["message"]
    assert served.status_code == 200, served.text
    assert len(upstream_requests(fake_upstream, word)) == 1  # only the small one


async def _status_line(port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a request head and some body bytes, never finishing the body; return the status line received."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        for part in body_parts:
            writer.write(part)
            await writer.drain()
        return await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()


@pytest.mark.parametrize("path", ["/key/generate", "/v1/chat/completions"])
async def test_endless_chunked_body_is_refused_without_waiting_for_its_end(limited: LimitedGateway, path: str) -> None:
    """An attacker streaming a body forever gets a 413 as soon as the limit is passed, not a buffered gigabyte."""
    head = (
        f"POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER_KEY}\r\n"
        "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"400\r\n" + b"a" * 1024 + b"\r\n"
    status = await _status_line(limited.port, head, [chunk] * (LLM_LIMIT_BYTES // 1024 + 2))
    assert status.startswith(b"HTTP/1.1 413"), status


async def test_huge_declared_length_is_refused_before_the_body_is_sent(limited: LimitedGateway) -> None:
    """A Content-Length of 50 MB is answered at once from the head alone."""
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER_KEY}\r\n"
        f"content-type: application/json\r\ncontent-length: {50 * 1024 * 1024}\r\n\r\n"
    ).encode()
    assert (await _status_line(limited.port, head, [])).startswith(b"HTTP/1.1 413")


def _settings(tmp_path: Path, **general: Any) -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"general_settings": general}), encoding="utf-8")
    return load_config(path, environ={}).settings


def test_body_limit_settings_default_and_refuse_bad_values(tmp_path: Path) -> None:
    """1 MiB for admin bodies, 32 MiB for LLM bodies by default; a non-positive or non-integer limit stops start-up
    naming the setting."""
    settings = _settings(tmp_path)
    assert settings.max_request_body_bytes == DEFAULT_MAX_REQUEST_BODY_BYTES == 1024 * 1024
    assert settings.max_llm_request_body_bytes == DEFAULT_MAX_LLM_REQUEST_BODY_BYTES == 32 * 1024 * 1024
    for name in ("max_request_body_bytes", "max_llm_request_body_bytes"):
        for bad in (0, -1, 1.5, "1MB", True):
            with pytest.raises(ConfigError, match=f"general_settings.{name}"):
                _settings(tmp_path, **{name: bad})
