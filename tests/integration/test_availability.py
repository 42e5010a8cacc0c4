"""Availability sync and expiry notices against the real PostgreSQL and broker (no Faust)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from agents.context import AgentContext, ContextHolder
from agents.ingestion.agents import check_expiring, process_raw, sync_availability
from schemas.envelope import wrap
from schemas.ingestion import AvailabilityReceived, CatalogItemReceived, RawCatalogItem
from tests.conftest import Isolated
from tests.helpers import read_topic

NOW = datetime.now(UTC)


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    yield await holder.get()
    await holder.close()


def raw_item(item_id: str, regions: list[str], until: datetime | None = None) -> RawCatalogItem:
    return RawCatalogItem.model_validate(
        {
            "platform": "netflix",
            "platform_item_id": item_id,
            "title": f"Availability Test {item_id}",
            "content_type": "movie",
            "year": 2010,
            "genres": ["Dramas"],
            "availability": [
                {
                    "availability_type": "subscription",
                    "regions": regions,
                    "available_until": until.isoformat() if until else None,
                }
            ],
            "source_updated_at": (NOW - timedelta(days=1)).isoformat(),
        }
    )


async def ingest(ctx: AgentContext, *items: RawCatalogItem) -> None:
    await process_raw(
        ctx,
        [
            wrap(CatalogItemReceived(item=i), key=i.record_key, source="test", correlation_id="c-1")
            for i in items
        ],
    )


async def test_an_emptied_region_list_expires_the_title_there_and_is_announced(
    ctx: AgentContext, isolated: Isolated
) -> None:
    item_id = uuid.uuid4().hex[:8]
    await ingest(ctx, raw_item(item_id, ["US", "GB"]))
    cid = await ctx.pool.fetchval(
        "SELECT canonical_id FROM entity_mappings WHERE platform_item_id = $1", item_id
    )
    update = AvailabilityReceived(
        platform="netflix",
        platform_item_id=item_id,
        source_updated_at=NOW,
        availability=[{"availability_type": "subscription", "regions": ["US"]}],
    )
    envelope = wrap(update, key=update.record_key, source="test", correlation_id="avail-1")
    await sync_availability(ctx, [envelope])
    rows = {
        r["region"]: r["expires_at"]
        for r in await ctx.pool.fetch(
            "SELECT region, expires_at FROM platform_availability WHERE canonical_id = $1", cid
        )
    }
    assert rows["US"] is None and rows["GB"] is not None and rows["GB"] <= datetime.now(UTC)

    # Replaying the same update changes nothing and announces nothing new.
    topic = f"{isolated.settings.kafka.topic_prefix}.content.availability_changed"
    before = await read_topic(isolated.settings.kafka.bootstrap, topic)
    await sync_availability(ctx, [envelope])
    after = await read_topic(isolated.settings.kafka.bootstrap, topic)
    assert len(after) == len(before)
    ours = [r for r in after if r.key == str(cid).encode()]
    assert dict(ours[-1].headers)["correlation_id"] == b"avail-1"
    assert b'"expired":[{"platform":"netflix","region":"GB"' in ours[-1].value


async def test_expiry_notices_fire_once_per_window(ctx: AgentContext, isolated: Isolated) -> None:
    soon = raw_item(uuid.uuid4().hex[:8], ["FR"], until=NOW + timedelta(days=2))
    later = raw_item(uuid.uuid4().hex[:8], ["DE"], until=NOW + timedelta(days=30))
    await ingest(ctx, soon, later)
    assert await check_expiring(ctx) == 1
    assert await check_expiring(ctx) == 0
    notices = await read_topic(
        isolated.settings.kafka.bootstrap,
        f"{isolated.settings.kafka.topic_prefix}.content.expiring",
    )
    assert len(notices) == 1 and b'"window_days":3' in notices[0].value
