"""Enrichment: embed each new or changed title, store its vector, score its data quality.

Driven by content.ingested / content.updated, and by a periodic sweep for anything still due
(a row is due when it changed after its last enrichment), so a lost trigger only delays it.
Both paths claim a title's version before embedding it (agents/enrichment/store.py): each
version is embedded and announced once, however the events and the sweep interleave.

A row that cannot be enriched (a document that no longer parses, a text the model or the
vector store refuses) is quarantined with the reason (agents/framework/quarantine.py) and the
rest of the batch goes on; its next version is tried again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import openai
from loguru import logger
from pydantic import ValidationError

from agents.adapters.embeddings.base import content_text
from agents.adapters.vectors.payload import content_payload
from agents.adapters.vectors.store import VectorPoint
from agents.enrichment import store
from agents.enrichment.quality import quality_score
from agents.framework.context import AgentContext
from agents.framework.outgoing import Outgoing
from agents.framework.quarantine import Poison, isolate, poison_of, quarantine, release
from agents.framework.runtime import TRANSIENT_ERRORS, AgentSpec, TimerSpec
from agents.framework.unit_of_work import unit_of_work
from core.observability.metrics import EMBEDDED_TEXTS
from schemas.content import CanonicalContent, MetadataEnriched
from schemas.envelope import Envelope
from topics.registry import CONTENT_INGESTED, CONTENT_METADATA_ENRICHED, CONTENT_UPDATED

SWEEP_BATCH = 100  # docs/RULES.md: enrichment in batches of 100
# Besides the framework's: a remote embedder or vector store that is away is not the row's
# fault, and must not quarantine it.
ENRICHMENT_TRANSIENT: tuple[type[BaseException], ...] = (
    *TRANSIENT_ERRORS,
    httpx.TransportError,
    openai.APIConnectionError,
    openai.RateLimitError,
    openai.InternalServerError,
)


def _parse(rows: Sequence[Any]) -> tuple[list[tuple[Any, CanonicalContent]], list[Poison]]:
    parsed: list[tuple[Any, CanonicalContent]] = []
    poisons: list[Poison] = []
    for row in rows:
        try:
            parsed.append((row, CanonicalContent.model_validate_json(row["doc"])))
        except ValidationError as exc:
            poisons.append(poison_of(row["canonical_id"], row["version_key"], "invalid", exc))
    return parsed, poisons


async def enrich_rows(
    ctx: AgentContext,
    rows: Sequence[Any],
    correlation: Mapping[uuid.UUID, str | None],
    owner: str,
) -> int:
    """Embed, upsert vectors and record scores of rows `owner` claimed (store.claim);
    quarantine what cannot be enriched. Returns the rows dealt with (enriched or quarantined)."""
    if not rows:
        return 0
    ids = [r["canonical_id"] for r in rows]
    try:
        return await _enrich(ctx, rows, correlation, owner)
    except Exception:
        # Transient (the embedder, vector store or database away): give the versions back, so
        # a retry of this batch, or the sweep, can claim them at once.
        try:
            await store.release_claims(ctx.pool, ids, owner)
        except Exception as exc:  # the claims then simply expire
            logger.warning("could not release enrichment claims: {!r}", exc)
        raise


async def _enrich(
    ctx: AgentContext,
    rows: Sequence[Any],
    correlation: Mapping[uuid.UUID, str | None],
    owner: str,
) -> int:
    parsed, poisons = _parse(rows)
    embedder = await ctx.embedder()
    vector_store = await ctx.vectors()

    async def embed_and_store(batch: Sequence[tuple[Any, CanonicalContent]]) -> None:
        contents = [c for _, c in batch]
        vectors = await embedder.embed([content_text(c) for c in contents])
        EMBEDDED_TEXTS.labels(embedder.model).inc(len(contents))
        await vector_store.upsert(
            [
                VectorPoint(c.canonical_id, vector, content_payload(c))
                for c, vector in zip(contents, vectors, strict=True)
            ]
        )

    failed = await isolate(parsed, embed_and_store, ENRICHMENT_TRANSIENT)
    poisons += [
        poison_of(row["canonical_id"], row["version_key"], "enrich_failed", exc)
        for (row, _), exc in failed
    ]
    failed_ids = {row["canonical_id"] for (row, _), _ in failed}
    done = [(row, c) for row, c in parsed if row["canonical_id"] not in failed_ids]
    scores = [quality_score(c, has_embedding=True) for _, c in done]
    async with unit_of_work(ctx) as uow:
        marked = await store.mark_enriched(
            uow.conn,
            [c.canonical_id for _, c in done],
            scores,
            [row["updated_at"] for row, _ in done],
        )
        for (row, c), score in zip(done, scores, strict=True):
            if c.canonical_id not in marked:
                continue
            payload = MetadataEnriched(
                canonical_id=c.canonical_id,
                source_version=row["updated_at"],
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
        await quarantine(uow.conn, store.QUARANTINE_AGENT, poisons)
        await release(uow.conn, store.QUARANTINE_AGENT, sorted(marked, key=str))
        await store.release_claims(uow.conn, [r["canonical_id"] for r in rows], owner)
    for (_, c), score in zip(done, scores, strict=True):
        if c.canonical_id in marked:
            logger.bind(correlation_id=correlation.get(c.canonical_id)).info(
                "title {} enriched (quality {:.2f})", c.canonical_id, score
            )
    return len(marked) + len(poisons)


def _owner(ctx: AgentContext) -> str:
    # Unique per claim, so releasing claims never drops another call's.
    return f"{ctx.agent}:{uuid.uuid4().hex[:12]}"


async def enrich_triggered(ctx: AgentContext, batch: list[Envelope[Any]]) -> None:
    correlation = {env.payload.content.canonical_id: env.correlation_id for env in batch}
    owner = _owner(ctx)
    rows = await store.claim(ctx.pool, owner, ids=list(correlation))
    await enrich_rows(ctx, rows, correlation, owner)


async def sweep_due(ctx: AgentContext) -> int:
    """Enrich titles still due (missed triggers, a model change), a batch at a time."""
    total = 0
    while True:
        owner = _owner(ctx)
        rows = await store.claim(ctx.pool, owner, limit=SWEEP_BATCH)
        if not rows:
            return total
        done = await enrich_rows(ctx, rows, {}, owner)
        total += done
        if done == 0:
            # Every row changed while it was embedded: their own events bring them back.
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
