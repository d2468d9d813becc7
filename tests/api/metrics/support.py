"""A gateway with ``general_settings.metrics_*`` set, and a scrape of its ``/metrics`` parsed with prometheus-client."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ledgergate.config import load_config
from tests.support.gateway import FLAT_MODEL, MASTER_KEY, GatewayServer
from tests.support.timing import HTTP_TIMEOUT_S

NANOS_PER_USD = 1_000_000_000


class MetricsGateway(GatewayServer):
    """``GatewayServer`` plus extra ``general_settings`` (``metrics_labels``, ``metrics_top_n``, ...)."""

    def __init__(self, workdir: Path, upstream_base_url: str, **settings: Any) -> None:
        super().__init__(workdir, upstream_base_url)
        document = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        document["general_settings"].update(settings)
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        self.config = load_config(self.config_path, environ={})


@dataclass(frozen=True)
class Scrape:
    """One ``/metrics`` answer: every sample, and the raw text (to check what it must never contain)."""

    samples: tuple[Sample, ...]
    text: str

    def series(self, name: str, **labels: str) -> list[Sample]:
        """The samples of ``name`` whose labels include ``labels``."""
        return [
            sample
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the matching samples (0 when there is none: a counter not bumped yet)."""
        return sum(sample.value for sample in self.series(name, **labels))


def client(gateway: GatewayServer, secret: str | None = MASTER_KEY) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    return httpx.AsyncClient(base_url=gateway.base_url, headers=headers, timeout=HTTP_TIMEOUT_S)


async def scrape(gateway: GatewayServer, secret: str | None = MASTER_KEY) -> Scrape:
    async with client(gateway, secret) as caller:
        response = await caller.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = tuple(sample for family in text_string_to_metric_families(response.text) for sample in family.samples)
    return Scrape(samples, response.text)


async def new_key(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    fields.setdefault("key_alias", f"metrics-{uuid.uuid4().hex[:10]}")
    response = await admin.post("/key/generate", json=fields)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def new_team(admin: httpx.AsyncClient, **fields: Any) -> str:
    team_id = f"team-{uuid.uuid4().hex[:10]}"
    response = await admin.post("/team/new", json={"team_id": team_id, **fields})
    assert response.status_code == 200, response.text
    return team_id


async def chat(
    gateway: GatewayServer, secret: str, *, model: str = FLAT_MODEL, max_tokens: int = 4, **body: Any
) -> httpx.Response:
    async with client(gateway, secret) as caller:
        return await caller.post(
            "/v1/chat/completions",
            json={"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}], **body},
        )
