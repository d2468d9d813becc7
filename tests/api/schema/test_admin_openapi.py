"""A schemathesis run over the admin API's OpenAPI schema: no generated request, valid or not, may get a 5xx or
a response that contradicts the schema (status, content type, body, including the error body of every 4xx).

The app runs in-process (schemathesis' ASGI transport) on a real SQLite file, seeded with entities and charged
requests so that the read endpoints return rows to check. Bounded: a few examples per operation and mode, no
shrinking, no deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ledgergate.app import create_app
from ledgergate.config import load_config
from ledgergate.container import Container, build_container
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import CHAT_MODEL, EMBEDDING_MODEL, MASTER_KEY, gateway_config

EXAMPLES_PER_OPERATION = 25
MASTER = {"authorization": f"Bearer {MASTER_KEY}"}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


async def _schema_only() -> Container:
    raise AssertionError("collecting the operations never starts the app")


def _operations() -> list[tuple[str, str, bool]]:
    """``(method, path, takes_input)`` of every operation in the schema, read at collection time."""
    paths: dict[str, dict[str, Any]] = create_app(_schema_only).openapi()["paths"]
    return [
        (method.upper(), path, bool(operation.get("parameters") or operation.get("requestBody")))
        for path, item in paths.items()
        for method, operation in item.items()
    ]


OPERATIONS = _operations()


def _ok(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _seed(client: requests.Session) -> None:
    """Entities of every kind and a few charged requests, so that info, list and spend reads have content."""
    _ok(client.post("/organization/new", json={"organization_id": "org-1", "max_budget": 10}, headers=MASTER))
    _ok(
        client.post(
            "/budget/new", json={"budget_id": "budget-1", "max_budget": 5, "budget_duration": "1d"}, headers=MASTER
        )
    )
    team = _ok(
        client.post(
            "/team/new", json={"team_id": "team-1", "organization_id": "org-1", "tags": ["tag-1"]}, headers=MASTER
        )
    )
    user = _ok(client.post("/user/new", json={"user_id": "user-1", "teams": [team["team_id"]]}, headers=MASTER))
    _ok(client.post("/customer/new", json={"user_id": "customer-1", "budget_id": "budget-1"}, headers=MASTER))
    _ok(client.post("/tag/new", json={"name": "tag-1", "max_budget": 1}, headers=MASTER))
    team_key = _ok(client.post("/key/generate", json={"team_id": "team-1", "user_id": "user-1"}, headers=MASTER))
    for secret in (user["key"], team_key["key"]):
        auth = {"authorization": f"Bearer {secret}"}
        chat = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}], "user": "customer-1"}
        _ok(client.post("/v1/chat/completions", json=chat, headers=auth))
        _ok(client.post("/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "hi"}, headers=auth))
    _ok(client.post(f"/key/{team_key['key']}/reset_spend", json={"reset_to": 0}, headers=MASTER))


@pytest.fixture(scope="module")
def admin_schema(tmp_path_factory: pytest.TempPathFactory, fake_upstream: FakeUpstream) -> Iterator[Any]:
    workdir = tmp_path_factory.mktemp("openapi")
    document = gateway_config(fake_upstream.base_url, f"sqlite+aiosqlite:///{workdir / 'lg.db'}", "standard")
    config_path = workdir / "ledgergate.yaml"
    config_path.write_text(yaml.safe_dump(document), encoding="utf-8")
    config = load_config(config_path, environ={})
    app = create_app(lambda: build_container(config))
    try:
        # Entering the client starts the app's lifespan (the container) on schemathesis' event loop thread; it
        # runs until shutdown_lifespans, so every generated request meets the same, growing database.
        with schemathesis_asgi.get_client(app) as client:
            _seed(client)
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        schemathesis_asgi.shutdown_lifespans()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path", "takes_input"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_admin_openapi_no_request_gets_a_5xx_or_an_off_schema_response(
    admin_schema: Any, method: str, path: str, takes_input: bool, mode: GenerationMode
) -> None:
    """Whatever the body, query or path (schema-valid or deliberately not), a proxy admin's request is answered
    with a declared status, content type and body shape; never a 5xx ("no input yields a 5xx")."""
    if mode is GenerationMode.NEGATIVE and not takes_input:
        pytest.skip("nothing to make invalid: the operation takes no input")
    operation = admin_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=MASTER, checks=CHECKS)

    run()
