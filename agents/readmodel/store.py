"""The Redis read model of the catalog: one JSON document per title and one per series
(agents/readmodel/series.py builds it), derived from Postgres; and the invalidation of the
gateway's cached answers about a title once its document changed.

Documents are always rebuilt from the current Postgres row, never from the event that
triggered the refresh, so a late or replayed event cannot put an older version back.

A row whose document cannot be built (it no longer parses) is quarantined under `readmodel`
(agents/framework/quarantine.py) and skipped: a rebuild or a batch of refreshes goes on.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis
from loguru import logger

from agents.framework.quarantine import Poison, poison_of, quarantine
from agents.readmodel.series import EpisodeFact, series_document
from agreements.read_model import (
    STATE_READY,
    STATE_REBUILDING,
    absent_key,
    document_key,
    series_key,
    state_key,
)
from agreements.response_cache import (
    CACHE_LABEL,
    generation_key,
    index_key,
    invalidation_channel,
)
from schemas.content import CanonicalContent
from schemas.ingestion import ItemMapping

QUARANTINE_AGENT = "readmodel"  # the worker group, as quarantine entries are kept
# The document as text, parsed row by row: one that does not parse fails alone.
_SELECT = """
SELECT canonical_id, doc::text AS doc, data_quality_score, enriched_at, updated_at,
       (extract(epoch FROM updated_at) * 1000000)::bigint::text AS version_key
FROM content WHERE canonical_id = ANY($1::uuid[])
"""


def to_document(row: asyncpg.Record | dict[str, Any]) -> bytes:
    """The served document of a row; ValueError when the stored document breaks the schema
    (stored before the gate was complete): clients must never read what the contract refuses,
    and orjson would quietly turn an oversized integer into a float."""
    doc = row["doc"]
    if isinstance(doc, str | bytes):
        CanonicalContent.model_validate_json(doc)
        doc = orjson.loads(doc)
    else:
        CanonicalContent.model_validate(doc)
    doc = dict(doc)
    doc["data_quality_score"] = row["data_quality_score"]
    doc["enriched_at"] = row["enriched_at"].isoformat() if row["enriched_at"] else None
    doc["stored_at"] = row["updated_at"].isoformat()
    return orjson.dumps(doc)


async def refresh(
    pool: asyncpg.Pool, redis: aioredis.Redis, prefix: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, bytes]:
    """Write the current document of each title in `ids` and return those written.

    Titles gone from Postgres lose their document; titles found lose any "absent" marker a
    lookup left, so a title created after a 404 is served at once.
    """
    if not ids:
        return {}
    unique = list(dict.fromkeys(ids))
    rows = await pool.fetch(_SELECT, unique)
    written: dict[uuid.UUID, bytes] = {}
    poisons: list[Poison] = []
    for row in rows:
        try:
            written[row["canonical_id"]] = to_document(row)
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            poisons.append(poison_of(row["canonical_id"], row["version_key"], "invalid", exc))
    if poisons:
        await quarantine(pool, QUARANTINE_AGENT, poisons)
    # A quarantined title keeps whatever document it had: it is not gone from Postgres.
    unreadable = {uuid.UUID(p.entity_id) for p in poisons}
    async with redis.pipeline(transaction=False) as pipe:
        for cid, document in written.items():
            pipe.set(document_key(prefix, cid), document)
            pipe.delete(absent_key(prefix, cid))
        for missing in set(unique) - set(written) - unreadable:
            pipe.delete(document_key(prefix, missing))
        await pipe.execute()
    return written


async def _all_ids(pool: asyncpg.Pool, chunk: int) -> AsyncIterator[list[uuid.UUID]]:
    last = uuid.UUID(int=0)
    while True:
        rows = await pool.fetch(
            "SELECT canonical_id FROM content WHERE canonical_id > $1 "
            "ORDER BY canonical_id LIMIT $2",
            last,
            chunk,
        )
        if not rows:
            return
        ids = [r["canonical_id"] for r in rows]
        yield ids
        last = ids[-1]


# One rebuild at a time over every process: a session-level advisory lock, released by
# PostgreSQL when its holder dies, so a rebuild that died leaves no lock behind.
REBUILD_LOCK = 0x6D67770004


async def rebuild(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    prefix: str,
    on_progress: Callable[[int, int], None] | None = None,
    chunk: int = 1000,
    wait: bool = True,
) -> int | None:
    """Write every title's document from Postgres; readiness shows `rebuilding` meanwhile.
    Waits for a rebuild running elsewhere to end first, or with `wait=False` returns None."""
    async with pool.acquire() as conn:
        if wait:
            await conn.execute("SELECT pg_advisory_lock($1)", REBUILD_LOCK)
        elif not await conn.fetchval("SELECT pg_try_advisory_lock($1)", REBUILD_LOCK):
            return None
        try:
            return await _rebuild(pool, redis, prefix, on_progress, chunk)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", REBUILD_LOCK)


async def _rebuild(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    prefix: str,
    on_progress: Callable[[int, int], None] | None,
    chunk: int,
) -> int:
    total = await pool.fetchval("SELECT count(*) FROM content")
    await redis.set(state_key(prefix), STATE_REBUILDING)
    done = 0
    # On failure the state stays `rebuilding` until a rebuild finishes (the guard retries).
    async for ids in _all_ids(pool, chunk):
        done += len(await refresh(pool, redis, prefix, ids))
        # Each series once: by its own id, which is in exactly one chunk.
        await refresh_series(pool, redis, prefix, ids, own_only=True)
        if on_progress:
            on_progress(done, total)
    await redis.set(state_key(prefix), STATE_READY)
    return done


_ITEM_MAPPINGS = """
SELECT m.platform, m.platform_item_id, m.canonical_id, m.method, m.confidence,
       m.source_updated_at, m.warnings::text AS warnings
FROM entity_mappings m
JOIN unnest($1::text[], $2::text[]) AS k(platform, item)
  ON m.platform = k.platform AND m.platform_item_id = k.item
"""


async def read_state(redis: aioredis.Redis, prefix: str) -> str | None:
    """`ready`, `rebuilding`, or None when no build ever finished in this Redis (e.g. lost)."""
    value = await redis.get(state_key(prefix))
    return value.decode() if value else None


async def item_mappings(
    pool: asyncpg.Pool, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], bytes]:
    """(platform, item id) -> its ItemMapping as JSON, for the stored ones among `keys`."""
    rows = await pool.fetch(_ITEM_MAPPINGS, [k[0] for k in keys], [k[1] for k in keys])
    return {
        (r["platform"], r["platform_item_id"]): ItemMapping(
            platform=r["platform"],
            platform_item_id=r["platform_item_id"],
            canonical_id=r["canonical_id"],
            method=r["method"],
            confidence=r["confidence"],
            source_updated_at=r["source_updated_at"],
            warnings=orjson.loads(r["warnings"]),
        )
        .model_dump_json()
        .encode()
        for r in rows
    }


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


# Invalidation counters must outlive any request that read them; a day is plenty.
GENERATION_TTL_S = 86_400


# KEYS: index, generation, channel; ARGV: generation ttl, content id. Bumping the generation
# first makes any store still in flight for this title fail its check; the message tells the
# gateways to drop their in-process copies.
_INVALIDATE_LUA = """
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[1]))
local members = redis.call('SMEMBERS', KEYS[1])
local dropped = 0
for _, key in ipairs(members) do
  dropped = dropped + redis.call('DEL', key)
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return dropped
"""


async def invalidate_content(redis: aioredis.Redis, prefix: str, content_id: str) -> int:
    """Drop every cached response about one title; returns how many were dropped.

    Called once the title's document changed (its events: handlers.project).
    """
    dropped = await redis.eval(
        _INVALIDATE_LUA,
        3,
        index_key(prefix, content_id),
        generation_key(prefix, content_id),
        invalidation_channel(prefix),
        GENERATION_TTL_S,
        content_id.lower(),
    )
    logger.bind(cache=CACHE_LABEL, content_id=content_id).debug(
        "response cache: dropped {} response(s) of content {}", dropped, content_id
    )
    return int(dropped)
