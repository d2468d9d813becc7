"""The mock provider served by a real uvicorn on a loopback port, so tests exercise genuine HTTP."""

from __future__ import annotations

from typing import Any

from ledgergate.upstream.mock_provider import create_mock_provider_app
from tests.support.threaded_server import ThreadedServer, bind_loopback


class FakeUpstream:
    """Runs ``create_mock_provider_app()`` on 127.0.0.1 in a background thread; use ``start()``/``stop()``."""

    def __init__(self) -> None:
        self.app = create_mock_provider_app()
        self._server = ThreadedServer(self.app, "fake-upstream", lifespan="off", timeout_keep_alive=30, backlog=2048)
        self.port = 0

    @property
    def base_url(self) -> str:
        """The OpenAI-style API base, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeUpstream:
        self.port = self._server.start(bind_loopback())
        return self

    def stop(self) -> None:
        self._server.stop()

    def received(self) -> list[dict[str, Any]]:
        """A copy of the requests the fake got (path, headers, json), oldest first."""
        return list(self.app.state.received)

    def reset(self) -> None:
        self.app.state.received.clear()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
