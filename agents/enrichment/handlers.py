"""Enrichment: embed each new or changed title, store its vector, score its data quality.

Driven by content.ingested / content.updated, and by a periodic sweep for anything still due
(a row is due when it changed after its last enrichment), so a lost trigger only delays it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from loguru import logger

from agents.adapters.embeddings.base import content_text
from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint
from agents.enrichment import store
from agents.enrichment.quality import quality_score
from agents.framework.context import AgentContext
from agents.framework.outgoing import Outgoing
from agents.framework.runtime import AgentSpec, TimerSpec
from agents.framework.unit_of_work import unit_of_work
from schemas.content import CanonicalContent, MetadataEnriched
from schemas.envelope import Envelope
from topics.registry import CONTENT_INGESTED, CONTENT_METADATA_ENRICHED, CONTENT_UPDATED

SWEEP_BATCH = 100  # DOMAIN: enrichment in batches of 100


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
    vector_store = await ctx.vectors()
    await vector_store.upsert(
        [
            VectorPoint(c.canonical_id, vector, content_payload(c))
            for c, vector in zip(contents, vectors, strict=True)
        ]
    )
    scores = [quality_score(c, has_embedding=True) for c in contents]
    versions = {r["canonical_id"]: r["updated_at"] for r in rows}
    async with unit_of_work(ctx) as uow:
        marked = await store.mark_enriched(
            uow.conn,
            [c.canonical_id for c in contents],
            scores,
            [versions[c.canonical_id] for c in contents],
        )
        for c, score in zip(contents, scores, strict=True):
            if c.canonical_id not in marked:
                continue
            payload = MetadataEnriched(
                canonical_id=c.canonical_id,
                source_version=versions[c.canonical_id],
                data_quality_score=score,
                embedding_model=embedder.model,
                dimension=embedder.dimension,
            )
            uow.add(
                Outgoing(
                    CONTENT_METADATA_ENRICHED,
                    payload,
                    str(c.canonical_id),
                    correlation.get(c.canonical_id),
                )
            )
    for c, score in zip(contents, scores, strict=True):
        if c.canonical_id in marked:
            logger.bind(correlation_id=correlation.get(c.canonical_id)).info(
                "title {} enriched (quality {:.2f})", c.canonical_id, score
            )
    return len(marked)


async def enrich_triggered(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    correlation = {env.payload.content.canonical_id: env.correlation_id for env in batch}
    rows = await store.due_among(ctx.pool, list(correlation))
    await enrich_rows(ctx, rows, correlation)


async def sweep_due(ctx: AgentContext) -> int:
    """Enrich titles still due (missed triggers, a model change), a batch at a time."""
    total = 0
    while rows := await store.due_any(ctx.pool, SWEEP_BATCH):
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
