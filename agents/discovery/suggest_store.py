"""The search-as-you-type index (agreements/suggest_index.py): built from the catalog's titles
and credited people in PostgreSQL, published in Redis for the gateway, again whenever the
catalog changed (a title written, its credits with it: migration 0033 keeps content_people in
the same transaction).

The `discovery-suggest` timer checks every SUGGEST_INTERVAL_S whether the catalog's
fingerprint (how many titles, the last write) moved since the published index was built, and
builds it again only then; the gateway loads the new one on its next suggestion.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from loguru import logger

from agreements.suggest_index import Entry, encode, index_key, index_version_key

SUGGEST_INTERVAL_S = 15.0

_FINGERPRINT = "SELECT count(*) || ':' || coalesce(max(updated_at)::text, '') FROM content"
_TITLES = (
    "SELECT canonical_id, title, release_year, popularity, doc->>'maturity_rating' AS maturity, "
    "ARRAY(SELECT jsonb_array_elements_text(coalesce(doc->'genres', '[]'::jsonb))) AS genres "
    "FROM content"
)
# One entry per name, with how many titles credit it and the most popular of them.
_PEOPLE = """
SELECT min(p.name) AS name, count(DISTINCT p.canonical_id) AS titles,
       max(c.popularity) AS popularity
FROM content_people p JOIN content c USING (canonical_id)
GROUP BY p.name_form
"""


async def catalog_fingerprint(pool: asyncpg.Pool) -> str:
    return str(await pool.fetchval(_FINGERPRINT))


async def build_index(pool: asyncpg.Pool) -> bytes:
    async with pool.acquire() as conn:
        titles = await conn.fetch(_TITLES)
        people = await conn.fetch(_PEOPLE)
    entries = [
        Entry(
            "title",
            r["title"],
            float(r["popularity"]),
            str(r["canonical_id"]),
            r["release_year"],
            maturity_rating=r["maturity"],
            genres=tuple(r["genres"]),
        )
        for r in titles
    ]
    entries += [
        Entry("person", r["name"], float(r["popularity"]), titles=int(r["titles"])) for r in people
    ]
    # A second of CPU at 100,000 titles: off the event loop, where searches are answered.
    return await asyncio.to_thread(encode, entries)


async def publish_index(pool: asyncpg.Pool, redis: Any, prefix: str, force: bool = False) -> bool:
    """Build and publish the index if the catalog changed since the published one; whether it
    did. The index is written before its fingerprint, so a reader seeing the new fingerprint
    finds the new index."""
    fingerprint = await catalog_fingerprint(pool)
    published = await redis.get(index_version_key(prefix))
    if not force and published is not None and published.decode() == fingerprint:
        return False
    started = time.perf_counter()
    data = await build_index(pool)
    await redis.set(index_key(prefix), data)
    await redis.set(index_version_key(prefix), fingerprint)
    logger.info(
        "suggest index published: {} bytes in {:.0f} ms",
        len(data),
        (time.perf_counter() - started) * 1000,
    )
    return True


async def refresh_suggest_index(ctx: Any) -> bool:
    """The `discovery-suggest` timer."""
    return await publish_index(ctx.pool, ctx.redis, ctx.prefix)
