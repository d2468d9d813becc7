"""Before ``serve`` says it is listening: can it bind the address at all? One clear line if not.

uvicorn would otherwise log ``[Errno 98] address already in use`` after our "listening" line, which reads as
if the gateway had started. The probe binds the way uvicorn does (SO_REUSEADDR), then lets go of the socket.
"""

from __future__ import annotations

import errno
import socket


class CannotListen(Exception):
    """The address cannot be bound; the message names the port and what to do."""


def ensure_can_listen(host: str, port: int) -> None:
    """Raise ``CannotListen`` when ``host:port`` cannot be bound right now."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise CannotListen(f"cannot listen on {host!r}: not an address or host name of this machine ({exc})") from exc
    family, kind, protocol, _, address = infos[0]
    with socket.socket(family, kind, protocol) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise CannotListen(_advice(host, port, exc)) from exc


def _advice(host: str, port: int, exc: OSError) -> str:
    where = f"port {port} on {host}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{where} is already in use (another ledgergate or another server is listening there): stop it, "
            f"or choose another port, e.g. --port {port + 1 if port < 65535 else 4000}"
        )
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need privileges): choose a port above 1023"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: {host} is not an address of this machine: use 127.0.0.1, 0.0.0.0 or one of its addresses"
    return f"cannot listen on {where}: {exc.strerror or exc}"
