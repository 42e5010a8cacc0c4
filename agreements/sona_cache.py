"""The recommendation cache in Redis, shared by the gateway (reads) and the SONA agents
(writes, drops).

One hash per user, `{prefix}:sona:recs:{user_id}`, one field per request context (device,
mood, region, time bucket, limit, the acting profile's parental limits), each an answer as
JSON. Dropping a user's recommendations
deletes the hash and bumps `{prefix}:sona:recs-drop:{user_id}`; an agent stores an answer only
if that counter still holds the value it read before computing, so an answer computed from the
taste a training round just replaced is never stored after the drop.
"""

from __future__ import annotations

from datetime import datetime

import redis.asyncio as aioredis

from agreements.parental_controls import limits_tag
from core.observability.metrics import CACHE_HITS, CACHE_MISSES
from schemas.sona import RecommendationsRequested, TimeBucket

RECOMMENDATIONS_CACHE = "sona_recommendations"
# Bump when the cached answer's shape or meaning changes: old fields are never read again.
KEY_VERSION = 1

# docs/RULES.md's buckets of the local hour; agents/sona/context.py holds the rules built on them.
_BUCKET_STARTS = ((18, TimeBucket.evening), (12, TimeBucket.afternoon), (6, TimeBucket.morning))


def bucket_at(at: datetime) -> TimeBucket:
    """The time bucket of the request's local hour (the timestamp's own UTC offset)."""
    return next((b for start, b in _BUCKET_STARTS if at.hour >= start), TimeBucket.night)


def recommendations_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:sona:recs:{user_id}"


def drop_counter_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:sona:recs-drop:{user_id}"


def context_field(request: RecommendationsRequested) -> str:
    device = request.device_type.value if request.device_type else "-"
    return "|".join(
        (
            f"v{KEY_VERSION}",
            device,
            request.mood or "-",
            request.region or "-",
            bucket_at(request.at).value,
            str(request.limit),
            # A limited profile's answers are its own: never an adult's cached field.
            limits_tag(request.limits),
        )
    )


async def read_recommendations(
    redis: aioredis.Redis, prefix: str, request: RecommendationsRequested
) -> bytes | None:
    body = await redis.hget(recommendations_key(prefix, request.user_id), context_field(request))
    (CACHE_HITS if body is not None else CACHE_MISSES).labels(RECOMMENDATIONS_CACHE).inc()
    return body


async def drop_generation(redis: aioredis.Redis, prefix: str, user_id: str) -> int:
    """The drop counter's value now: read before computing, passed to store_recommendations."""
    value = await redis.get(drop_counter_key(prefix, user_id))
    return int(value) if value is not None else 0


_STORE_IF_NOT_DROPPED = """
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if seen ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


async def store_recommendations(
    redis: aioredis.Redis,
    prefix: str,
    request: RecommendationsRequested,
    body: bytes,
    generation: int,
    ttl_s: float,
) -> bool:
    """Store an answer unless the user's recommendations were dropped since `generation` was
    read. The hash's lifetime restarts with each stored context (at most ttl_s after the last)."""
    stored = await redis.eval(  # type: ignore[misc]
        _STORE_IF_NOT_DROPPED,
        2,
        recommendations_key(prefix, request.user_id),
        drop_counter_key(prefix, request.user_id),
        str(generation),
        context_field(request),
        body,
        str(int(ttl_s * 1000)),
    )
    return bool(stored)


async def drop_recommendations(
    redis: aioredis.Redis, prefix: str, user_ids: list[str] | set[str], ttl_s: float
) -> None:
    """Forget the users' cached answers, and any being computed from what they knew before."""
    if not user_ids:
        return
    async with redis.pipeline(transaction=True) as pipe:
        for user_id in sorted(user_ids):
            counter = drop_counter_key(prefix, user_id)
            pipe.incr(counter)
            # Outlives every answer computed before the drop (each takes well under a second).
            pipe.pexpire(counter, int(ttl_s * 1000))
            pipe.delete(recommendations_key(prefix, user_id))
        await pipe.execute()
