"""Enrichment: embed each new or changed title, store its vector, score its data quality.

Driven by content.ingested / content.updated, and by a periodic sweep for anything still due
(a row is due when it changed after its last enrichment), so a lost trigger only delays it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from loguru import logger

from agents import outbox
from agents.context import AgentContext
from agents.embeddings.base import content_text
from agents.ingestion.quality import quality_score
from agents.runtime import AgentSpec, TimerSpec
from agents.vectors.payload import content_payload
from agents.vectors.store import VectorPoint
from schemas.content import CanonicalContent, MetadataEnriched
from schemas.envelope import Envelope, wrap
from topics.catalog import CONTENT_INGESTED, CONTENT_METADATA_ENRICHED, CONTENT_UPDATED

SWEEP_BATCH = 100  # DOMAIN: enrichment in batches of 100

_DUE = """
SELECT canonical_id, doc, updated_at FROM content
WHERE canonical_id = ANY($1::uuid[])
  AND (enriched_version IS NULL OR enriched_version < updated_at)
"""
_DUE_ANY = """
SELECT canonical_id, doc, updated_at FROM content
WHERE enriched_version IS NULL OR enriched_version < updated_at
ORDER BY updated_at LIMIT $1
"""
_MARK = """
UPDATE content AS c SET data_quality_score = u.score, enriched_version = u.version,
                        enriched_at = now()
FROM unnest($1::uuid[], $2::real[], $3::timestamptz[]) AS u(id, score, version)
WHERE c.canonical_id = u.id AND c.updated_at = u.version
RETURNING c.canonical_id
"""


async def enrich_rows(
    ctx: AgentContext, rows: Iterable[Any], correlation: Mapping[uuid.UUID, str | None]
) -> int:
    """Embed, upsert vectors, record scores; rows changed meanwhile are left for their own event."""
    rows = list(rows)
    if not rows:
        return 0
    contents = [CanonicalContent.model_validate(r["doc"]) for r in rows]
    embedder = await ctx.embedder()
    vectors = await embedder.embed([content_text(c) for c in contents])
    store = await ctx.vectors()
    await store.upsert(
        [
            VectorPoint(c.canonical_id, vector, content_payload(c))
            for c, vector in zip(contents, vectors, strict=True)
        ]
    )
    scores = [quality_score(c, has_embedding=True) for c in contents]
    versions = {r["canonical_id"]: r["updated_at"] for r in rows}
    async with ctx.pool.acquire() as conn, conn.transaction():
        marked = {
            r["canonical_id"]
            for r in await conn.fetch(
                _MARK,
                [c.canonical_id for c in contents],
                scores,
                [versions[c.canonical_id] for c in contents],
            )
        }
        events = [
            (
                CONTENT_METADATA_ENRICHED,
                wrap(
                    MetadataEnriched(
                        canonical_id=c.canonical_id,
                        source_version=versions[c.canonical_id],
                        data_quality_score=score,
                        embedding_model=embedder.model,
                        dimension=embedder.dimension,
                    ),
                    key=str(c.canonical_id),
                    source="enrich-metadata",
                    correlation_id=correlation.get(c.canonical_id),
                ),
            )
            for c, score in zip(contents, scores, strict=True)
            if c.canonical_id in marked
        ]
        staged = await outbox.stage(conn, events)
    await outbox.flush(ctx.pool, ctx.publisher, staged)
    for c, score in zip(contents, scores, strict=True):
        if c.canonical_id in marked:
            logger.bind(correlation_id=correlation.get(c.canonical_id)).info(
                "title {} enriched (quality {:.2f})", c.canonical_id, score
            )
    return len(marked)


async def enrich_triggered(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    correlation = {env.payload.content.canonical_id: env.correlation_id for env in batch}
    rows = await ctx.pool.fetch(_DUE, list(correlation))
    await enrich_rows(ctx, rows, correlation)


async def sweep_due(ctx: AgentContext) -> int:
    """Enrich titles still due (missed triggers, a model change), a batch at a time."""
    total = 0
    while rows := await ctx.pool.fetch(_DUE_ANY, SWEEP_BATCH):
        done = await enrich_rows(ctx, rows, {})
        total += done
        if done < len(rows):
            break  # rows changing under us: their own events will bring them back
    return total


AGENTS = [
    AgentSpec(
        name=f"enrich-{spec.name.removeprefix('content.')}",
        group="enrichment",
        topic=spec,
        handler=enrich_triggered,
        batch_size=100,
        batch_within_s=0.2,
        description=f"embeds and scores titles named by {spec.name}",
    )
    for spec in (CONTENT_INGESTED, CONTENT_UPDATED)
]

TIMERS = [
    TimerSpec(
        name="enrich-sweep", group="enrichment", interval_s=30.0, run=sweep_due, at_start=True
    )
]
