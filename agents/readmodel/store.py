"""The Redis read model of the catalog: one JSON document per title, derived from Postgres.

Documents are always rebuilt from the current Postgres row, never from the event that
triggered the refresh, so a late or replayed event cannot put an older version back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from contracts.read_model import (
    STATE_READY,
    STATE_REBUILDING,
    absent_key,
    document_key,
    state_key,
)

_SELECT = """
SELECT canonical_id, doc, data_quality_score, enriched_at, updated_at
FROM content WHERE canonical_id = ANY($1::uuid[])
"""


def to_document(row: asyncpg.Record | dict[str, Any]) -> bytes:
    doc = dict(row["doc"])
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
    written = {r["canonical_id"]: to_document(r) for r in rows}
    async with redis.pipeline(transaction=False) as pipe:
        for cid, document in written.items():
            pipe.set(document_key(prefix, cid), document)
            pipe.delete(absent_key(prefix, cid))
        for missing in set(unique) - set(written):
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


async def rebuild(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    prefix: str,
    on_progress: Callable[[int, int], None] | None = None,
    chunk: int = 1000,
) -> int:
    """Write every title's document from Postgres; readiness shows `rebuilding` meanwhile."""
    total = await pool.fetchval("SELECT count(*) FROM content")
    await redis.set(state_key(prefix), STATE_REBUILDING)
    done = 0
    # On failure the state stays `rebuilding`: the documents are incomplete until one finishes.
    async for ids in _all_ids(pool, chunk):
        done += len(await refresh(pool, redis, prefix, ids))
        if on_progress:
            on_progress(done, total)
    await redis.set(state_key(prefix), STATE_READY)
    return done
