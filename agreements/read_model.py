"""Names and reads of the Redis read models, shared by the agents that write them and the
gateway that serves them (the gateway never reads Postgres)."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

STATE_READY = "ready"
STATE_REBUILDING = "rebuilding"
# How long a title an agent found missing is answered 404 without asking again.
ABSENT_TTL_S = 60


def document_key(prefix: str, canonical_id: uuid.UUID | str) -> str:
    return f"{prefix}:content:{canonical_id}"


def series_key(prefix: str, series_id: uuid.UUID | str) -> str:
    """A series' seasons, episode counts and platforms (agents/readmodel/series.py)."""
    return f"{prefix}:series:{series_id}"


def state_key(prefix: str) -> str:
    return f"{prefix}:readmodel:state"


def absent_key(prefix: str, canonical_id: uuid.UUID | str) -> str:
    return f"{prefix}:content-absent:{canonical_id}"


def reply_channel(prefix: str, request_id: uuid.UUID | str) -> str:
    return f"{prefix}:reply:{request_id}"


async def read_document(
    redis: aioredis.Redis, prefix: str, canonical_id: uuid.UUID
) -> bytes | None:
    return await redis.get(document_key(prefix, canonical_id))


async def read_state(redis: aioredis.Redis, prefix: str) -> str | None:
    """`ready`, `rebuilding`, or None when no build ever finished in this Redis (e.g. lost)."""
    value = await redis.get(state_key(prefix))
    return value.decode() if value else None
