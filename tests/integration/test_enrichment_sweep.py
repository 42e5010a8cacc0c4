"""Enrichment against the real PostgreSQL, broker, embedding model and vector store: each title
version is enriched once however the event path and the sweep interleave, and a poison row is
quarantined while the sweep finishes everything behind it."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.enrichment import store as enrichment_store
from agents.enrichment.handlers import SWEEP_BATCH, enrich_triggered, sweep_due
from agents.framework.context import AgentContext, ContextHolder
from agents.framework.quarantine import quarantine_check
from agents.framework.runtime import Record, process_batch
from agents.ingestion.handlers import AGENTS as INGESTION_AGENTS
from agents.readmodel import store as read_model
from agents.titles.store import Versioned, fetch_contents, upsert_contents
from core.observability.metrics import EMBEDDED_TEXTS, ROWS_QUARANTINED
from devtools.sample_catalog import generate_sample
from schemas.content import CanonicalContent, ContentIngested, MetadataEnriched
from schemas.envelope import Envelope, decode, encode, wrap
from schemas.ingestion import CatalogItemReceived, RawCatalogItem
from tests.conftest import Isolated
from tests.helpers import read_topic

PROCESS_BATCH = next(spec for spec in INGESTION_AGENTS if spec.name == "process-batch")


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    yield await holder.get()
    await holder.close()


async def bulk_load(ctx: AgentContext, items: Sequence[dict[str, Any]]) -> None:
    """Catalog items through the real process-batch step, as the ingestion worker runs it."""
    records = []
    for offset, data in enumerate(items):
        item = RawCatalogItem.model_validate(data)
        envelope = wrap(CatalogItemReceived(item=item), key=item.record_key, source="test")
        records.append(
            Record("content.raw", 0, offset, item.record_key.encode(), encode(envelope), [])
        )
    for start in range(0, len(records), 500):
        await process_batch(PROCESS_BATCH, ctx, ctx.publisher, records[start : start + 500])


def embedded() -> float:
    return sum(
        s.value for m in EMBEDDED_TEXTS.collect() for s in m.samples if s.name.endswith("_total")
    )


async def enriched_events(ctx: AgentContext) -> list[MetadataEnriched]:
    topic = f"{ctx.settings.kafka.topic_prefix}.content.metadata_enriched"
    return [
        decode(r.value, MetadataEnriched).payload
        for r in await read_topic(ctx.settings.kafka.bootstrap, topic)
    ]


async def test_each_title_version_is_enriched_once_with_the_sweep_running(
    ctx: AgentContext,
) -> None:
    """The issue's bulk load: the sweep (which also runs as the worker starts) and the agents on
    content.ingested both find the same due titles. Both run at once here, the event path in
    batches of 100 as the agent takes them, the sweep over and over; then the events are
    delivered again. Every title version must be embedded and announced exactly once."""
    sample = generate_sample(260, seed=21)
    await bulk_load(ctx, sample.items)
    ids = [r["canonical_id"] for r in await ctx.pool.fetch("SELECT canonical_id FROM content")]
    docs = await fetch_contents(ctx.pool, ids)
    assert len(docs) == 260
    events: list[Envelope[Any]] = [
        wrap(ContentIngested(content=doc), key=str(cid), source="test", correlation_id=f"c-{cid}")
        for cid, doc in docs.items()
    ]
    before = embedded()

    async def event_path(agent: AgentContext) -> None:
        for start in range(0, len(events), 100):
            await enrich_triggered(agent, events[start : start + 100])

    async def sweeper(agent: AgentContext) -> None:
        for _ in range(4):
            await sweep_due(agent)
            await asyncio.sleep(0)

    await asyncio.gather(
        event_path(ctx.for_agent("enrich-ingested")),
        sweeper(ctx.for_agent("enrich-sweep")),
        sweeper(ctx.for_agent("enrich-sweep-2")),  # a second worker's sweep
    )
    await event_path(ctx.for_agent("enrich-ingested"))  # redelivered after a crash
    assert await sweep_due(ctx.for_agent("enrich-sweep")) == 0

    assert (
        await ctx.pool.fetchval(
            "SELECT count(*) FROM content WHERE enriched_version IS DISTINCT FROM updated_at"
        )
        == 0
    )
    announced = Counter((e.canonical_id, e.source_version) for e in await enriched_events(ctx))
    assert len(announced) == 260
    assert set(announced.values()) == {1}, announced.most_common(3)
    assert embedded() - before == 260  # embedding work per title: 1.0
    assert await ctx.pool.fetchval("SELECT count(*) FROM enrichment_claims") == 0

    # A new version of one title is enriched (once) again.
    cid, doc = next(iter(docs.items()))
    newer = doc.model_copy(update={"updated_at": doc.updated_at + timedelta(days=1)})
    await upsert_contents(ctx.pool, [Versioned(newer, uuid.uuid4())])
    await asyncio.gather(
        sweep_due(ctx.for_agent("enrich-sweep")),
        enrich_triggered(ctx.for_agent("enrich-updated"), [events[0]]),
    )
    announced = Counter(e.canonical_id for e in await enriched_events(ctx))
    assert announced[cid] == 2 and embedded() - before == 261


async def store_titles(ctx: AgentContext, n: int, start: datetime) -> list[CanonicalContent]:
    docs = [
        CanonicalContent(
            canonical_id=uuid.uuid4(),
            content_type="movie",
            title=f"Behind The Poison {i}",
            genres=["drama"],
            release_year=2001,
            updated_at=start + timedelta(seconds=i),
        )
        for i in range(n)
    ]
    await upsert_contents(ctx.pool, [Versioned(d, uuid.uuid4()) for d in docs])
    return docs


async def poison(ctx: AgentContext, cid: uuid.UUID, path: str, value: str) -> None:
    """Break a stored document the way records accepted before the gate was complete broke:
    the row sorts first among the due rows, as in the issue."""
    await ctx.pool.execute(
        f"UPDATE content SET doc = jsonb_set(doc, '{{{path}}}', '{value}'::jsonb), "
        "updated_at = '2001-01-01T00:00:00Z' WHERE canonical_id = $1",
        cid,
    )


def quarantined_total(agent: str) -> float:
    return sum(
        s.value
        for m in ROWS_QUARANTINED.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.labels["agent"] == agent
    )


async def test_a_poison_row_is_quarantined_and_the_sweep_finishes_everything_behind_it(
    ctx: AgentContext, isolated: Isolated
) -> None:
    docs = await store_titles(ctx, 2 * SWEEP_BATCH + 30, datetime(2020, 1, 1, tzinfo=UTC))
    # The poison: a count no 64-bit reader parses; and a document that fails the model.
    huge, blank = docs[0].canonical_id, docs[1].canonical_id
    await poison(ctx, huge, "rating_count", "123456789012345678901234567890")
    await poison(ctx, blank, "title", '""')
    quarantined_before = quarantined_total("enrichment")
    # What `mgw up`'s drain waits for: every title due, claimed or not.
    assert await enrichment_store.count_due(ctx.pool) == len(docs)
    await enrichment_store.claim(ctx.pool, "someone", ids=[docs[2].canonical_id])
    assert await enrichment_store.count_due(ctx.pool) == len(docs)
    await enrichment_store.release_claims(ctx.pool, [docs[2].canonical_id], "someone")

    done = await sweep_due(ctx.for_agent("enrich-sweep"))

    assert done == len(docs)
    # The quarantined two are not work left: nothing would do them before a new version.
    assert await enrichment_store.count_due(ctx.pool) == 0
    rows = await ctx.pool.fetch(
        "SELECT canonical_id FROM content WHERE enriched_version IS DISTINCT FROM updated_at"
    )
    assert {r["canonical_id"] for r in rows} == {huge, blank}
    held = {
        r["entity_id"]: r
        for r in await ctx.pool.fetch("SELECT * FROM quarantine WHERE agent = 'enrichment'")
    }
    assert set(held) == {str(huge), str(blank)}
    assert held[str(huge)]["reason"] == "invalid" and "rating_count" in held[str(huge)]["error"]
    assert "title" in held[str(blank)]["error"]
    assert quarantined_total("enrichment") - quarantined_before == 2
    # Later sweeps skip them instead of failing on them again.
    assert await sweep_due(ctx.for_agent("enrich-sweep")) == 0
    # Readiness of an enrichment worker names them; other groups' workers are not affected.
    url = isolated.settings.postgres.require_url()
    with pytest.raises(RuntimeError, match=r"enrichment: 2 row\(s\)"):
        await quarantine_check(url, 2.0, ["enrichment"])()
    assert await quarantine_check(url, 2.0, ["ingestion"])() == {"rows": 0}

    # The read model builds every other document and sets aside what breaks the schema.
    written = await read_model.refresh(
        ctx.pool, ctx.redis, ctx.prefix, [d.canonical_id for d in docs]
    )
    assert len(written) == len(docs) - 2 and not {huge, blank} & set(written)
    set_aside = await ctx.pool.fetch("SELECT entity_id FROM quarantine WHERE agent = 'readmodel'")
    assert {r["entity_id"] for r in set_aside} == {str(huge), str(blank)}

    # A fixed, newer version is tried again, enriched, and leaves the quarantine.
    fixed = docs[0].model_copy(update={"updated_at": datetime(2021, 1, 1, tzinfo=UTC)})
    await ctx.pool.execute(
        "UPDATE content SET doc = doc - 'rating_count' WHERE canonical_id = $1", huge
    )
    await upsert_contents(ctx.pool, [Versioned(fixed, uuid.uuid4())])
    assert await sweep_due(ctx.for_agent("enrich-sweep")) == 1
    remaining = await ctx.pool.fetch("SELECT entity_id FROM quarantine WHERE agent = 'enrichment'")
    assert [r["entity_id"] for r in remaining] == [str(blank)]


async def test_a_claim_held_by_a_dead_worker_is_taken_over_after_its_lease(
    ctx: AgentContext,
) -> None:
    [doc] = await store_titles(ctx, 1, datetime(2020, 1, 1, tzinfo=UTC))
    claimed = await enrichment_store.claim(ctx.pool, "dead-worker", ids=[doc.canonical_id])
    assert [r["canonical_id"] for r in claimed] == [doc.canonical_id]
    # Live: nobody else gets it, neither the events nor the sweep.
    assert await enrichment_store.claim(ctx.pool, "other", ids=[doc.canonical_id]) == []
    assert await sweep_due(ctx.for_agent("enrich-sweep")) == 0
    await ctx.pool.execute("UPDATE enrichment_claims SET claimed_until = now() - interval '1 s'")
    assert await sweep_due(ctx.for_agent("enrich-sweep")) == 1
