"""The response cache's in-process tier: anonymous hits answered without a Redis round trip.

A Redis hit is kept here for RESPONSE_CACHE_NEAR_TTL_S (off by default). Every gateway
process subscribes to the invalidation channel (agreements/response_cache.py), so a title's
copies are dropped about a millisecond after `invalidate_content()`; the TTL bounds how long a
copy can outlive an invalidation whose message was lost. Two rules keep it from serving what
Redis would not:
- While the subscription is down, nothing is served from here (and everything is dropped when
  it comes back), since invalidations may have been missed.
- A copy is only kept if no invalidation arrived between the Redis read and the store, so a
  response read just before an invalidation is not kept after it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from loguru import logger

from agreements.response_cache import invalidation_channel
from core.resilience.fastredis import REDIS_ERRORS

E = TypeVar("E")
RESUBSCRIBE_DELAY_S = 1.0
HEALTH_CHECK_S = 5.0


@dataclass(frozen=True)
class _Copy(Generic[E]):
    entry: E
    content_id: str | None
    until: float  # monotonic: the near TTL or the Redis expiry, whichever is first
    expires: float  # monotonic: the Redis entry's expiry, for the max-age of a hit


class NearCache(Generic[E]):
    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.active = False  # True only while invalidations are being received
        self.invalidations = 0  # bumped by every invalidation; a store checks it is unchanged
        self._copies: OrderedDict[str, _Copy[E]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._copies)

    def get(self, key: str, now: float | None = None) -> tuple[E, float] | None:
        """The entry and its seconds left in Redis, if a live copy is here."""
        if not self.active:
            return None
        copy = self._copies.get(key)
        if copy is None:
            return None
        now = time.monotonic() if now is None else now
        if now >= copy.until:
            del self._copies[key]
            return None
        return copy.entry, copy.expires - now

    def put(
        self,
        key: str,
        entry: E,
        content_id: str | None,
        redis_left_s: float,
        seen_invalidations: int,
        now: float | None = None,
    ) -> bool:
        if not self.active or seen_invalidations != self.invalidations:
            return False
        now = time.monotonic() if now is None else now
        until = now + min(self.ttl_s, redis_left_s)
        self._copies[key] = _Copy(entry, content_id, until, now + redis_left_s)
        self._copies.move_to_end(key)
        while len(self._copies) > self.max_entries:
            self._copies.popitem(last=False)
        return True

    def invalidate(self, content_id: str) -> None:
        self.invalidations += 1
        for key in [k for k, c in self._copies.items() if c.content_id == content_id]:
            del self._copies[key]

    def clear(self) -> None:
        self.invalidations += 1
        self._copies.clear()


async def follow_invalidations(near: NearCache[Any], redis_url: str, prefix: str) -> None:
    """Keep `near` in step with the invalidation channel for as long as the gateway runs."""
    channel = invalidation_channel(prefix)
    # A connection of its own that may wait for messages indefinitely (the edge client times
    # reads out quickly); health checks notice a connection that died silently.
    client = aioredis.from_url(
        redis_url, socket_connect_timeout=1.0, health_check_interval=HEALTH_CHECK_S
    )
    try:
        while True:
            await _follow(near, client, channel)
            await asyncio.sleep(RESUBSCRIBE_DELAY_S)
    finally:
        await client.aclose()


async def _follow(near: NearCache[Any], client: aioredis.Redis, channel: str) -> None:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)
        near.clear()
        near.active = True
        while True:
            message = await pubsub.get_message(timeout=HEALTH_CHECK_S)
            if message is not None and message["type"] == "message":
                near.invalidate(message["data"].decode())
    except REDIS_ERRORS as exc:
        # Once per outage: retries while Redis stays down are quiet.
        log = logger.warning if near.active else logger.debug
        log("near cache off until Redis Pub/Sub is back: {}", exc)
    finally:
        near.active = False
        near.clear()
        await pubsub.aclose()
