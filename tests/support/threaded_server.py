"""An ASGI app served by uvicorn in a background thread on a loopback socket: the test servers' shared core."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from tests.support.timing import scaled

# Base values (see tests/support/timing.py): a gateway's start-up runs the migrations and builds the container.
STARTUP_TIMEOUT_S = scaled(120.0)
SHUTDOWN_TIMEOUT_S = scaled(30.0)


def bind_loopback(port: int = 0) -> socket.socket:
    """A socket bound on 127.0.0.1 (``port`` if it is free, else any); binding before the thread starts gives a
    free port with no race and makes it known at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.bind(("127.0.0.1", 0))
    return sock


class ThreadedServer:
    def __init__(self, app: Any, name: str, **config: Any) -> None:
        self._config = uvicorn.Config(app, log_level="warning", access_log=False, ws="none", **config)
        self._name = name
        self.server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def start(self, sock: socket.socket) -> int:
        """Serve on ``sock`` until ``stop``; returns the port once uvicorn has started."""
        self._socket = sock
        self.server = uvicorn.Server(self._config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name=self._name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self._name} failed to start (see the log above)")
            time.sleep(0.01)
        port: int = sock.getsockname()[1]
        return port

    def stop(self) -> bool:
        """Ask uvicorn to drain and exit; False if the thread did not stop in time."""
        stopped = True
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(SHUTDOWN_TIMEOUT_S)
            stopped = not self._thread.is_alive()
        if self._socket is not None:
            self._socket.close()
        self.server = self._thread = self._socket = None
        return stopped
