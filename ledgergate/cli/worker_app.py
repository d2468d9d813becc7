"""The app each worker process of ``ledgergate serve --workers N`` builds: uvicorn's supervisor starts workers by
import string, so what ``serve`` resolved (config file, demo mode, the demo master key) reaches them through the
environment, and every worker loads the same config the same way."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from ledgergate.app import create_app
from ledgergate.config import load_config
from ledgergate.container import build_container

CONFIG_PATH_ENV = "LEDGERGATE_SERVE_CONFIG"
DEMO_BASE_URL_ENV = "LEDGERGATE_SERVE_DEMO_BASE_URL"


def app_from_environment() -> FastAPI:
    config_path = os.environ.get(CONFIG_PATH_ENV) or None
    demo_base_url = os.environ.get(DEMO_BASE_URL_ENV) or None
    demo = demo_base_url is not None
    config = load_config(Path(config_path) if config_path else None, demo=demo)

    async def factory():  # type: ignore[no-untyped-def]
        return await build_container(config, demo_base_url=demo_base_url)

    return create_app(factory, demo=demo)
