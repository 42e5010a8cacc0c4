"""A wake-up call to idle consumers, sent over Redis pub/sub by our own producers after the broker
acknowledged their records.

Why: Tansu (the embedded and test broker) answers a waiting fetch only when the fetch's wait
ends, not when a record arrives, so a consumer that must see a record within milliseconds has
to fetch every few milliseconds, which costs a third of a core for an idle stack. Instead, a
worker's consumer that has seen nothing for a while stops fetching and waits on its own side
(agents/framework/kafka/fetch_wait.py) until this call comes, or `KAFKA_IDLE_FETCH_INTERVAL_MS`
passes: records of producers that do not call (anything outside this code base) are fetched
within that bound. The call is a hint: lost or late, it delays a record by at most that bound,
never loses one, since records are read from the broker, not from the message.

A producer calls at most once per `COALESCE_S`: a consumer stays awake (fetching without
waiting on its own side) for `AWAKE_S` after a call or a record, longer than a producer stays
silent, so records sent between two calls are fetched by an awake consumer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from loguru import logger
from redis.exceptions import RedisError

from core.config import Settings

COALESCE_S = 0.2
AWAKE_S = 1.0
_PUBLISH_TIMEOUT_S = 1.0
_RECONNECT_S = 1.0


def wakeup_channel(settings: Settings) -> str:
    """One channel per stack: the Redis key prefix and the topic prefix both separate them."""
    return f"{settings.redis.key_prefix}:broker-wakeup:{settings.kafka.topic_prefix}"


class BrokerWakeup:
    """The producer's side: `notify()` after an acknowledged send; never waits, never raises."""

    def __init__(self, redis: aioredis.Redis, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._last = -COALESCE_S
        self._pending: set[asyncio.Task[None]] = set()

    def notify(self) -> None:
        now = time.monotonic()
        if now - self._last < COALESCE_S:
            return
        self._last = now
        task = asyncio.get_running_loop().create_task(self._publish())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        """Wait for the calls under way: the last one before a producer stops must go out, or
        its records wait for the idle fetch interval."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def _publish(self) -> None:
        try:
            async with asyncio.timeout(_PUBLISH_TIMEOUT_S):
                await self._redis.publish(self._channel, b"")
        except (RedisError, OSError, TimeoutError) as exc:
            # Consumers then fetch within KAFKA_IDLE_FETCH_INTERVAL_MS: slower, not lost.
            logger.debug("broker wake-up not sent: {}", exc)


async def listen_for_wakeups(redis_url: str, channel: str, on_wake: Callable[[], None]) -> None:
    """The consumer's side: call `on_wake` for each call on `channel`, until cancelled. While
    Redis is away it reconnects every second; meanwhile the idle fetch interval applies."""
    client = aioredis.from_url(redis_url, socket_connect_timeout=2.0)
    try:
        while True:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                logger.info("idle consumers wake on calls to {}", channel)
                # A call may have been missed while (re)subscribing: look once.
                on_wake()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        on_wake()
            except (RedisError, OSError) as exc:
                logger.debug("broker wake-ups not heard ({}); retrying in {} s", exc, _RECONNECT_S)
            finally:
                await pubsub.aclose()
            await asyncio.sleep(_RECONNECT_S)
    finally:
        await client.aclose()
