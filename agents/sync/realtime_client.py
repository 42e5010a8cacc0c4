"""Realtime delivery: one interface, two ways to reach devices.

Without PubNub keys (the embedded default, tests) the built-in fan-out: each message goes to
Redis (contracts/sync_realtime.py), where the gateways' event streams pick it up. With
PUBNUB_PUBLISH_KEY and PUBNUB_SUBSCRIBE_KEY set, through PubNub (agents/sync/pubnub_client.py).
Both use the same channel names and message bodies, so a client app works against either.

Both deliver a message id at most once: the fan-out claims the id in the same Lua script that
delivers; PubNub claims it in Redis before the publish.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from agents.framework.context import AgentContext
from agents.framework.resources import Resource
from agents.sync.delivery import RealtimeSink
from agents.sync.realtime import addressed_to
from contracts.sync_realtime import Outbound, publish
from schemas.sync import RealtimeEvent


def outbound(event: RealtimeEvent) -> Outbound:
    return Outbound(
        user_id=event.user_id,
        message_id=event.message_id,
        channel=event.channel,
        addressed_to=addressed_to(event.message),
        body=event.message.__pydantic_serializer__.to_json(event.message),
    )


class RedisFanout:
    """The built-in fan-out: Redis stream + pub/sub per user, read by the gateway."""

    name = "fanout"

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def deliver(self, events: Sequence[RealtimeEvent]) -> int:
        ids = await publish(self._redis, self._prefix, [outbound(e) for e in events])
        return sum(1 for i in ids if i is not None)

    async def close(self) -> None:
        return None


def pubnub_configured(ctx: AgentContext) -> bool:
    pubnub = ctx.settings.pubnub
    return bool(pubnub.publish_key and pubnub.subscribe_key)


def _open_sink(ctx: AgentContext) -> RealtimeSink:
    if pubnub_configured(ctx):
        from agents.sync.pubnub_client import PubNubSink

        return PubNubSink(ctx.settings.pubnub, ctx.redis, ctx.prefix)
    return RedisFanout(ctx.redis, ctx.prefix)


async def _close_sink(sink: RealtimeSink) -> None:
    await sink.close()


# The worker's one way to reach devices, chosen when it first delivers.
REALTIME_SINK = Resource("realtime-sink", open=_open_sink, close=_close_sink)
