"""Titles the catalog has, without a catalog agent: a document under each id in Redis, which is
what a watchlist add checks at the gateway (404 for a title the catalog does not have,
docs/SYNC.md), and, given a database, a row in `content`, which is what the sync agent checks
before it merges an add (an add of a title not there is dead-lettered). For tests and
benchmarks that need titles to watch, not a catalog; the Redis keys expire (`ttl_s`), should
their owner die before it deletes them (`forget_titles`), and an agent's later write of the
same title replaces the placeholder."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg
import redis.asyncio as aioredis

from agents.titles.store import Versioned, upsert_contents
from agreements.read_model import document_key
from schemas.content import CanonicalContent


def _placeholder(title: uuid.UUID, label: str) -> CanonicalContent:
    return CanonicalContent(
        canonical_id=title,
        content_type="movie",
        title=f"{label} {title.hex[:6]}",
        genres=["drama"],
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


async def place_titles(
    redis_url: str,
    prefix: str,
    ids: Iterable[uuid.UUID],
    label: str,
    ttl_s: int = 3600,
    database_url: str | None = None,
) -> None:
    contents = [_placeholder(title, label) for title in ids]
    client = aioredis.from_url(redis_url)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for content in contents:
                key = document_key(prefix, content.canonical_id)
                pipe.set(key, content.model_dump_json(), ex=ttl_s, nx=True)
            await pipe.execute()
    finally:
        await client.aclose()
    if database_url is not None:
        conn = await asyncpg.connect(database_url)
        try:
            # Stamped 2026-01-01: a real title of the same id, newer, replaces it.
            await upsert_contents(conn, [Versioned(c, uuid.uuid4()) for c in contents])
        finally:
            await conn.close()


async def forget_titles(
    redis_url: str, prefix: str, ids: Iterable[uuid.UUID], database_url: str | None = None
) -> None:
    """Remove what place_titles placed (its Redis documents and, given a database, its rows)."""
    titles = list(ids)
    if not titles:
        return
    client = aioredis.from_url(redis_url)
    try:
        await client.delete(*(document_key(prefix, title) for title in titles))
    finally:
        await client.aclose()
    if database_url is not None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("DELETE FROM content WHERE canonical_id = ANY($1::uuid[])", titles)
        finally:
            await conn.close()
