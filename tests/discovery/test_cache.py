"""The discovery caches on the real Redis: misses then hits for intents, query embeddings and
result pages, lifetimes from config, result pages dropped when a title on them changes or an
offer appears on a platform they filter on, and kept no longer than an offer on them lasts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from agents.discovery.invalidation import changed_subjects, platform_subject, title_subject
from agents.titles.store import Versioned, upsert_contents
from agreements.discovery_cache import (
    EMBEDDING_CACHE,
    INTENT_CACHE,
    RESULTS_CACHE,
    embedding_key,
    intent_key,
    results_index_key,
)
from core.observability.metrics import CACHE_HITS, CACHE_MISSES
from schemas.content import AvailabilityChanged, AvailabilityRow
from tests.discovery.catalog import BY_TITLE, later
from tests.discovery.conftest import MakeEngine, Seeded

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def counts(cache: str) -> tuple[float, float]:
    return CACHE_HITS.labels(cache)._value.get(), CACHE_MISSES.labels(cache)._value.get()


def change(cache: str, before: tuple[float, float]) -> tuple[int, int]:
    hits, misses = counts(cache)
    return int(hits - before[0]), int(misses - before[1])


async def test_results_miss_then_hit(make_engine: MakeEngine, redis_client: aioredis.Redis) -> None:
    engine = make_engine()
    key = engine.key("scary movies")
    before = counts(RESULTS_CACHE)
    first = await engine.raw("scary movies")
    assert change(RESULTS_CACHE, before) == (0, 1)
    assert await redis_client.get(key) == first
    ttl_ms = await redis_client.pttl(key)
    assert 1_700_000 < ttl_ms <= 1_800_000  # docs/RULES.md's 30 minutes by default
    second = await engine.raw("scary movies")
    assert second == first
    assert change(RESULTS_CACHE, before) == (1, 1)
    # Another spelling of the same search is the same page.
    assert await engine.raw("  SCARY   movies ") == first


async def test_intent_and_embedding_are_cached_apart_from_the_page(
    make_engine: MakeEngine, redis_client: aioredis.Redis
) -> None:
    engine = make_engine()
    intents, embeddings = counts(INTENT_CACHE), counts(EMBEDDING_CACHE)
    await engine.search("space adventure", page_size=5)
    assert change(INTENT_CACHE, intents) == (0, 1)
    assert change(EMBEDDING_CACHE, embeddings) == (0, 1)
    assert await redis_client.pttl(intent_key(engine.prefix, "space adventure")) > 590_000
    assert (
        await redis_client.pttl(embedding_key(engine.prefix, "space adventure", MODEL)) > 3_590_000
    )
    # Another page is another result page, but the same intent and the same query vector.
    await engine.search("space adventure", page=2, page_size=5)
    assert change(INTENT_CACHE, intents) == (1, 1)
    assert change(EMBEDDING_CACHE, embeddings) == (1, 1)


async def test_lifetimes_come_from_config(
    make_engine: MakeEngine, redis_client: aioredis.Redis
) -> None:
    engine = make_engine(intent_ttl_s=0.4, embedding_ttl_s=0.4, results_ttl_s=0.4)
    keys = [
        engine.key("bank heist"),
        intent_key(engine.prefix, "bank heist"),
        embedding_key(engine.prefix, "bank heist", MODEL),
    ]
    await engine.search("bank heist")
    assert all([0 < await redis_client.pttl(k) <= 400 for k in keys])
    await asyncio.sleep(0.6)
    assert await redis_client.exists(*keys) == 0
    before = [counts(c) for c in (RESULTS_CACHE, INTENT_CACHE, EMBEDDING_CACHE)]
    await engine.search("bank heist")
    misses = [
        change(c, b)
        for c, b in zip((RESULTS_CACHE, INTENT_CACHE, EMBEDDING_CACHE), before, strict=True)
    ]
    assert misses == [(0, 1), (0, 1), (0, 1)]


async def test_a_changed_title_drops_the_pages_showing_it(
    make_engine: MakeEngine, seeded: Seeded, redis_client: aioredis.Redis
) -> None:
    engine = make_engine()
    shrek = BY_TITLE["Shrek"]
    on_netflix = await engine.search("funny ogre", filters={"platforms": ["netflix"]})
    assert "Shrek" in [r.title for r in on_netflix.results]
    unrelated = engine.key("space adventure")
    await engine.search("space adventure")
    netflix_page = engine.key("funny ogre", filters={"platforms": ["netflix"]})
    netflix_result = engine.set_key("funny ogre", filters={"platforms": ["netflix"]})
    assert await redis_client.sismember(netflix_result, netflix_page)
    assert await redis_client.sismember(
        results_index_key(engine.prefix, title_subject(shrek.canonical_id)), netflix_result
    )

    # Shrek leaves Netflix: PostgreSQL first, then the event's effect on the cache.
    original = shrek.content()
    gone = later(
        original,
        availability=[{"platform": "hulu", "availability_type": "subscription", "regions": ["US"]}],
    )
    await upsert_contents(seeded.pool, [Versioned(gone, uuid.uuid4())])
    try:
        assert await engine.discovery.cache.invalidate([title_subject(shrek.canonical_id)]) >= 1
        assert await redis_client.exists(netflix_page) == 0
        assert await redis_client.exists(unrelated) == 1  # Shrek was not on that page
        again = await engine.search("funny ogre", filters={"platforms": ["netflix"]})
        assert "Shrek" not in [r.title for r in again.results]
    finally:
        back = later(gone, availability=original.model_dump(mode="json")["availability"])
        await upsert_contents(seeded.pool, [Versioned(back, uuid.uuid4())])


async def test_a_page_computed_before_a_change_is_not_stored_after_it(
    make_engine: MakeEngine, redis_client: aioredis.Redis
) -> None:
    engine = make_engine()
    cache = engine.discovery.cache
    title = title_subject(BY_TITLE["Toy Story"].canonical_id)
    clock = await cache.results_clock()  # a search starts
    await cache.invalidate([title])  # the title changes meanwhile
    stale, stale_set = engine.key("toys"), engine.set_key("toys")
    assert await cache.set_results(stale, stale_set, b"{}", [title], clock, 60) is False
    assert await redis_client.exists(stale) == 0
    # A search that started after the change stores its page.
    now = await cache.results_clock()
    assert await cache.set_results(stale, stale_set, b"{}", [title], now, 60) is True
    assert await redis_client.get(stale) == b"{}"
    # Subjects that did not change do not hold a page back.
    other = engine.key("penguins")
    unchanged = [title_subject(BY_TITLE["Planet Earth"].canonical_id), platform_subject("hulu")]
    assert await cache.set_results(other, engine.set_key("penguins"), b"{}", unchanged, clock, 60)


async def test_an_empty_page_is_not_cached(
    make_engine: MakeEngine, redis_client: aioredis.Redis
) -> None:
    engine = make_engine()
    nothing = await engine.search("horror", filters={"platforms": ["apple_tv_plus"]})
    assert nothing.total_count == 0
    # A title added later is what this asker waits for; no change of a title would drop it.
    assert (
        await redis_client.exists(engine.key("horror", filters={"platforms": ["apple_tv_plus"]}))
        == 0
    )


async def test_a_page_lives_no_longer_than_the_next_offer_change(
    make_engine: MakeEngine, seeded: Seeded, redis_client: aioredis.Redis
) -> None:
    engine = make_engine()
    title = BY_TITLE["Madagascar"]
    original = title.content()
    query, on_netflix = "zoo animals shipwrecked", {"filters": {"platforms": ["netflix"]}}

    async def netflix_titles() -> list[str]:
        return [r.title for r in (await engine.search(query, **on_netflix)).results]

    ends = datetime.now(UTC) + timedelta(seconds=2)
    ending = later(
        original,
        availability=[
            {"platform": p, "availability_type": "subscription", "regions": list(regions)}
            | ({"available_until": ends.isoformat()} if p == "netflix" else {})
            for p, regions in title.offers
        ],
    )
    await upsert_contents(seeded.pool, [Versioned(ending, uuid.uuid4())])
    try:
        assert "Madagascar" in await netflix_titles()
        # No event says when an offer ends: the page is not kept past the end.
        assert 0 < await redis_client.pttl(engine.key(query, **on_netflix)) <= 2000
        await asyncio.sleep((ends - datetime.now(UTC)).total_seconds() + 0.2)
        assert await redis_client.exists(engine.key(query, **on_netflix)) == 0
        assert "Madagascar" not in await netflix_titles()
        assert await redis_client.pttl(engine.key(query, **on_netflix)) > 1_700_000

        # Back on Netflix: the availability event drops the pages filtered on Netflix, though
        # none shows the title.
        back = later(ending, availability=original.model_dump(mode="json")["availability"])
        await upsert_contents(seeded.pool, [Versioned(back, uuid.uuid4())])
        readded = AvailabilityChanged(
            canonical_id=title.canonical_id,
            platform="netflix",
            changed=[
                AvailabilityRow(platform="netflix", region="US", availability_type="subscription")
            ],
        )
        assert await engine.discovery.cache.invalidate(changed_subjects(readded)) >= 1
        assert "Madagascar" in await netflix_titles()
    finally:
        # Newer than every version above, whichever was stored last.
        restored = original.model_copy(update={"updated_at": ends + timedelta(days=9)})
        await upsert_contents(seeded.pool, [Versioned(restored, uuid.uuid4())])
