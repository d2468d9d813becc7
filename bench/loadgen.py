"""A lean closed-loop HTTP/1.1 load generator, used when ``wrk`` is not installed.

Raw asyncio streams on uvloop with one pre-built request: each of ``--concurrency`` keep-alive connections
sends, reads the whole reply, and sends again until ``--duration`` is over. Prints the same one-line
``BENCH_JSON {...}`` summary as ``post.lua`` does for wrk. Bounded: it stops by itself after the duration.
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
        self.non_2xx = 0
        self.socket_errors = 0


def _request_bytes(url: str, body: bytes, token: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return host, port, head.encode() + body


def _content_length(head: bytes) -> tuple[int, bool]:
    """(body length, whether the server will close) from a reply head; chunked replies are not expected."""
    length, closing = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            closing = True
    return length, closing


async def _worker(host: str, port: int, request: bytes, deadline: float, timeout_s: float, tally: _Tally) -> None:
    reader = writer = None
    while time.monotonic() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            started = time.perf_counter_ns()
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
            length, closing = _content_length(head)
            if length:
                await asyncio.wait_for(reader.readexactly(length), timeout_s)
            tally.latencies_ns.append(time.perf_counter_ns() - started)
            if head[9:10] != b"2":  # b"HTTP/1.1 200": the status's first digit
                tally.non_2xx += 1
            if closing:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            tally.socket_errors += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)  # a refusing server must not turn this into a busy loop
    if writer is not None:
        writer.close()


def _percentile_ms(sorted_ns: list[int], fraction: float) -> float:
    if not sorted_ns:
        return 0.0
    index = min(len(sorted_ns) - 1, max(0, round(fraction * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1e6


async def run(
    url: str, concurrency: int, duration_s: float, body: bytes, token: str, timeout_s: float
) -> dict[str, Any]:
    host, port, request = _request_bytes(url, body, token)
    tally = _Tally()
    started = time.monotonic()
    deadline = started + duration_s
    await asyncio.gather(*(_worker(host, port, request, deadline, timeout_s, tally) for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    ordered = sorted(tally.latencies_ns)
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
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
