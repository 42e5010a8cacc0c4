"""A trusted canonical record (POST /api/v1/content -> content.submitted -> content-store) and
what the feeds merged: real PostgreSQL and broker, the agents' handlers called directly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from agents.framework.context import AgentContext, ContextHolder
from agents.ingestion.availability import slots
from agents.ingestion.handlers import check_expiring, process_raw
from agents.titles.handlers import store_submitted
from schemas.content import CanonicalContent, ContentSubmitted
from schemas.envelope import wrap
from schemas.ingestion import CatalogItemReceived, RawCatalogItem
from tests.conftest import Isolated
from tests.helpers import read_topic

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    yield await holder.get()
    await holder.close()


async def feed(ctx: AgentContext, item_id: str, **fields: Any) -> uuid.UUID:
    item = RawCatalogItem.model_validate(
        {
            "platform": "netflix",
            "platform_item_id": item_id,
            "title": "The Feed's Title",
            "content_type": "movie",
            "year": 2019,
            "source_updated_at": (NOW - timedelta(days=1)).isoformat(),
            **fields,
        }
    )
    await process_raw(ctx, [wrap(CatalogItemReceived(item=item), key=item.record_key, source="t")])
    return await ctx.pool.fetchval(
        "SELECT canonical_id FROM entity_mappings WHERE platform_item_id = $1", item_id
    )


async def submit(ctx: AgentContext, **fields: Any) -> None:
    content = CanonicalContent.model_validate(
        {"content_type": "movie", "genres": ["drama"], "updated_at": NOW, **fields}
    )
    envelope = wrap(ContentSubmitted(content=content), key=str(content.canonical_id), source="t")
    await store_submitted(ctx, [envelope])


async def record(ctx: AgentContext, cid: uuid.UUID) -> CanonicalContent:
    doc = await ctx.pool.fetchval("SELECT doc::text FROM content WHERE canonical_id = $1", cid)
    return CanonicalContent.model_validate_json(doc)


async def assert_one_truth_of_offers(ctx: AgentContext, cid: uuid.UUID) -> set[tuple[str, str]]:
    """The record's offers and the current platform_availability rows are the same offers."""
    doc = await record(ctx, cid)
    rows = await ctx.pool.fetch(
        "SELECT platform, region, availability_type, expires_at FROM platform_availability "
        "WHERE canonical_id = $1 AND (expires_at IS NULL OR expires_at > now())",
        cid,
    )
    in_rows = {(r["platform"], r["region"], r["availability_type"], r["expires_at"]) for r in rows}
    in_doc = {
        (s.platform, s.region, s.availability_type.value, s.expires_at)
        for s in slots(doc.availability)
    }
    assert in_rows == in_doc
    return {(platform, region) for platform, region, _, _ in in_doc}


async def test_a_trusted_record_keeps_what_the_feeds_merged_and_one_truth_of_offers(
    ctx: AgentContext, isolated: Isolated
) -> None:
    until = (NOW + timedelta(days=2)).isoformat()
    cid = await feed(
        ctx,
        uuid.uuid4().hex[:8],
        description="What the feed says it is about.",
        rating=7.5,
        rating_count=120,
        runtime="1h 52m",
        availability=[
            {"availability_type": "subscription", "regions": ["US"], "available_until": until}
        ],
    )
    # A trusted record, newer, naming only what it curates: no description, rating, runtime,
    # offers or platform ids.
    await submit(ctx, canonical_id=str(cid), title="The Curated Title", genres=["thriller"])
    doc = await record(ctx, cid)
    assert (doc.title, doc.genres) == ("The Curated Title", ["thriller"])
    assert doc.description == "What the feed says it is about."
    assert (doc.average_rating, doc.rating_count, doc.runtime_minutes) == (7.5, 120, 112)
    assert "netflix" in doc.external_ids.platform_ids
    assert "The Feed's Title" in doc.alternate_titles
    assert await assert_one_truth_of_offers(ctx, cid) == {("netflix", "US")}
    assert await check_expiring(ctx) == 1

    # Netflix feeds this title: its offers are the feed's, whatever a trusted record says.
    # A platform no feed delivers for it is the trusted record's to state: rows written too.
    await submit(
        ctx,
        canonical_id=str(cid),
        title="The Curated Title",
        updated_at=NOW + timedelta(hours=1),
        availability=[
            {"platform": "netflix", "availability_type": "free", "regions": ["FR"]},
            {"platform": "kanopy", "availability_type": "free", "regions": ["CA"]},
        ],
        external_ids={"platform_ids": {"netflix": "not-the-feeds", "kanopy": "k-1"}},
    )
    doc = await record(ctx, cid)
    assert doc.external_ids.platform_ids["netflix"] != "not-the-feeds"
    assert doc.external_ids.platform_ids["kanopy"] == "k-1"
    assert await assert_one_truth_of_offers(ctx, cid) == {("netflix", "US"), ("kanopy", "CA")}
    topic = f"{isolated.settings.kafka.topic_prefix}.content.availability_changed"
    changed = [
        orjson.loads(r.value)["payload"]
        for r in await read_topic(isolated.settings.kafka.bootstrap, topic)
        if r.key == str(cid).encode()
    ]
    assert changed[-1]["platform"] == "kanopy" and changed[-1]["appeared"][0]["region"] == "CA"


async def test_a_new_title_from_the_trusted_path_has_its_offers_as_rows(
    ctx: AgentContext,
) -> None:
    cid = uuid.uuid4()
    until = NOW + timedelta(days=2)
    await submit(
        ctx,
        canonical_id=str(cid),
        title="Only Trusted",
        availability=[
            {
                "platform": "kanopy",
                "availability_type": "free",
                "regions": ["US"],
                "available_until": until.isoformat(),
            }
        ],
    )
    assert await assert_one_truth_of_offers(ctx, cid) == {("kanopy", "US")}
    assert await check_expiring(ctx) == 1
