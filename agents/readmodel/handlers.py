"""Handlers of the Redis read model (group readmodel): refresh the documents of titles that
changed, answer the gateway's read-model misses, and rebuild what Redis lost."""

from __future__ import annotations

import uuid
from typing import Any

from loguru import logger

from agents.framework.context import AgentContext
from agents.framework.runtime import AgentSpec, TimerSpec
from agents.readmodel import store as read_model
from agreements.read_model import ABSENT_TTL_S, STATE_READY, absent_key
from schemas.envelope import Envelope
from topics.registry import (
    CONTENT_AVAILABILITY_CHANGED,
    CONTENT_INGESTED,
    CONTENT_ITEM_LOOKUP,
    CONTENT_LOOKUP,
    CONTENT_METADATA_ENRICHED,
    CONTENT_UPDATED,
)

# Season listings' offers reach the series documents within this (no event announces them).
SEASON_OFFERS_INTERVAL_S = 10.0


def _content_id(env: Envelope[Any]) -> uuid.UUID:
    payload = env.payload
    content = getattr(payload, "content", None)
    return content.canonical_id if content is not None else payload.canonical_id


async def project(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Refresh the read-model documents of the titles these events touched."""
    ids = [_content_id(env) for env in batch]
    await read_model.refresh(ctx.pool, ctx.redis, ctx.prefix, ids)
    # A changed episode or series changes its series' document (seasons, counts, platforms).
    await read_model.refresh_series(ctx.pool, ctx.redis, ctx.prefix, ids)
    await invalidate_responses(ctx, ids)
    for env in batch:
        logger.bind(correlation_id=env.correlation_id).debug(
            "read model of {} refreshed after {}", _content_id(env), env.event_type
        )


async def answer_lookups(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Fetch titles the gateway missed into the read model and answer on each reply channel."""
    written = await read_model.refresh(
        ctx.pool, ctx.redis, ctx.prefix, [env.payload.canonical_id for env in batch]
    )
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for env in batch:
            cid = env.payload.canonical_id
            document = written.get(cid)
            if document is None:
                pipe.set(absent_key(ctx.prefix, cid), b"1", ex=ABSENT_TTL_S)
            # An empty message means "no such title": the gateway answers 404.
            pipe.publish(env.payload.reply_channel, document or b"")
        await pipe.execute()
    for env in batch:
        logger.bind(correlation_id=env.correlation_id).debug(
            "lookup of {}: {}",
            env.payload.canonical_id,
            "found" if env.payload.canonical_id in written else "absent",
        )


async def answer_item_lookups(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Answer producers' questions "which title did my item resolve to" on each reply channel
    (an empty message: not stored, or not yet)."""
    keys = [(env.payload.platform, env.payload.platform_item_id) for env in batch]
    found = await read_model.item_mappings(ctx.pool, list(dict.fromkeys(keys)))
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for env, key in zip(batch, keys, strict=True):
            pipe.publish(env.payload.reply_channel, found.get(key, b""))
        await pipe.execute()


async def invalidate_responses(ctx: AgentContext, ids: list[uuid.UUID]) -> None:
    """Drop the gateway's cached responses of changed titles, so nobody sees them stale."""
    for cid in dict.fromkeys(ids):
        await read_model.invalidate_content(ctx.redis, ctx.prefix, str(cid))


async def guard_read_model(ctx: AgentContext) -> int:
    """Rebuild the read model when Redis lost it (it keeps nothing on disk), or when a rebuild
    stopped midway (its process died, or Redis went away during it).

    The state key is written `ready` when a rebuild finishes; a Redis that restarted empty has
    none. A state left at `rebuilding` while no process holds the rebuild lock is a rebuild
    that died. One process rebuilds at a time (read_model.rebuild's lock).
    """
    state = await read_model.read_state(ctx.redis, ctx.prefix)
    if state == STATE_READY:
        return 0
    done = await read_model.rebuild(ctx.pool, ctx.redis, ctx.prefix, wait=False)
    if done is not None:
        logger.warning(
            "read model {} (first start, Redis restarted empty, or a rebuild that died): "
            "rebuilt {} document(s) from PostgreSQL",
            "missing" if state is None else f"left at {state!r}",
            done,
        )
    return done or 0


AGENTS = [
    AgentSpec(
        name="read-model-lookup",
        group="readmodel",
        topic=CONTENT_LOOKUP,
        handler=answer_lookups,
        # Someone is waiting for each answer: do not hold requests back to fill a batch.
        batch_within_s=0.005,
        description="answers the gateway's read-model misses from PostgreSQL",
    ),
    AgentSpec(
        name="item-mapping-lookup",
        group="readmodel",
        topic=CONTENT_ITEM_LOOKUP,
        handler=answer_item_lookups,
        batch_within_s=0.005,
        description="tells producers which canonical title each of their items resolved to",
    ),
    *(
        AgentSpec(
            name=f"read-model-{spec.name.removeprefix('content.').replace('_', '-')}",
            group="readmodel",
            topic=spec,
            handler=project,
            description=f"refreshes the Redis document of titles named by {spec.name}",
        )
        for spec in (
            CONTENT_INGESTED,
            CONTENT_UPDATED,
            CONTENT_AVAILABILITY_CHANGED,
            CONTENT_METADATA_ENRICHED,
        )
    ),
]


async def project_season_offers(ctx: AgentContext) -> int:
    """Series documents of seasons whose offers a season listing changed."""
    return await read_model.refresh_changed_seasons(ctx.pool, ctx.redis, ctx.prefix)


TIMERS = [
    TimerSpec(
        name="read-model-season-offers",
        group="readmodel",
        interval_s=SEASON_OFFERS_INTERVAL_S,
        run=project_season_offers,
    ),
    TimerSpec(
        name="read-model-guard",
        group="readmodel",
        interval_s=10.0,
        run=guard_read_model,
        at_start=True,
    ),
]
