"""The record of the PubNub tokens issued to each device, in Redis: written by the gateway when it
grants one, read by the sync worker that applies the device's removal, which revokes them.

The gateway never reaches PostgreSQL, and PubNub cannot list the tokens of a keyset, so this
record is the only way from "device removed" to "its tokens revoked". One sorted set per
(user, device): member the token, score its expiry (epoch seconds). Expired tokens are dropped
as new ones are recorded (PubNub refuses them anyway), and the key expires with the last one.
The tokens are bearer secrets of read-only scope: Redis is already where every user's read
models live, and a token here grants nothing that Redis's own reader could not read.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from schemas.sync import channel_segment


def tokens_key(prefix: str, user_id: str, device_id: str) -> str:
    return f"{prefix}:rt:tokens:{channel_segment(user_id)}:{channel_segment(device_id)}"


_RECORD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(last[2])) + 1)
return redis.call('ZCARD', KEYS[1])
"""


async def record(
    redis: aioredis.Redis,
    prefix: str,
    user_id: str,
    device_id: str,
    token: str,
    expires_at: float,
    now: float,
) -> int:
    """Remember a token until it expires; how many live tokens the device now holds."""
    held: int = await redis.eval(  # type: ignore[misc]
        _RECORD, 1, tokens_key(prefix, user_id, device_id), token, expires_at, now
    )
    return held


async def live(
    redis: aioredis.Redis, prefix: str, user_id: str, device_id: str, now: float
) -> list[str]:
    """The device's tokens not yet expired (the ones worth revoking)."""
    raw = await redis.zrangebyscore(tokens_key(prefix, user_id, device_id), f"({now}", "+inf")
    return [t.decode() if isinstance(t, bytes) else str(t) for t in raw]


async def live_count(
    redis: aioredis.Redis, prefix: str, user_id: str, device_id: str, now: float
) -> int:
    count: int = await redis.zcount(tokens_key(prefix, user_id, device_id), f"({now}", "+inf")
    return count


async def forget(
    redis: aioredis.Redis, prefix: str, user_id: str, device_id: str, tokens: list[str]
) -> None:
    """Drop tokens once revoked: a redelivered removal finds nothing left to revoke."""
    if tokens:
        await redis.zrem(tokens_key(prefix, user_id, device_id), *tokens)
