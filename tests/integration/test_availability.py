"""Availability sync and expiry notices against the real PostgreSQL and broker (no Faust)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from agents.framework.context import AgentContext, ContextHolder
from agents.ingestion.handlers import check_expiring, process_raw, sync_availability
from schemas.content import ContentExpiring
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


def catalog_item(item_id: str, at: datetime, **fields: object) -> RawCatalogItem:
    """A netflix item of `at` with only the fields given besides the required ones."""
    return RawCatalogItem.model_validate(
        {
            "platform": "netflix",
            "platform_item_id": item_id,
            "title": f"Listing {item_id}",
            "content_type": "movie",
            "year": 2012,
            "source_updated_at": at.isoformat(),
            **fields,
        }
    )


async def changes_of(isolated: Isolated, cid: uuid.UUID) -> list[bytes]:
    topic = f"{isolated.settings.kafka.topic_prefix}.content.availability_changed"
    records = await read_topic(isolated.settings.kafka.bootstrap, topic)
    return [r.value for r in records if r.key == str(cid).encode()]


async def title_of(ctx: AgentContext, item_id: str) -> uuid.UUID:
    return await ctx.pool.fetchval(
        "SELECT canonical_id FROM entity_mappings WHERE platform_item_id = $1", item_id
    )


async def test_an_item_without_availability_leaves_the_offers_and_only_an_empty_list_ends_them(
    ctx: AgentContext, isolated: Isolated
) -> None:
    item_id = uuid.uuid4().hex[:8]
    us = [{"availability_type": "subscription", "regions": ["US"]}]
    await ingest(ctx, catalog_item(item_id, NOW - timedelta(hours=3), availability=us))
    cid = await title_of(ctx, item_id)
    announced = len(await changes_of(isolated, cid))

    # A metadata-only update: newer, a new description, no `availability` at all.
    await ingest(
        ctx, catalog_item(item_id, NOW - timedelta(hours=2), description="Now with a synopsis.")
    )
    assert await offers(ctx, item_id) == {"US": None}
    doc = await ctx.pool.fetchval("SELECT doc FROM content WHERE canonical_id = $1", cid)
    assert doc["description"] == "Now with a synopsis."
    assert [(a["platform"], a["regions"]) for a in doc["availability"]] == [("netflix", ["US"])]
    assert len(await changes_of(isolated, cid)) == announced

    # `null` says nothing either; an explicit [] is the title leaving the platform.
    await ingest(ctx, catalog_item(item_id, NOW - timedelta(hours=1), availability=None))
    assert await offers(ctx, item_id) == {"US": None}
    await ingest(ctx, catalog_item(item_id, NOW, availability=[]))
    ended = (await offers(ctx, item_id))["US"]
    assert ended is not None and ended <= datetime.now(UTC)
    assert len(await changes_of(isolated, cid)) == announced + 1


async def test_an_availability_update_newer_than_the_offers_applies_after_a_metadata_only_item(
    ctx: AgentContext,
) -> None:
    item_id = uuid.uuid4().hex[:8]
    both = [{"availability_type": "subscription", "regions": ["US", "GB"]}]
    await ingest(ctx, catalog_item(item_id, NOW - timedelta(hours=3), availability=both))
    await ingest(ctx, catalog_item(item_id, NOW - timedelta(hours=1), description="Synopsis."))
    # Of hour -2: older than the metadata-only item, newer than the offers it left alone.
    await sync_availability(
        ctx, [availability_update(item_id, ["US"], NOW - timedelta(hours=2), "narrowed")]
    )
    now_offered = await offers(ctx, item_id)
    assert now_offered["US"] is None
    assert now_offered["GB"] is not None and now_offered["GB"] <= datetime.now(UTC)


async def test_an_offer_that_had_ended_keeps_its_end_when_the_feed_drops_it(
    ctx: AgentContext, isolated: Isolated
) -> None:
    item_id = uuid.uuid4().hex[:8]
    ended = (NOW - timedelta(days=2)).replace(microsecond=0)
    listed = [
        {"availability_type": "subscription", "regions": ["US"]},
        {"availability_type": "free", "regions": ["CA"], "available_until": ended.isoformat()},
    ]
    await ingest(ctx, catalog_item(item_id, NOW - timedelta(hours=2), availability=listed))
    cid = await title_of(ctx, item_id)
    await ingest(ctx, catalog_item(item_id, NOW - timedelta(hours=1), availability=listed[:1]))
    assert await offers(ctx, item_id) == {"US": None, "CA": ended}
    last = await changes_of(isolated, cid)
    assert b'"region":"CA"' in last[-1]
    assert ended.isoformat().replace("+00:00", "Z").encode() in last[-1]


def offer_until(kind: str, until: datetime) -> dict[str, object]:
    priced = {"price_cents": 399, "currency": "EUR"} if kind in ("rental", "purchase") else {}
    return {
        "availability_type": kind,
        "regions": ["FR"],
        "available_until": until.isoformat(),
        **priced,
    }


async def test_a_rental_and_a_purchase_ending_together_are_two_expiry_notices(
    ctx: AgentContext, isolated: Isolated
) -> None:
    until = NOW + timedelta(days=2)
    both = [offer_until("rental", until), offer_until("purchase", until)]
    await ingest(ctx, catalog_item(uuid.uuid4().hex[:8], NOW, availability=both))
    assert await check_expiring(ctx) == 2
    notices = await read_topic(
        isolated.settings.kafka.bootstrap,
        f"{isolated.settings.kafka.topic_prefix}.content.expiring",
    )
    kinds = sorted(decode(n.value, ContentExpiring).payload.availability_type for n in notices)
    assert kinds == ["purchase", "rental"]


async def test_an_expiry_moved_by_seconds_is_not_noticed_again_one_moved_by_days_is(
    ctx: AgentContext,
) -> None:
    item_id = uuid.uuid4().hex[:8]
    until = NOW + timedelta(days=2)
    await ingest(
        ctx,
        catalog_item(item_id, NOW - timedelta(hours=3), availability=[offer_until("free", until)]),
    )
    assert await check_expiring(ctx) == 1
    # The feed moves the expiry by 5 s: the same expiry, no second notice.
    jittered = [offer_until("free", until + timedelta(seconds=5))]
    await ingest(ctx, catalog_item(item_id, NOW - timedelta(hours=2), availability=jittered))
    assert await check_expiring(ctx) == 0
    # Extended by two days, still within the same window: a new round, noticed again.
    later = [offer_until("free", until + timedelta(days=2))]
    await ingest(ctx, catalog_item(item_id, NOW - timedelta(hours=1), availability=later))
    assert await check_expiring(ctx) == 1


async def test_of_two_versions_with_the_same_clock_the_first_applied_keeps_however_far_apart(
    ctx: AgentContext,
) -> None:
    at = NOW - timedelta(hours=1)
    # Back to back (one batch) and apart (two batches): the same rule, the first keeps.
    together, apart = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    await ingest(
        ctx,
        catalog_item(together, at, title="First Version Alpha"),
        catalog_item(together, at, title="Second Version Alpha"),
    )
    await ingest(ctx, catalog_item(apart, at, title="First Version Beta"))
    await ingest(ctx, catalog_item(apart, at, title="Second Version Beta"))
    titles = {
        r["platform_item_id"]: r["title"]
        for r in await ctx.pool.fetch(
            "SELECT m.platform_item_id, c.title FROM entity_mappings m "
            "JOIN content c USING (canonical_id)"
        )
    }
    assert titles == {together: "First Version Alpha", apart: "First Version Beta"}

    # Availability-only updates follow the same rule.
    await sync_availability(
        ctx,
        [
            availability_update(together, ["US"], NOW, "first"),
            availability_update(together, ["GB"], NOW, "second"),
        ],
    )
    await sync_availability(ctx, [availability_update(apart, ["US"], NOW, "first")])
    await sync_availability(ctx, [availability_update(apart, ["GB"], NOW, "second")])
    assert await offers(ctx, together) == {"US": None}
    assert await offers(ctx, apart) == {"US": None}
