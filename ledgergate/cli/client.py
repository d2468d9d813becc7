"""A synchronous client for a running gateway's admin API, and the ``--url`` / ``--key`` options that reach it.

Every failure (an error response, an unreachable gateway) ends the command with one red line and exit code 1,
so scripts can rely on the exit status and people on the message.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import typer

from ledgergate.cli.render import fail

DEFAULT_URL = "http://127.0.0.1:4000"
URL_ENV = "LEDGERGATE_URL"
KEY_ENVS = ["LEDGERGATE_MASTER_KEY", "LEDGERGATE_API_KEY"]
# Admin calls are small; a generous bound still ends a hung connection instead of waiting forever.
TIMEOUT_S = 30.0
CONNECTION_PANEL = "Connection"

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar=URL_ENV, help="Root URL of the running gateway.", rich_help_panel=CONNECTION_PANEL),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar=KEY_ENVS,
        help="Admin key sent as the bearer token (the master key, or a key allowed to do this).",
        show_default=False,
        rich_help_panel=CONNECTION_PANEL,
    ),
]


def _error_line(response: httpx.Response) -> str:
    """``HTTP 400 invalid_request_error: <message>`` from the gateway's error envelope (or the raw body)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        kind = f" {error['type']}" if error.get("type") else ""
        return f"HTTP {response.status_code}{kind}: {error['message']}"
    text = response.text.strip()[:300] or response.reason_phrase
    return f"HTTP {response.status_code}: {text}"


class AdminClient:
    """Calls to one gateway with one key; use ``with admin_client(url, key)`` so the connection is closed."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self._http = http
        self._url = url

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        query = {name: value for name, value in (params or {}).items() if value is not None}
        return self._send("GET", path, params=query)

    def get_or_none(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """Like ``get``, but None instead of ending the command when the call fails (for optional extras)."""
        query = {name: value for name, value in (params or {}).items() if value is not None}
        try:
            response = self._http.request("GET", path, params=query)
            return None if response.is_error else response.json()
        except (httpx.HTTPError, ValueError):
            return None

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._send("POST", path, json=dict(body or {}))

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        target = f"{self._url}{path}"
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            fail(f"the gateway at {self._url} did not answer {method} {path} within {TIMEOUT_S:g} s")
        except httpx.HTTPError as exc:
            fail(f"cannot reach the gateway at {target}: {exc or type(exc).__name__}")
        if response.is_error:
            fail(_error_line(response))
        try:
            return response.json()
        except ValueError:
            fail(f"the gateway answered {method} {path} with a body that is not JSON (is {self._url} a gateway?)")


@contextmanager
def admin_client(url: str, key: str | None) -> Iterator[AdminClient]:
    """A client for ``url`` authenticated with ``key``; refuses to start without a key."""
    if not key:
        fail("no admin key: pass --key or set LEDGERGATE_MASTER_KEY (or LEDGERGATE_API_KEY)")
    root = url.rstrip("/")
    if not root.startswith(("http://", "https://")):
        fail(f"--url must start with http:// or https:// (got {url!r})")
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "ledgergate-cli"}
    with httpx.Client(base_url=root, headers=headers, timeout=TIMEOUT_S) as http:
        yield AdminClient(http, root)
