"""Run the gateway under uvicorn, logging through our own sink."""

from __future__ import annotations

import uvicorn

from core.config import Settings
from core.observability.logging import init_logging
from gateway.app import create_app


def run_gateway(settings: Settings) -> None:
    init_logging(settings.log.level, settings.log.format, process="gateway")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.gateway.host,
        port=settings.gateway.port,
        log_config=None,  # keep uvicorn from replacing our logging setup
        access_log=False,  # CorrelationMiddleware logs each request with its id
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
