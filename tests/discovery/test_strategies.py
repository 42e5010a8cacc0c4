"""A search answers when one strategy is down or slow, says which strategies answered, and is
not cached; filters still hold when PostgreSQL cannot be read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from qdrant_client import AsyncQdrantClient

from agents.adapters.vectors.client import QdrantClientStore
from core.embedded import free_port
from tests.discovery.conftest import MakeEngine, Seeded

FAST = {"strategy_timeout_s": 0.3, "search_timeout_s": 0.5}


@pytest.fixture
async def unreachable_qdrant() -> AsyncIterator[QdrantClientStore]:
    # A Qdrant server that is not there: every call is refused at once.
    client = AsyncQdrantClient(url=f"http://127.0.0.1:{free_port()}", check_compatibility=False)
    store = QdrantClientStore(client, "content", 384)
    yield store
    await store.close()


async def test_the_vector_store_down(
    make_engine: MakeEngine,
    unreachable_qdrant: QdrantClientStore,
    redis_client: aioredis.Redis,
) -> None:
    engine = make_engine(vectors=unreachable_qdrant)
    found = await engine.search("shawshank redemtion")
    assert found.strategies_failed == ["vector"]
    assert found.strategies_used == ["keyword", "popularity"]
    assert found.results[0].title == "The Shawshank Redemption"
    assert found.results[0].strategy_scores.vector is None
    # A partial answer is given, not kept.
    assert await redis_client.exists(engine.key("shawshank redemtion")) == 0

    like = await engine.search("movies like Shrek")
    assert set(like.strategies_failed) == {"vector", "graph"}
    assert "keyword" in like.strategies_used


async def test_the_vector_store_slow(make_engine: MakeEngine, seeded: Seeded) -> None:
    engine = make_engine(**FAST)
    await engine.search("warm up the model")  # loading is not what this test measures
    # The in-process engine runs calls on one thread of its own: keep it busy (as a rebuild of
    # its graph would) for longer than the strategy may take.
    busy = seeded.vectors._executor.submit(time.sleep, 1.5)
    try:
        started = time.monotonic()
        found = await engine.search("spiderman")
        assert time.monotonic() - started < 1.2
        assert found.strategies_failed == ["vector"]
        assert found.results[0].title == "Spider-Man"
    finally:
        await asyncio.wrap_future(busy)


async def test_postgres_slow(
    make_engine: MakeEngine, seeded: Seeded, redis_client: aioredis.Redis
) -> None:
    engine = make_engine(**FAST)
    await engine.search("warm up the model")
    # Another session holds the catalog table: every read of it waits.
    blocker: asyncpg.Connection = await seeded.pool.acquire()
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute("LOCK TABLE content IN ACCESS EXCLUSIVE MODE")
    try:
        started = time.monotonic()
        found = await engine.search("spooky haunted house")
        assert time.monotonic() - started < 1.5
        assert "keyword" in found.strategies_failed
        assert "popularity" in found.strategies_failed  # its numbers are in PostgreSQL
        assert found.strategies_used == ["vector"]
        assert "The Conjuring" in [r.title for r in found.results[:3]]
        assert await redis_client.exists(engine.key("spooky haunted house")) == 0
        # The vector store's payloads stand in; what they cannot show fails the filter.
        rated = await engine.search("spooky haunted house", filters={"rating_range": [7, 10]})
        assert rated.results == []
        region = await engine.search("spooky haunted house", filters={"region": "GB"})
        assert region.results and all(r.title != "The Shining" for r in region.results)
    finally:
        await tx.rollback()
        await seeded.pool.release(blocker)
