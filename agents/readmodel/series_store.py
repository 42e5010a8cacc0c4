"""Reads the series read model is built from, and its Redis writes (one document per series,
next to the title documents: agreements/read_model.series_key)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
import orjson
import redis.asyncio as aioredis

from agents.readmodel.series import EpisodeFact, series_document
from agreements.read_model import series_key

# Offers count while they have not ended.
_LIVE = "(a.expires_at IS NULL OR a.expires_at > now())"


async def series_of(
    pool: asyncpg.Pool, ids: Sequence[uuid.UUID], *, own_only: bool = False
) -> set[uuid.UUID]:
    """The series among `ids`, and (unless `own_only`) the series of the episodes among them."""
    own = (
        "SELECT canonical_id AS series_id FROM content "
        "WHERE canonical_id = ANY($1::uuid[]) AND content_type = 'series'"
    )
    parents = " UNION SELECT series_id FROM episodes WHERE canonical_id = ANY($1::uuid[])"
    rows = await pool.fetch(own if own_only else own + parents, list(ids))
    return {r["series_id"] for r in rows}


async def refresh_series(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    prefix: str,
    ids: Sequence[uuid.UUID],
    *,
    own_only: bool = False,
) -> dict[uuid.UUID, bytes]:
    """Rewrite the documents of the series `ids` touch (series or their episodes)."""
    wanted = sorted(await series_of(pool, ids, own_only=own_only)) if ids else []
    if not wanted:
        return {}
    heads = await pool.fetch(
        "SELECT canonical_id, title, (doc->'availability')::text AS offers FROM content "
        "WHERE canonical_id = ANY($1::uuid[])",
        wanted,
    )
    seasons = await pool.fetch(
        "SELECT series_id, season_number, season_id FROM seasons WHERE series_id = ANY($1::uuid[])",
        wanted,
    )
    episodes = await pool.fetch(
        f"""
        SELECT e.series_id, e.season_number,
               coalesce(array_agg(DISTINCT a.platform) FILTER (WHERE a.platform IS NOT NULL
                                                               AND {_LIVE}), '{{}}') AS platforms
        FROM episodes e LEFT JOIN platform_availability a ON a.canonical_id = e.canonical_id
        WHERE e.series_id = ANY($1::uuid[])
        GROUP BY e.canonical_id, e.series_id, e.season_number
        """,
        wanted,
    )
    season_offers = await pool.fetch(
        f"SELECT DISTINCT series_id, season_number, platform FROM season_availability a "
        f"WHERE series_id = ANY($1::uuid[]) AND {_LIVE}",
        wanted,
    )
    written: dict[uuid.UUID, bytes] = {}
    for head in heads:
        sid = head["canonical_id"]
        offers = orjson.loads(head["offers"]) if head["offers"] else []
        written[sid] = series_document(
            sid,
            head["title"],
            {o["platform"] for o in offers if o.get("regions")},
            [(r["season_number"], r["season_id"]) for r in seasons if r["series_id"] == sid],
            [
                EpisodeFact(sid, r["season_number"], frozenset(r["platforms"]))
                for r in episodes
                if r["series_id"] == sid
            ],
            [(r["season_number"], r["platform"]) for r in season_offers if r["series_id"] == sid],
        )
    async with redis.pipeline(transaction=False) as pipe:
        for sid, document in written.items():
            pipe.set(series_key(prefix, sid), document)
        for gone in set(wanted) - set(written):
            pipe.delete(series_key(prefix, gone))
        await pipe.execute()
    return written


async def refresh_changed_seasons(
    pool: asyncpg.Pool, redis: aioredis.Redis, prefix: str, limit: int = 500
) -> int:
    """Refresh the series whose season offers a season listing changed since their document
    last showed them (no content event announces those: docs/INGESTION.md, "Series")."""
    rows = await pool.fetch(
        "SELECT season_id, series_id, offers_changed_at FROM seasons "
        "WHERE offers_changed_at > coalesce(offers_projected_at, '-infinity') "
        "ORDER BY offers_changed_at LIMIT $1",
        limit,
    )
    if not rows:
        return 0
    await refresh_series(pool, redis, prefix, [r["series_id"] for r in rows], own_only=True)
    # Up to the change seen: a change made meanwhile is newer and is picked up next time.
    await pool.execute(
        "UPDATE seasons s SET offers_projected_at = c.seen "
        "FROM unnest($1::uuid[], $2::timestamptz[]) AS c(id, seen) WHERE s.season_id = c.id",
        [r["season_id"] for r in rows],
        [r["offers_changed_at"] for r in rows],
    )
    return len({r["series_id"] for r in rows})
