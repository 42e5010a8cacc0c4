"""The response cache middleware on a real Redis, mounted on a small app of the test's own."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY

from agents.readmodel.store import invalidate_content
from agreements.response_cache import index_key
from core.config import Settings
from core.embedded import free_port, start_redis
from core.resilience.fastredis import fast_fail_client
from gateway.middleware.response_cache import (
    CachePolicy,
    ResponseCacheMiddleware,
    cache_key,
    content_id_of,
    etag_matches,
    normalized_query,
    storable,
    strong_etag,
)

STRONG_ETAG = re.compile(r'^"[0-9a-f]{32}"$')


@dataclass
class Backend:
    """What the routes serve, and how often they were asked."""

    titles: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)

    def count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1


def make_app(
    redis: Callable[[], aioredis.Redis | None],
    prefix: str,
    policy: CachePolicy,
    backend: Backend,
    recheck_s: float = 5.0,
) -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/content/{content_id}")
    async def content(content_id: str) -> dict[str, str]:
        backend.count("content")
        title = backend.titles.get(content_id)
        if backend.gate is not None:  # data read; the answer is still on its way
            backend.entered.set()
            await backend.gate.wait()
        if title is None:
            raise HTTPException(404, "no such title")
        return {"id": content_id, "title": title}

    @app.get("/api/v1/content/{content_id}/availability")
    async def availability(content_id: str, region: str = "us") -> dict[str, str]:
        backend.count("availability")
        return {"id": content_id, "region": region}

    @app.get("/api/v1/genres")
    async def genres() -> list[str]:
        backend.count("genres")
        return ["drama", "crime"]

    @app.get("/api/v1/me")
    async def me() -> JSONResponse:
        backend.count("me")
        return JSONResponse({"user": "u1"}, headers={"Cache-Control": "no-store"})

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        backend.count("live")
        return {"status": "alive"}

    app.add_middleware(
        ResponseCacheMiddleware, redis=redis, key_prefix=prefix, policy=policy, recheck_s=recheck_s
    )
    return app


@pytest.fixture
def prefix(settings: Settings) -> str:
    # Each test its own key space inside the session prefix: entries never leak across tests.
    return f"{settings.redis.key_prefix}:rc{uuid.uuid4().hex[:6]}"


@pytest.fixture
def backend() -> Backend:
    return Backend(titles={"t1": "Heat", "t2": "Ronin"})


@pytest.fixture
async def client(
    redis_client: aioredis.Redis, prefix: str, backend: Backend
) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(lambda: redis_client, prefix, CachePolicy(), backend)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        yield c


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"cache": "response"}) or 0.0


# ---------------------------------------------------------------- pure rules


def test_key_ignores_query_order_but_not_values() -> None:
    a = cache_key("p", "GET", "/api/v1/x", b"b=2&a=1")
    assert a == cache_key("p", "GET", "/api/v1/x", "a=1&b=2")
    assert a != cache_key("p", "GET", "/api/v1/x", "a=1&b=3")
    assert a.startswith("p:respcache:")
    assert normalized_query(b"z=&a=1") == "a=1&z="


def test_etag_rules() -> None:
    tag = strong_etag(b"{}")
    assert STRONG_ETAG.match(tag)
    assert tag == strong_etag(b"{}") and tag != strong_etag(b"[]")
    assert etag_matches(tag, tag)
    assert etag_matches(f'"nope", {tag}', tag)
    assert etag_matches(f"W/{tag}", tag)  # If-None-Match compares weakly
    assert etag_matches("*", tag)
    assert not etag_matches('"nope"', tag)


def test_content_id_and_storable() -> None:
    assert content_id_of("/api/v1/content/ABC/availability") == "abc"
    assert content_id_of("/api/v1/content/") is None
    assert content_id_of("/api/v1/genres") is None
    assert storable(200, [(b"content-type", b"application/json")])
    assert not storable(404, [])
    assert not storable(206, [])
    assert not storable(200, [(b"cache-control", b"no-store")])
    assert not storable(200, [(b"Cache-Control", b"private, max-age=5")])
    assert not storable(200, [(b"cache-control", b"no-cache")])
    assert not storable(200, [(b"set-cookie", b"a=b")])


def test_policy_ttls() -> None:
    policy = CachePolicy()
    assert policy.ttl_for("/api/v1/content/t1") == 300
    assert policy.ttl_for("/api/v1/content/t1/availability") == 300
    assert policy.ttl_for("/api/v1/genres") == 60
    assert policy.ttl_for("/health/live") is None
    assert policy.ttl_for("/metrics") is None
    assert policy.ttl_for("/docs") is None


# ---------------------------------------------------------------- on real Redis


async def test_miss_then_hit_with_stable_strong_etag(
    client: httpx.AsyncClient, backend: Backend, redis_client: aioredis.Redis, prefix: str
) -> None:
    hits, misses = counter("cache_hits_total"), counter("cache_misses_total")
    first = await client.get("/api/v1/content/t1")
    second = await client.get("/api/v1/content/t1")
    assert first.status_code == second.status_code == 200
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert backend.calls["content"] == 1
    assert first.content == second.content
    assert first.json() == {"id": "t1", "title": "Heat"}
    assert second.headers["content-type"] == "application/json"
    etag = first.headers["etag"]
    assert STRONG_ETAG.match(etag) and second.headers["etag"] == etag
    assert etag == strong_etag(first.content)
    assert counter("cache_hits_total") == hits + 1
    assert counter("cache_misses_total") == misses + 1
    # Every key we wrote lives under the prefix.
    keys = [k.decode() async for k in redis_client.scan_iter(match=f"{prefix}*")]
    assert keys and all(k.startswith(prefix + ":respcache:") for k in keys)


async def test_cache_control_max_age_counts_down(client: httpx.AsyncClient) -> None:
    miss = await client.get("/api/v1/content/t1")
    assert miss.headers["cache-control"] == "public, max-age=300"
    await asyncio.sleep(1.1)
    hit = await client.get("/api/v1/content/t1")
    max_age = int(hit.headers["cache-control"].removeprefix("public, max-age="))
    assert 290 <= max_age < 300
    other = await client.get("/api/v1/genres")
    assert other.headers["cache-control"] == "public, max-age=60"


async def test_if_none_match_gets_304_from_the_cache(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    etag = (await client.get("/api/v1/content/t1")).headers["etag"]
    for header in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        resp = await client.get("/api/v1/content/t1", headers={"If-None-Match": header})
        assert resp.status_code == 304, header
        assert resp.content == b""
        assert resp.headers["etag"] == etag and resp.headers["x-cache"] == "HIT"
        assert "max-age=" in resp.headers["cache-control"]
    stale = await client.get("/api/v1/content/t1", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.json()["title"] == "Heat"
    assert backend.calls["content"] == 1


async def test_if_none_match_gets_304_from_a_fresh_response(
    client: httpx.AsyncClient, backend: Backend, redis_client: aioredis.Redis, prefix: str
) -> None:
    etag = (await client.get("/api/v1/content/t1")).headers["etag"]
    assert await invalidate_content(redis_client, prefix, "t1") == 1
    resp = await client.get("/api/v1/content/t1", headers={"If-None-Match": etag})
    assert resp.status_code == 304 and resp.content == b""
    assert resp.headers["x-cache"] == "MISS" and resp.headers["etag"] == etag
    assert backend.calls["content"] == 2  # really made afresh


async def test_entries_expire_after_their_ttl(
    redis_client: aioredis.Redis, prefix: str, backend: Backend
) -> None:
    app = make_app(lambda: redis_client, prefix, CachePolicy(content_ttl_s=1), backend)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        first = await c.get("/api/v1/content/t1")
        assert first.headers["cache-control"] == "public, max-age=1"
        assert (await c.get("/api/v1/content/t1")).headers["x-cache"] == "HIT"
        await asyncio.sleep(1.2)
        after = await c.get("/api/v1/content/t1")
    assert after.headers["x-cache"] == "MISS"
    assert backend.calls["content"] == 2


async def test_only_2xx_and_only_storable_responses_are_cached(
    client: httpx.AsyncClient, backend: Backend, redis_client: aioredis.Redis, prefix: str
) -> None:
    for _ in range(2):
        missing = await client.get("/api/v1/content/nope")
        assert missing.status_code == 404 and "etag" not in missing.headers
        assert "x-cache" not in missing.headers
        me = await client.get("/api/v1/me")
        assert me.headers["cache-control"] == "no-store" and "etag" not in me.headers
        live = await client.get("/health/live")
        assert "x-cache" not in live.headers
    assert backend.calls == {"content": 2, "me": 2, "live": 2}
    assert [k async for k in redis_client.scan_iter(match=f"{prefix}*")] == []


async def test_query_order_shares_an_entry(client: httpx.AsyncClient, backend: Backend) -> None:
    await client.get("/api/v1/content/t1/availability?region=fr&x=1")
    again = await client.get("/api/v1/content/t1/availability?x=1&region=fr")
    assert again.headers["x-cache"] == "HIT"
    other = await client.get("/api/v1/content/t1/availability?x=1&region=de")
    assert other.headers["x-cache"] == "MISS"
    assert backend.calls["availability"] == 2


async def test_credentialed_requests_are_not_shared(
    client: httpx.AsyncClient, backend: Backend
) -> None:
    await client.get("/api/v1/content/t1")
    for headers in ({"Authorization": "Bearer abc"}, {"X-API-Key": "k"}):
        resp = await client.get("/api/v1/content/t1", headers=headers)
        assert resp.headers["x-cache"] == "MISS"
        assert resp.headers["cache-control"] == "private, max-age=300"
        # ETag and 304 still work for them.
        again = await client.get(
            "/api/v1/content/t1", headers={**headers, "If-None-Match": resp.headers["etag"]}
        )
        assert again.status_code == 304
    assert backend.calls["content"] == 5


async def test_invalidate_content_drops_every_response_of_that_title(
    client: httpx.AsyncClient, backend: Backend, redis_client: aioredis.Redis, prefix: str
) -> None:
    old = await client.get("/api/v1/content/t1")
    await client.get("/api/v1/content/t1/availability?region=fr")
    await client.get("/api/v1/content/t2")
    backend.titles["t1"] = "Heat (Director's Cut)"

    assert await invalidate_content(redis_client, prefix, "t1") == 2
    assert await redis_client.exists(index_key(prefix, "t1")) == 0

    fresh = await client.get("/api/v1/content/t1")
    assert fresh.headers["x-cache"] == "MISS"
    assert fresh.json()["title"] == "Heat (Director's Cut)"
    assert fresh.headers["etag"] != old.headers["etag"]
    assert (await client.get("/api/v1/content/t1/availability?region=fr")).headers[
        "x-cache"
    ] == "MISS"
    assert (await client.get("/api/v1/content/t2")).headers["x-cache"] == "HIT"
    assert await invalidate_content(redis_client, prefix, "never-cached") == 0


async def test_a_response_made_before_an_invalidation_is_not_stored_after_it(
    client: httpx.AsyncClient, backend: Backend, redis_client: aioredis.Redis, prefix: str
) -> None:
    backend.gate = asyncio.Event()
    slow = asyncio.create_task(client.get("/api/v1/content/t1"))
    await backend.entered.wait()  # the route has read its data; the title now changes
    backend.titles["t1"] = "Heat (remastered)"
    await invalidate_content(redis_client, prefix, "t1")
    backend.gate.set()
    stale = await slow
    assert stale.json()["title"] == "Heat"  # that caller got what was true when it asked
    backend.gate = None
    after = await client.get("/api/v1/content/t1")
    assert after.headers["x-cache"] == "MISS"
    assert after.json()["title"] == "Heat (remastered)"


# ------------------------------------------------------------- Redis goes away


async def test_requests_succeed_while_the_cache_is_down(
    tmp_path: Path, prefix: str, backend: Backend, warnings_seen: list[str]
) -> None:
    server = start_redis(tmp_path / "redis-1")
    port = server.port
    redis = fast_fail_client(server.url)
    app = make_app(lambda: redis, prefix, CachePolicy(), backend, recheck_s=0.5)
    transport = httpx.ASGITransport(app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            first = await c.get("/api/v1/content/t1")
            assert (await c.get("/api/v1/content/t1")).headers["x-cache"] == "HIT"
            server.stop()
            for _ in range(10):
                resp = await c.get("/api/v1/content/t1")
                assert resp.status_code == 200 and resp.json()["title"] == "Heat"
                assert resp.headers["etag"] == first.headers["etag"]
            down_304 = await c.get(
                "/api/v1/content/t1", headers={"If-None-Match": first.headers["etag"]}
            )
            assert down_304.status_code == 304
            lines = [m for m in warnings_seen if "Redis (response cache) unreachable" in m]
            assert len(lines) == 1, warnings_seen
            assert backend.calls["content"] == 12

            # Redis back on the same port: after the re-check interval the cache works again.
            server = start_redis(tmp_path / "redis-2", port=port)
            await asyncio.sleep(0.6)
            assert (await c.get("/api/v1/content/t1")).headers["x-cache"] == "MISS"
            assert (await c.get("/api/v1/content/t1")).headers["x-cache"] == "HIT"
    finally:
        await redis.aclose()
        server.stop()


async def test_requests_succeed_when_redis_was_never_there(prefix: str, backend: Backend) -> None:
    redis = fast_fail_client(f"redis://127.0.0.1:{free_port()}/0")
    app = make_app(lambda: redis, prefix, CachePolicy(), backend)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
            for _ in range(3):
                assert (await c.get("/api/v1/content/t1")).status_code == 200
    finally:
        await redis.aclose()
