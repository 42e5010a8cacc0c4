"""The gateway's operational side: response cache, HTTP metrics, readiness, breakers, ops port.

`install_edge_middleware` must run before CorrelationMiddleware is added: Starlette makes the
last added middleware the outermost, and the cache and the HTTP metrics belong inside the
correlation id (a cache hit is then still logged with its request id).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from loguru import logger

from core.config import Settings
from core.observability.dependencies import READ_MODEL, REDIS, dependencies_for, process_kind
from core.observability.health import read_model_check, redis_check, standard_checker
from core.observability.ops_server import OpsServer
from core.resilience.breaker import breakers
from core.resilience.fastredis import fast_fail_client
from gateway.cache import CachePolicy, ResponseCacheMiddleware
from gateway.metrics_middleware import HttpMetricsMiddleware

BREAKER_GAUGE_REFRESH_S = 5.0


def install_edge_middleware(app: FastAPI, settings: Settings) -> None:
    if settings.response_cache.enabled:
        rc = settings.response_cache
        app.add_middleware(
            ResponseCacheMiddleware,
            redis=lambda: getattr(app.state, "edge_redis", None),
            key_prefix=settings.redis.key_prefix,
            policy=CachePolicy(rc.content_ttl_s, rc.default_ttl_s, rc.max_body_bytes),
        )
    # Outside the cache, so hits are counted as requests too.
    app.add_middleware(HttpMetricsMiddleware)


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
