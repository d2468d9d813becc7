"""Upstream request heads as bytes, encoded once per deployment and path instead of once per request."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from ledgergate.deployments import Deployment
from ledgergate.upstream.http1 import Http1Error
from ledgergate.upstream.http1_pool import Origin

USER_AGENT = "ledgergate"
# What aiohttp asked for: the reply is decoded before it is forwarded (see http1.Reply).
ACCEPT_ENCODING = "gzip, deflate"
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The body's framing is ours: a configured header must not contradict it.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
# Distinct protocol header sets per route kept encoded; they vary only with a few forwarded client headers.
MAX_PROTOCOL_HEADS = 64
_URL_SAFE = "/:@!$&'()*+,;=?~-._%"


class Route:
    """Where and how ``deployment``'s requests to ``path`` are sent; ``head`` ends just before content-length."""

    __slots__ = ("_protocol_heads", "_request_line", "deployment", "head", "origin", "proxy")

    def __init__(self, deployment: Deployment, path: str, proxy: str | None) -> None:
        # Held so that the id() a cache keys this route by is not reused while the route is cached.
        self.deployment = deployment
        self.proxy = proxy  # the environment's proxy for api_base: such deployments go through aiohttp
        self._protocol_heads: dict[tuple[tuple[str, str], ...], bytes] = {}
        self.origin: Origin = ("", "", 0)
        self._request_line = b""
        self.head = b""
        if proxy is None:
            self.origin, target, host = _parse_target(deployment.api_base + path)
            self._request_line = f"POST {target} HTTP/1.1\r\n".encode("ascii")
            self.head = self._encode(_fields(deployment, host, None))

    def head_for(self, protocol_headers: Mapping[str, str] | None) -> bytes:
        """The head for a call with ``protocol_headers`` (replacing Bearer auth), or the default one."""
        if protocol_headers is None:
            return self.head
        key = tuple(protocol_headers.items())
        head = self._protocol_heads.get(key)
        if head is None:
            host = _host_header(self.origin)
            head = self._encode(_fields(self.deployment, host, protocol_headers))
            if len(self._protocol_heads) >= MAX_PROTOCOL_HEADS:
                self._protocol_heads.clear()
            self._protocol_heads[key] = head
        return head

    def _encode(self, fields: dict[str, tuple[str, str]]) -> bytes:
        lines = [self._request_line]
        for name, value in fields.values():
            if _FORBIDDEN & set(name + value):
                raise Http1Error(f"header {name!r} contains a line break or NUL")
            lines.append(f"{name}: {value}\r\n".encode())
        return b"".join(lines)


_FORBIDDEN = frozenset("\r\n\0")


def request_bytes(head: bytes, body: bytes) -> bytes:
    """The whole request in one buffer, so it leaves in one write (one syscall, one TCP segment when small)."""
    return b"".join((head, b"content-length: %d\r\n\r\n" % len(body), body))


def _fields(
    deployment: Deployment, host: str, protocol_headers: Mapping[str, str] | None
) -> dict[str, tuple[str, str]]:
    """Header (name, value) by lower-cased name, in the order sent, with the rules aiohttp was given."""
    fields = {
        "host": ("host", host),
        "user-agent": ("user-agent", USER_AGENT),
        "accept-encoding": ("accept-encoding", ACCEPT_ENCODING),
        "content-type": ("content-type", "application/json"),
    }
    if protocol_headers is not None:
        # A route speaking another provider's protocol (Anthropic's x-api-key) brings its own auth.
        for name, value in protocol_headers.items():
            fields[name.lower()] = (name, value)
    elif deployment.api_key:
        fields["authorization"] = ("authorization", f"Bearer {deployment.api_key}")
    # Last, and replacing case-insensitively, so a deployment can swap the auth scheme (e.g. Azure's
    # ``api-key``) or override ``Authorization`` without sending two of them.
    for name, value in deployment.extra_headers.items():
        fields[name.lower()] = (name, value)
    for name in _FRAMING_HEADERS:
        fields.pop(name, None)
    return fields


def _parse_target(url: str) -> tuple[Origin, str, str]:
    """The origin, request target (path and query) and Host header of ``url``; ``Http1Error`` if unusable."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Http1Error(f"invalid upstream URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise Http1Error(f"invalid upstream URL {url!r}: http(s)://host[:port]/path expected")
    host = parts.hostname
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise Http1Error(f"invalid upstream host {host!r}: {exc}") from exc
    origin = (scheme, host, port or _DEFAULT_PORTS[scheme])
    target = urllib.parse.quote(parts.path or "/", safe=_URL_SAFE)
    if parts.query:
        target += "?" + urllib.parse.quote(parts.query, safe=_URL_SAFE)
    return origin, target, _host_header(origin)


def _host_header(origin: Origin) -> str:
    scheme, host, port = origin
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    return host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
