"""Names and invalidation of the gateway's cached responses, shared with the agents that
invalidate them when a title changes (agents never import the gateway)."""

from __future__ import annotations

import redis.asyncio as aioredis
from loguru import logger

CACHE_LABEL = "response"
# Invalidation counters must outlive any request that read them; a day is plenty.
GENERATION_TTL_S = 86_400


def index_key(prefix: str, content_id: str) -> str:
    return f"{prefix}:respcache:content:{content_id.lower()}"


def generation_key(prefix: str, content_id: str) -> str:
    return f"{prefix}:respcache:contentgen:{content_id.lower()}"


def invalidation_channel(prefix: str) -> str:
    """Pub/Sub channel naming each invalidated title, for the gateways' in-process tier."""
    return f"{prefix}:respcache:invalidated"


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

    Called by the agent that applies content.updated / availability events to the read
    model, after the read model changed.
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
