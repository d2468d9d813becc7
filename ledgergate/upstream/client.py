"""One pooled HTTP client for every upstream call, translating transport failures into ``UpstreamError``s.

Direct connections use the lean keep-alive HTTP/1.1 client of ``http1`` (a fraction of aiohttp's CPU per
request); deployments the environment routes through a proxy use aiohttp, which speaks to proxies.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]  # public, not in typeshed

import aiohttp
from multidict import CIMultiDict

from ledgergate.deployments import Deployment
from ledgergate.upstream.errors import (
    UpstreamError,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
    openai_error_body,
)
from ledgergate.upstream.http1 import Http1Error, Reply
from ledgergate.upstream.http1_pool import Http1Pool
from ledgergate.upstream.request_head import USER_AGENT, Route, request_bytes

# Sized for a gateway holding many slow streaming completions open at once; keepalive avoids a TLS
# handshake per request to the same provider.
MAX_CONNECTIONS = 1000
KEEPALIVE_EXPIRY_S = 30.0
# Short enough that a provider moving its endpoints (DNS failover) is followed within a minute.
DNS_CACHE_TTL_S = 60
# httpx (h11) accepted header blocks up to 100 KiB; aiohttp's default 8 KiB per header line would turn a
# provider's oversized cookie or trace header into a 502.
MAX_HEADER_LINE_BYTES = 65536
# Encoded request heads kept per (deployment, path); a config reload's new deployments replace the old.
MAX_CACHED_ROUTES = 4096


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    """A complete upstream reply; non-2xx statuses are returned, not raised, so callers can pass them on."""

    status: int
    body: bytes
    content_type: str

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def error_body(self) -> bytes:
        """A non-2xx reply as an OpenAI-style error JSON (the upstream's own ``error`` object kept)."""
        return openai_error_body(self)


def _translate(exc: Exception, deployment: Deployment) -> UpstreamError:
    where = f"{deployment.deployment_id or deployment.model_name} ({deployment.api_base})"
    # aiohttp's connect and read timeouts subclass TimeoutError (and ServerTimeoutError is also a
    # ClientError), so this test must come first.
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(f"upstream {where} timed out: {type(exc).__name__}")
    return UpstreamUnavailable(f"upstream {where} unavailable: {type(exc).__name__}: {exc}")


# ClientError covers refused/reset connections, DNS failures, malformed replies, truncated bodies and
# invalid URLs (a misconfigured ``api_base``); OSError the same for the http1 client (refused, reset, DNS,
# TLS), Http1Error its malformed or cut-off replies and unusable URLs.
_TRANSPORT_FAILURES = (aiohttp.ClientError, TimeoutError, OSError, Http1Error, UnicodeError)


def _proxy_from_environment(proxies: dict[str, str], url: str) -> str | None:
    """The HTTP proxy the environment names for ``url`` (``*_PROXY`` minus ``NO_PROXY``), as httpx honoured.

    aiohttp's own ``trust_env`` would re-read the environment and ``.netrc`` in a thread on every request.
    Credentials in the proxy URL are sent by aiohttp as ``Proxy-Authorization``.
    """
    target = urllib.parse.urlsplit(url)
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if not proxy or (target.hostname and proxy_bypass_environment(target.hostname, proxies)):
        return None
    proxy = proxy if "://" in proxy else f"http://{proxy}"
    # aiohttp speaks to plain-HTTP proxies only (tunnelling HTTPS targets with CONNECT).
    return proxy if urllib.parse.urlsplit(proxy).scheme == "http" else None


class UpstreamStream:
    """An open streaming reply with a 2xx status; the caller must ``aclose()`` it (or use ``async with``)."""

    def __init__(self, response: Reply | aiohttp.ClientResponse, deployment: Deployment) -> None:
        self._response = response
        self._deployment = deployment

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def content_type(self) -> str:
        if isinstance(self._response, Reply):
            return self._response.content_type
        return self._response.headers.get("content-type", "")

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive (content-decoded); transport failures surface as ``UpstreamError``."""
        response = self._response
        try:
            if isinstance(response, Reply):
                while chunk := await response.next_chunk():
                    yield chunk
                return
            async for chunk in response.content.iter_any():
                if chunk:
                    yield chunk
        except _TRANSPORT_FAILURES as exc:
            raise _translate(exc, self._deployment) from exc

    async def aclose(self) -> None:
        # A fully read reply returns its connection to the pool; a partly read one closes it.
        if isinstance(self._response, Reply):
            self._response.close()
            return
        self._response.release()
        await self._response.wait_for_close()

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
    """Sends OpenAI-style JSON requests to deployments over one shared connection pool.

    Pools are opened on first use, inside the running event loop they then belong to.
    """

    def __init__(self, *, connect_timeout_s: float = 10.0) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._pool: Http1Pool | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._env_proxies = urllib.request.getproxies()
        self._proxies: dict[str, str | None] = {}
        self._routes: dict[tuple[int, str], Route] = {}

    def _open_pool(self) -> Http1Pool:
        if self._closed:
            raise RuntimeError("UpstreamClient is closed")
        # No per-origin limit: one provider may use the whole pool.
        self._pool = Http1Pool(max_connections=MAX_CONNECTIONS, keepalive_expiry_s=KEEPALIVE_EXPIRY_S)
        return self._pool

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("UpstreamClient is closed")
        connector = aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS,
            limit_per_host=0,  # one provider may use the whole pool
            keepalive_timeout=KEEPALIVE_EXPIRY_S,
            ttl_dns_cache=DNS_CACHE_TTL_S,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={"user-agent": USER_AGENT},
            # A client-wide jar would replay one tenant's upstream Set-Cookie on every tenant's calls.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Bodies are forwarded without the upstream's content-encoding header, so they must be decoded.
            auto_decompress=True,
            raise_for_status=False,
            # Proxies come from ``_proxy``: trust_env would hit the environment and .netrc per request.
            trust_env=False,
            max_line_size=MAX_HEADER_LINE_BYTES,
            max_field_size=MAX_HEADER_LINE_BYTES,
        )
        return self._session

    def _timeout(self, deployment: Deployment) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(deployment.timeout_s)
        if timeout is None:
            # The deployment's timeout bounds each read (the gap between stream chunks), not the whole reply,
            # so long streams are fine while a stalled upstream is detected. ``connect`` also covers waiting
            # for a free pooled connection.
            timeout = aiohttp.ClientTimeout(
                total=None,
                connect=self._connect_timeout_s + deployment.timeout_s,
                sock_connect=self._connect_timeout_s,
                sock_read=deployment.timeout_s,
            )
            self._timeouts[deployment.timeout_s] = timeout
        return timeout

    def _proxy(self, api_base: str) -> str | None:
        if api_base not in self._proxies:
            self._proxies[api_base] = _proxy_from_environment(self._env_proxies, api_base)
        return self._proxies[api_base]

    def _route(self, deployment: Deployment, path: str) -> Route:
        # Deployments are unhashable (extra_headers is a dict); the route holds its deployment, so the id
        # cannot be reused by another one while cached, and the identity check catches a stale entry.
        key = (id(deployment), path)
        route = self._routes.get(key)
        if route is None or route.deployment is not deployment:
            route = Route(deployment, path, self._proxy(deployment.api_base))
            if len(self._routes) >= MAX_CACHED_ROUTES:
                self._routes.clear()
            self._routes[key] = route
        return route

    @staticmethod
    def _headers(deployment: Deployment, protocol_headers: Mapping[str, str] | None) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        headers["content-type"] = "application/json"
        if protocol_headers is not None:
            # A route speaking another provider's protocol (Anthropic's x-api-key) brings its own auth.
            headers.update(protocol_headers)
        elif deployment.api_key:
            headers["authorization"] = f"Bearer {deployment.api_key}"
        # Last, and replacing case-insensitively, so a deployment can swap the auth scheme (e.g. Azure's
        # ``api-key``) or override ``Authorization`` without sending two of them.
        for name, value in deployment.extra_headers.items():
            headers[name] = value
        return headers

    async def _post_via_proxy(
        self, deployment: Deployment, path: str, body: bytes, protocol_headers: Mapping[str, str] | None, proxy: str
    ) -> aiohttp.ClientResponse:
        session = self._session or self._open_session()
        return await session.post(
            deployment.api_base + path,
            data=body,
            headers=self._headers(deployment, protocol_headers),
            timeout=self._timeout(deployment),
            allow_redirects=False,
            proxy=proxy,
        )

    async def _post(
        self,
        deployment: Deployment,
        path: str,
        body: bytes,
        protocol_headers: Mapping[str, str] | None,
        streaming: bool,
    ) -> Reply | aiohttp.ClientResponse:
        """The reply once its head is in (``streaming``) or once it is complete; not retried, ever."""
        if self._closed:
            raise RuntimeError("UpstreamClient is closed")
        route = self._route(deployment, path)
        if route.proxy is not None:
            return await self._post_via_proxy(deployment, path, body, protocol_headers, route.proxy)
        request = request_bytes(route.head_for(protocol_headers), body)
        pool = self._pool or self._open_pool()
        conn = await pool.acquire(route.origin, self._connect_timeout_s)
        reply = conn.send(request, streaming, deployment.timeout_s)
        try:
            await (reply.wait_head() if streaming else reply.read())
        except BaseException:
            reply.close()
            raise
        return reply

    async def send(
        self, deployment: Deployment, path: str, body: bytes, protocol_headers: Mapping[str, str] | None = None
    ) -> UpstreamReply:
        """POST ``body`` to ``deployment.api_base + path`` and read the whole reply, whatever its status.

        ``protocol_headers`` replace the default ``Authorization: Bearer <api_key>``; the deployment's
        ``extra_headers`` still go last.
        """
        try:
            response = await self._post(deployment, path, body, protocol_headers, False)
            if isinstance(response, Reply):
                return UpstreamReply(response.status, response.body, response.content_type)
            async with response:
                reply_body = await response.read()
        except _TRANSPORT_FAILURES as exc:
            raise _translate(exc, deployment) from exc
        return UpstreamReply(
            status=response.status,
            body=reply_body,
            content_type=response.headers.get("content-type", ""),
        )

    async def stream(
        self, deployment: Deployment, path: str, body: bytes, protocol_headers: Mapping[str, str] | None = None
    ) -> UpstreamStream:
        """Open a streaming POST; a non-2xx reply is read whole and raised as ``UpstreamHTTPError``."""
        try:
            response = await self._post(deployment, path, body, protocol_headers, True)
        except _TRANSPORT_FAILURES as exc:
            raise _translate(exc, deployment) from exc
        if 200 <= response.status < 300:
            return UpstreamStream(response, deployment)
        try:
            if isinstance(response, Reply):
                try:
                    error_body = await response.read()
                finally:
                    response.close()
            else:
                async with response:
                    error_body = await response.read()
        except _TRANSPORT_FAILURES as exc:
            raise _translate(exc, deployment) from exc
        raise UpstreamHTTPError(response.status, error_body)

    async def aclose(self) -> None:
        """Close the pools; returns once every pooled and in-use connection is closed. Idempotent."""
        self._closed = True
        pool, self._pool = self._pool, None
        session, self._session = self._session, None
        if pool is not None:
            await pool.aclose()
        if session is not None:
            await session.close()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
