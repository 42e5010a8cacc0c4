"""Readiness: check each dependency a process uses, at once, each with its own timeout.

The answer is `{"status": "healthy|degraded|unhealthy", "components": {name: {"status",
"latency_ms", "error", "required"}}}`: unhealthy (HTTP 503) when a required dependency is
down, degraded (200) when only optional ones are, healthy (200) otherwise. What is required
for which process is declared in core/observability/dependencies.py.

A check is an async callable that raises when the dependency is not usable and may return
extra fields for its component (e.g. the partitions a worker was assigned).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka.client import AIOKafkaClient

from core.config import Settings
from core.observability.dependencies import (
    KAFKA,
    POSTGRES,
    PUBNUB,
    QDRANT,
    READ_MODEL,
    REDIS,
    Need,
)
from core.resilience.fastredis import fast_fail_client

Check = Callable[[], Awaitable[Mapping[str, Any] | None]]

DEFAULT_TIMEOUT_S = 1.0
HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
PUBNUB_ORIGIN = "ps.pndsn.com"  # the SDK's default origin


@dataclass(frozen=True)
class ComponentResult:
    name: str
    ok: bool
    latency_ms: float
    required: bool
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.details,
            "status": HEALTHY if self.ok else UNHEALTHY,
            "latency_ms": round(self.latency_ms, 1),
            "error": self.error,
            "required": self.required,
        }


def aggregate(results: list[ComponentResult]) -> tuple[int, dict[str, Any]]:
    """HTTP status and body for these component results."""
    if any(not r.ok and r.required for r in results):
        status, code = UNHEALTHY, 503
    elif any(not r.ok for r in results):
        status, code = DEGRADED, 200
    else:
        status, code = HEALTHY, 200
    return code, {"status": status, "components": {r.name: r.as_dict() for r in results}}


async def run_check(
    name: str, check: Check | None, required: bool, timeout_s: float
) -> ComponentResult:
    started = time.perf_counter()
    if check is None:
        return ComponentResult(name, False, 0.0, required, "not configured for this process")
    try:
        details = await asyncio.wait_for(check(), timeout_s)
    except TimeoutError:
        error = f"no answer within {timeout_s:g} s"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    else:
        elapsed = (time.perf_counter() - started) * 1000
        return ComponentResult(name, True, elapsed, required, None, dict(details or {}))
    return ComponentResult(name, False, (time.perf_counter() - started) * 1000, required, error)


class HealthChecker:
    """The readiness of one process: its dependency table and a check for each entry."""

    def __init__(
        self,
        needs: Mapping[str, Need],
        checks: Mapping[str, Check],
        timeout_s: float = DEFAULT_TIMEOUT_S,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.needs = dict(needs)
        self.checks = dict(checks)
        self.timeout_s = timeout_s
        self._close = close

    async def ready(self) -> tuple[int, dict[str, Any]]:
        results = await asyncio.gather(
            *(
                run_check(name, self.checks.get(name), need == Need.REQUIRED, self.timeout_s)
                for name, need in self.needs.items()
            )
        )
        return aggregate(list(results))

    async def close(self) -> None:
        if self._close is not None:
            await self._close()


# ------------------------------------------------------------------ standard checks


def kafka_check(bootstrap: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """A metadata request through a short-lived client: nothing stale survives an outage."""

    async def check() -> Mapping[str, Any]:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap,
            client_id="mgw-health",
            request_timeout_ms=int(timeout_s * 1000),
        )
        try:
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
            brokers = len(metadata.brokers())
            if not brokers:
                raise RuntimeError("metadata lists no brokers")
            return {"brokers": brokers}
        finally:
            await client.close()

    return check


def postgres_check(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """SELECT 1 on a connection of its own, so a busy pool does not read as an outage."""

    async def check() -> None:
        conn = await asyncpg.connect(url, timeout=timeout_s)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close(timeout=timeout_s)

    return check


def redis_check(client: Any) -> Check:
    async def check() -> None:
        await client.ping()

    return check


def qdrant_check(url: str, api_key: str | None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    async def check() -> Mapping[str, Any]:
        from qdrant_client import AsyncQdrantClient

        client = AsyncQdrantClient(url=url, api_key=api_key, timeout=max(1, int(timeout_s)))
        try:
            collections = await client.get_collections()
            return {"collections": len(collections.collections)}
        finally:
            await client.close()

    return check


async def _embedded_qdrant() -> Mapping[str, Any]:
    # Without QDRANT_URL the vector engine runs inside the process that uses it: it is up
    # when the process is. A process with a vector store passes its own check instead.
    return {"mode": "embedded"}


def pubnub_check(origin: str, ssl: bool, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """PubNub's time endpoint: answers without keys, so it tests reachability alone."""

    async def check() -> None:
        import aiohttp

        url = f"{'https' if ssl else 'http'}://{origin}/time/0"
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            if resp.status >= 400:
                raise RuntimeError(f"{url} answered {resp.status}")

    return check


def read_model_check(client: Any, prefix: str) -> Check:
    """Degraded while the read model is missing (Redis lost it) or being rebuilt."""

    async def check() -> Mapping[str, Any]:
        from core.read_model import STATE_READY, STATE_REBUILDING, read_state

        state = await read_state(client, prefix)
        if state == STATE_READY:
            return {"state": state}
        if state == STATE_REBUILDING:
            raise RuntimeError("read model is being rebuilt from PostgreSQL; reads may 404")
        raise RuntimeError(
            "read model missing in Redis; the readmodel worker rebuilds it "
            "(or run `mgw readmodel rebuild`)"
        )

    return check


def standard_checker(
    settings: Settings,
    needs: Mapping[str, Need],
    overrides: Mapping[str, Check] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> HealthChecker:
    """Checks built from settings for the dependencies in `needs`; `overrides` win."""
    checks: dict[str, Check] = {}
    redis_client = None
    if KAFKA in needs:
        checks[KAFKA] = kafka_check(settings.kafka.bootstrap, timeout_s)
    if POSTGRES in needs and settings.postgres.url:
        checks[POSTGRES] = postgres_check(settings.postgres.url, timeout_s)
    if REDIS in needs and settings.redis.url:
        redis_client = fast_fail_client(settings.redis.url, timeout_s)
        checks[REDIS] = redis_check(redis_client)
        if READ_MODEL in needs:
            checks[READ_MODEL] = read_model_check(redis_client, settings.redis.key_prefix)
    if QDRANT in needs:
        q = settings.qdrant
        checks[QDRANT] = qdrant_check(q.url, q.api_key, timeout_s) if q.url else _embedded_qdrant
    if PUBNUB in needs and settings.pubnub.subscribe_key:
        pn = settings.pubnub
        checks[PUBNUB] = pubnub_check(pn.origin or PUBNUB_ORIGIN, pn.ssl, timeout_s)
    checks.update(overrides or {})

    async def close() -> None:
        if redis_client is not None:
            await redis_client.aclose()

    return HealthChecker(needs, checks, timeout_s, close)
