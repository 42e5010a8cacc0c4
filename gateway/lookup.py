"""Request/reply over Kafka for what the gateway cannot answer from Redis: publish a request
naming a Redis pub/sub reply channel, and wait for an agent's answer on it.

The reply channel is subscribed before the request is sent, so an answer cannot arrive
unheard. An agent that cannot answer says so at once (agreements/agent_reply.py): that is
AgentFailed, which gateway/errors.py answers 502 (this request fails) or 503 (a dependency of
the agent is down: retry), with the agent's reason. A breaker per kind of question stops the
asking while agents do not answer at all. Users:
content reads (`content.lookup`, below), a producer's item mapping (`content.item_lookup`,
below), sync reads (gateway/sync_lookup.py) and search (gateway/routes/discovery.py).
"""

from __future__ import annotations

import time
import uuid

import redis.asyncio as aioredis
from pydantic import ValidationError

from agreements.agent_reply import AgentFailure, failure_of
from agreements.read_model import absent_key, reply_channel
from core.publisher import Publisher
from core.resilience import breakers
from schemas.content import ContentLookupRequested
from schemas.envelope import Payload
from schemas.ingestion import ItemMappingRequested
from topics.registry import CONTENT_ITEM_LOOKUP, CONTENT_LOOKUP, TopicSpec

# The answer of every route that asks an agent, when the agent said it cannot answer.
AGENT_FAILED_RESPONSE: dict[int | str, dict[str, str]] = {
    502: {"description": "the agent asked could not answer this request; the message says why"}
}


class LookupTimeout(RuntimeError):
    """No agent answered in time: the thing asked for may exist, so this is not a 404."""


class AgentFailed(RuntimeError):
    """The agent answered that it cannot answer this request, and why."""

    def __init__(self, topic: TopicSpec, failure: AgentFailure) -> None:
        super().__init__(f"{failure.agent} ({topic.name}): {failure.reason}")
        self.topic = topic
        self.failure = failure


async def request_reply(
    redis: aioredis.Redis,
    publisher: Publisher,
    topic: TopicSpec,
    request: Payload,
    *,
    key: str,
    timeout_s: float,
    unanswered: Exception,
    breaker: str = "agent_reply",
    skip_empty: bool = False,
) -> bytes:
    """The first answer on `request.reply_channel` (raises `unanswered` after `timeout_s`).
    `skip_empty`: an empty message is not an answer (for agents that never answer "none")."""
    channel = request.reply_channel  # type: ignore[attr-defined]
    # An agent answering with a failure is an agent that answers: not the breaker's business.
    async with breakers.get(breaker).guard(ignore=(AgentFailed,)):
        pubsub = redis.pubsub()
        try:
            await pubsub.subscribe(channel)
            await publisher.publish(topic, request, key=key)
            deadline = time.monotonic() + timeout_s
            while (remaining := deadline - time.monotonic()) > 0:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=remaining
                )
                if message is None or message["type"] != "message":
                    continue
                data = bytes(message["data"])
                failure = failure_of(data)
                if failure is not None:
                    raise AgentFailed(topic, failure)
                if data or not skip_empty:
                    return data
            raise unanswered
        finally:
            await pubsub.unsubscribe(channel)
            await pubsub.aclose()


def new_reply_channel(prefix: str) -> str:
    return reply_channel(prefix, uuid.uuid4())


async def ask_agent(
    redis: aioredis.Redis,
    publisher: Publisher,
    prefix: str,
    content_id: uuid.UUID,
    timeout_s: float,
) -> bytes | None:
    """The title's document, or None when the agent found no such title (an empty answer;
    remembered for a minute, so repeated misses do not ask again)."""
    if await redis.exists(absent_key(prefix, content_id)):
        return None
    answer = await request_reply(
        redis,
        publisher,
        CONTENT_LOOKUP,
        ContentLookupRequested(canonical_id=content_id, reply_channel=new_reply_channel(prefix)),
        key=str(content_id),
        timeout_s=timeout_s,
        unanswered=LookupTimeout(
            f"no agent answered the lookup of {content_id} in {timeout_s:g} s"
        ),
    )
    return answer or None


async def ask_item_mapping(
    redis: aioredis.Redis,
    publisher: Publisher,
    prefix: str,
    platform: str,
    item_id: str,
    timeout_s: float,
) -> bytes | None:
    """The stored mapping of a platform item (contracts' ItemMapping as JSON), or None when the
    item is not stored (yet)."""
    try:
        wanted = ItemMappingRequested(
            platform=platform, platform_item_id=item_id, reply_channel=new_reply_channel(prefix)
        )
    except ValidationError:
        # Ids no catalog item could have had (a platform name without a letter or digit,
        # text PostgreSQL cannot hold): nothing is stored under them.
        return None
    answer = await request_reply(
        redis,
        publisher,
        CONTENT_ITEM_LOOKUP,
        wanted,
        key=f"{platform}:{item_id}",
        timeout_s=timeout_s,
        unanswered=LookupTimeout(
            f"no agent answered the lookup of {platform} item {item_id!r} in {timeout_s:g} s"
        ),
    )
    return answer or None
