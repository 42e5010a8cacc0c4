"""What the gateway opens for its lifetime besides its producer: the fast-fail Redis client
of the edge (response cache, breakers, readiness), readiness checks, the ops port, and the
breaker gauges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from loguru import logger

from core.config import Settings
from core.observability.dependencies import READ_MODEL, REDIS, dependencies_for, process_kind
from core.observability.health import standard_checker
from core.observability.ops_server import OpsServer
from core.observability.probes import read_model_check, redis_check
from core.resilience.breaker import breakers
from core.resilience.fastredis import fast_fail_client

BREAKER_GAUGE_REFRESH_S = 5.0


async def _refresh_breaker_gauges() -> None:
    while True:
        await asyncio.sleep(BREAKER_GAUGE_REFRESH_S)
        await breakers.refresh_gauges()


async def _start_ops(settings: Settings, ops: OpsServer) -> bool:
    if settings.metrics.port == settings.gateway.port and settings.metrics.port != 0:
        return False  # one port: /metrics and /health/* are served by the app itself
    try:
        await ops.start()
    except OSError as exc:
        # The app's own port still serves /metrics; losing the second port is no reason to
        # refuse traffic.
        logger.error(
            "metrics port {}:{} unavailable ({}); /metrics stays on the gateway port",
            settings.metrics.host,
            settings.metrics.port,
            exc,
        )
        return False
    return True


@asynccontextmanager
async def edge_resources(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """Open what the edge needs for the app's lifetime and close it afterwards."""
    # No retries and short timeouts: the cache, the breakers and the probe all have an
    # answer for a Redis that is down, and must not wait seconds to give it.
    client = fast_fail_client(settings.redis.url) if settings.redis.url else None
    app.state.edge_redis = client
    if client is not None:
        breakers.share_through(client, settings.redis.key_prefix)
    overrides = (
        {
            REDIS: redis_check(client),
            READ_MODEL: read_model_check(client, settings.redis.key_prefix),
        }
        if client is not None
        else {}
    )
    health = standard_checker(settings, dependencies_for(process_kind()), overrides)
    app.state.health = health
    ops = OpsServer(settings.metrics.host, settings.metrics.port, ready=health.ready)
    ops_started = await _start_ops(settings, ops)
    app.state.ops_port = ops.bound_port if ops_started else None
    refresher = asyncio.create_task(_refresh_breaker_gauges())
    try:
        yield
    finally:
        refresher.cancel()
        with suppress(asyncio.CancelledError):
            await refresher
        if ops_started:
            await ops.stop()
        await health.close()
        await breakers.close()
        app.state.edge_redis = None
        if client is not None:
            await client.aclose()
