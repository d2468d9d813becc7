"""One pooled HTTP client for every upstream call, translating transport failures into ``UpstreamError``s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

import httpx

from ledgergate.deployments import Deployment
from ledgergate.upstream.errors import UpstreamError, UpstreamHTTPError, UpstreamTimeout, UpstreamUnavailable

# Sized for a gateway holding many slow streaming completions open at once; keepalive avoids a TLS
# handshake per request to the same provider.
MAX_CONNECTIONS = 1000
MAX_KEEPALIVE_CONNECTIONS = 500
KEEPALIVE_EXPIRY_S = 30.0
USER_AGENT = "ledgergate"


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    """A complete upstream reply; non-2xx statuses are returned, not raised, so callers can pass them on."""

    status: int
    body: bytes
    content_type: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


def _translate(exc: Exception, deployment: Deployment) -> UpstreamError:
    where = f"{deployment.deployment_id or deployment.model_name} ({deployment.api_base})"
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"upstream {where} timed out: {type(exc).__name__}")
    return UpstreamUnavailable(f"upstream {where} unavailable: {type(exc).__name__}: {exc}")


# InvalidURL is not an HTTPError but comes from the same misconfigured ``api_base``.
_TRANSPORT_FAILURES = (httpx.HTTPError, httpx.InvalidURL)


class UpstreamStream:
    """An open streaming reply with a 2xx status; the caller must ``aclose()`` it (or use ``async with``)."""

    def __init__(self, response: httpx.Response, deployment: Deployment) -> None:
        self._response = response
        self._deployment = deployment

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def content_type(self) -> str:
        return str(self._response.headers.get("content-type", ""))

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (content-decoded); transport failures surface as ``UpstreamError``."""
        try:
            async for chunk in self._response.aiter_bytes():
                if chunk:
                    yield chunk
        except _TRANSPORT_FAILURES as exc:
            raise _translate(exc, self._deployment) from exc

    async def aclose(self) -> None:
        await self._response.aclose()

    async def __aenter__(self) -> UpstreamStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class UpstreamClient:
    """Sends OpenAI-style JSON requests to deployments over one shared connection pool."""

    def __init__(self, *, connect_timeout_s: float = 10.0) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._http = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS,
                max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
            headers={"user-agent": USER_AGENT},
            follow_redirects=False,
        )

    def _timeout(self, deployment: Deployment) -> httpx.Timeout:
        # The deployment's timeout bounds each read (the gap between stream chunks), not the whole reply,
        # so long streams are fine while a stalled upstream is detected.
        return httpx.Timeout(
            connect=self._connect_timeout_s,
            read=deployment.timeout_s,
            write=deployment.timeout_s,
            pool=deployment.timeout_s,
        )

    @staticmethod
    def _headers(deployment: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        # Last, so a deployment can replace the auth scheme (e.g. Azure's ``api-key``).
        headers.update(deployment.extra_headers)
        return headers

    def _request(self, deployment: Deployment, path: str, body: bytes) -> httpx.Request:
        return self._http.build_request(
            "POST",
            deployment.api_base + path,
            content=body,
            headers=self._headers(deployment),
            timeout=self._timeout(deployment),
        )

    async def send(self, deployment: Deployment, path: str, body: bytes) -> UpstreamReply:
        """POST ``body`` to ``deployment.api_base + path`` and read the whole reply, whatever its status."""
        try:
            request = self._request(deployment, path, body)
            response = await self._http.send(request)
        except _TRANSPORT_FAILURES as exc:
            raise _translate(exc, deployment) from exc
        return UpstreamReply(
            status=response.status_code,
            body=response.content,
            content_type=response.headers.get("content-type", ""),
        )

    async def stream(self, deployment: Deployment, path: str, body: bytes) -> UpstreamStream:
        """Open a streaming POST; a non-2xx reply is read whole and raised as ``UpstreamHTTPError``."""
        try:
            request = self._request(deployment, path, body)
            response = await self._http.send(request, stream=True)
        except _TRANSPORT_FAILURES as exc:
            raise _translate(exc, deployment) from exc
        if response.is_success:
            return UpstreamStream(response, deployment)
        try:
            error_body = await response.aread()
        except _TRANSPORT_FAILURES as exc:
            raise _translate(exc, deployment) from exc
        finally:
            await response.aclose()
        raise UpstreamHTTPError(response.status_code, error_body)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
