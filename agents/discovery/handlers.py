"""Handlers of discovery (group discovery): answer the gateway's search requests, and drop the
cached result pages of titles that changed.

One search: the result cache (a request asked twice at once was answered by the first); the
intent (intent_client: cache, LLM, rules); the plan (plan.py); the strategies (retrieval_store);
filtering, fusion, facets and the page (ranking.py); the page stored in the result cache and
published on the request's reply channel, where the gateway waits for it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loguru import logger
from prometheus_client import Counter, Histogram

from agents.discovery import store
from agents.discovery.cache_store import DiscoveryCache
from agents.discovery.intent_client import IntentResolver
from agents.discovery.invalidation import (
    Change,
    changed_subjects,
    page_lifetime,
    page_subjects,
)
from agents.discovery.plan import is_stale, plan_search
from agents.discovery.ranking import assemble
from agents.discovery.retrieval_store import SEARCH_AGENT, Retriever
from agents.discovery.selectivity import CatalogStats
from agents.discovery.suggest_store import SUGGEST_INTERVAL_S, refresh_suggest_index
from agents.framework.context import AgentContext
from agents.framework.resources import Resource
from agents.framework.runtime import TAKE_WHAT_IS_READY, AgentSpec, TimerSpec
from agreements.discovery_cache import request_results_key, request_results_set_key
from core.observability import correlation
from core.observability.stages import timed
from schemas.discovery import SearchRequested
from schemas.envelope import Envelope
from topics.registry import (
    CONTENT_AVAILABILITY_CHANGED,
    CONTENT_METADATA_ENRICHED,
    CONTENT_UPDATED,
    DISCOVERY_SEARCH,
)

SEARCH_SECONDS = Histogram(
    "mgw_discovery_search_duration_seconds",
    "Time the discovery agent took to answer one search: cached, or computed",
    ["outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5),
)
SEARCHES_SKIPPED = Counter(
    "mgw_discovery_searches_skipped_total",
    "Search requests older than anyone waits for, skipped without an answer",
)
STATS_INTERVAL_S = 300.0


@dataclass
class Discovery:
    """What the searches of one worker share."""

    cache: DiscoveryCache
    intents: IntentResolver
    retriever: Retriever
    stats: CatalogStats = field(default_factory=CatalogStats)


def _open_discovery(ctx: AgentContext) -> Discovery:
    cache = DiscoveryCache(ctx.redis, ctx.prefix, ctx.settings.discovery)
    return Discovery(
        cache=cache,
        intents=IntentResolver(ctx.settings, cache),
        retriever=Retriever(ctx.pool, ctx.vectors, ctx.embedder, cache, ctx.settings.discovery),
    )


async def _close_discovery(engine: Discovery) -> None:
    await engine.intents.close()


DISCOVERY = Resource("discovery", open=_open_discovery, close=_close_discovery)


async def search(engine: Discovery, request: SearchRequested, key: str) -> bytes:
    """The SearchResponse of `request` as JSON, from the result cache or computed and cached."""
    started = time.perf_counter()
    cached = await engine.cache.get_results(key)
    if cached is not None:
        SEARCH_SECONDS.labels("cached").observe(time.perf_counter() - started)
        return cached
    clock = await engine.cache.results_clock()
    with timed(SEARCH_AGENT, "intent"):
        resolved = await engine.intents.resolve(request.query, anonymous=request.anonymous)
    plan = plan_search(request, resolved.intent, engine.stats)
    with timed(SEARCH_AGENT, "retrieve"):
        retrieved = await engine.retriever.retrieve(plan)
    with timed(SEARCH_AGENT, "rank"):
        elapsed_ms = (time.perf_counter() - started) * 1000
        assembled = assemble(request, resolved.intent, plan, retrieved, elapsed_ms)
        response = assembled.response
        body = response.__pydantic_serializer__.to_json(response)
    # A partial answer is given, never kept: the next asker gets every strategy again. Nor is
    # an empty one: no title is on it, so no title's change would drop it, and a title added
    # meanwhile is exactly what its asker is waiting for.
    complete = not (retrieved.partial or response.strategies_failed) and response.total_count > 0
    # Nor one read by the rules because the anonymous LLM budget was spent: kept, it would be
    # every caller's answer (signed-in ones too) long after the budget refilled.
    complete = complete and resolved.origin != "rules_budget"
    lifetime_s = page_lifetime(
        engine.cache.settings.results_ttl_s,
        assembled.offers_change_in_s,
        time.perf_counter() - started,
    )
    if complete and lifetime_s > 0:
        with timed(SEARCH_AGENT, "cache"):
            await engine.cache.set_results(
                key,
                request_results_set_key(engine.cache.prefix, request),
                body,
                page_subjects(plan.filters, assembled.depends_on),
                clock,
                lifetime_s,
            )
    SEARCH_SECONDS.labels("computed").observe(time.perf_counter() - started)
    logger.info(
        "search {!r}: {} result(s) in {:.1f} ms (intent from {}, strategies {}{}){}",
        request.query[:100],
        response.total_count,
        elapsed_ms,
        resolved.origin,
        ",".join(response.strategies_used) or "none",
        f", failed {','.join(response.strategies_failed)}" if response.strategies_failed else "",
        "" if complete else ", not cached",
    )
    return body


async def answer_searches(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Answer each request on its reply channel; a search asked several times is run once."""
    engine = ctx.use(DISCOVERY)
    now = datetime.now(UTC)
    waiting: dict[str, list[Envelope[SearchRequested]]] = {}
    for env in batch:
        if is_stale((now - env.time).total_seconds(), ctx.settings.discovery.reply_timeout_s):
            SEARCHES_SKIPPED.inc()
            logger.bind(correlation_id=env.correlation_id).info(
                "search request {} from {} skipped: nobody waits for it any more",
                env.event_id,
                env.time.isoformat(),
            )
            continue
        waiting.setdefault(request_results_key(ctx.prefix, env.payload), []).append(env)
    tasks = []
    for key, envs in waiting.items():
        # Each search's log lines carry the correlation id of its (first) request.
        with correlation.bound(envs[0].correlation_id):
            tasks.append(asyncio.create_task(search(engine, envs[0].payload, key)))
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for envs, body in zip(waiting.values(), outcomes, strict=True):
            if isinstance(body, bytes):
                for env in envs:
                    pipe.publish(env.payload.reply_channel, body)
        await pipe.execute()
    # Answered what could be answered; a failure is the runtime's to retry or set aside.
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def drop_changed_results(ctx: AgentContext, batch: list[Envelope[Change]]) -> None:
    """A title changed (its record, where it plays, or its vector): no cached page may show it
    as it was, nor miss it where it now plays."""
    subjects = [s for env in batch for s in changed_subjects(env.payload)]
    dropped = await ctx.use(DISCOVERY).cache.invalidate(subjects)
    logger.debug(
        "{} change(s) of {} subject(s): {} cached result page(s) dropped",
        len(batch),
        len(set(subjects)),
        dropped,
    )


async def refresh_catalog_stats(ctx: AgentContext) -> CatalogStats:
    """Count the catalog for the selectivity estimate; at start also load the embedding model
    and open the vector store, so the first search does not pay for them."""
    engine = ctx.use(DISCOVERY)
    await ctx.vectors()
    embedder = await ctx.embedder()
    await embedder.embed(["warm up"])
    engine.stats = await store.catalog_stats(ctx.pool)
    logger.debug("catalog counted for search: {} title(s)", engine.stats.total)
    return engine.stats


AGENTS = [
    AgentSpec(
        name=SEARCH_AGENT,
        group="discovery",
        topic=DISCOVERY_SEARCH,
        handler=answer_searches,
        batch_size=64,
        # Someone is waiting for each answer: never hold requests back to fill a batch; those
        # arriving while a batch is searched are taken together (agents/framework/kafka/app.py
        # `take_batches`).
        batch_within_s=TAKE_WHAT_IS_READY,
        description="answers natural-language searches the gateway's result cache missed",
    ),
    *(
        AgentSpec(
            name=f"discovery-drop-{spec.name.removeprefix('content.').replace('_', '-')}",
            group="discovery",
            topic=spec,
            handler=drop_changed_results,
            description=f"drops cached search results showing titles named by {spec.name}",
        )
        for spec in (CONTENT_UPDATED, CONTENT_AVAILABILITY_CHANGED, CONTENT_METADATA_ENRICHED)
    ),
]

TIMERS = [
    TimerSpec(
        name="discovery-stats",
        group="discovery",
        interval_s=STATS_INTERVAL_S,
        run=refresh_catalog_stats,
        at_start=True,
    ),
    TimerSpec(
        name="discovery-suggest",
        group="discovery",
        interval_s=SUGGEST_INTERVAL_S,
        run=refresh_suggest_index,
        at_start=True,
    ),
]
