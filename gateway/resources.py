"""What the gateway opens for its lifetime besides its producer: the fast-fail Redis client
of the edge (response cache, breakers, readiness), readiness checks, the ops port, the
breaker gauges, and the near cache's invalidation subscription."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from loguru import logger

from core.config import Settings
from core.observability.dependencies import READ_MODEL, REDIS, dependencies_for, process_kind
from core.observability.health import standard_checker
from core.observability.ops_server import OpsServer, ReadyCheck
from core.observability.probes import read_model_check, redis_check
from core.resilience.breaker import breakers
from core.resilience.fastredis import fast_fail_client
from core.stack_file import record_port
from gateway.middleware.near_cache import follow_invalidations

BREAKER_GAUGE_REFRESH_S = 5.0


async def _refresh_breaker_gauges() -> None:
    while True:
        await asyncio.sleep(BREAKER_GAUGE_REFRESH_S)
        await breakers.refresh_gauges()


def ops_ports(settings: Settings) -> list[int]:
    """Ports this process may serve /metrics and /health on: with --workers N each process
    takes the first free one of METRICS_PORT .. METRICS_PORT+N-1 (one scrape target each)."""
    base = settings.metrics.port
    if base == 0:
        return [0]
    # run_gateway sets GATEWAY_WORKERS for its processes; a lone process has only its own.
    return [base + i for i in range(settings.gateway.workers or 1)]


async def _start_ops(settings: Settings, ready: ReadyCheck) -> OpsServer | None:
    if settings.metrics.port == settings.gateway.port and settings.metrics.port != 0:
        return None  # one port: /metrics and /health/* are served by the app itself
    wanted = ops_ports(settings)
    # Every port of the range taken (another program holds one): a port the OS picks, so
    # this process is still scraped; it is recorded for `mgw up` and named in the log.
    for port in wanted if 0 in wanted else [*wanted, 0]:
        ops = OpsServer(settings.metrics.host, port, ready=ready)
        try:
            await ops.start()
        except OSError as exc:
            logger.debug("gateway ops port {}:{} unavailable: {}", settings.metrics.host, port, exc)
            continue
        if port == 0 and 0 not in wanted:
            # A warning: the process serves and is scraped where `mgw up` records it; only a
            # static scrape config of the range misses it.
            logger.warning(
                "gateway ops ports {} on {} are all taken; serving /metrics and /health on {} "
                "instead (a scrape config naming the range misses this process)",
                ", ".join(map(str, wanted)),
                settings.metrics.host,
                ops.bound_port,
            )
        return ops
    # The app's own port still serves /metrics; losing the second port is no reason to
    # refuse traffic.
    logger.error(
        "no ops port on {} (tried {}); /metrics stays on the gateway port",
        settings.metrics.host,
        ", ".join(map(str, wanted)),
    )
    return None


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
    ops = await _start_ops(settings, health.ready)
    app.state.ops_port = ops.bound_port if ops is not None else None
    recorded = record_port("gateway-ops", ops.bound_port) if ops and ops.bound_port else None
    tasks = [asyncio.create_task(_refresh_breaker_gauges())]
    near = getattr(app.state, "near_cache", None)
    if near is not None and settings.redis.url:
        tasks.append(
            asyncio.create_task(
                follow_invalidations(near, settings.redis.url, settings.redis.key_prefix)
            )
        )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        if ops is not None:
            await ops.stop()
        if recorded is not None:
            recorded.unlink(missing_ok=True)
        await health.close()
        await breakers.close()
        app.state.edge_redis = None
        if client is not None:
            await client.aclose()
