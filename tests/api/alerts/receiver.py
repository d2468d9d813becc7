"""A real webhook receiver: a Starlette app on a loopback port (uvicorn in a thread) that records every POST.

``fail_next(n)`` makes it answer the next ``n`` POSTs with an error status, to exercise retries; ``delay_s`` makes
every answer slow; ``hold_answers()`` makes every answer wait until ``release_answers()`` (a condition, not a time,
for tests of what must not wait for the webhook).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.threaded_server import ThreadedServer, bind_loopback


class WebhookReceiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._posts: list[dict[str, Any]] = []  # every POST, failed ones included
        self._fail_remaining = 0
        self._fail_status = 500
        self.delay_s = 0.0
        self._answering = threading.Event()
        self._answering.set()
        self._answers_sent = 0
        self.port = 0
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self._server = ThreadedServer(self.app, "webhook-receiver", lifespan="off", timeout_graceful_shutdown=1)

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
        while not self._answering.is_set():
            await asyncio.sleep(0.01)
        with self._lock:
            self._answers_sent += 1
        return Response(b"nope" if failing else b"ok", status_code=status)

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._fail_remaining, self._fail_status = count, status

    def hold_answers(self) -> None:
        """Keep every POST (recorded, unanswered) waiting until ``release_answers``."""
        self._answering.clear()

    def release_answers(self) -> None:
        self._answering.set()

    def answers_sent(self) -> int:
        """How many POSTs have been answered so far (a held or delayed one is not, yet)."""
        with self._lock:
            return self._answers_sent

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
        self.release_answers()

    def start(self) -> WebhookReceiver:
        self.port = self._server.start(bind_loopback())
        return self

    def stop(self) -> None:
        self.release_answers()  # so that uvicorn can drain
        self._server.stop()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
