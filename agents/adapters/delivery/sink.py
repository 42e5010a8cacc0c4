"""The worker's realtime sink as a resource: its one way to reach devices, opened when it first
delivers. Two slices send through it: sync (the command router, `realtime-deliver`) and
notifications (a fan-out's device messages, docs/NOTIFICATIONS.md "Scale"); both share the
sink's claims, so a message id is sent at most once whichever path sends it."""

from __future__ import annotations

from loguru import logger

from agents.adapters.delivery.base import RealtimeSink
from agents.framework.context import AgentContext
from agents.framework.resources import Resource
from core.config import OPEN_CHANNELS_WARNING


def _open_sink(ctx: AgentContext) -> RealtimeSink:
    """PubNub when PUBNUB_PUBLISH_KEY and PUBNUB_SUBSCRIBE_KEY are set, else the built-in
    fan-out over Redis (the embedded default, tests). Both use the same channel names and
    message bodies, so a client app works against either."""
    pubnub = ctx.settings.pubnub
    if pubnub.enabled:
        from agents.adapters.delivery.pubnub import PubNubSink

        if not pubnub.access_manager:
            logger.warning(OPEN_CHANNELS_WARNING)

        return PubNubSink(pubnub, ctx.redis, ctx.prefix)
    from agents.adapters.delivery.fanout import RedisFanout

    return RedisFanout(ctx.redis, ctx.prefix)


async def _close_sink(sink: RealtimeSink) -> None:
    await sink.close()


REALTIME_SINK: Resource[RealtimeSink] = Resource(
    "realtime-sink", open=_open_sink, close=_close_sink
)
