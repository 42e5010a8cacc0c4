"""The response cache's near tier on a real Redis: hits without a round trip, dropped by the
invalidation message of `invalidate_content()`, and off while that channel is not followed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from prometheus_client import REGISTRY

from agents.readmodel.store import invalidate_content
from core.config import Settings
from gateway.middleware.near_cache import NearCache, follow_invalidations
from gateway.middleware.response_cache import NEAR_LABEL, CachePolicy, ResponseCacheMiddleware


def near_hits() -> float:
    return REGISTRY.get_sample_value("cache_hits_total", {"cache": NEAR_LABEL}) or 0.0


async def until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def served(
    settings: Settings, redis_client: aioredis.Redis
) -> AsyncIterator[tuple[httpx.AsyncClient, NearCache[object], dict[str, str], str]]:
    prefix = f"{settings.redis.key_prefix}:nc{uuid.uuid4().hex[:6]}"
    titles = {"t1": "Heat", "t2": "Ronin"}
    near = NearCache[object](ttl_s=30.0, max_entries=100)
    app = FastAPI()

    @app.get("/api/v1/content/{content_id}")
    async def content(content_id: str) -> dict[str, str]:
        return {"id": content_id, "title": titles[content_id]}

    app.add_middleware(
        ResponseCacheMiddleware,
        redis=lambda: redis_client,
        key_prefix=prefix,
        policy=CachePolicy(),
        near=near,
    )
    follower = asyncio.create_task(follow_invalidations(near, settings.redis.require_url(), prefix))
    await until(lambda: near.active)
    try:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client, near, titles, prefix
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)


async def test_a_redis_hit_is_then_served_in_process_until_its_title_is_invalidated(
    served: tuple[httpx.AsyncClient, NearCache[object], dict[str, str], str],
    redis_client: aioredis.Redis,
) -> None:
    client, near, titles, prefix = served
    first = await client.get("/api/v1/content/t1")
    assert first.headers["x-cache"] == "MISS"
    second = await client.get("/api/v1/content/t1")  # from Redis, and now kept here
    assert second.headers["x-cache"] == "HIT" and len(near) == 1
    before = near_hits()
    third = await client.get("/api/v1/content/t1")
    assert near_hits() == before + 1, "answered by the near tier"
    assert third.content == first.content and third.headers["etag"] == first.headers["etag"]
    assert third.headers["cache-control"].startswith("public, max-age=")
    # A 304 from the near tier too.
    again = await client.get("/api/v1/content/t1", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304

    await client.get("/api/v1/content/t2")
    await client.get("/api/v1/content/t2")
    assert len(near) == 2
    titles["t1"] = "Heat (Director's Cut)"
    # Another process (the read-model agent) invalidates through Redis.
    assert await invalidate_content(redis_client, prefix, "t1") == 1
    await until(lambda: len(near) == 1)  # the message arrived: t1's copy is gone, t2's stays
    fresh = await client.get("/api/v1/content/t1")
    assert fresh.headers["x-cache"] == "MISS" and fresh.json()["title"] == "Heat (Director's Cut)"


async def test_nothing_is_served_in_process_while_the_channel_is_not_followed(
    served: tuple[httpx.AsyncClient, NearCache[object], dict[str, str], str],
) -> None:
    client, near, _, _ = served
    await client.get("/api/v1/content/t2")
    await client.get("/api/v1/content/t2")
    assert len(near) == 1
    near.active = False  # as when the subscription is lost
    before = near_hits()
    answer = await client.get("/api/v1/content/t2")
    assert answer.headers["x-cache"] == "HIT" and near_hits() == before  # Redis answered
