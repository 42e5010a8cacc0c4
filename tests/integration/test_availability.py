"""Availability sync and expiry notices against the real PostgreSQL and broker (no Faust)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from agents.framework.context import AgentContext, ContextHolder
from agents.ingestion.handlers import check_expiring, process_raw, sync_availability
from schemas.envelope import Envelope, decode, wrap
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


def availability_update(
    item_id: str, regions: list[str], at: datetime, correlation_id: str
) -> Envelope[AvailabilityReceived]:
    update = AvailabilityReceived(
        platform="netflix",
        platform_item_id=item_id,
        source_updated_at=at,
        availability=[{"availability_type": "subscription", "regions": regions}],
    )
    return wrap(update, key=update.record_key, source="test", correlation_id=correlation_id)


async def offers(ctx: AgentContext, item_id: str) -> dict[str, datetime | None]:
    rows = await ctx.pool.fetch(
        "SELECT a.region, a.expires_at FROM platform_availability a "
        "JOIN entity_mappings m ON m.canonical_id = a.canonical_id "
        "WHERE m.platform_item_id = $1",
        item_id,
    )
    return {r["region"]: r["expires_at"] for r in rows}


async def test_availability_that_arrives_before_its_item_is_applied_once_the_item_is_ingested(
    ctx: AgentContext, isolated: Isolated
) -> None:
    item_id = uuid.uuid4().hex[:8]
    bootstrap, prefix = isolated.settings.kafka.bootstrap, isolated.settings.kafka.topic_prefix
    early = availability_update(item_id, ["US"], NOW, "avail-early")
    await sync_availability(ctx, [early])
    parked = await ctx.pool.fetchval(
        "SELECT source_updated_at FROM pending_availability WHERE platform_item_id = $1", item_id
    )
    assert parked == NOW

    # The catalog item (older than the update) maps the item and hands the update back.
    await ingest(ctx, raw_item(item_id, ["US", "GB"]))
    assert not await ctx.pool.fetchval(
        "SELECT count(*) FROM pending_availability WHERE platform_item_id = $1", item_id
    )
    handed = [
        r
        for r in await read_topic(bootstrap, f"{prefix}.content.availability.raw")
        if r.key == f"netflix:{item_id}".encode()
    ]
    assert len(handed) == 1
    assert dict(handed[0].headers)["correlation_id"] == b"avail-early"
    back = decode(handed[0].value, AvailabilityReceived)
    assert back.event_id == early.event_id

    # availability-sync applies it like any update: newer than the catalog item, so GB expires.
    await sync_availability(ctx, [back])
    now_offered = await offers(ctx, item_id)
    assert now_offered["US"] is None
    assert now_offered["GB"] is not None and now_offered["GB"] <= datetime.now(UTC)
    changed = f"{prefix}.content.availability_changed"
    announced = [
        r
        for r in await read_topic(bootstrap, changed)
        if dict(r.headers)["correlation_id"] == b"avail-early"
    ]
    assert len(announced) == 1
    # Delivered again, it changes nothing and announces nothing.
    await sync_availability(ctx, [back])
    assert await offers(ctx, item_id) == now_offered
    again = [
        r
        for r in await read_topic(bootstrap, changed)
        if dict(r.headers)["correlation_id"] == b"avail-early"
    ]
    assert len(again) == 1


async def test_only_the_newest_parked_update_of_an_item_is_kept(ctx: AgentContext) -> None:
    item_id = uuid.uuid4().hex[:8]
    newer = availability_update(item_id, ["US"], NOW, "newer")
    older = availability_update(item_id, ["FR"], NOW - timedelta(hours=1), "older")
    await sync_availability(ctx, [newer])
    await sync_availability(ctx, [older])
    kept = await ctx.pool.fetchval(
        "SELECT envelope FROM pending_availability WHERE platform_item_id = $1", item_id
    )
    assert decode(kept, AvailabilityReceived).correlation_id == "newer"


async def test_an_availability_update_older_than_the_catalog_item_is_ignored(
    ctx: AgentContext,
) -> None:
    item_id = uuid.uuid4().hex[:8]
    await ingest(ctx, raw_item(item_id, ["US", "GB"]))
    # The catalog item is of yesterday; this update of the day before would expire both.
    stale = availability_update(item_id, [], NOW - timedelta(days=2), "stale")
    await sync_availability(ctx, [stale])
    assert await offers(ctx, item_id) == {"US": None, "GB": None}
