"""Handlers of personalization (group sona): fold viewings into profiles and train adapters,
answer recommendation requests, drop cached recommendations when a user's watchlist changes,
and keep every worker's adapter cache current.

Training (`sona-train-progress`, on sync.progress): one unit of work per batch claims the
batch's event ids (a redelivered event is skipped), turns progress reports into viewings
(agents/sona/viewings.py), folds them into each user's profile, and once a user has
`SONA_MIN_TRAINING_EVENTS` new viewings retrains their user layer (DOMAIN's rule) and stores
the next adapter version, announcing it on sona.adapter_trained through the outbox. All of it
commits together, so a crash anywhere redoes the batch from the same stored state: the
successor trains the same version with the same weights (training is deterministic).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from loguru import logger

from agents.adapters.vectors.store import VectorFilter
from agents.framework.applied import first_seen, forget_before
from agents.framework.context import AgentContext
from agents.framework.runtime import TAKE_WHAT_IS_READY, AgentSpec, TimerSpec
from agents.framework.unit_of_work import unit_of_work
from agents.sona import candidates_store, sources, store
from agents.sona.adapter_cache import AdapterCache
from agents.sona.context import BUCKET_HOURS, Context, context_of
from agents.sona.folding import due_for_training, fold_viewings, last_cause, sessions_of
from agents.sona.invalidation_client import InvalidationListener
from agents.sona.lora import UserLoRAAdapter, user_seed
from agents.sona.profile import StoredProfile
from agents.sona.ranking import recommend
from agents.sona.training import NotEnoughEvents, train_on_viewings, training_steps
from contracts.sona_cache import drop_generation, drop_recommendations, store_recommendations
from schemas.envelope import Envelope
from schemas.sona import AdapterTrained, RecommendationsRequested, RecommendationsResponse
from topics.registry import (
    SONA_ADAPTER_TRAINED,
    SONA_RECOMMENDATIONS,
    SYNC_PROGRESS,
    SYNC_REALTIME,
)

TRAIN_AGENT = "sona-train-progress"  # applied event ids are kept under its name

# Candidates per source: enough for MMR to choose 20 diverse titles from.
CONTEXT_CANDIDATES = 100
POPULAR_CANDIDATES = 100
SIMILAR_CANDIDATES = 50
CO_WATCHED_CANDIDATES = 50


# --- the process's adapter cache -----------------------------------------------------------------


@dataclass
class SonaProcess:
    """What one worker process keeps for personalization: its adapter LRU and the listener
    that evicts from it; one per topic prefix (tests run several deployments in a process)."""

    cache: AdapterCache
    listener: InvalidationListener


_PROCESSES: dict[str, SonaProcess] = {}


def sona_process(ctx: AgentContext) -> SonaProcess:
    kafka = ctx.settings.kafka
    found = _PROCESSES.get(kafka.topic_prefix)
    if found is None:
        cache = AdapterCache(ctx.settings.sona.cache_entries)
        listener = InvalidationListener(
            kafka.bootstrap, SONA_ADAPTER_TRAINED.full_name(kafka.topic_prefix), cache
        )
        found = _PROCESSES[kafka.topic_prefix] = SonaProcess(cache, listener)
    return found


def adapters_of(ctx: AgentContext) -> store.CachedAdapters:
    return store.CachedAdapters(ctx.pool, sona_process(ctx).cache, ctx.settings.embedding.dimension)


async def hear_adapter_versions(ctx: AgentContext) -> int:
    """Timer: evict the adapters other workers (or this one) retrained."""
    return await sona_process(ctx).listener.poll()


# --- training ------------------------------------------------------------------------------------


async def _vectors(ctx: AgentContext, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, np.ndarray]:
    if not ids:
        return {}
    found = await (await ctx.vectors()).get(list(ids))
    return {cid: vector for cid, (vector, _payload) in found.items()}


async def _retrain(
    ctx: AgentContext, conn: Any, user: str, stored: StoredProfile
) -> tuple[int, int] | None:
    """Train the user's next adapter version from their recent viewings; (version, steps), or
    None while fewer than 10 of them have vectors."""
    settings = ctx.settings
    dim = settings.embedding.dimension
    viewings = await store.counted_viewings(conn, user, settings.sona.max_training_examples)
    vectors = await _vectors(ctx, [cid for cid, _ in viewings])
    pairs = [(vectors[cid], v) for cid, v in viewings if cid in vectors]
    latest = await store.latest_adapter(conn, user, expected_dim=dim)
    start = (
        latest.adapter if latest is not None else UserLoRAAdapter.fresh(dim, seed=user_seed(user))
    )
    preference = stored.profile.preference
    try:
        run = await asyncio.to_thread(train_on_viewings, start, pairs, preference)
    except NotEnoughEvents as exc:
        logger.debug("{}: not training yet: {}", user, exc)
        return None
    steps = training_steps(v for _, v in pairs)
    version = await store.save_adapter(
        conn,
        user,
        run.adapter,
        training_iterations=steps,
        training_examples=len(pairs),
        keep=settings.sona.keep_versions,
        float16=settings.sona.store_float16,
    )
    logger.info(
        "{}: adapter version {} trained on {} viewings, loss {:.4f} -> {:.4f}",
        user,
        version,
        len(pairs),
        run.losses[0] if run.losses else 0.0,
        run.losses[-1] if run.losses else 0.0,
    )
    return version, steps


async def train_from_progress(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Progress reports into viewings, profiles and, when due, a new adapter version."""
    settings = ctx.settings
    dim = settings.embedding.dimension
    users = {env.payload.user_id for env in batch}
    trained: dict[str, int] = {}
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        await store.lock_users(conn, users)
        todo = await first_seen(conn, ctx.agent, batch)
        if not todo:
            return
        pairs = {(env.payload.user_id, env.payload.content_id) for env in todo}
        states = await store.load_viewings(conn, pairs)
        changed, counted = sessions_of(todo, states)
        await store.save_viewings(conn, changed)
        if not counted:
            return
        profiles = await store.load_profiles(conn, {c.user_id for c in counted}, dim)
        ids = {c.state.content_id for c in counted}
        facts = await store.title_facts(conn, ids)
        devices = await store.device_types(
            conn, {(c.cause.payload.user_id, c.cause.payload.device_id) for c in counted}
        )
        profiles = fold_viewings(
            profiles,
            counted,
            genres={cid: fact.genres for cid, fact in facts.items()},
            vectors=await _vectors(ctx, ids),
            devices=devices,
            dim=dim,
        )
        for user in due_for_training(profiles, settings.sona.min_training_events):
            done = await _retrain(ctx, conn, user, profiles[user])
            if done is None:
                continue
            version, steps = done
            trained[user] = version
            profiles[user] = replace(profiles[user], events_since_training=0)
            uow.emit(
                SONA_ADAPTER_TRAINED,
                AdapterTrained(user_id=user, adapter_version=version, training_iterations=steps),
                key=user,
                cause=last_cause(counted, user),
            )
        await store.save_profiles(conn, profiles)
    process = sona_process(ctx)
    for user, version in trained.items():
        # This worker need not wait for its own announcement to come back from the broker.
        process.cache.announce(user, version)
    await drop_recommendations(ctx.redis, ctx.prefix, set(profiles), settings.sona.cache_ttl_s)


# --- watchlist changes ---------------------------------------------------------------------------


async def forget_on_watchlist_change(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """A title added to (or removed from) the watchlist leaves (or may rejoin) the answers.
    Read from sync's change feed, which follows the commit: a recomputed answer sees it."""
    users = {env.payload.user_id for env in batch if env.payload.message.kind == "watchlist"}
    await drop_recommendations(ctx.redis, ctx.prefix, users, ctx.settings.sona.cache_ttl_s)


# --- recommendations -----------------------------------------------------------------------------


async def _similar(
    ctx: AgentContext, preference: np.ndarray, context: Context, excluded: Collection[uuid.UUID]
) -> dict[uuid.UUID, float]:
    flt = VectorFilter(
        regions=[context.region] if context.region else (), exclude_ids=list(excluded)
    )
    hits = await (await ctx.vectors()).search(preference, SIMILAR_CANDIDATES, flt)
    return {hit.id: max(min(hit.score, 1.0), 0.0) for hit in hits}


async def recommendations_for(
    ctx: AgentContext, request: RecommendationsRequested
) -> RecommendationsResponse:
    settings = ctx.settings
    dim = settings.embedding.dimension
    user = request.user_id
    context = context_of(request)
    pool = ctx.pool
    profile = (await store.load_profiles(pool, [user], dim))[user].profile
    cached = await adapters_of(ctx).load(user)
    watchlist, finished = await store.excluded_titles(pool, user)
    excluded = watchlist | finished

    mood = list(context.mood_genres) or None
    rows = {
        r.canonical_id: r
        for r in await candidates_store.titles_by_genres(
            pool,
            mood,
            region=context.region,
            runtime=context.runtime,
            excluded=excluded,
            limit=CONTEXT_CANDIDATES,
        )
    }
    bucket: dict[str, int] = {}
    similar: dict[uuid.UUID, float] = {}
    co_watched: dict[uuid.UUID, float] = {}
    if profile.has_history:
        hours = list(BUCKET_HOURS[context.time_bucket])
        bucket = await candidates_store.bucket_genres(pool, user, hours)
        habits = sources.genre_weights(bucket, profile.genre_affinities)
        favourite = sources.favourite_genres(habits)
        if favourite:
            for r in await candidates_store.titles_by_genres(
                pool,
                favourite,
                region=context.region,
                runtime=context.runtime,
                excluded=excluded,
                limit=CONTEXT_CANDIDATES,
            ):
                rows.setdefault(r.canonical_id, r)
        similar = await _similar(ctx, profile.preference, context, excluded)
        co_watched = await candidates_store.co_watched(pool, user, CO_WATCHED_CANDIDATES)
    else:
        for r in await candidates_store.titles_by_genres(
            pool,
            None,
            region=context.region,
            runtime=context.runtime,
            excluded=excluded,
            limit=POPULAR_CANDIDATES,
        ):
            rows.setdefault(r.canonical_id, r)
    others = (set(similar) | set(co_watched)) - set(rows)
    rows.update(
        await candidates_store.titles_by_ids(pool, others, region=context.region, excluded=excluded)
    )
    rows = sources.mood_first(rows, context.mood_genres, request.limit)
    vectors = await _vectors(ctx, list(rows))
    candidates = sources.personal_candidates(
        rows, vectors, profile, bucket_counts=bucket, co_watched=co_watched
    )
    answer = recommend(
        candidates,
        context=context,
        profile=profile,
        adapter=cached.adapter,
        watchlist=watchlist,
        finished=finished,
        limit=request.limit,
    )
    return RecommendationsResponse(
        user_id=user,
        recommendations=answer,
        generated_at=datetime.now(UTC),
        adapter_version=cached.version,
        context=context.echo(),
    )


async def answer_recommendations(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Compute each request's answer, cache it (unless the user's taste changed meanwhile) and
    publish it on the request's reply channel."""
    settings = ctx.settings
    for env in batch:
        request: RecommendationsRequested = env.payload
        started = time.perf_counter()
        generation = await drop_generation(ctx.redis, ctx.prefix, request.user_id)
        response = await recommendations_for(ctx, request)
        body = response.model_dump_json().encode()
        await store_recommendations(
            ctx.redis, ctx.prefix, request, body, generation, settings.sona.cache_ttl_s
        )
        await ctx.redis.publish(request.reply_channel, body)
        logger.bind(correlation_id=env.correlation_id).debug(
            "{} recommendations for {} ({}, adapter {}) in {:.1f} ms",
            len(response.recommendations),
            request.user_id,
            response.context.time_bucket.value,
            response.adapter_version,
            (time.perf_counter() - started) * 1000,
        )


# --- housekeeping --------------------------------------------------------------------------------


async def prune_applied_events(ctx: AgentContext) -> int:
    """Forget event ids older than any topic we consume keeps records (nothing redelivers)."""
    horizon = max(SYNC_PROGRESS.retention_ms or 0, SYNC_REALTIME.retention_ms or 0)
    cutoff = datetime.now(UTC) - timedelta(milliseconds=horizon) - timedelta(hours=1)
    return await forget_before(ctx.pool, (TRAIN_AGENT,), cutoff)


AGENTS = [
    AgentSpec(
        name=TRAIN_AGENT,
        group="sona",
        topic=SYNC_PROGRESS,
        handler=train_from_progress,
        description="folds viewings into taste profiles; retrains a user's adapter when due",
    ),
    AgentSpec(
        name="sona-watchlist-changes",
        group="sona",
        topic=SYNC_REALTIME,
        handler=forget_on_watchlist_change,
        description="drops a user's cached recommendations when their watchlist changed",
    ),
    AgentSpec(
        name="sona-recommend",
        group="sona",
        topic=SONA_RECOMMENDATIONS,
        handler=answer_recommendations,
        batch_within_s=TAKE_WHAT_IS_READY,
        description="answers the gateway's recommendation-cache misses",
    ),
]

TIMERS = [
    TimerSpec(
        name="sona-adapter-versions", group="sona", interval_s=0.5, run=hear_adapter_versions
    ),
    TimerSpec(name="sona-event-prune", group="sona", interval_s=3600.0, run=prune_applied_events),
]
