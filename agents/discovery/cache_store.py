"""The discovery caches in Redis: parsed intents, query embeddings and result pages.

Key names and the invalidation scheme are in agreements/discovery_cache.py (the gateway reads
result pages with the same names). Lifetimes come from DISCOVERY_*_TTL_S. Every lookup is
counted in cache_hits_total / cache_misses_total (labels discovery_intent, discovery_embedding,
discovery_results) and logged at debug level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import redis.asyncio as aioredis
from loguru import logger
from pydantic import ValidationError

from agreements.discovery_cache import (
    CHANGE_MARK_TTL_S,
    EMBEDDING_CACHE,
    INTENT_CACHE,
    changed_key,
    embedding_key,
    intent_key,
    normalize_query,
    read_results,
    results_clock_key,
    results_index_key,
)
from core.config import DiscoverySettings
from core.observability.metrics import CACHE_HITS, CACHE_MISSES
from schemas.discovery import ParsedIntent

# KEYS: page, its result set, then n change marks, then the n indexes of the same subjects.
# ARGV: ttl ms, body, clock read before the search started, n.
_STORE_PAGE = """
local n = tonumber(ARGV[4])
local started = tonumber(ARGV[3])
for i = 1, n do
  local mark = redis.call('GET', KEYS[2 + i])
  if mark and tonumber(mark) > started then return 0 end
end
local ttl = tonumber(ARGV[1])
local function outlive(key)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('SADD', KEYS[2], KEYS[1])
outlive(KEYS[2])
for i = 1, n do
  local index = KEYS[2 + n + i]
  redis.call('SADD', index, KEYS[2])
  outlive(index)
end
return 1
"""

# KEYS: results clock, change mark, index. ARGV: change mark ttl s.
# The mark is set before the pages are dropped, so a search storing concurrently either sees
# the mark or has its page dropped here.
_INVALIDATE_SUBJECT = """
local tick = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], tick, 'EX', tonumber(ARGV[1]))
local dropped = 0
for _, set in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  for _, page in ipairs(redis.call('SMEMBERS', set)) do
    dropped = dropped + redis.call('DEL', page)
  end
  redis.call('DEL', set)
end
redis.call('DEL', KEYS[3])
return dropped
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class DiscoveryCache:
    def __init__(self, redis: aioredis.Redis, prefix: str, settings: DiscoverySettings) -> None:
        self.redis = redis
        self.prefix = prefix
        self.settings = settings
        self._store_page = redis.register_script(_STORE_PAGE)
        self._invalidate = redis.register_script(_INVALIDATE_SUBJECT)

    @staticmethod
    def _count(cache: str, hit: bool, key: str) -> None:
        (CACHE_HITS if hit else CACHE_MISSES).labels(cache).inc()
        logger.debug("{} cache {} {}", cache, "hit" if hit else "miss", key)

    # --- parsed intents ---------------------------------------------------------------------

    async def get_intent(self, query: str) -> ParsedIntent | None:
        key = intent_key(self.prefix, query)
        raw = await self.redis.get(key)
        intent = None
        if raw is not None:
            try:
                intent = ParsedIntent.model_validate_json(raw)
            except ValidationError:
                # Written by another version of the model: a miss, overwritten below.
                logger.warning("unreadable cached intent at {}; parsing again", key)
        self._count(INTENT_CACHE, intent is not None, key)
        return intent

    async def set_intent(self, query: str, intent: ParsedIntent) -> None:
        await self.redis.set(
            intent_key(self.prefix, query),
            intent.model_dump_json(),
            px=_ms(self.settings.intent_ttl_s),
        )

    async def delete_intent(self, query: str) -> None:
        await self.redis.delete(intent_key(self.prefix, query))

    # --- query embeddings -------------------------------------------------------------------

    async def get_embedding(self, text: str, model: str, dimension: int) -> np.ndarray | None:
        key = embedding_key(self.prefix, text, model)
        raw = await self.redis.get(key)
        vector = None
        if raw is not None and len(raw) == 4 * dimension:
            vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        self._count(EMBEDDING_CACHE, vector is not None, key)
        return vector

    async def set_embedding(self, text: str, model: str, vector: np.ndarray) -> None:
        await self.redis.set(
            embedding_key(self.prefix, text, model),
            np.asarray(vector, dtype="<f4").tobytes(),
            px=_ms(self.settings.embedding_ttl_s),
        )

    async def delete_embedding(self, text: str, model: str) -> None:
        await self.redis.delete(embedding_key(self.prefix, text, model))

    # --- result pages -----------------------------------------------------------------------

    async def get_results(self, key: str) -> bytes | None:
        return await read_results(self.redis, key)

    async def results_clock(self) -> int:
        """Read before a search starts; pass it to set_results."""
        raw = await self.redis.get(results_clock_key(self.prefix))
        return int(raw) if raw is not None else 0

    async def set_results(
        self,
        key: str,
        result_set: str,
        body: bytes,
        subjects: Sequence[str],
        clock: int,
        lifetime_s: float,
    ) -> bool:
        """Store a page of `result_set` for `lifetime_s`, unless one of the subjects it depends
        on changed after `clock`; whether it was stored."""
        marks = [changed_key(self.prefix, s) for s in subjects]
        indexes = [results_index_key(self.prefix, s) for s in subjects]
        stored = await self._store_page(
            keys=[key, result_set, *marks, *indexes],
            args=[_ms(lifetime_s), body, clock, len(subjects)],
        )
        if not stored:
            logger.debug("result page {} not cached: what it shows changed meanwhile", key)
        return bool(stored)

    async def delete_results(self, key: str) -> None:
        await self.redis.delete(key)

    async def invalidate(self, subjects: Sequence[str]) -> int:
        """Drop every cached page of every result set depending on one of these subjects; how
        many pages were dropped."""
        unique = list(dict.fromkeys(subjects))
        if not unique:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for subject in unique:
                await self._invalidate(
                    keys=[
                        results_clock_key(self.prefix),
                        changed_key(self.prefix, subject),
                        results_index_key(self.prefix, subject),
                    ],
                    args=[CHANGE_MARK_TTL_S],
                    client=pipe,
                )
            dropped = await pipe.execute()
        return sum(int(n) for n in dropped)


def normalized_text(text: str) -> str:
    """The text embedded for a query: the normalized form its cache key is taken over."""
    return normalize_query(text)
