"""A lean closed-loop HTTP/1.1 load generator, used when ``wrk`` is not installed.

Raw asyncio streams on uvloop with one pre-built request per URL: each of ``--concurrency`` keep-alive
connections sends, reads the whole reply (Content-Length or chunked, e.g. a server-sent event stream), and
sends again until ``--duration`` is over. With several ``--url`` (several gateway processes), worker i uses
URL i mod n; a worker that has to cover more than one URL (concurrency below the URL count) alternates.
Prints the same one-line ``BENCH_JSON {...}`` summary as ``post.lua`` does for wrk, plus the time to the
first body chunk (``ttfb_*``) of chunked replies. Bounded: it stops by itself after the duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

uvloop: Any
try:
    import uvloop
except ImportError:  # pragma: no cover - the venv has it, a bare interpreter may not
    uvloop = None


class _Tally:
    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.first_chunk_ns: list[int] = []
        self.non_2xx = 0
        self.statuses: dict[str, int] = {}
        self.socket_errors = 0


def _request_bytes(url: str, body: bytes, token: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return host, port, head.encode() + body


def _framing(head: bytes) -> tuple[int, bool, bool]:
    """(body length, chunked, whether the server will close) from a reply head."""
    length, chunked, closing = 0, False, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and value == b"chunked":
            chunked = True
        elif name == b"connection" and value == b"close":
            closing = True
    return length, chunked, closing


async def _read_chunked(reader: asyncio.StreamReader, timeout_s: float) -> int:
    """Read a chunked body to its end; returns perf_counter_ns when the first non-empty chunk was complete."""
    first_ns = 0
    while True:
        size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout_s)
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout_s)  # the empty trailer section
            return first_ns
        await asyncio.wait_for(reader.readexactly(size + 2), timeout_s)
        if not first_ns:
            first_ns = time.perf_counter_ns()


class _Connection:
    def __init__(self, host: str, port: int, request: bytes) -> None:
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _exchange(connection: _Connection, timeout_s: float, tally: _Tally) -> None:
    if connection.writer is None:
        connection.reader, connection.writer = await asyncio.open_connection(connection.host, connection.port)
    reader, writer = connection.reader, connection.writer
    assert reader is not None
    started = time.perf_counter_ns()
    writer.write(connection.request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
    length, chunked, closing = _framing(head)
    if chunked:
        first_ns = await _read_chunked(reader, timeout_s)
        if first_ns:
            tally.first_chunk_ns.append(first_ns - started)
    elif length:
        await asyncio.wait_for(reader.readexactly(length), timeout_s)
    tally.latencies_ns.append(time.perf_counter_ns() - started)
    if head[9:10] != b"2":  # b"HTTP/1.1 200": the status's first digit
        tally.non_2xx += 1
        status = head[9:12].decode(errors="replace")
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
    if closing:
        connection.close()


async def _worker(connections: list[_Connection], deadline: float, timeout_s: float, tally: _Tally) -> None:
    turn = 0
    while time.monotonic() < deadline:
        connection = connections[turn % len(connections)]
        turn += 1
        try:
            await _exchange(connection, timeout_s, tally)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            tally.socket_errors += 1
            connection.close()
            await asyncio.sleep(0.01)  # a refusing server must not turn this into a busy loop
    for connection in connections:
        connection.close()


def _percentile_ms(sorted_ns: list[int], fraction: float) -> float:
    if not sorted_ns:
        return 0.0
    index = min(len(sorted_ns) - 1, max(0, round(fraction * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1e6


def _worker_connections(urls: list[str], body: bytes, token: str, index: int, concurrency: int) -> list[_Connection]:
    targets = [_request_bytes(url, body, token) for url in urls]
    if concurrency >= len(targets):
        return [_Connection(*targets[index % len(targets)])]
    return [_Connection(*target) for target in targets]


async def run(
    urls: list[str], concurrency: int, duration_s: float, body: bytes, token: str, timeout_s: float
) -> dict[str, Any]:
    tally = _Tally()
    started = time.monotonic()
    deadline = started + duration_s
    await asyncio.gather(
        *(
            _worker(_worker_connections(urls, body, token, index, concurrency), deadline, timeout_s, tally)
            for index in range(concurrency)
        )
    )
    elapsed = time.monotonic() - started
    ordered = sorted(tally.latencies_ns)
    first_chunks = sorted(tally.first_chunk_ns)
    return {
        "tool": "python",
        "requests": len(ordered),
        "duration_s": elapsed,
        "p50_ms": _percentile_ms(ordered, 0.50),
        "p90_ms": _percentile_ms(ordered, 0.90),
        "p99_ms": _percentile_ms(ordered, 0.99),
        "max_ms": ordered[-1] / 1e6 if ordered else 0.0,
        "mean_ms": sum(ordered) / len(ordered) / 1e6 if ordered else 0.0,
        "non_2xx": tally.non_2xx,
        "socket_errors": tally.socket_errors,
        "non_2xx_by_status": tally.statuses,
        "ttfb_samples": len(first_chunks),
        "ttfb_p50_ms": _percentile_ms(first_chunks, 0.50),
        "ttfb_p99_ms": _percentile_ms(first_chunks, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, action="append", help="repeat for several servers")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per reply")
    args = parser.parse_args()
    body = os.environ["BENCH_BODY"].encode()
    token = os.environ.get("BENCH_TOKEN", "none")
    runner = uvloop.run if uvloop is not None else asyncio.run
    summary = runner(run(args.url, args.concurrency, args.duration, body, token, args.timeout))
    print("BENCH_JSON " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
