"""The gateway's FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from loguru import logger
from starlette.middleware.cors import CORSMiddleware

from assistant.mount import mount_mcp
from core.broker_wakeup import BrokerWakeup, wakeup_channel
from core.config import OPEN_CHANNELS_WARNING, Settings
from core.publisher import Publisher
from gateway.auth import device_routes, token_routes
from gateway.auth import routes as auth_routes
from gateway.auth.dependencies import Authenticator
from gateway.auth.errors import install_auth_error_handlers
from gateway.auth.key_sync import key_sync
from gateway.errors import install_error_handlers
from gateway.fast_lane import FastLaneMiddleware
from gateway.json_body import install_body_schemas
from gateway.middleware.body_limit import BodyLimitMiddleware
from gateway.middleware.correlation import CorrelationMiddleware
from gateway.middleware.http_metrics import HttpMetricsMiddleware
from gateway.middleware.idempotency import IdempotencyMiddleware
from gateway.middleware.near_cache import NearCache
from gateway.middleware.rate_limit import install_rate_limiting
from gateway.middleware.response_cache import CachePolicy, ResponseCacheMiddleware
from gateway.middleware.server_error import ServerErrorMiddleware
from gateway.openapi_responses import install_common_responses
from gateway.openapi_security import install_security
from gateway.profiles import install_profile_handlers
from gateway.resources import edge_resources
from gateway.routes import (
    admin_keys,
    commands,
    content,
    content_read,
    device_socket,
    devices,
    feedback,
    health,
    ingest,
    notifications,
    problems,
    profiles,
    progress,
    realtime,
    realtime_token,
    recommendations,
    watchlist,
)
from gateway.routes import discovery as discovery_routes
from gateway.routes import suggest as suggest_routes
from gateway.routes.contracts import router as contracts_router
from gateway.shutdown import refuse_writes_on_exit_signals
from gateway.webapp import mount_webapp

# What a browser app may send and read across origins (docs/HTTP_CONTRACT.md, CORS).
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CORS_REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Device-ID",
    "X-Profile-ID",
    "Idempotency-Key",
    "If-None-Match",
    "Last-Event-ID",
    "X-Request-ID",
]
CORS_EXPOSED_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "ETag",
    "Idempotent-Replayed",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "WWW-Authenticate",
]


def install_cors(app: FastAPI, settings: Settings) -> None:
    """CORS for GATEWAY_CORS_ORIGINS; none configured, no CORS header is ever sent. Outside
    the rate limiter and the body limit, so a preflight is answered before either counts it,
    and inside the request id, so it is logged. `*` with credentials is refused by the
    settings (core/config.py) before this runs."""
    gateway = settings.gateway
    if not gateway.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=gateway.cors_origins,
        allow_credentials=gateway.cors_allow_credentials,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=600,
    )


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One client for every Redis user in the gateway (API keys, rate limits, cache, health).
        # Connects lazily: the gateway starts while Redis is down. Short timeouts: a Redis that
        # hangs must not hold requests longer than the fallbacks need to take over.
        app.state.redis = aioredis.from_url(
            settings.redis.require_url(), socket_connect_timeout=1.0, socket_timeout=1.0
        )
        publisher = Publisher(
            settings.kafka,
            source="gateway",
            wakeup=BrokerWakeup(app.state.redis, wakeup_channel(settings)),
        )
        await publisher.start()
        app.state.publisher = publisher
        try:
            async with (
                edge_resources(app, settings),
                key_sync(
                    app.state.authenticator.verifier,
                    app.state.redis,
                    settings.redis.key_prefix,
                    settings.auth.revocation_poll_s,
                    settings.redis.require_url(),
                ),
            ):
                # Everything built at start (routes, schemas, pydantic validators) is moved out
                # of the collector's reach: full collections walked it all, a tenth of the CPU
                # per request at load (docs/GATEWAY_PERFORMANCE.md).
                gc.collect()
                gc.freeze()
                with refuse_writes_on_exit_signals(publisher):
                    yield
        finally:
            await realtime.close_hub(app)
            await realtime_token.close_access(app)
            await publisher.stop()
            await app.state.redis.aclose()

    app = FastAPI(
        title="Media Gateway",
        version="0.1.0",
        description="Publishes validated events to Kafka; reads from Redis read models.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.authenticator = Authenticator(settings.auth, settings.redis.key_prefix)
    if settings.pubnub.enabled and not settings.pubnub.access_manager:
        logger.warning(OPEN_CHANNELS_WARNING)
    if not app.state.authenticator.verifier.accepts_tokens:
        logger.warning(
            "no AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_URL: bearer tokens are refused"
            " until the token service (worker group auth) publishes its keys"
        )
    # Innermost first: the fast lane serves the hottest routes without FastAPI's router, inside
    # every middleware below (gateway/fast_lane.py).
    if settings.gateway.fast_lane:
        app.add_middleware(FastLaneMiddleware, fastapi_app=app)
    # Outside the fast lane (both lanes are covered), inside the rate limiter, which has
    # authenticated the caller the stored answers are keyed by.
    app.add_middleware(
        IdempotencyMiddleware,
        redis=lambda: getattr(app.state, "redis", None),
        key_prefix=settings.redis.key_prefix,
        ttl_s=settings.gateway.idempotency_ttl_s,
        lock_s=settings.gateway.idempotency_lock_s,
    )
    # The rate limiter authenticates (to know the tier) right in front of the
    # routes, so requests with a credential, which the response cache never serves, are always
    # checked; anonymous cache hits are answered before it, uncounted (docs/AUTH.md).
    if settings.rate_limit.enabled:
        install_rate_limiting(
            app,
            settings.redis.key_prefix,
            settings.rate_limit.redis_retry_s,
            settings.rate_limit.auth_failures_per_minute,
        )
    # Response cache and HTTP metrics inside the correlation id (Starlette makes the last
    # added middleware the outermost), so a cache hit is still logged with its request id.
    if settings.response_cache.enabled:
        rc = settings.response_cache
        near = NearCache[object](rc.near_ttl_s, rc.near_max_entries) if rc.near_ttl_s else None
        app.state.near_cache = near
        app.add_middleware(
            ResponseCacheMiddleware,
            redis=lambda: getattr(app.state, "edge_redis", None),
            key_prefix=settings.redis.key_prefix,
            policy=CachePolicy(rc.content_ttl_s, rc.default_ttl_s, rc.max_body_bytes),
            near=near,
        )
    # Outside the cache, so hits are counted as requests too.
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.gateway.max_body_bytes)
    # Just inside the request id: any exception of the layers below is a logged 500 problem.
    app.add_middleware(ServerErrorMiddleware)
    install_cors(app, settings)
    app.add_middleware(CorrelationMiddleware)
    install_error_handlers(app)
    install_auth_error_handlers(app)
    install_profile_handlers(app)
    app.include_router(health.router)
    app.include_router(content.router)
    app.include_router(content_read.router)
    app.include_router(ingest.router)
    app.include_router(watchlist.router)
    app.include_router(progress.router)
    app.include_router(devices.router)
    app.include_router(commands.router)
    app.include_router(realtime.router)
    app.include_router(device_socket.router)
    app.include_router(realtime_token.router)
    app.include_router(suggest_routes.router)
    app.include_router(discovery_routes.router)
    app.include_router(recommendations.router)
    app.include_router(feedback.router)
    app.include_router(auth_routes.router)
    app.include_router(token_routes.router)
    app.include_router(device_routes.router)
    app.include_router(profiles.router)
    app.include_router(notifications.router)
    app.include_router(admin_keys.router)
    app.include_router(contracts_router)
    app.include_router(problems.router)
    install_body_schemas(app)
    install_common_responses(app)
    install_security(app)
    if settings.mcp.enabled:
        mount_mcp(app, settings)  # /mcp for assistants (docs/MCP.md)
    mount_webapp(app)  # /app/, the reference web app's static files (docs/WEB_APP.md)
    return app
