"""How the LLM routes get what reads their replies and streams: ``ReplyReading`` ports handed in by the HTTP root
(``app.py``), since issue 13 forbade api -> upstream imports."""

from __future__ import annotations

import pytest

from ledgergate.api.dialects import DIALECTS
from ledgergate.api.llm_routes import LlmRoutes
from ledgergate.app import create_app
from ledgergate.container import Container
from ledgergate.services.charge_flow import ChargeFlow
from ledgergate.upstream.reply_readings import REPLY_READINGS


def _no_flow() -> ChargeFlow:
    raise AssertionError("building the routes must not need the charge flow")


async def _no_container() -> Container:
    raise AssertionError("building the app must not start the container")


def test_every_llm_route_kind_has_exactly_one_reply_reading() -> None:
    """The routes look their reading up by ledger route when the app is built: none missing, none left over."""
    assert {dialect.route for dialect in DIALECTS} == set(REPLY_READINGS)
    assert REPLY_READINGS["embeddings"] is REPLY_READINGS["chat.completions"]


@pytest.mark.parametrize("missing", ["chat.completions", "embeddings", "messages", "responses"])
def test_routes_missing_a_reply_reading_fail_when_built_not_on_a_request(missing: str) -> None:
    """Attack (a wiring mistake): a route kind without its reading would answer its first request with a 500.
    Building the routes refuses it instead, naming the route kind."""
    readings = {route: reading for route, reading in REPLY_READINGS.items() if route != missing}
    with pytest.raises(ValueError, match=f"no ReplyReading for the LLM route '{missing}'"):
        LlmRoutes(_no_flow, readings)


def test_the_http_root_wires_every_llm_route_with_the_upstream_readings() -> None:
    """``create_app`` builds the routes with ``REPLY_READINGS``: every LLM path matches a handler."""
    app = create_app(_no_container)
    for path in ("/v1/chat/completions", "/v1/embeddings", "/v1/messages", "/v1/responses", "/chat/completions"):
        assert app.llm_routes.match({"path": path, "method": "POST"}) is not None  # type: ignore[attr-defined]
