"""PostgreSQL reads and writes of series, seasons and episodes (migration 0040), and
process-batch's television step around the pure rules (series_plan.py, series.py): place
episodes and season listings in their series, write the relations, park and release."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as MappingT
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from agents.ingestion.availability import rows
from agents.ingestion.mappings import ItemKey, Mapping
from agents.ingestion.normalize import NormalizedItem
from agents.ingestion.pipeline import Resolved
from agents.ingestion.series import KnownEpisode, SeasonMap, season_id
from agents.ingestion.series_plan import (
    ChildPlan,
    EpisodeRow,
    Refolded,
    find_series,
    parked_rows,
    plan_children,
    release_keys,
    season_offers,
)
from agents.ingestion.store import lock_titles
from agents.titles.names import normalize_title
from schemas.content import CanonicalContent, ExternalIds, PlatformAvailability
from schemas.envelope import Envelope, encode

# Parking an episode and mapping its series exclude each other (one exclusive transaction
# lock, taken first by every batch that carries television items): whichever commits second
# sees the other's work, so an episode is never parked for a series mapped meanwhile.
_PENDING_EPISODES_LOCK = 0x6D67770005


async def guard_pending_episodes(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _PENDING_EPISODES_LOCK)


async def load_episodes(
    conn: asyncpg.Connection, series_ids: Iterable[uuid.UUID]
) -> list[KnownEpisode]:
    wanted = sorted(set(series_ids))
    if not wanted:
        return []
    found = await conn.fetch(
        """
        SELECT e.canonical_id, e.series_id, e.season_number, e.episode_number,
               e.absolute_number, (c.doc->'external_ids')::text AS ids, c.title
        FROM episodes e JOIN content c ON c.canonical_id = e.canonical_id
        WHERE e.series_id = ANY($1::uuid[])
        """,
        wanted,
    )
    return [
        KnownEpisode(
            r["canonical_id"],
            r["series_id"],
            r["season_number"],
            r["episode_number"],
            r["absolute_number"],
            ExternalIds.model_validate(orjson.loads(r["ids"]) if r["ids"] else {}),
            normalize_title(r["title"]),
        )
        for r in found
    ]


async def load_season_maps(
    conn: asyncpg.Connection, series_ids: Iterable[uuid.UUID]
) -> list[SeasonMap]:
    wanted = sorted(set(series_ids))
    if not wanted:
        return []
    found = await conn.fetch(
        "SELECT series_id, platform, platform_season, canonical_season, episode_offset "
        "FROM season_maps WHERE series_id = ANY($1::uuid[])",
        wanted,
    )
    return [SeasonMap(*r.values()) for r in found]


async def series_of_items(conn: asyncpg.Connection, keys: Iterable[ItemKey]) -> set[uuid.UUID]:
    """The series the stored episodes of these platform items belong to."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    found = await conn.fetch(
        """
        SELECT DISTINCT e.series_id FROM entity_mappings m
        JOIN unnest($1::text[], $2::text[]) AS k(platform, item)
          ON m.platform = k.platform AND m.platform_item_id = k.item
        JOIN episodes e ON e.canonical_id = m.canonical_id
        """,
        [k[0] for k in wanted],
        [k[1] for k in wanted],
    )
    return {r["series_id"] for r in found}


async def write_episodes(
    conn: asyncpg.Connection, episodes: Sequence[EpisodeRow], maps: Sequence[SeasonMap]
) -> None:
    """Upsert seasons, episodes (last word per episode wins) and learnt season maps."""
    latest = {e.canonical_id: e for e in episodes}
    seasons = sorted(
        {(e.season_id, e.series_id, e.season_number) for e in latest.values() if e.season_id},
        key=str,
    )
    if seasons:
        await conn.execute(
            """
            INSERT INTO seasons (season_id, series_id, season_number)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[])
            ON CONFLICT (season_id) DO NOTHING
            """,
            [s[0] for s in seasons],
            [s[1] for s in seasons],
            [s[2] for s in seasons],
        )
    if latest:
        rows_ = sorted(latest.values(), key=lambda e: str(e.canonical_id))
        await conn.execute(
            """
            INSERT INTO episodes AS e (canonical_id, series_id, season_id, season_number,
                                       episode_number, absolute_number)
            SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::int[],
                                 $6::int[])
            ON CONFLICT (canonical_id) DO UPDATE SET
                series_id = EXCLUDED.series_id, season_id = EXCLUDED.season_id,
                season_number = EXCLUDED.season_number,
                episode_number = EXCLUDED.episode_number,
                absolute_number = EXCLUDED.absolute_number
            """,
            [e.canonical_id for e in rows_],
            [e.series_id for e in rows_],
            [e.season_id for e in rows_],
            [e.season_number for e in rows_],
            [e.episode_number for e in rows_],
            [e.absolute_number for e in rows_],
        )
    if maps:
        latest_maps = {(m.series_id, m.platform, m.platform_season): m for m in maps}
        ms = list(latest_maps.values())
        await conn.execute(
            """
            INSERT INTO season_maps (series_id, platform, platform_season, canonical_season,
                                     episode_offset)
            SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::int[])
            ON CONFLICT (series_id, platform, platform_season) DO UPDATE SET
                canonical_season = EXCLUDED.canonical_season,
                episode_offset = EXCLUDED.episode_offset
            """,
            [m.series_id for m in ms],
            [m.platform for m in ms],
            [m.platform_season for m in ms],
            [m.canonical_season for m in ms],
            [m.offset for m in ms],
        )


async def refold(conn: asyncpg.Connection, refolded: Refolded) -> None:
    """Point the moved listings at their episodes, whatever the clock applied (no newer item
    moved them), only where they still point at the episode they left; that episode is no
    episode of its series any more (its record stays, without the listing, like any title an
    item moved away from)."""
    if not refolded.moves:
        return
    moves = sorted(refolded.moves, key=lambda m: (m[0].platform, m[0].platform_item_id))
    await conn.execute(
        """
        UPDATE entity_mappings m SET canonical_id = u.c, method = u.m, confidence = u.f,
            updated_at = now()
        FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::real[], $6::uuid[])
            AS u(p, i, c, m, f, g)
        WHERE m.platform = u.p AND m.platform_item_id = u.i AND m.canonical_id = u.g
        """,
        [r.platform for r, _ in moves],
        [r.platform_item_id for r, _ in moves],
        [r.canonical_id for r, _ in moves],
        [r.method for r, _ in moves],
        [r.confidence for r, _ in moves],
        [g for _, g in moves],
    )
    left = await conn.fetch(
        "DELETE FROM episodes WHERE canonical_id = ANY($1::uuid[]) "
        "RETURNING series_id, season_number",
        sorted(refolded.gone),
    )
    # A season only those episodes made (the platform's own number of a split half) is no
    # season of the series: nothing else names it (no episode, season listing or offer).
    await conn.execute(
        """
        DELETE FROM seasons s
        USING unnest($1::uuid[], $2::int[]) AS g(series_id, season_number)
        WHERE s.series_id = g.series_id AND s.season_number = g.season_number
          AND NOT EXISTS (SELECT 1 FROM episodes e WHERE e.season_id = s.season_id)
          AND NOT EXISTS (SELECT 1 FROM season_listings l
                          WHERE l.series_id = s.series_id AND l.season_number = s.season_number)
          AND NOT EXISTS (SELECT 1 FROM season_availability a
                          WHERE a.series_id = s.series_id AND a.season_number = s.season_number)
        """,
        [r["series_id"] for r in left],
        [r["season_number"] for r in left],
    )


async def replace_season_offers(
    conn: asyncpg.Connection,
    series_id: uuid.UUID,
    season_number: int,
    platform: str,
    offers: Sequence[PlatformAvailability],
) -> None:
    """A season listing's offers replace its platform's offers of that season."""
    await conn.execute(
        "INSERT INTO seasons (season_id, series_id, season_number, offers_changed_at) "
        "VALUES ($1, $2, $3, clock_timestamp()) "
        "ON CONFLICT (season_id) DO UPDATE SET offers_changed_at = clock_timestamp()",
        season_id(series_id, season_number),
        series_id,
        season_number,
    )
    await conn.execute(
        "DELETE FROM season_availability WHERE series_id = $1 AND season_number = $2 "
        "AND platform = $3",
        series_id,
        season_number,
        platform,
    )
    found = rows(series_id, list(offers))
    if not found:
        return
    await conn.executemany(
        """
        INSERT INTO season_availability (series_id, season_number, platform, region,
            availability_type, price_cents, currency, deep_link, web_fallback, available_from,
            expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT DO NOTHING
        """,
        [
            (
                series_id,
                season_number,
                r.platform,
                r.region,
                r.availability_type.value,
                r.price_cents,
                r.currency,
                r.deep_link,
                r.web_fallback,
                r.available_from,
                r.expires_at,
            )
            for r in found
        ],
    )


async def park_episodes(
    conn: asyncpg.Connection, parked: Sequence[tuple[ItemKey, datetime, Sequence[str], bytes]]
) -> None:
    """Keep episodes whose series is unknown, the newest per item."""
    if not parked:
        return
    await conn.executemany(
        """
        INSERT INTO pending_episodes AS p
            (platform, platform_item_id, source_updated_at, keys, envelope)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (platform, platform_item_id) DO UPDATE SET
            source_updated_at = EXCLUDED.source_updated_at, keys = EXCLUDED.keys,
            envelope = EXCLUDED.envelope, parked_at = now()
        WHERE p.source_updated_at < EXCLUDED.source_updated_at
        """,
        [(k[0], k[1], at, sorted(keys), env) for k, at, keys, env in parked],
    )


async def take_pending_episodes(conn: asyncpg.Connection, keys: Iterable[str]) -> list[bytes]:
    """Remove and return the parked envelopes naming any of these series keys, oldest first."""
    wanted = sorted(set(keys))
    if not wanted:
        return []
    found = await conn.fetch(
        "DELETE FROM pending_episodes WHERE keys && $1::text[] "
        "RETURNING source_updated_at, envelope",
        wanted,
    )
    return [bytes(r["envelope"]) for r in sorted(found, key=lambda r: r["source_updated_at"])]


async def drop_parked(conn: asyncpg.Connection, keys: Iterable[ItemKey]) -> None:
    """Placed items leave the parking: an older version parked earlier is stale now."""
    wanted = sorted(set(keys))
    if not wanted:
        return
    await conn.execute(
        """
        DELETE FROM pending_episodes p
        USING unnest($1::text[], $2::text[]) AS k(platform, item)
        WHERE p.platform = k.platform AND p.platform_item_id = k.item
        """,
        [k[0] for k in wanted],
        [k[1] for k in wanted],
    )


async def pending_episode_count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM pending_episodes"))


async def record_season_listings(
    conn: asyncpg.Connection, listings: Sequence[tuple[ItemKey, uuid.UUID, int]]
) -> None:
    if not listings:
        return
    await conn.executemany(
        """
        INSERT INTO season_listings (platform, platform_item_id, series_id, season_number)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (platform, platform_item_id) DO UPDATE SET
            series_id = EXCLUDED.series_id, season_number = EXCLUDED.season_number
        """,
        [(k[0], k[1], sid, n) for k, sid, n in listings],
    )


async def season_listings_of(
    conn: asyncpg.Connection, keys: Iterable[ItemKey]
) -> dict[ItemKey, tuple[uuid.UUID, int]]:
    """Which of these platform items list a season: (series, season number)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = await conn.fetch(
        """
        SELECT s.platform, s.platform_item_id, s.series_id, s.season_number
        FROM season_listings s
        JOIN unnest($1::text[], $2::text[]) AS k(platform, item)
          ON s.platform = k.platform AND s.platform_item_id = k.item
        """,
        [k[0] for k in wanted],
        [k[1] for k in wanted],
    )
    return {
        (r["platform"], r["platform_item_id"]): (r["series_id"], r["season_number"]) for r in found
    }


# -- process-batch's television step ------------------------------------------------------


@dataclass(frozen=True)
class Television:
    plan: ChildPlan
    known_episodes: set[uuid.UUID]  # stored episodes of the series the batch touches


async def plan_television(
    conn: asyncpg.Connection,
    items: Sequence[NormalizedItem],
    resolved: Resolved,
    mappings: MappingT[ItemKey, Mapping],
) -> Television:
    """Find each child's series, load what the series hold, and place each child in it."""
    if not resolved.children or resolved.index is None:
        return Television(ChildPlan(), set())
    series_ids = {
        found.canonical_id
        for i in resolved.children
        if (found := find_series(items[i], resolved.index, mappings)) is not None
        and found.canonical_id is not None
    }
    # Two batches placing episodes into one series serialize: both would mint S1E1's id.
    await lock_titles(conn, [f"series:{sid}" for sid in series_ids])
    episodes = await load_episodes(conn, series_ids)
    maps = await load_season_maps(conn, series_ids)
    child = plan_children(items, resolved.children, mappings, resolved.index, episodes, maps)
    return Television(child, {e.canonical_id for e in episodes})


async def write_television(
    conn: asyncpg.Connection,
    items: Sequence[NormalizedItem],
    batch: Sequence[Envelope[Any]],
    child: ChildPlan,
    docs: MappingT[uuid.UUID, CanonicalContent],
    mappings: MappingT[ItemKey, Mapping],
    refolded: Refolded | None = None,
) -> list[bytes]:
    """Write the relations and season offers, park the children whose series is unknown, and
    return the parked envelopes a series in `docs` (or a season listing) now releases."""
    await write_episodes(conn, child.episodes, child.season_maps)
    if refolded is not None:
        await refold(conn, refolded)
    await record_season_listings(
        conn,
        [
            (
                (items[s.index].platform, items[s.index].platform_item_id),
                s.series_id,
                s.season_number,
            )
            for s in child.season_listings
        ],
    )
    for series_id, season, platform, offers in season_offers(items, child, mappings):
        await replace_season_offers(conn, series_id, season, platform, offers)
    await drop_parked(
        conn,
        [(items[a.index].platform, items[a.index].platform_item_id) for a in child.assignments]
        + [
            (items[s.index].platform, items[s.index].platform_item_id)
            for s in child.season_listings
        ],
    )
    # Taken before this batch parks its own: what it parks waits for a later series.
    released = await take_pending_episodes(conn, release_keys(docs.values(), items, child))
    await park_episodes(
        conn,
        [
            (key, clock, keys, encode(batch[i]))
            for i, (key, clock, keys) in zip(child.parked, parked_rows(items, child), strict=True)
        ],
    )
    return released
