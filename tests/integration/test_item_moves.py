"""A platform item that resolves to another title than before takes its listing along: real
PostgreSQL, Redis and broker, the agents' handlers called directly (no Faust)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from agents.discovery.store import browse
from agents.framework.context import AgentContext, ContextHolder
from agents.ingestion.handlers import check_expiring, process_raw
from agents.readmodel.handlers import project
from agreements.read_model import document_key
from schemas.content import AvailabilityChanged, ContentUpdated
from schemas.discovery import SearchFilters
from schemas.envelope import decode, wrap
from schemas.ingestion import CatalogItemReceived, RawCatalogItem
from tests.conftest import Isolated
from tests.helpers import read_topic

NOW = datetime.now(UTC)
EIDR_C = "10.5240/1234-5678-9ABC-DEF0-1234-5"


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    yield await holder.get()
    await holder.close()


def listing(platform: str, item_id: str, title: str, hours: float, **fields: Any) -> RawCatalogItem:
    return RawCatalogItem.model_validate(
        {
            "platform": platform,
            "platform_item_id": item_id,
            "title": title,
            "content_type": "movie",
            "year": 2015,
            "source_updated_at": (NOW + timedelta(hours=hours)).isoformat(),
            **fields,
        }
    )


async def ingest(ctx: AgentContext, item: RawCatalogItem) -> None:
    envelope = wrap(
        CatalogItemReceived(item=item), key=item.record_key, source="test", correlation_id="mv"
    )
    await process_raw(ctx, [envelope])


async def mapped_to(ctx: AgentContext, platform: str, item_id: str) -> uuid.UUID:
    return await ctx.pool.fetchval(
        "SELECT canonical_id FROM entity_mappings WHERE platform = $1 AND platform_item_id = $2",
        platform,
        item_id,
    )


async def test_an_item_resolved_to_another_title_moves_its_offers_and_platform_id_there(
    ctx: AgentContext, isolated: Isolated
) -> None:
    soon = (NOW + timedelta(days=2)).isoformat()
    us = [{"availability_type": "subscription", "regions": ["US"], "available_until": soon}]
    # B: hulu's "Crimson Skies"; netflix's nf-cs matches it by title.
    await ingest(ctx, listing("hulu", "hu-cs", "Crimson Skies", 0, availability=us))
    await ingest(ctx, listing("netflix", "nf-cs", "Crimson Skies", 0, availability=us))
    b = await mapped_to(ctx, "hulu", "hu-cs")
    assert await mapped_to(ctx, "netflix", "nf-cs") == b
    assert await check_expiring(ctx) == 2  # hulu and netflix offers of B, noticed
    # C: another film, with an EIDR.
    await ingest(ctx, listing("prime", "pv-cb", "Crimson Bay", 0, external_ids={"eidr": EIDR_C}))
    c = await mapped_to(ctx, "prime_video", "pv-cb")

    # A newer nf-cs carries C's EIDR (and says nothing of its offers): it is C.
    await ingest(ctx, listing("netflix", "nf-cs", "Crimson Bay", 1, external_ids={"eidr": EIDR_C}))
    assert await mapped_to(ctx, "netflix", "nf-cs") == c

    docs = {
        r["canonical_id"]: orjson.loads(r["doc"])
        for r in await ctx.pool.fetch(
            "SELECT canonical_id, doc::text AS doc FROM content WHERE canonical_id = ANY($1)",
            [b, c],
        )
    }
    assert docs[b]["external_ids"]["platform_ids"] == {"hulu": "hu-cs"}
    assert {a["platform"] for a in docs[b]["availability"]} == {"hulu"}
    assert docs[b]["source_platforms"] == ["hulu"]
    assert docs[c]["external_ids"]["platform_ids"] == {"netflix": "nf-cs", "prime_video": "pv-cb"}
    assert {a["platform"] for a in docs[c]["availability"]} == {"netflix"}
    rows = {
        (r["canonical_id"], r["platform"]): r["expires_at"]
        for r in await ctx.pool.fetch(
            "SELECT canonical_id, platform, expires_at FROM platform_availability"
        )
    }
    assert rows[(b, "netflix")] <= datetime.now(UTC)  # ended on B
    assert rows[(c, "netflix")] > datetime.now(UTC)  # carried to C, until the same time
    assert rows[(b, "hulu")] > datetime.now(UTC)

    # Subscribers hear of B: its record changed, and its netflix offer ended.
    prefix, bootstrap = isolated.settings.kafka.topic_prefix, isolated.settings.kafka.bootstrap
    updated = [
        decode(r.value, ContentUpdated)
        for r in await read_topic(bootstrap, f"{prefix}.content.updated")
        if r.key == str(b).encode()
    ]
    assert updated and {"availability", "external_ids"} <= set(updated[-1].payload.changed_fields)
    changed = [
        decode(r.value, AvailabilityChanged)
        for r in await read_topic(bootstrap, f"{prefix}.content.availability_changed")
        if r.key == str(b).encode()
    ]
    assert [(e.payload.platform, len(e.payload.expired)) for e in changed][-1] == ("netflix", 1)

    # The read model and search follow: B is no longer shown on netflix, C is.
    await project(ctx, [*updated, *changed])
    document = orjson.loads(await ctx.redis.get(document_key(ctx.prefix, b)))
    assert "netflix" not in document["external_ids"]["platform_ids"]
    on_netflix = await browse(
        ctx.pool, SearchFilters(platforms=["netflix"]), offset=0, limit=50, counts_within_s=5.0
    )
    assert on_netflix.ids == [c] and on_netflix.total == 1
    # The expiry check follows the rows: only C's carried offer is due on netflix now.
    assert await check_expiring(ctx) == 1
