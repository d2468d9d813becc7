"""Helpers of the dashboard tests: a logged-in HTTP client, form tokens, chromium, keys, LLM traffic."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway import FLAT_MODEL, MASTER_KEY, GatewayServer
from tests.support.timing import HTTP_TIMEOUT_S

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_ENV = "LEDGERGATE_REQUIRE_SERVICES"
# Set to 1 to (re)write docs/screenshots/*.png from the screenshot test.
UPDATE_SCREENSHOTS_ENV = "LEDGERGATE_UPDATE_SCREENSHOTS"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# FLAT_MODEL with max_tokens=10: the fake upstream generates exactly 10 tokens at 2000 nanos each.
REQUEST_COST_NANOS = 20_000
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def require_chromium() -> Path:
    """Debian's chromium (``.ci/run`` installs it); skip without it unless the services are required."""
    if not CHROMIUM.exists():
        reason = f"Debian chromium not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, but {REQUIRE_ENV}=1 requires it")
        pytest.skip(f"{reason}; set {REQUIRE_ENV}=1 to fail instead of skipping")
    return CHROMIUM


def admin_api(gateway: GatewayServer) -> httpx.Client:
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    return httpx.Client(base_url=gateway.base_url, headers=headers, timeout=HTTP_TIMEOUT_S)


def api_post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@contextmanager
def dashboard_session(gateway: GatewayServer, secret: str) -> Iterator[httpx.Client]:
    """An HTTP client logged in to the dashboard with ``secret`` (the session cookie in its jar)."""
    with httpx.Client(base_url=gateway.base_url, timeout=HTTP_TIMEOUT_S) as client:
        response = log_in(client, secret)
        assert response.status_code == 303, response.text
        yield client


def log_in(client: httpx.Client, secret: str, next_path: str = "/ui/") -> httpx.Response:
    """Post the log-in form as a browser does: with the token (and its cookie) the log-in page hands out."""
    token = csrf_token(client, "/ui/login")
    return client.post("/ui/login", data={"csrf_token": token, "key": secret, "next": next_path})


def csrf_token(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found is not None, "no csrf_token on the page"
    return found.group(1)


def chat(gateway: GatewayServer, secret: str) -> httpx.Response:
    """One LLM request through the gateway to the fake upstream, costing REQUEST_COST_NANOS if admitted."""
    body = {"model": FLAT_MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hello"}]}
    with httpx.Client(base_url=gateway.base_url, timeout=HTTP_TIMEOUT_S) as client:
        return client.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"})


def screenshot_dir(tmp_path: Path) -> Path:
    return DOCS_SCREENSHOTS if os.environ.get(UPDATE_SCREENSHOTS_ENV) == "1" else tmp_path
