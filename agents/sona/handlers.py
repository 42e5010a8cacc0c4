"""Handlers of personalization (group sona): fold viewings into profiles and train adapters,
answer recommendation requests, drop cached recommendations when a user's watchlist changes,
and keep every worker's adapter cache current.

Training (`sona-train-progress`, on sync.progress): one unit of work per batch claims the
batch's event ids (a redelivered event is skipped), turns progress reports into viewings
(agents/sona/viewings.py), folds them into each user's profile, and once a user has
`SONA_MIN_TRAINING_EVENTS` new viewings retrains their user layer (docs/RULES.md's rule) and stores
the next adapter version, announcing it on sona.adapter_trained through the outbox. All of it
commits together, so a crash anywhere redoes the batch from the same stored state: the
successor trains the same version with the same weights (training is deterministic).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from loguru import logger

from agents.adapters.vectors.store import VectorFilter
from agents.framework.applied import first_seen, forget_before
from agents.framework.context import AgentContext
from agents.framework.resources import Resource
from agents.framework.runtime import TAKE_WHAT_IS_READY, AgentSpec, BroadcastSpec, TimerSpec
from agents.framework.unit_of_work import unit_of_work
from agents.sona import candidates_store, pairs, population, sources, store
from agents.sona.adapter_cache import AdapterCache
from agents.sona.context import BUCKET_HOURS, Context, context_of
from agents.sona.folding import (
    SessionKey,
    due_for_training,
    feedback_of,
    fold_feedback,
    fold_viewings,
    latest_causes,
    liking_changes,
    sessions_of,
    settle_rows,
    training_examples_of,
)
from agents.sona.lora import EPOCHS, LEARNING_RATE, UserLoRAAdapter, user_seed
from agents.sona.population import PopulationLayer
from agents.sona.profile import StoredProfile, UserProfile, decay
from agents.sona.ranking import recommend
from agents.sona.taste import unfolded
from agents.sona.title_vectors_store import TitleVectors
from agents.sona.training import MIN_TRAINING_EVENTS, NotEnoughEvents, train_on_examples
from agents.sona.viewings import ViewingState
from agreements.parental_controls import refusal
from agreements.sona_cache import drop_generation, drop_recommendations, store_recommendations
from schemas.accounts import ProfileLimits
from schemas.envelope import Envelope
from schemas.sona import AdapterTrained, RecommendationsRequested, RecommendationsResponse
from topics.registry import (
    CONTENT_METADATA_ENRICHED,
    SONA_ADAPTER_TRAINED,
    SONA_DISMISSALS,
    SONA_RATINGS,
    SONA_RECOMMENDATIONS,
    SYNC_PROGRESS,
    SYNC_REALTIME,
)

T = TypeVar("T")

# Applied event ids are kept under each training agent's name.
TRAIN_AGENT = "sona-train-progress"
RATINGS_AGENT = "sona-train-ratings"
DISMISSALS_AGENT = "sona-train-dismissals"

# Candidates per source: enough for MMR to choose 20 diverse titles from.
CONTEXT_CANDIDATES = 100
POPULAR_CANDIDATES = 100
SIMILAR_CANDIDATES = 50
CO_WATCHED_CANDIDATES = 100
# The user's recent liked titles a reason may name ("because you liked Heat").
ANCHORS = 50


# --- the worker's adapter cache ------------------------------------------------------------------


# Each worker's adapter LRU; every worker hears every retrained version and evicts its copy
# (the broadcast `sona-adapter-versions` below).
ADAPTERS: Resource[AdapterCache] = Resource(
    "sona-adapters", open=lambda ctx: AdapterCache(ctx.settings.sona.cache_entries)
)
# Each worker's title vectors for answers (a bounded LRU): a title this worker hears re-embedded
# is forgotten; training reads the vector store itself.
TITLE_VECTORS: Resource[TitleVectors] = Resource(
    "sona-title-vectors", open=lambda ctx: TitleVectors()
)


def adapters_of(ctx: AgentContext) -> store.CachedAdapters:
    return store.CachedAdapters(ctx.pool, ctx.use(ADAPTERS), ctx.settings.embedding.dimension)


async def hear_adapter_versions(ctx: AgentContext, batch: list[Envelope[AdapterTrained]]) -> None:
    """Evict the adapters other workers (or this one) retrained."""
    cache = ctx.use(ADAPTERS)
    for env in batch:
        cache.announce(env.payload.user_id, env.payload.adapter_version)


# --- training ------------------------------------------------------------------------------------


async def _vectors(ctx: AgentContext, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, np.ndarray]:
    if not ids:
        return {}
    found = await (await ctx.vectors()).get(list(ids))
    return {cid: vector for cid, (vector, _payload) in found.items()}


async def _retrain(
    ctx: AgentContext, conn: Any, user: str, stored: StoredProfile
) -> tuple[int, int] | None:
    """Train the user's next adapter version from their recent rows; (version, steps), or
    None while fewer than 10 of them have vectors and something to teach."""
    settings = ctx.settings
    dim = settings.embedding.dimension
    rows = await store.training_rows(conn, user, settings.sona.max_training_examples)
    negatives: list[uuid.UUID] = []
    if pairs.PAIRWISE:
        popular = await store.most_liked_titles(conn, pairs.NEGATIVE_POOL)
        liked = sum(1 for r in rows if r.taste_weight > 0)
        # Seeded by the user and the round, so a retried batch draws the same negatives.
        negatives = pairs.sample_negatives(
            popular,
            {r.content_id for r in rows},
            liked * pairs.NEGATIVES_PER_LIKED,
            user_seed(user) + len(rows) + stored.profile.events_applied,
        )
    vectors = await _vectors(ctx, {*(r.content_id for r in rows), *negatives})
    examples = (
        pairs.pairwise_examples(rows, vectors, negatives, pairs.NEGATIVES_PER_LIKED)
        if pairs.PAIRWISE
        else []
    )
    learning_rate = pairs.LEARNING_RATE
    if len(examples) < MIN_TRAINING_EVENTS:
        # Too few titles liked by others to contrast with (a new deployment, a lone user):
        # the user's own titles towards their ratings, as before pairs.
        examples = training_examples_of(rows, vectors)
        learning_rate = LEARNING_RATE
    latest = await store.latest_adapter(conn, user, expected_dim=dim)
    start = (
        latest.adapter if latest is not None else UserLoRAAdapter.fresh(dim, seed=user_seed(user))
    )
    preference = stored.profile.preference
    if not stored.profile.has_taste:
        logger.debug("{}: not training yet: no taste to train against", user)
        return None
    try:
        run = await asyncio.to_thread(
            train_on_examples, start, examples, preference, lr=learning_rate
        )
    except NotEnoughEvents as exc:
        logger.debug("{}: not training yet: {}", user, exc)
        return None
    steps = EPOCHS * len(examples)
    version = await store.save_adapter(
        conn,
        user,
        run.adapter,
        training_iterations=steps,
        training_examples=len(examples),
        keep=settings.sona.keep_versions,
        float16=settings.sona.store_float16,
    )
    logger.info(
        "{}: adapter version {} trained on {} examples, loss {:.4f} -> {:.4f}",
        user,
        version,
        len(examples),
        run.losses[0] if run.losses else 0.0,
        run.losses[-1] if run.losses else 0.0,
    )
    return version, steps


async def _settle_and_train(
    ctx: AgentContext,
    uow: Any,
    profiles: dict[str, StoredProfile],
    rows: dict[SessionKey, ViewingState],
    causes: Mapping[str, Envelope[Any]],
    before: Mapping[SessionKey, ViewingState],
) -> dict[str, int]:
    """Fold the rows' unfolded weights into the tastes, write rows, profiles and the titles'
    viewer counts, and train the users due; the new adapter versions by user."""
    settings = ctx.settings
    await store.adjust_viewers(uow.conn, liking_changes(before, rows))
    pending = [key for key, state in rows.items() if unfolded(state)]
    vectors = await _vectors(ctx, {cid for _, cid in pending})
    profiles, moved = settle_rows(profiles, {k: rows[k] for k in pending}, vectors)
    rows = {**rows, **moved}
    await store.save_viewings(uow.conn, rows)
    trained: dict[str, int] = {}
    for user in due_for_training(profiles, settings.sona.min_training_events):
        done = await _retrain(ctx, uow.conn, user, profiles[user])
        if done is None:
            continue
        version, steps = done
        trained[user] = version
        profiles[user] = replace(profiles[user], events_since_training=0)
        uow.emit(
            SONA_ADAPTER_TRAINED,
            AdapterTrained(user_id=user, adapter_version=version, training_iterations=steps),
            key=user,
            cause=causes.get(user),
        )
    await store.save_profiles(uow.conn, profiles)
    return trained


async def _after_commit(ctx: AgentContext, users: Collection[str], trained: dict[str, int]) -> None:
    cache = ctx.use(ADAPTERS)
    for user, version in trained.items():
        # This worker need not wait for its own announcement to come back from the broker.
        cache.announce(user, version)
    await drop_recommendations(ctx.redis, ctx.prefix, set(users), ctx.settings.sona.cache_ttl_s)


async def _claim_and_load(
    ctx: AgentContext, conn: Any, batch: list[Envelope[Any]]
) -> (
    tuple[
        list[Envelope[Any]],
        dict[SessionKey, ViewingState],
        dict[str, StoredProfile],
        dict[str, str | None],
    ]
    | None
):
    """Lock the batch's users and claim its event ids; the events not applied before, their
    rows, their users' profiles and zones; None when every event was applied before."""
    await store.lock_users(conn, {env.payload.user_id for env in batch})
    todo = await first_seen(conn, ctx.agent, batch)
    if not todo:
        return None
    pairs = {(env.payload.user_id, env.payload.content_id) for env in todo}
    states = await store.load_viewings(conn, pairs)
    dim = ctx.settings.embedding.dimension
    profiles = await store.load_profiles(conn, {env.payload.user_id for env in todo}, dim)
    zones = {user: stored.profile.time_zone for user, stored in profiles.items()}
    return todo, states, profiles, zones


async def train_from_progress(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Progress reports into viewings, profiles and, when due, a new adapter version."""
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        claimed = await _claim_and_load(ctx, conn, batch)
        if claimed is None:
            return
        todo, states, profiles, zones = claimed
        changed, counted, zones = sessions_of(todo, states, zones)
        facts = await store.title_facts(conn, {c.state.content_id for c in counted})
        devices = await store.device_types(
            conn, {(c.cause.payload.user_id, c.cause.payload.device_id) for c in counted}
        )
        profiles = fold_viewings(
            profiles,
            counted,
            genres={cid: fact.genres for cid, fact in facts.items()},
            devices=devices,
            zones=zones,
        )
        trained = await _settle_and_train(
            ctx, uow, profiles, changed, latest_causes(counted), states
        )
    if counted:
        await _after_commit(ctx, {c.user_id for c in counted}, trained)


async def train_from_feedback(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Ratings and dismissals into rows, profiles and, when due, a new adapter version; a
    dismissed title leaves the user's answers at once (their cache is dropped)."""
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        claimed = await _claim_and_load(ctx, conn, batch)
        if claimed is None:
            return
        todo, states, profiles, zones = claimed
        changed, applied = feedback_of(todo, states, zones)
        if not applied:
            return
        facts = await store.title_facts(conn, {env.payload.content_id for env in applied})
        profiles = fold_feedback(
            profiles, applied, genres={cid: fact.genres for cid, fact in facts.items()}
        )
        trained = await _settle_and_train(
            ctx, uow, profiles, changed, latest_causes(applied), states
        )
    await _after_commit(ctx, {env.payload.user_id for env in applied}, trained)


async def fold_new_vectors(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """A title embedded after users watched, rated or dismissed it: its weight joins their
    tastes now (the rows kept it unfolded), so nobody stays without a taste."""
    dim = ctx.settings.embedding.dimension
    ids = {env.payload.canonical_id for env in batch}
    ctx.use(TITLE_VECTORS).forget(ids)
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        waiting = await store.unfolded_rows(conn, ids)
        if not waiting:
            return
        users = {user for user, _ in waiting}
        await store.lock_users(conn, users)
        # Read again under the users' locks: a training batch may have settled some meanwhile.
        waiting = await store.unfolded_rows(conn, ids)
        profiles = await store.load_profiles(conn, {user for user, _ in waiting}, dim)
        by_title = {env.payload.canonical_id: env for env in batch}
        causes = {user: by_title[cid] for user, cid in waiting}
        trained = await _settle_and_train(ctx, uow, profiles, waiting, causes, waiting)
    logger.info("{} title(s) embedded: folded into the tastes of {} user(s)", len(ids), len(users))
    await _after_commit(ctx, users, trained)


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


def _anchors(
    liked: Sequence[store.Liked], vectors: Mapping[uuid.UUID, np.ndarray], profile: UserProfile
) -> list[sources.Anchor]:
    """The liked titles as terms of the taste sum: weight x decay to the taste's time."""
    as_of = profile.taste_as_of
    return [
        sources.Anchor(
            t.title,
            vectors[t.content_id],
            t.weight * (decay(as_of - t.at) if as_of else 1.0),
            "liked" if t.rated else "watched",
        )
        for t in liked
        if t.content_id in vectors
    ]


async def _nothing(value: T) -> T:
    """What a source that does not apply to this user finds (to keep its place in a gather)."""
    return value


def allowed(row: sources.TitleRow, limits: ProfileLimits) -> bool:
    return refusal(row.maturity_rating, row.genres, limits) is None


async def recommendations_for(
    ctx: AgentContext, request: RecommendationsRequested
) -> RecommendationsResponse:
    settings = ctx.settings
    dim = settings.embedding.dimension
    user = request.user_id
    context = context_of(request)
    pool = ctx.pool
    # The independent reads go out together (each on a connection of its own), in two waves:
    # what the user is, then every source; then what depends on the sources.
    stored, cached, (watchlist, finished), shared = await asyncio.gather(
        store.load_profiles(pool, [user], dim),
        adapters_of(ctx).load(user),
        store.excluded_titles(pool, user),
        population_of(ctx) if settings.sona.adapter_enabled else _nothing(None),
    )
    profile = stored[user].profile
    excluded = watchlist | finished
    fit: dict[str, Any] = {
        "region": context.region,
        "runtime": context.runtime,
        "excluded": excluded,
    }
    history, taste = profile.has_history, profile.has_taste
    hours = list(BUCKET_HOURS[context.time_bucket])
    (
        by_mood,
        liked_here,
        popular,
        bucket,
        similar,
        co_watched,
        liked,
        names,
    ) = await asyncio.gather(
        candidates_store.titles_by_genres(
            pool, list(context.mood_genres) or None, limit=CONTEXT_CANDIDATES, **fit
        ),
        candidates_store.most_liked(pool, limit=POPULAR_CANDIDATES, **fit),
        _nothing([])
        if history
        else candidates_store.titles_by_genres(pool, None, limit=POPULAR_CANDIDATES, **fit),
        candidates_store.bucket_genres(pool, user, hours) if history else _nothing({}),
        _similar(ctx, profile.preference, context, excluded) if taste else _nothing({}),
        candidates_store.co_watched(pool, user, CO_WATCHED_CANDIDATES) if history else _nothing({}),
        store.liked_titles(pool, user, ANCHORS) if taste else _nothing([]),
        store.title_names(pool, watchlist),
    )
    # Episodes the vector search or the co-watching found stand for their series.
    series_of = await candidates_store.series_of(pool, set(similar) | set(co_watched))
    similar = sources.to_series(similar, series_of)
    co_watched = sources.to_series(co_watched, series_of)
    favourite = sources.favourite_genres(sources.genre_weights(bucket, profile.genre_affinities))
    rows: dict[uuid.UUID, sources.TitleRow] = {}
    for r in [*by_mood, *liked_here, *popular]:
        rows.setdefault(r.canonical_id, r)
    by_habit, others = await asyncio.gather(
        candidates_store.titles_by_genres(pool, favourite, limit=CONTEXT_CANDIDATES, **fit)
        if history and favourite
        else _nothing([]),
        candidates_store.titles_by_ids(
            pool,
            (set(similar) | set(co_watched)) - set(rows),
            region=context.region,
            excluded=excluded,
        ),
    )
    for r in by_habit:
        rows.setdefault(r.canonical_id, r)
    for cid, r in others.items():
        rows.setdefault(cid, r)
    if request.limits is not None:
        # Parental controls: the acting profile never gets a title beyond its limits.
        rows = {cid: r for cid, r in rows.items() if allowed(r, request.limits)}
    rows = sources.mood_first(rows, context.mood_genres, request.limit)
    vectors = await ctx.use(TITLE_VECTORS).get(
        await ctx.vectors(), [*rows, *(t.content_id for t in liked), *names]
    )
    candidates = sources.personal_candidates(
        rows,
        {cid: vectors[cid] for cid in rows if cid in vectors},
        profile,
        bucket_counts=bucket,
        co_watched=co_watched,
        liked=_anchors(liked, vectors, profile),
        watchlist=[
            sources.Anchor(name, vectors[cid]) for cid, name in names.items() if cid in vectors
        ],
    )
    answer = recommend(
        candidates,
        context=context,
        profile=profile,
        adapter=cached.adapter if settings.sona.adapter_enabled else None,
        population=shared,
        recent=[vectors[t.content_id] for t in liked if t.content_id in vectors],
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


# --- the population layer ------------------------------------------------------------------------

# Retrained hourly from every user's rows; each worker re-reads the latest version this often.
POPULATION_INTERVAL_S = 3600.0
POPULATION_REFRESH_S = 60.0
POPULATION_KEEP = 3
# A user's latest titles it trains on (as a per-user round: SONA_MAX_TRAINING_EXAMPLES' default).
POPULATION_ROWS_PER_USER = 200
# Drawn titles per liked title; the titles most liked here they are drawn from.
POPULATION_NEGATIVES = 4
POPULATION_POOL = 5000
# Any two workers' timers: one trains, the other sees the lock taken and skips.
_POPULATION_LOCK = 0x50_4F_50_4C  # "POPL"


@dataclass
class _PopulationHeld:
    stored: store.StoredPopulation | None = None
    read_at: float = -math.inf


POPULATION: Resource[_PopulationHeld] = Resource(
    "sona-population", open=lambda ctx: _PopulationHeld()
)


async def population_of(ctx: AgentContext) -> PopulationLayer | None:
    """The latest population layer, its version checked at most every POPULATION_REFRESH_S and
    the layer itself read again only when the version changed (the blob is ~50 KB a worker a
    minute otherwise; a new version comes hourly)."""
    held = ctx.use(POPULATION)
    now = time.monotonic()
    if now - held.read_at >= POPULATION_REFRESH_S:
        dim = ctx.settings.embedding.dimension
        version = await store.latest_population_version(ctx.pool, dim)
        if version is None:
            held.stored = None
        elif held.stored is None or held.stored.version != version:
            held.stored = await store.latest_population(ctx.pool, dim)
        held.read_at = now
    return held.stored.layer if held.stored is not None else None


async def train_population(ctx: AgentContext, force: bool = False) -> int | None:
    """Train the population layer on every user's rows and store it as the next version; None
    when another worker holds the lock, or (unless `force`) the latest is younger than the
    interval. The training itself runs in a thread: the worker keeps answering meanwhile."""
    dim = ctx.settings.embedding.dimension
    async with ctx.pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _POPULATION_LOCK):
            return None
        try:
            latest = await store.latest_population(conn, dim)
            age = (datetime.now(UTC) - latest.trained_at).total_seconds() if latest else None
            if not force and age is not None and age < POPULATION_INTERVAL_S * 0.9:
                return None
            started = time.perf_counter()
            histories = await store.population_histories(conn, POPULATION_ROWS_PER_USER)
            likers = dict(await store.most_liked_titles(conn, POPULATION_POOL))
            ids = {c for rows in histories.values() for c, _ in rows} | set(likers)
            vectors: dict[uuid.UUID, np.ndarray] = {}
            chunk = list(ids)
            for i in range(0, len(chunk), 1000):
                vectors.update(await _vectors(ctx, chunk[i : i + 1000]))
            if not likers or not vectors:
                return None
            data = await asyncio.to_thread(
                population.triples, histories, vectors, likers, POPULATION_NEGATIVES, 0
            )
            if len(data.positive) == 0:
                return None
            layer = await asyncio.to_thread(population.train, data)
            version = await store.save_population(
                conn, layer, len(data.positive), len(histories), POPULATION_KEEP
            )
            logger.info(
                "population layer v{} trained on {} triples of {} users in {:.1f} s",
                version,
                len(data.positive),
                len(histories),
                time.perf_counter() - started,
            )
            ctx.use(POPULATION).read_at = -math.inf
            return version
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _POPULATION_LOCK)


async def retrain_population(ctx: AgentContext) -> int | None:
    # Nothing reads the layer while the adapter is off; a worker started with it on trains at once.
    if not ctx.settings.sona.adapter_enabled:
        return None
    return await train_population(ctx)


# --- housekeeping --------------------------------------------------------------------------------


async def prune_applied_events(ctx: AgentContext) -> int:
    """Forget event ids older than any topic we consume keeps records (nothing redelivers)."""
    horizon = max(spec.retention_ms or 0 for spec in (SYNC_PROGRESS, SONA_RATINGS, SONA_DISMISSALS))
    cutoff = datetime.now(UTC) - timedelta(milliseconds=horizon) - timedelta(hours=1)
    return await forget_before(ctx.pool, (TRAIN_AGENT, RATINGS_AGENT, DISMISSALS_AGENT), cutoff)


AGENTS = [
    AgentSpec(
        name=TRAIN_AGENT,
        group="sona",
        topic=SYNC_PROGRESS,
        handler=train_from_progress,
        description="folds viewings into taste profiles; retrains a user's adapter when due",
    ),
    AgentSpec(
        name=RATINGS_AGENT,
        group="sona",
        topic=SONA_RATINGS,
        handler=train_from_feedback,
        description="folds ratings into taste profiles; retrains a user's adapter when due",
    ),
    AgentSpec(
        name=DISMISSALS_AGENT,
        group="sona",
        topic=SONA_DISMISSALS,
        handler=train_from_feedback,
        description="folds dismissals into taste profiles; the title never comes back",
    ),
    AgentSpec(
        name="sona-vectors",
        group="sona",
        topic=CONTENT_METADATA_ENRICHED,
        handler=fold_new_vectors,
        description="folds a title embedded after users watched or rated it into their tastes",
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
    TimerSpec(name="sona-event-prune", group="sona", interval_s=3600.0, run=prune_applied_events),
    # At start too: a worker (re)started after the rows grew trains at once, unless a layer
    # younger than the interval is there (another worker's, or this one's before a restart).
    TimerSpec(
        name="sona-population",
        group="sona",
        interval_s=POPULATION_INTERVAL_S,
        run=retrain_population,
        at_start=True,
    ),
]

BROADCASTS = [
    BroadcastSpec(
        name="sona-adapter-versions",
        group="sona",
        topic=SONA_ADAPTER_TRAINED,
        handler=hear_adapter_versions,
        description="every worker evicts the adapters other workers retrained from its cache",
    )
]
