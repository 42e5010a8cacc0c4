"""Series, seasons and episodes through the ingestion agents: real PostgreSQL, Redis and
broker, the handlers called directly (no Faust). One show on three platforms, each with its
own numbering and spelling; another show's "Pilot" of the same year; an episode that arrives
before its series; the series read model."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from agents.framework.context import AgentContext, ContextHolder
from agents.ingestion.handlers import process_raw, sync_availability
from agents.readmodel.handlers import project, project_season_offers
from agreements.read_model import series_key
from schemas.content import ContentIngested, ContentUpdated
from schemas.envelope import decode, wrap
from schemas.ingestion import AvailabilityReceived, CatalogItemReceived, RawCatalogItem
from tests.conftest import Isolated
from tests.helpers import read_topic

NOW = datetime.now(UTC)
SUB = [{"availability_type": "subscription", "regions": ["US"]}]


@pytest.fixture
async def ctx(isolated: Isolated) -> AsyncIterator[AgentContext]:
    holder = ContextHolder(isolated.settings, source="test")
    yield await holder.get()
    await holder.close()


def raw(
    platform: str, item_id: str, title: str, content_type: str, **fields: Any
) -> RawCatalogItem:
    return RawCatalogItem.model_validate(
        {
            "platform": platform,
            "platform_item_id": item_id,
            "title": title,
            "content_type": content_type,
            "source_updated_at": NOW.isoformat(),
            **fields,
        }
    )


async def ingest(ctx: AgentContext, *items: RawCatalogItem) -> None:
    await process_raw(
        ctx,
        [wrap(CatalogItemReceived(item=i), key=i.record_key, source="test") for i in items],
    )


async def mapped(ctx: AgentContext, platform: str, item_id: str) -> tuple[uuid.UUID, str] | None:
    row = await ctx.pool.fetchrow(
        "SELECT canonical_id, method FROM entity_mappings WHERE platform = $1 "
        "AND platform_item_id = $2",
        platform,
        item_id,
    )
    return (row["canonical_id"], row["method"]) if row else None


async def test_a_show_on_three_platforms_with_its_episodes_parked_split_and_apart(
    ctx: AgentContext, isolated: Isolated
) -> None:
    prefix, bootstrap = isolated.settings.kafka.topic_prefix, isolated.settings.kafka.bootstrap
    # Hulu's pilot arrives before any listing of its series: parked.
    early = raw(
        "hulu",
        "h-s1e1",
        "PILOT",
        "episode",
        year=2005,
        series_title="the office",
        season_number="1",
        episode_number="1",
        absolute_number=1,
        availability=SUB,
    )
    await ingest(ctx, early)
    assert await mapped(ctx, "hulu", "h-s1e1") is None
    parked = await ctx.pool.fetchval(
        "SELECT keys FROM pending_episodes WHERE platform_item_id = 'h-s1e1'"
    )
    assert "title:office" in parked

    # The show on netflix (with its episodes), then on hulu and prime in other spellings.
    netflix = [
        raw(
            "netflix",
            "n-office",
            "The Office",
            "series",
            year=2005,
            external_ids={"imdb": "tt0386676"},
        ),
        *(
            raw(
                "netflix",
                f"n-s1e{e}",
                "Pilot" if e == 1 else f"Episode {e}",
                "episode",
                year=2005,
                parent_id="n-office",
                season_number=1,
                episode_number=e,
                absolute_number=e,
                availability=SUB,
            )
            for e in range(1, 7)
        ),
        raw(
            "netflix",
            "n-s2e1",
            "The Dundies",
            "episode",
            year=2005,
            parent_id="n-office",
            season_number=2,
            episode_number=1,
            absolute_number=7,
            availability=SUB,
        ),
    ]
    await ingest(ctx, *netflix)
    series_id, _ = await mapped(ctx, "netflix", "n-office")  # type: ignore[misc]
    # The parked pilot went back to content.raw in that batch's transaction: the worker
    # consumes it again.
    forwarded = [
        decode(r.value, CatalogItemReceived)
        for r in await read_topic(bootstrap, f"{prefix}.content.raw")
        if r.key == b"hulu:h-s1e1"
    ]
    assert len(forwarded) == 1
    await process_raw(ctx, forwarded)
    pilot_id, _ = await mapped(ctx, "netflix", "n-s1e1")  # type: ignore[misc]
    assert (await mapped(ctx, "hulu", "h-s1e1"))[0] == pilot_id  # type: ignore[index]
    assert not await ctx.pool.fetchval("SELECT count(*) FROM pending_episodes")

    # Prime lists the show as "Office, The" and splits season 1 in two: its season 2 is
    # episodes 4-6 (its first episode there carries the absolute number), then season 3 is the
    # canonical season 2. It also sells season 1 as a whole.
    await ingest(
        ctx,
        raw(
            "prime",
            "p-office",
            "Office, The",
            "series",
            year=2005,
            external_ids={"imdb": "tt0386676"},
        ),
        raw(
            "prime",
            "p-s2e1",
            "Episode 4",
            "episode",
            series_ids={"imdb": "tt0386676"},
            season_number=2,
            episode_number=1,
            absolute_number=4,
            availability=SUB,
        ),
        raw(
            "prime",
            "p-s2e3",
            "Episode 6",
            "episode",
            series_ids={"imdb": "tt0386676"},
            season_number=2,
            episode_number=3,
        ),
        raw(
            "prime",
            "p-season1",
            "The Office - Season 1",
            "season",
            season_number=1,
            availability=[
                {
                    "availability_type": "purchase",
                    "price": "14.99",
                    "currency": "USD",
                    "regions": ["US"],
                }
            ],
        ),
    )
    assert (await mapped(ctx, "prime_video", "p-office"))[0] == series_id  # type: ignore[index]
    n_e4, _ = await mapped(ctx, "netflix", "n-s1e4")  # type: ignore[misc]
    n_e6, _ = await mapped(ctx, "netflix", "n-s1e6")  # type: ignore[misc]
    assert (await mapped(ctx, "prime_video", "p-s2e1"))[0] == n_e4  # type: ignore[index]
    assert (await mapped(ctx, "prime_video", "p-s2e3"))[0] == n_e6  # type: ignore[index]
    season_map = await ctx.pool.fetchrow(
        "SELECT canonical_season, episode_offset FROM season_maps WHERE series_id = $1 "
        "AND platform = 'prime_video' AND platform_season = 2",
        series_id,
    )
    assert tuple(season_map) == (1, 3)
    listing = await mapped(ctx, "prime_video", "p-season1")
    assert listing is not None and listing[0] == series_id
    offers = await ctx.pool.fetch(
        "SELECT season_number, platform, price_cents FROM season_availability WHERE series_id = $1",
        series_id,
    )
    assert [tuple(r) for r in offers] == [(1, "prime_video", 1499)]
    # An availability-only update of the season listing changes the season's offers, not the
    # series record's.
    update = AvailabilityReceived(
        platform="prime",
        platform_item_id="p-season1",
        source_updated_at=NOW + timedelta(hours=1),
        availability=[
            {
                "availability_type": "purchase",
                "price_cents": 999,
                "currency": "USD",
                "regions": ["US", "CA"],
            }
        ],
    )
    await sync_availability(ctx, [wrap(update, key=update.record_key, source="test")])
    offers = await ctx.pool.fetch(
        "SELECT region, price_cents FROM season_availability WHERE series_id = $1 ORDER BY region",
        series_id,
    )
    assert [tuple(r) for r in offers] == [("CA", 999), ("US", 999)]
    series_offers = await ctx.pool.fetchval(
        "SELECT doc->'availability' FROM content WHERE canonical_id = $1", series_id
    )
    assert "prime_video" not in str(series_offers)

    # Another show's "Pilot" of the same year stays its own episode of its own series.
    await ingest(
        ctx,
        raw("hulu", "h-parks", "Parks and Recreation", "series", year=2005),
        raw(
            "hulu",
            "h-parks-1",
            "Pilot",
            "episode",
            year=2005,
            parent_id="h-parks",
            season_number=1,
            episode_number=1,
            description="Leslie Knope's pit.",
        ),
    )
    other_pilot, _ = await mapped(ctx, "hulu", "h-parks-1")  # type: ignore[misc]
    assert other_pilot != pilot_id
    relations = {
        r["canonical_id"]: (r["series_id"], r["season_number"], r["episode_number"])
        for r in await ctx.pool.fetch("SELECT * FROM episodes")
    }
    assert relations[pilot_id] == (series_id, 1, 1)
    assert relations[other_pilot][0] != series_id
    assert len([r for r in relations.values() if r[0] == series_id]) == 7

    # The episodes' records carry their place; subscribers read it on content.ingested.
    ingested = [
        decode(r.value, ContentIngested)
        for r in await read_topic(bootstrap, f"{prefix}.content.ingested")
    ]
    pilot = next(e for e in ingested if e.payload.content.canonical_id == pilot_id).payload.content
    assert pilot.series is not None and pilot.series.parent_id == series_id
    assert (pilot.series.season_number, pilot.series.episode_number) == (1, 1)

    # The read model of the series: seasons with episode counts and platforms.
    await project(ctx, ingested)
    document = orjson.loads(await ctx.redis.get(series_key(ctx.prefix, series_id)))
    assert document["episode_count"] == 7 and document["season_count"] == 2
    seasons = {s["season_number"]: s for s in document["seasons"]}
    assert seasons[1]["episode_count"] == 6 and seasons[2]["episode_count"] == 1
    assert seasons[1]["platforms"] == ["hulu", "netflix", "prime_video"]
    assert seasons[2]["platforms"] == ["netflix"]

    # A season listing alone (no content event): the read-model timer shows its offers.
    await ingest(
        ctx,
        raw(
            "hbo_max",
            "m-office-s2",
            "The Office: Season 2",
            "season",
            season_number=2,
            series_title="The Office",
            availability=SUB,
        ),
    )
    assert await project_season_offers(ctx) == 1
    assert await project_season_offers(ctx) == 0  # shown once
    document = orjson.loads(await ctx.redis.get(series_key(ctx.prefix, series_id)))
    seasons = {s["season_number"]: s for s in document["seasons"]}
    assert seasons[2]["platforms"] == ["hbo_max", "netflix"]


async def test_a_parked_episode_sent_again_with_its_series_leaves_the_parking(
    ctx: AgentContext,
) -> None:
    await ingest(
        ctx,
        raw("netflix", "n-dark", "Dark", "series", year=2017, external_ids={"imdb": "tt5753856"}),
    )
    # Named by a title no series has: parked.
    await ingest(
        ctx,
        raw(
            "hulu",
            "h-dark-2",
            "Lies",
            "episode",
            series_title="Dark (German)",
            season_number=1,
            episode_number=2,
        ),
    )
    parked = "SELECT count(*) FROM pending_episodes WHERE platform_item_id = 'h-dark-2'"
    assert await ctx.pool.fetchval(parked) == 1
    # A newer version names the series by its IMDb id: placed, and the old one is dropped.
    await ingest(
        ctx,
        raw(
            "hulu",
            "h-dark-2",
            "Lies",
            "episode",
            series_ids={"imdb": "tt5753856"},
            season_number=1,
            episode_number=2,
            source_updated_at=(NOW + timedelta(hours=1)).isoformat(),
        ),
    )
    series_id, _ = await mapped(ctx, "netflix", "n-dark")  # type: ignore[misc]
    episode_id, method = await mapped(ctx, "hulu", "h-dark-2")  # type: ignore[misc]
    assert method == "episode_new"
    assert (
        await ctx.pool.fetchval(
            "SELECT series_id FROM episodes WHERE canonical_id = $1", episode_id
        )
        == series_id
    )
    assert await ctx.pool.fetchval(parked) == 0


async def test_a_split_seasons_second_half_before_the_episode_that_teaches_the_map(
    ctx: AgentContext, isolated: Isolated
) -> None:
    prefix, bootstrap = isolated.settings.kafka.topic_prefix, isolated.settings.kafka.bootstrap
    await ingest(
        ctx,
        raw("netflix", "n-tides", "Stranger Tides", "series", year=2016),
        *(
            raw(
                "netflix",
                f"n-s1e{e}",
                f"Chapter {e}",
                "episode",
                parent_id="n-tides",
                season_number=1,
                episode_number=e,
                absolute_number=e,
                availability=SUB,
            )
            for e in range(1, 9)
        ),
    )
    series_id, _ = await mapped(ctx, "netflix", "n-tides")  # type: ignore[misc]
    netflix = {e: (await mapped(ctx, "netflix", f"n-s1e{e}"))[0] for e in range(1, 9)}  # type: ignore[index]

    def part_two(e: int, **fields: Any) -> RawCatalogItem:
        # Prime sells season 1 in two parts: its season 2 is episodes 5-8.
        return raw(
            "prime",
            f"p-s2e{e}",
            f"Episode {e}",
            "episode",
            series_title="Stranger Tides",
            season_number=2,
            episode_number=e,
            availability=SUB,
            **fields,
        )

    # Records of different keys are not ordered across partitions: two episodes of the second
    # half are consumed before the one that teaches the map. Nothing identifies them yet.
    await ingest(ctx, part_two(2))
    await ingest(ctx, part_two(3))
    early = {e: (await mapped(ctx, "prime_video", f"p-s2e{e}"))[0] for e in (2, 3)}  # type: ignore[index]
    assert set(early.values()).isdisjoint(netflix.values())
    # The episode that teaches the map: its absolute number says it is netflix's episode 5.
    await ingest(ctx, part_two(1, absolute_number=5))
    season_map = await ctx.pool.fetchrow(
        "SELECT canonical_season, episode_offset FROM season_maps WHERE series_id = $1 "
        "AND platform = 'prime_video' AND platform_season = 2",
        series_id,
    )
    assert tuple(season_map) == (1, 4)

    # Each episode is one canonical episode with both platforms' listings and offers.
    for e, canonical in ((1, 5), (2, 6), (3, 7)):
        cid, method = await mapped(ctx, "prime_video", f"p-s2e{e}")  # type: ignore[misc]
        assert cid == netflix[canonical]
        assert method == ("episode_absolute" if e == 1 else "episode_refold")
        doc = orjson.loads(
            await ctx.pool.fetchval("SELECT doc::text FROM content WHERE canonical_id = $1", cid)
        )
        assert doc["external_ids"]["platform_ids"] == {
            "netflix": f"n-s1e{canonical}",
            "prime_video": f"p-s2e{e}",
        }
        assert doc["source_platforms"] == ["netflix", "prime_video"]
        assert doc["series"]["season_number"] == 1 and doc["series"]["episode_number"] == canonical
        offered = await ctx.pool.fetch(
            "SELECT DISTINCT platform FROM platform_availability WHERE canonical_id = $1 "
            "ORDER BY platform",
            cid,
        )
        assert [r["platform"] for r in offered] == ["netflix", "prime_video"]
    relations = await ctx.pool.fetch(
        "SELECT canonical_id FROM episodes WHERE series_id = $1", series_id
    )
    assert {r["canonical_id"] for r in relations} == set(netflix.values())
    # The episodes made too early keep no listing, no offer and no place in the series.
    for cid in early.values():
        doc = orjson.loads(
            await ctx.pool.fetchval("SELECT doc::text FROM content WHERE canonical_id = $1", cid)
        )
        assert doc["source_platforms"] == [] and doc["availability"] == []
        # Its offer rows end now, as when any item moves away (the expiry check sees them go).
        ends = await ctx.pool.fetch(
            "SELECT expires_at FROM platform_availability WHERE canonical_id = $1", cid
        )
        assert ends and all(r["expires_at"] <= datetime.now(UTC) for r in ends)
    # Subscribers hear of it like any listing that moved: both titles announced.
    updated = {
        decode(r.value, ContentUpdated).payload.content.canonical_id
        for r in await read_topic(bootstrap, f"{prefix}.content.updated")
    }
    assert {netflix[6], netflix[7], *early.values()} <= updated
    # The series read model counts canonical episodes: 8 in season 1, on both platforms.
    await project(
        ctx,
        [
            decode(r.value, ContentUpdated)
            for r in await read_topic(bootstrap, f"{prefix}.content.updated")
        ],
    )
    document = orjson.loads(await ctx.redis.get(series_key(ctx.prefix, series_id)))
    assert document["episode_count"] == 8 and document["season_count"] == 1
    assert document["seasons"][0]["platforms"] == ["netflix", "prime_video"]

    # A newer version of a moved listing stays where it moved (its platform id finds it).
    await ingest(ctx, part_two(2, source_updated_at=(NOW + timedelta(hours=1)).isoformat()))
    cid, method = await mapped(ctx, "prime_video", "p-s2e2")  # type: ignore[misc]
    assert cid == netflix[6] and method == "episode_platform_id"
