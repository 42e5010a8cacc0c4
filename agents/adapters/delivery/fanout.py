"""The built-in fan-out: each message goes to a Redis stream and pub/sub channel per user
(agreements/sync_realtime.py), where the gateways' event streams pick it up. The fan-out claims
a message id in the same Lua script that delivers, so a message reaches devices at most once.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from agreements.sync_realtime import Outbound, publish
from schemas.sync import RealtimeEvent, addressed_to


def outbound(event: RealtimeEvent) -> Outbound:
    return Outbound(
        user_id=event.user_id,
        message_id=event.message_id,
        channel=event.channel,
        addressed_to=addressed_to(event.message),
        body=event.message.__pydantic_serializer__.to_json(event.message),
    )


class RedisFanout:
    """Redis stream + pub/sub per user, read by the gateway."""

    name = "fanout"

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def deliver(self, events: Sequence[RealtimeEvent]) -> int:
        ids = await publish(self._redis, self._prefix, [outbound(e) for e in events])
        return sum(1 for i in ids if i is not None)

    async def close(self) -> None:
        return None
