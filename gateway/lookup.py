"""Request/reply for read-model misses: ask the catalog agent over Kafka, hear back on Redis.

The request goes to `content.lookup`; the readmodel agent loads the title from PostgreSQL into
the read model and publishes the document (or an empty "no such title") on a Redis pub/sub
channel named in the request. The reply channel is subscribed before the request is sent, so
an answer cannot arrive unheard. A title found absent stays answered 404 for a minute without
asking again; the shared `agent_reply` breaker stops the asking while agents do not answer.
"""

from __future__ import annotations

import time
import uuid

import redis.asyncio as aioredis

from contracts.read_model import absent_key, reply_channel
from core.publisher import Publisher
from core.resilience import breakers
from schemas.content import ContentLookupRequested
from topics.registry import CONTENT_LOOKUP


class LookupTimeout(RuntimeError):
    """No agent answered in time: the title may exist, so this is not a 404."""


async def ask_agent(
    redis: aioredis.Redis,
    publisher: Publisher,
    prefix: str,
    content_id: uuid.UUID,
    timeout_s: float,
) -> bytes | None:
    """The title's document, or None when the agent found no such title."""
    if await redis.exists(absent_key(prefix, content_id)):
        return None
    async with breakers.get("agent_reply").guard():
        channel = reply_channel(prefix, uuid.uuid4())
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            await publisher.publish(
                CONTENT_LOOKUP,
                ContentLookupRequested(canonical_id=content_id, reply_channel=channel),
                key=str(content_id),
            )
            deadline = time.monotonic() + timeout_s
            while (remaining := deadline - time.monotonic()) > 0:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=remaining
                )
                if message is not None and message["type"] == "message":
                    return message["data"] or None
            raise LookupTimeout(f"no agent answered the lookup of {content_id} in {timeout_s:g} s")
        finally:
            await pubsub.unsubscribe(channel)
            await pubsub.aclose()
