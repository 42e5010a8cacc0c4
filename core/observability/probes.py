"""Probes of individual services for readiness: each returns a check, an async callable that
raises when its service is not usable and may return extra fields for its component.
core/observability/health.py runs them and aggregates the answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg

from core.kafka import new_metadata_client

Check = Callable[[], Awaitable[Mapping[str, Any] | None]]

DEFAULT_TIMEOUT_S = 1.0
PUBNUB_ORIGIN = "ps.pndsn.com"  # the SDK's default origin


class CheckFailed(RuntimeError):
    """Raised by a check with a reason in this code base's own words (no exception text, no
    address), which the readiness body shows as it is; any other exception is reduced to a
    short reason there (core/observability/reasons.py)."""


class NotUsableYet(RuntimeError):
    """Raised by a check whose dependency answers but cannot serve yet: `state` is the
    component's status ("being rebuilt") in place of "unhealthy"."""

    def __init__(self, state: str, reason: str) -> None:
        super().__init__(reason)
        self.state = state


def kafka_check(bootstrap: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """A metadata request through a short-lived client: nothing stale survives an outage."""

    async def check() -> Mapping[str, Any]:
        client = new_metadata_client(bootstrap, "mgw-health", int(timeout_s * 1000))
        try:
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
            brokers = len(metadata.brokers())
            if not brokers:
                raise CheckFailed("metadata lists no brokers")
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


async def embedded_qdrant() -> Mapping[str, Any]:
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
        from agreements.read_model import STATE_READY, STATE_REBUILDING, state_key

        raw = await client.get(state_key(prefix))
        state = raw.decode() if raw else None
        if state == STATE_READY:
            return {"state": state}
        if state == STATE_REBUILDING:
            raise NotUsableYet(
                "being rebuilt", "read model is being rebuilt from PostgreSQL; reads may 404"
            )
        raise NotUsableYet(
            "missing",
            "read model missing in Redis; the readmodel worker rebuilds it "
            "(or run `mgw readmodel rebuild`)",
        )

    return check
