"""A real webhook receiver: a Starlette app on a loopback port (uvicorn in a thread) that records every POST.

``fail_next(n)`` makes it answer the next ``n`` POSTs with an error status, to exercise retries; ``delay_s`` makes
every answer slow.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STARTUP_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 10.0


class WebhookReceiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._posts: list[dict[str, Any]] = []  # every POST, failed ones included
        self._fail_remaining = 0
        self._fail_status = 500
        self.delay_s = 0.0
        self.port = 0
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hook(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        with self._lock:
            failing = self._fail_remaining > 0
            if failing:
                self._fail_remaining -= 1
            self._posts.append({"json": body, "headers": dict(request.headers), "answered": not failing})
            status = self._fail_status if failing else 200
        await asyncio.sleep(self.delay_s)
        return Response(b"nope" if failing else b"ok", status_code=status)

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._fail_remaining, self._fail_status = count, status

    def posts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._posts)

    def alerts(self) -> list[dict[str, Any]]:
        """The payloads of the POSTs answered 2xx (the alerts that were delivered), oldest first."""
        return [post["json"] for post in self.posts() if post["answered"]]

    def reset(self) -> None:
        with self._lock:
            self._posts.clear()
            self._fail_remaining = 0
            self.delay_s = 0.0

    def start(self) -> WebhookReceiver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket, self.port = sock, sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", ws="none", timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("webhook receiver failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
