"""PostgreSQL reads and writes of series, seasons and episodes (migration 0040)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg
import orjson

from agents.ingestion.availability import rows
from agents.ingestion.mappings import ItemKey
from agents.ingestion.series import KnownEpisode, SeasonMap, season_id
from agents.ingestion.series_plan import EpisodeRow
from agents.titles.names import normalize_title
from schemas.content import ExternalIds, PlatformAvailability

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
