"""The HTTP root: the ASGI app that mounts the LLM routes (raw ASGI, dispatched first), the admin API (FastAPI),
the dashboard, health and the demo upstream. It sits above ``api`` and ``dashboard`` so neither imports the other."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from ledgergate import __version__
from ledgergate.api.admin import alerts as alert_routes
from ledgergate.api.admin import budgets, customers, organizations, tags, teams, users
from ledgergate.api.admin import keys as key_routes
from ledgergate.api.admin import spend as spend_routes
from ledgergate.api.body_limits import BodyTooLarge, check_declared_length, limited_receive
from ledgergate.api.errors import ApiError, exception_response, install_error_handlers
from ledgergate.api.json_bodies import checked_json_receive
from ledgergate.api.llm_routes import LlmRoutes
from ledgergate.config import GatewaySettings
from ledgergate.container import Container
from ledgergate.dashboard.mount import mount_dashboard
from ledgergate.services.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ledgergate.upstream.mock_provider import create_mock_provider_app
from ledgergate.upstream.reply_readings import REPLY_READINGS

DEMO_UPSTREAM_PREFIX = "/demo-upstream"


class GatewayApp(FastAPI):
    """FastAPI for the admin API, dashboard and health; the LLM routes are dispatched before its middleware stack
    and router are entered (``api/llm_routes.py``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The HTTP root sits above api and upstream: it gives the routes the upstream's readers of each route kind.
        self.llm_routes = LlmRoutes(lambda: self._running_container().flow, REPLY_READINGS)

    def _running_container(self) -> Container:
        container: Container = self.state.container
        return container

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        handle = self.llm_routes.match(scope)
        container: Container | None = getattr(self.state, "container", None)  # None only before start-up
        settings = container.config.settings if container is not None else GatewaySettings()
        # The demo upstream receives what the LLM routes forward, so it takes their limit.
        llm_sized = handle is not None or scope["path"].startswith(DEMO_UPSTREAM_PREFIX)
        limit_bytes = settings.max_llm_request_body_bytes if llm_sized else settings.max_request_body_bytes
        try:
            check_declared_length(scope, limit_bytes)
            receive = limited_receive(receive, limit_bytes)
            if handle is not None:
                await handle(scope, receive, send)  # reads the whole body before it sends anything
                return
            if not llm_sized:
                receive = await checked_json_receive(scope, receive)  # admin bodies: a duplicate key is a 400
        except (BodyTooLarge, ApiError) as exc:
            await exception_response(exc)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)  # FastAPI answers BodyTooLarge itself (api/errors.py)


def create_app(container_factory: Callable[[], Awaitable[Container]], *, demo: bool = False) -> FastAPI:
    """Build the app; the container is created at start-up (migrations, writer) and closed at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        container = await container_factory()
        app.state.container = container
        try:
            yield
        finally:
            await container.aclose()

    app = GatewayApp(title="ledgergate", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(key_routes.router)
    app.include_router(spend_routes.router)
    app.include_router(alert_routes.router)
    for entity_routes in (users, teams, organizations, customers, tags, budgets):
        app.include_router(entity_routes.router)

    async def liveliness(_: Request) -> Response:
        return Response(orjson.dumps({"status": "healthy"}), media_type="application/json")

    async def readiness(request: Request) -> Response:
        container: Container = request.app.state.container
        report = await container.readiness.report()
        return Response(
            orjson.dumps(report.body), status_code=200 if report.healthy else 503, media_type="application/json"
        )

    async def metrics(request: Request) -> Response:
        container: Container = request.app.state.container
        if container.config.settings.metrics_auth == "admin":
            principal = await container.authenticator.principal(request)
            if not principal.can_read_all:
                raise ApiError(403, "only a proxy admin or proxy admin viewer may read metrics", "permission_error")
        return Response(await container.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    app.add_route("/health/liveliness", liveliness, methods=["GET"], include_in_schema=False)
    app.add_route("/health/readiness", readiness, methods=["GET"], include_in_schema=False)
    # LiteLLM users probe GET /health first. LiteLLM answers it by calling every model (it needs a key and spends
    # tokens); here it is the readiness probe: no key, no upstream call, nothing but reachability of the stores.
    app.add_route("/health", readiness, methods=["GET"], include_in_schema=False)
    app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    mount_dashboard(app)
    if demo:
        app.router.routes.append(Mount(DEMO_UPSTREAM_PREFIX, create_mock_provider_app()))
    return app
