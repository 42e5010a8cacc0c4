"""Agents of the catalog: store submitted canonical records, keep the read model current."""

from __future__ import annotations

import uuid
from typing import Any

from loguru import logger

from agents import outbox
from agents.catalog import read_model
from agents.catalog.store import Versioned, changed_fields, fetch_contents, upsert_contents
from agents.context import AgentContext
from agents.runtime import AgentSpec, TimerSpec
from core.read_model import ABSENT_TTL_S, absent_key, read_state
from core.response_cache import invalidate_content
from schemas.content import ContentIngested, ContentUpdated
from schemas.envelope import Envelope, Payload, wrap
from topics.catalog import (
    CONTENT_AVAILABILITY_CHANGED,
    CONTENT_INGESTED,
    CONTENT_LOOKUP,
    CONTENT_METADATA_ENRICHED,
    CONTENT_SUBMITTED,
    CONTENT_UPDATED,
    TopicSpec,
)


def lifecycle_event(
    source: Envelope[Any], payload: Payload, spec: TopicSpec, key: str, agent: str
) -> tuple[TopicSpec, Envelope[Any]]:
    """An event caused by `source`: it keeps the correlation id so one request traces through."""
    return spec, wrap(payload, key=key, source=agent, correlation_id=source.correlation_id)


async def store_submitted(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Upsert canonical records, then announce what was new or changed (nothing otherwise)."""
    by_id = {env.payload.content.canonical_id: env for env in batch}
    items = [Versioned(env.payload.content, env.event_id) for env in batch]
    async with ctx.pool.acquire() as conn, conn.transaction():
        before = await fetch_contents(conn, by_id, lock=True)
        outcome = await upsert_contents(conn, items)
        events = []
        for cid in outcome.inserted:
            env = by_id[cid]
            events.append(
                lifecycle_event(
                    env,
                    ContentIngested(content=env.payload.content),
                    CONTENT_INGESTED,
                    str(cid),
                    "content-store",
                )
            )
        for cid in outcome.updated:
            env = by_id[cid]
            fields = changed_fields(before.get(cid), env.payload.content)
            events.append(
                lifecycle_event(
                    env,
                    ContentUpdated(content=env.payload.content, changed_fields=fields),
                    CONTENT_UPDATED,
                    str(cid),
                    "content-store",
                )
            )
        staged = await outbox.stage(conn, events)
    await outbox.flush(ctx.pool, ctx.publisher, staged)
    changed = set(outcome.inserted) | set(outcome.updated)
    for cid, env in by_id.items():
        log = logger.bind(correlation_id=env.correlation_id, event_id=str(env.event_id))
        if cid in changed:
            state = "new" if cid in outcome.inserted else "newer version"
            log.info("content {} stored ({})", cid, state)
        else:
            log.debug("content {} unchanged (same or newer version already stored)", cid)


def _content_id(env: Envelope[Any]) -> uuid.UUID:
    payload = env.payload
    content = getattr(payload, "content", None)
    return content.canonical_id if content is not None else payload.canonical_id


async def project(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    """Refresh the read-model documents of the titles these events touched."""
    ids = [_content_id(env) for env in batch]
    await read_model.refresh(ctx.pool, ctx.redis, ctx.prefix, ids)
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


async def invalidate_responses(ctx: AgentContext, ids: list[uuid.UUID]) -> None:
    """Drop the gateway's cached responses of changed titles, so nobody sees them stale."""
    for cid in dict.fromkeys(ids):
        await invalidate_content(ctx.redis, ctx.prefix, str(cid))


_REBUILD_LOCK = 0x6D67770004


async def guard_read_model(ctx: AgentContext) -> int:
    """Rebuild the read model when Redis lost it (it keeps nothing on disk).

    The state key is written when a rebuild finishes; a Redis that restarted empty has none.
    One process rebuilds at a time; the others find the state `rebuilding` or `ready`.
    """
    if await read_state(ctx.redis, ctx.prefix) is not None:
        return 0
    async with ctx.pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _REBUILD_LOCK):
            return 0
        try:
            logger.warning(
                "read model not in Redis (first start, or Redis restarted empty): "
                "building it from PostgreSQL"
            )
            done = await read_model.rebuild(ctx.pool, ctx.redis, ctx.prefix)
            logger.info("read model rebuilt: {} document(s)", done)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _REBUILD_LOCK)


AGENTS = [
    AgentSpec(
        name="content-store",
        group="catalog",
        topic=CONTENT_SUBMITTED,
        handler=store_submitted,
        description="upserts submitted canonical records; emits content.ingested / updated",
    ),
    AgentSpec(
        name="read-model-lookup",
        group="readmodel",
        topic=CONTENT_LOOKUP,
        handler=answer_lookups,
        # Someone is waiting for each answer: do not hold requests back to fill a batch.
        batch_within_s=0.005,
        description="answers the gateway's read-model misses from PostgreSQL",
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

TIMERS = [
    TimerSpec(
        name="read-model-guard",
        group="readmodel",
        interval_s=10.0,
        run=guard_read_model,
        at_start=True,
    )
]
