"""One keep-alive HTTP/1.1 connection (an ``asyncio.Protocol`` fed to httptools) and the reply read on it.

Built for the gateway's upstream calls, where aiohttp's per-request object graph cost more CPU than the
gateway's own work: the request goes out in one ``write``, httptools parses the reply in C, and the reply's
state is a handful of slots. No retries happen here: a POST that may have reached the upstream is never
sent twice (a provider would charge it twice).
"""

from __future__ import annotations

import asyncio
import select
import zlib
from typing import TYPE_CHECKING, cast

import httptools

from ledgergate.upstream.content_decoding import Decoder, decoder_for

if TYPE_CHECKING:
    from ledgergate.upstream.http1_pool import Http1Pool, Origin

# A reply head bigger than this is refused: aiohttp was configured for 64 KiB per header line, h11 for 100 KiB.
MAX_HEAD_BYTES = 4 * 65536
# Unconsumed stream bytes above which the socket stops being read, so a slow client cannot make the gateway
# buffer a fast upstream's whole stream.
STREAM_PAUSE_BYTES = 256 * 1024


class Http1Error(Exception):
    """The upstream broke HTTP/1.1 framing or dropped the connection before the reply was complete."""


class Reply:
    """The reply to one request: the status and content type once the head arrived, then the body.

    ``read()`` returns the whole body; ``next_chunk()`` returns body bytes as they arrive (``b""`` at the end).
    Failures raise ``Http1Error``, ``TimeoutError`` (no byte for ``read_timeout_s``) or ``OSError``.
    """

    __slots__ = (
        "_buffered_bytes",
        "_chunks",
        "_conn",
        "_decoder",
        "_error",
        "_loop",
        "_streaming",
        "_waiter",
        "content_type",
        "done",
        "head_done",
        "last_data_at",
        "read_timeout_s",
        "status",
    )

    def __init__(self, conn: Connection, streaming: bool, read_timeout_s: float) -> None:
        self._conn: Connection | None = conn
        self._loop = conn.loop
        self._streaming = streaming
        self.read_timeout_s = read_timeout_s
        self._chunks: list[bytes] = []
        self._buffered_bytes = 0
        self._decoder: Decoder | None = None
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.last_data_at = 0.0
        self.status = 0
        self.content_type = ""
        self.head_done = False
        self.done = False

    @property
    def unconsumed_bytes(self) -> int:
        """Body bytes received and not yet taken by ``next_chunk`` (bounded near ``STREAM_PAUSE_BYTES``)."""
        return sum(len(data) for data in self._chunks)

    async def wait_head(self) -> None:
        while not self.head_done:
            await self._wait()

    async def read(self) -> bytes:
        while not self.done:
            await self._wait()
        return self.body

    @property
    def body(self) -> bytes:
        """The whole body of a complete reply."""
        if len(self._chunks) == 1:
            return self._chunks[0]
        body = b"".join(self._chunks)
        self._chunks[:] = [body]
        return body

    async def next_chunk(self) -> bytes:
        while not self._chunks:
            if self.done:
                return b""
            await self._wait()
        data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks.clear()
        self._buffered_bytes = 0
        if self._conn is not None and self._conn.paused:
            self._conn.resume()
        return data

    def close(self) -> None:
        """Done with the reply: a connection still reading it cannot be reused, so it is dropped."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()

    async def _wait(self) -> None:
        if self._error is not None:
            self.close()
            raise self._error
        waiter = self._loop.create_future()
        self._waiter = waiter
        # The read timeout is the longest gap between bytes while someone waits for them.
        self.last_data_at = now = self._loop.time()
        if self._conn is not None:
            self._conn.watch(now + self.read_timeout_s)
        try:
            await waiter
        finally:
            self._waiter = None
        if self._error is not None:
            self.close()
            raise self._error

    @property
    def waiting(self) -> bool:
        return self._waiter is not None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: BaseException) -> None:
        if self.done or self._error is not None:
            return
        self._error = error
        self._wake()

    # Called by the connection's parser callbacks.

    def on_head(self, status: int, content_type: str, encoding: bytes) -> None:
        self.status = status
        self.content_type = content_type
        if encoding:
            self._decoder = decoder_for(encoding)
        self.head_done = True
        if self._streaming:
            self._wake()

    def on_body(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.feed(data)
            except zlib.error as exc:
                raise Http1Error(f"undecodable compressed body: {exc}") from exc
            if not data:
                return
        self._chunks.append(data)
        if self._streaming:
            self._buffered_bytes += len(data)
            if self._buffered_bytes > STREAM_PAUSE_BYTES and self._conn is not None:
                self._conn.pause()
            self._wake()

    def on_complete(self) -> None:
        if self._decoder is not None:
            try:
                tail = self._decoder.flush()
            except zlib.error as exc:
                self.fail(Http1Error(f"undecodable compressed body: {exc}"))
                return
            if tail:
                self._chunks.append(tail)
        self.done = True
        self._conn = None
        self._wake()


class Connection(asyncio.Protocol):
    """One pooled connection; it serves one request at a time and is reused only after a complete reply."""

    __slots__ = (
        "_content_type",
        "_encoding",
        "_head_bytes",
        "_in_interim",
        "_keep_alive",
        "_parser",
        "_poll",
        "_pool",
        "_timer",
        "_timer_at",
        "_until_close",
        "closed",
        "idle_since",
        "loop",
        "lost",
        "origin",
        "paused",
        "reply",
        "transport",
    )

    def __init__(self, pool: Http1Pool, origin: Origin, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = pool
        self.origin = origin
        self.loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self._poll: select.poll | None = None
        self.reply: Reply | None = None
        self.closed = False
        self.paused = False
        self.idle_since = 0.0
        self.lost: asyncio.Future[None] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._reset_head()

    def _reset_head(self) -> None:
        self._head_bytes = 0
        self._content_type = ""
        self._encoding = b""
        self._until_close = True
        self._in_interim = False
        self._keep_alive = False

    # Used by the pool and the client.

    def send(self, request: bytes, streaming: bool, read_timeout_s: float) -> Reply:
        assert self.transport is not None and self.reply is None
        reply = self.reply = Reply(self, streaming, read_timeout_s)
        self._reset_head()
        self.transport.write(request)
        return reply

    def server_closed(self) -> bool:
        """Whether an idle connection can no longer carry a request: closed, or bytes (a FIN) not yet seen."""
        if self.closed or self.transport is None or self.transport.is_closing():
            return True
        # The event loop may not have polled since the server's FIN arrived; ask the kernel directly.
        return self._poll is not None and bool(self._poll.poll(0))

    def watch(self, deadline: float) -> None:
        """Make sure the read timer fires no later than ``deadline``.

        One timer per connection, kept armed across requests and moved only when it fires early: arming and
        cancelling one per request cost more than the rest of the timeout handling.
        """
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = None
        reply = self.reply
        if reply is None or not reply.waiting or reply.done:
            return  # nobody waits for bytes now; the next wait re-arms
        deadline = reply.last_data_at + reply.read_timeout_s
        if self.loop.time() < deadline:
            self.watch(deadline)
            return
        reply.fail(TimeoutError(f"no reply bytes for {reply.read_timeout_s} s"))

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self._poll = select.poll()
            self._poll.register(sock.fileno(), select.POLLIN)

    def data_received(self, data: bytes) -> None:
        reply = self.reply
        if reply is None:
            # Bytes nobody asked for: the connection's framing can no longer be trusted.
            self.abort()
            return
        reply.last_data_at = self.loop.time()
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            cause = exc.__context__ if isinstance(exc.__context__, Http1Error) else None
            reply.fail(cause or Http1Error(f"malformed reply: {type(exc).__name__}: {exc}"))
            self.reply = None
            self.abort()
            return
        if not reply.head_done:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                reply.fail(Http1Error(f"reply head larger than {MAX_HEAD_BYTES} bytes"))
                self.reply = None
                self.abort()
        elif reply.done:
            self._finished()

    def eof_received(self) -> bool:
        reply = self.reply
        if reply is not None and reply.head_done and not reply.done and self._until_close:
            # A body without content-length or chunking ends when the server closes the connection.
            reply.on_complete()
        self.closed = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        reply, self.reply = self.reply, None
        if reply is not None and not reply.done:
            reply.fail(Http1Error(f"connection closed before the reply was complete ({exc or 'EOF'})"))
        self._pool.connection_lost(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def _finished(self) -> None:
        self.reply = None
        if self.closed or not self._keep_alive or self._until_close:
            self.close()
            return
        if self.paused:
            self.resume()
        self._pool.release(self)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 12 and name.lower() == b"content-type":
            self._content_type = value.decode("latin-1")
        elif len(name) == 16 and name.lower() == b"content-encoding":
            self._encoding = value
        elif (len(name) == 14 and name.lower() == b"content-length") or (
            len(name) == 17 and name.lower() == b"transfer-encoding"
        ):
            self._until_close = False

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            # An interim reply (100 Continue, 103 Early Hints): the real one follows on the same connection.
            self._in_interim = True
            self._content_type, self._encoding = "", b""
            return
        if status in (204, 304):
            self._until_close = False
        assert self.reply is not None
        self.reply.on_head(status, self._content_type, self._encoding)

    def on_body(self, body: bytes) -> None:
        assert self.reply is not None
        self.reply.on_body(body)

    def on_message_complete(self) -> None:
        if self._in_interim:
            self._reset_head()
            return
        assert self.reply is not None
        # Only meaningful now: llhttp resets its flags once this callback returns.
        self._keep_alive = self._parser.should_keep_alive()
        self.reply.on_complete()
