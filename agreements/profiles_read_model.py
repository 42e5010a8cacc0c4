"""The profiles read model in Redis, shared by the accounts agents (write) and the gateway
(read): one hash per account, `{prefix}:profiles:{user_id}`, profile_id -> a `Profile` as JSON.

The agents render an account's hash whole from PostgreSQL after each change (delete and refill
in one transaction), so a reader sees the account before or after a change, never half of it.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from schemas.accounts import Profile


def profiles_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:profiles:{user_id}"


def rendered_key(prefix: str) -> str:
    """Set (with a TTL) when every account was rendered; gone when Redis lost its data or the
    TTL lapsed, which is when the accounts agents render every account again. Outside the
    `profiles:` key space, so no user id can name it."""
    return f"{prefix}:profiles-rendered"


async def read_profile(
    redis: aioredis.Redis, prefix: str, user_id: str, profile_id: str
) -> Profile | None:
    raw = await redis.hget(profiles_key(prefix, user_id), profile_id)
    return None if raw is None else Profile.model_validate_json(raw)


async def read_profiles(redis: aioredis.Redis, prefix: str, user_id: str) -> list[Profile]:
    raw = await redis.hvals(profiles_key(prefix, user_id))
    return sorted((Profile.model_validate_json(r) for r in raw), key=lambda p: p.profile_id)


async def render_profiles(
    redis: aioredis.Redis,
    prefix: str,
    accounts: dict[str, Iterable[Profile]],
    rendered_ttl_s: int | None = None,
) -> None:
    """Replace each account's hash with its live profiles (none: the hash is deleted).
    `rendered_ttl_s`: these are every account's, so set the rendered marker for that long, in
    the same transaction (a Redis emptied in between loses both)."""
    async with redis.pipeline(transaction=True) as pipe:
        for user_id, profiles in accounts.items():
            key = profiles_key(prefix, user_id)
            pipe.delete(key)
            mapping = {p.profile_id: p.model_dump_json() for p in profiles}
            if mapping:
                pipe.hset(key, mapping=mapping)
        if rendered_ttl_s is not None:
            pipe.set(rendered_key(prefix), b"1", ex=rendered_ttl_s)
        await pipe.execute()
