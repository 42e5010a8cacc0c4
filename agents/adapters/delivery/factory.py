"""Pick the way to reach devices the settings ask for.

Both use the same channel names and message bodies, so a client app works against either.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from agents.adapters.delivery.base import RealtimeSink
from core.config import Settings


def create_sink(settings: Settings, redis: aioredis.Redis, prefix: str) -> RealtimeSink:
    """PubNub when PUBNUB_PUBLISH_KEY and PUBNUB_SUBSCRIBE_KEY are set, else the built-in
    fan-out over Redis (the embedded default, tests)."""
    if settings.pubnub.publish_key and settings.pubnub.subscribe_key:
        from agents.adapters.delivery.pubnub import PubNubSink

        return PubNubSink(settings.pubnub, redis, prefix)
    from agents.adapters.delivery.fanout import RedisFanout

    return RedisFanout(redis, prefix)
