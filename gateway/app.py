"""The gateway's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from core.config import Settings
from core.publisher import Publisher
from gateway.errors import install_error_handlers
from gateway.middleware import CorrelationMiddleware
from gateway.routes import content, health


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        publisher = Publisher(settings.kafka, source="gateway")
        await publisher.start()
        app.state.publisher = publisher
        try:
            yield
        finally:
            await publisher.stop()

    app = FastAPI(
        title="Media Gateway",
        version="0.1.0",
        description="Publishes validated events to Kafka; reads from Redis read models.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(CorrelationMiddleware)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(content.router)
    return app
