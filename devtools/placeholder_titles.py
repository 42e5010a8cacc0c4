"""Titles the catalog's read model has, without a catalog agent: a document under each id in
Redis, which is what a watchlist add checks (404 for a title the catalog does not have,
docs/SYNC.md). For tests and benchmarks that need titles to watch, not a catalog; the keys
expire (`ttl_s`), should their owner die before it deletes them, and an agent's later write of
the same title replaces the placeholder."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import redis.asyncio as aioredis

from agreements.read_model import document_key
from schemas.content import CanonicalContent


async def place_titles(
    redis_url: str, prefix: str, ids: Iterable[uuid.UUID], label: str, ttl_s: int = 3600
) -> None:
    client = aioredis.from_url(redis_url)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for title in ids:
                content = CanonicalContent(
                    canonical_id=title,
                    content_type="movie",
                    title=f"{label} {title.hex[:6]}",
                    genres=["drama"],
                    updated_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
                pipe.set(document_key(prefix, title), content.model_dump_json(), ex=ttl_s, nx=True)
            await pipe.execute()
    finally:
        await client.aclose()
