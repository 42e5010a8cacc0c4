"""What the watchlist add's title check costs: the read of a title's read-model document
(one GET of its read-model document), beside the add's existing watchlist-size read (one HGET of a
document of the same size) as the baseline, both on the same Redis in the same run. The keys
are its own (a fresh prefix) and deleted after.

    PYTHONPATH=$PWD python -m devtools.bench.title_check [REDIS_URL]
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import redis.asyncio as aioredis

from agreements.read_model import document_key
from schemas.content import CanonicalContent

READS, WARMUP = 3000, 200


async def _timed(read: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    for _ in range(WARMUP):
        await read()
    spans = []
    for _ in range(READS):
        began = time.perf_counter()
        await read()
        spans.append((time.perf_counter() - began) * 1e6)
    spans.sort()
    return spans[READS // 2], spans[int(READS * 0.99)]


async def main(url: str) -> None:
    redis = aioredis.from_url(url)
    prefix = f"titlecheck{uuid.uuid4().hex[:6]}"
    title = uuid.uuid4()
    document = CanonicalContent(
        canonical_id=title,
        content_type="movie",
        title="A title of forty characters, more or less",
        genres=["drama", "crime"],
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    ).model_dump_json()
    size_key = f"{prefix}:sync:watchlist:bench"
    try:
        await redis.set(document_key(prefix, title), document)
        await redis.hset(size_key, mapping={"v": 1, "doc": document})
        base = await _timed(lambda: redis.hget(size_key, "doc"))
        check = await _timed(lambda: redis.get(document_key(prefix, title)))
    finally:
        await redis.delete(document_key(prefix, title), size_key)
        await redis.aclose()
    print(f"{READS} reads each, document {len(document)} B, microseconds p50 / p99")
    print(f"baseline  HGET (the size check's read)     {base[0]:6.0f} / {base[1]:6.0f}")
    print(f"title     GET of the document (the new read) {check[0]:6.0f} / {check[1]:6.0f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"))
