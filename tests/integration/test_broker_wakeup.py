"""The last wake-up call before a producer stops goes out (core/broker_wakeup.py): a short-lived
producer such as `mgw ingest` closed its Redis client under the call, so the records of its last
batch waited for the workers' idle fetch interval."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from core.broker_wakeup import BrokerWakeup


async def next_message(pubsub: PubSub) -> str | None:
    """The channel of the next message within 5 s (a read that meets the subscription's own
    confirmation answers None, so read until a message or the deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while loop.time() < deadline:
        message = await pubsub.get_message(timeout=deadline - loop.time())
        if message is not None:
            return str(message["channel"].decode())
    return None


async def test_a_call_under_way_is_sent_before_the_producer_closes_redis(redis_url: str) -> None:
    channel = f"test-wakeup-{uuid.uuid4().hex[:8]}"
    listener = aioredis.from_url(redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    producer_redis = aioredis.from_url(redis_url)
    try:
        wakeup = BrokerWakeup(producer_redis, channel)
        wakeup.notify()
        await wakeup.flush()
        await producer_redis.aclose()  # what `mgw ingest` does right after stopping
        assert await next_message(pubsub) == channel
    finally:
        await pubsub.aclose()
        await listener.aclose()


async def test_flush_with_nothing_under_way_returns_at_once(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        await asyncio.wait_for(BrokerWakeup(client, "unused").flush(), timeout=1)
    finally:
        await client.aclose()
