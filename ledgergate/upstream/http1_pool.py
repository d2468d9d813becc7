"""Keep-alive HTTP/1.1 connections per origin under one cap on open connections, for ``http1.Connection``."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from ledgergate.upstream.http1 import Connection

Origin = tuple[str, str, int]  # (scheme, host, port)


class Http1Pool:
    """Idle connections per origin (most recently used first), at most ``max_connections`` open in all.

    A request that finds the cap reached first closes another origin's idle connection, else queues for a
    slot until ``connect_timeout_s`` (then ``TimeoutError``). Idle connections older than
    ``keepalive_expiry_s``, or that the server already closed, are never handed out.
    """

    def __init__(self, *, max_connections: int, keepalive_expiry_s: float) -> None:
        self._max_connections = max_connections
        self._expiry_s = keepalive_expiry_s
        self._loop: asyncio.AbstractEventLoop | None = None
        # Appended when released, so each list is ordered by idle_since: fresh ones at the end, expired at the front.
        self._idle: dict[Origin, list[Connection]] = {}
        self._open: set[Connection] = set()  # connecting, in use or idle: what counts against the cap
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._closed = False

    async def acquire(self, origin: Origin, connect_timeout_s: float) -> Connection:
        """A live connection to ``origin``: an idle one, else a new one once a slot is free."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            if self._closed:
                raise RuntimeError("UpstreamClient is closed")
            conn = self._take_idle(origin, loop)
            if conn is not None:
                return conn
            if len(self._open) < self._max_connections or self._evict_idle():
                return await self._connect(origin, connect_timeout_s, loop)
            if deadline is None:
                deadline = loop.time() + connect_timeout_s
            await self._wait_for_slot(deadline, loop)

    def release(self, conn: Connection) -> None:
        """Take back a connection whose reply was read completely and that the server keeps alive."""
        if self._closed or self._loop is None:
            conn.close()
            return
        conn.idle_since = self._loop.time()
        idle = self._idle.get(conn.origin)
        if idle is None:
            idle = self._idle[conn.origin] = []
        idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(self._expiry_s, self._sweep)
        self._wake_one()

    def connection_lost(self, conn: Connection) -> None:
        if conn in self._open:
            self._open.remove(conn)
            self._wake_one()

    async def aclose(self) -> None:
        """Close every connection, idle or in use, and wait until their transports are gone."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._idle.clear()
        conns = list(self._open)
        for conn in conns:
            conn.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        await asyncio.gather(*(conn.lost for conn in conns if conn.transport is not None))

    def _take_idle(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest_allowed = loop.time() - self._expiry_s
        while idle:
            conn = idle.pop()
            if conn.idle_since > oldest_allowed and not conn.server_closed():
                return conn
            self._drop(conn)
        return None

    def _evict_idle(self) -> bool:
        """Close the longest-idle live connection of any origin to make room; False if none is idle."""
        while True:
            oldest: list[Connection] | None = None
            for idle in self._idle.values():
                if idle and (oldest is None or idle[0].idle_since < oldest[0].idle_since):
                    oldest = idle
            if oldest is None:
                return False
            conn = oldest.pop(0)
            if conn in self._open:  # one the server closed holds no slot any more
                self._drop(conn)
                return True

    def _drop(self, conn: Connection) -> None:
        self._open.discard(conn)
        conn.abort()

    async def _connect(self, origin: Origin, timeout_s: float, loop: asyncio.AbstractEventLoop) -> Connection:
        scheme, host, port = origin
        conn = Connection(self, origin, loop)
        self._open.add(conn)
        try:
            async with asyncio.timeout(timeout_s):
                if scheme == "https":
                    await loop.create_connection(lambda: conn, host, port, ssl=self._ssl(), server_hostname=host)
                else:
                    await loop.create_connection(lambda: conn, host, port)
        except BaseException:
            self.connection_lost(conn)
            conn.abort()
            raise
        if self._closed:
            self._drop(conn)
            raise RuntimeError("UpstreamClient is closed")
        return conn

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            # Loading the system CA bundle takes milliseconds: once per pool, on the first https origin.
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def _wait_for_slot(self, deadline: float, loop: asyncio.AbstractEventLoop) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake_one()  # woken but leaving: the slot goes to the next in line
            else:
                waiter.cancel()
            raise

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _sweep(self) -> None:
        """Close expired idle connections even when no request comes to notice them."""
        self._sweeper = None
        assert self._loop is not None
        oldest_allowed = self._loop.time() - self._expiry_s
        for origin, idle in list(self._idle.items()):
            expired = 0
            while expired < len(idle) and idle[expired].idle_since <= oldest_allowed:
                expired += 1
            for conn in idle[:expired]:
                self._drop(conn)
            del idle[:expired]
            if not idle:
                del self._idle[origin]
        if self._idle:
            self._sweeper = self._loop.call_later(self._expiry_s / 2, self._sweep)
