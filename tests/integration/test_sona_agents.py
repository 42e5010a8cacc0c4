"""The SONA handlers against the real PostgreSQL, Redis, broker and vector store (no Faust):
viewings into profiles, training when due, idempotent redelivery, the adapter announcement,
context-aware candidates (time of day, device, mood) and the answer's cache."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from agents.framework.context import AgentContext, ContextHolder
from agents.framework.kafka.broadcast import BroadcastReader
from agents.sona import pairs, store
from agents.sona.adapter_cache import CachedAdapter
from agents.sona.handlers import (
    ADAPTERS,
    BROADCASTS,
    POPULATION,
    answer_recommendations,
    population_of,
    recommendations_for,
    train_from_progress,
)
from agents.sona.population import PopulationLayer
from agents.sync.clock import to_physical_us
from agreements.read_model import reply_channel
from agreements.sona_cache import read_recommendations
from schemas.envelope import Envelope, decode, wrap
from schemas.sona import AdapterTrained, RecommendationsRequested, RecommendationsResponse
from schemas.sync import HLC, ProgressUpdate
from tests.conftest import Isolated
from tests.helpers import read_topic, wait_for
from tests.sona_catalog import BY_GENRE, CATALOG, GENRE_OF, seed

DAY = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    context = (await holder.get()).for_agent("sona-test")
    await seed(isolated.pool, await context.vectors())
    yield context
    await holder.close()


def progress(
    user: str,
    content_id: uuid.UUID,
    at: datetime,
    fraction: float = 1.0,
    device: str = "tv-1",
    state: str = "stopped",
) -> Envelope[Any]:
    payload = ProgressUpdate(
        user_id=user,
        content_id=content_id,
        position_seconds=3600 * fraction,
        duration_seconds=3600,
        state=state,
        timestamp=HLC(physical_us=to_physical_us(at)),
        device_id=device,
    )
    return wrap(payload, key=user, source="test", correlation_id=f"c-{user}")


def request(user: str, at: datetime, **fields: Any) -> RecommendationsRequested:
    return RecommendationsRequested(
        user_id=user, at=at, reply_channel=reply_channel("x", uuid.uuid4()), **fields
    )


def genres(response: RecommendationsResponse, top: int = 10) -> list[str]:
    return [GENRE_OF[r.canonical_id] for r in response.recommendations[:top]]


async def watch(ctx: AgentContext, user: str, titles: list[Any], hour: int) -> None:
    batch = [
        progress(user, t.canonical_id, DAY + timedelta(hours=hour, minutes=i))
        for i, t in enumerate(titles)
    ]
    await train_from_progress(ctx, batch)


async def test_ten_finished_titles_train_version_one_and_redelivery_changes_nothing(
    ctx: AgentContext,
) -> None:
    user = "u-train"
    comedies = BY_GENRE["comedy"][:10]
    batch = [
        progress(user, t.canonical_id, DAY + timedelta(hours=20, minutes=i))
        for i, t in enumerate(comedies)
    ]
    # Playing reports before the end are one viewing, not many.
    playing = progress(user, comedies[0].canonical_id, DAY, fraction=0.5, state="playing")
    await train_from_progress(ctx, [playing, *batch[:9]])
    assert await store.adapter_versions(ctx.pool, user) == []
    await train_from_progress(ctx, batch[9:])
    assert await store.adapter_versions(ctx.pool, user) == [1]
    blob = await ctx.pool.fetchval("SELECT weights FROM lora_adapters WHERE user_id = $1", user)
    stored = (await store.load_profiles(ctx.pool, [user], 384))[user]
    assert stored.events_since_training == 0
    assert stored.profile.events_applied == 10
    assert stored.profile.hourly[20] == 10
    assert dict(stored.profile.device_mix) == {}  # tv-1 was never registered
    assert max(stored.profile.genre_affinities, key=stored.profile.genre_affinities.get) == "comedy"

    # The whole stream again (a crashed worker's successor): nothing moves.
    await train_from_progress(ctx, [playing, *batch])
    assert await store.adapter_versions(ctx.pool, user) == [1]
    assert (
        await ctx.pool.fetchval("SELECT weights FROM lora_adapters WHERE user_id = $1", user)
        == blob
    )
    again = (await store.load_profiles(ctx.pool, [user], 384))[user]
    assert again.profile.events_applied == 10
    assert np.array_equal(again.profile.taste, stored.profile.taste)

    records = await read_topic(
        ctx.settings.kafka.bootstrap,
        f"{ctx.settings.kafka.topic_prefix}.sona.adapter_trained",
        settle_s=0.3,
    )
    announced = [decode(r.value, AdapterTrained).payload for r in records]
    assert [(a.user_id, a.adapter_version) for a in announced] == [(user, 1)]
    assert announced[0].training_iterations == 50


async def test_every_worker_hears_a_new_version_and_evicts_its_copy(ctx: AgentContext) -> None:
    user = "u-evict"
    cache = ctx.use(ADAPTERS)
    cache.put(user, CachedAdapter(None, None))
    await watch(ctx, user, BY_GENRE["comedy"][:10], hour=20)
    # Another worker's copy: forget that this process trained it, then hear the topic.
    cache.clear()
    cache.put(user, CachedAdapter(None, None))

    # What the worker runs for the slice's declared broadcast (agents/framework/kafka/app.py).
    (spec,) = BROADCASTS
    reader = BroadcastReader(ctx.settings.kafka.bootstrap, spec, ctx.settings.kafka.topic_prefix)

    async def evicted() -> bool:
        await reader.hear(ctx, timeout_ms=200)
        return cache.get(user) is None

    try:
        await wait_for(evicted, timeout=10)
    finally:
        await reader.close()


async def test_comedies_rank_higher_after_training_on_comedies(ctx: AgentContext) -> None:
    user = "u-comedy"
    at = DAY + timedelta(hours=20)
    before = await recommendations_for(ctx, request(user, at, region="US"))
    assert before.adapter_version is None
    await watch(ctx, user, BY_GENRE["comedy"][:12], hour=20)
    after = await recommendations_for(ctx, request(user, at, region="US"))
    assert after.adapter_version == 1
    assert genres(after).count("comedy") > genres(before).count("comedy")
    # Finished titles are not recommended again.
    finished = {t.canonical_id for t in BY_GENRE["comedy"][:12]}
    assert not finished & {r.canonical_id for r in after.recommendations}
    # Finished, never rated: the reason says watched, not liked.
    assert any(
        reason.startswith("because you watched comedy")
        for r in after.recommendations
        for reason in r.reasons
    ), after.recommendations


async def test_evening_and_morning_follow_the_hourly_pattern(ctx: AgentContext) -> None:
    user = "u-hours"
    await watch(ctx, user, BY_GENRE["comedy"][:6], hour=20)
    await watch(ctx, user, BY_GENRE["documentary"][:6], hour=8)
    evening = await recommendations_for(ctx, request(user, DAY + timedelta(hours=21)))
    morning = await recommendations_for(ctx, request(user, DAY + timedelta(hours=9)))
    assert evening.context.time_bucket.value == "evening"
    assert morning.context.time_bucket.value == "morning"
    top_evening, top_morning = genres(evening, 5), genres(morning, 5)
    assert top_evening.count("comedy") > top_evening.count("documentary"), top_evening
    assert top_morning.count("documentary") > top_morning.count("comedy"), top_morning
    # On a device (a context to fit), the habit of watching in the evening is a reason.
    on_tv = await recommendations_for(
        ctx, request(user, DAY + timedelta(hours=21), device_type="tv")
    )
    assert any("fits your evening viewing" in r.reasons for r in on_tv.recommendations)


async def test_a_tv_gets_longer_titles_than_a_phone(ctx: AgentContext) -> None:
    at = DAY + timedelta(hours=20)
    tv = await recommendations_for(ctx, request("u-tv", at, device_type="tv", region="US"))
    phone = await recommendations_for(ctx, request("u-tv", at, device_type="phone", region="US"))
    runtime = {t.canonical_id: t.runtime for t in CATALOG}

    def mean(r: RecommendationsResponse) -> float:
        return float(np.mean([runtime[x.canonical_id] for x in r.recommendations[:10]]))

    assert mean(tv) > mean(phone) + 30


async def test_a_scared_mood_yields_horror_and_thrillers_in_the_region(ctx: AgentContext) -> None:
    at = DAY + timedelta(hours=22)
    scared = await recommendations_for(
        ctx, request("u-mood", at, mood="scared", region="US", limit=10)
    )
    assert set(genres(scared)) == {"horror", "thriller"}, genres(scared)
    assert all("matches mood: scared" in r.reasons for r in scared.recommendations)
    # More asked for than the mood has titles: they lead, MMR mixes a few others in.
    fuller = await recommendations_for(ctx, request("u-mood", at, mood="fearful", region="US"))
    assert len(fuller.recommendations) == 20
    scary = [g in ("horror", "thriller") for g in genres(fuller, 20)]
    assert sum(scary[:10]) >= 7 and sum(scary[10:]) < sum(scary[:10]), genres(fuller, 20)
    everything = await recommendations_for(ctx, request("u-mood", at, region="US"))
    gb_only = next(t for t in CATALOG if t.regions == ("GB",)).canonical_id
    assert gb_only not in {r.canonical_id for r in everything.recommendations}
    assert len(everything.recommendations) == 20
    # The United Kingdom, asked for as UK, is where its offers are stored: GB.
    uk = await recommendations_for(ctx, request("u-uk", at, region="uk"))
    assert [r.canonical_id for r in uk.recommendations] == [gb_only]
    assert uk.context.region == "GB"


async def test_an_answer_is_published_cached_and_dropped_when_taste_changes(
    ctx: AgentContext,
) -> None:
    user = "u-cache"
    wanted = request(user, DAY + timedelta(hours=20), region="US")
    pubsub = ctx.redis.pubsub()
    await pubsub.subscribe(wanted.reply_channel)
    await answer_recommendations(ctx, [wrap(wanted, key=user, source="test")])

    async def heard() -> Any:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        return message if message and message["type"] == "message" else None

    message = await wait_for(heard, timeout=5)
    await pubsub.aclose()
    cached = await read_recommendations(ctx.redis, ctx.prefix, wanted)
    assert cached == message["data"]
    await watch(ctx, user, BY_GENRE["comedy"][:3], hour=20)
    assert await read_recommendations(ctx.redis, ctx.prefix, wanted) is None


async def test_pairwise_training_contrasts_with_titles_others_like(
    ctx: AgentContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pairs, "PAIRWISE", True)
    monkeypatch.setattr(pairs, "NEGATIVES_PER_LIKED", 2)

    async def examples_of(user: str) -> int:
        return int(
            await ctx.pool.fetchval(
                "SELECT training_examples FROM lora_adapters WHERE user_id = $1", user
            )
        )

    # The first user: nobody else likes anything yet, so no pairs: their own titles.
    await watch(ctx, "u-documentaries", BY_GENRE["documentary"][:12], hour=20)
    assert await examples_of("u-documentaries") == 12
    # The next: each liked comedy against two documentaries the first user likes.
    user = "u-comedies"
    await watch(ctx, user, BY_GENRE["comedy"][:12], hour=20)
    assert await examples_of(user) == 24
    dim = ctx.settings.embedding.dimension
    latest = await store.latest_adapter(ctx.pool, user, expected_dim=dim)
    profiles = await store.load_profiles(ctx.pool, {user}, dim)
    assert latest is not None
    found = await (await ctx.vectors()).get(
        [t.canonical_id for t in BY_GENRE["comedy"][12:] + BY_GENRE["documentary"][12:]]
    )
    unseen = {cid: vector for cid, (vector, _) in found.items()}
    scores = latest.adapter.score_many(
        np.stack(list(unseen.values())), profiles[user].profile.preference
    )
    by_genre: dict[str, list[float]] = {}
    for cid, score in zip(unseen, scores, strict=True):
        by_genre.setdefault(GENRE_OF[cid], []).append(float(score))
    assert np.mean(by_genre["comedy"]) > np.mean(by_genre["documentary"]) + 0.1, by_genre


async def test_a_worker_reads_the_population_layer_again_only_when_its_version_changed(
    ctx: AgentContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    dim = ctx.settings.embedding.dimension
    rng = np.random.default_rng(3)

    def layer() -> PopulationLayer:
        return PopulationLayer(
            a=rng.standard_normal((4, dim)).astype(np.float32),
            b=rng.standard_normal((4, dim)).astype(np.float32),
            bias=rng.standard_normal(dim).astype(np.float32),
        )

    # Count the blob reads; the real query still runs.
    blob_reads = 0
    read_layer = store.latest_population

    async def counted(db: Any, d: int) -> Any:
        nonlocal blob_reads
        blob_reads += 1
        return await read_layer(db, d)

    monkeypatch.setattr(store, "latest_population", counted)

    async def refreshed() -> PopulationLayer | None:
        ctx.use(POPULATION).read_at = -float("inf")  # as if the refresh interval had passed
        return await population_of(ctx)

    assert await refreshed() is None
    assert blob_reads == 0  # no version: nothing to read
    first = layer()
    async with ctx.pool.acquire() as conn:
        await store.save_population(conn, first, 10, 2, keep=3)
    held = await refreshed()
    assert held is not None and np.array_equal(held.a, first.a)
    assert blob_reads == 1
    # Unchanged version: the same layer, no blob read, however often the minute passes.
    assert await refreshed() is held
    assert await refreshed() is held
    assert blob_reads == 1
    # A new version is read once, and only after the refresh interval.
    second = layer()
    async with ctx.pool.acquire() as conn:
        await store.save_population(conn, second, 10, 2, keep=3)
    assert await population_of(ctx) is held
    newer = await refreshed()
    assert newer is not None and np.array_equal(newer.b, second.b)
    assert blob_reads == 2
    assert await refreshed() is newer and blob_reads == 2
    # Every version gone (another embedder): no layer, and still no blob read.
    await ctx.pool.execute("DELETE FROM sona_population_layers")
    assert await refreshed() is None
    assert blob_reads == 2
