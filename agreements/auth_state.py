"""What the auth agents publish in Redis for every gateway process: the built-in token service's
public signing keys and the deny-list of revoked tokens (docs/AUTH.md, "Signing keys" and
"Revocation"). The gateway never reads PostgreSQL; this is all it knows of the service's state.

- `{prefix}:auth:jwks`: a hash, kid -> the public JWK (JSON) with `exp_after`: the epoch second
  after which no token it signed can still be valid (a retired key is deleted from the hash
  by the agent once that time has passed; until then it keeps verifying).
- `{prefix}:auth:denied:{id}`: one key per revoked token id (`jti`) or session (`sid`, a
  refresh-token family), with the token's (or session's) remaining lifetime as TTL.
- `{prefix}:auth:denied`: a sorted set of the same ids, scored by when they may be forgotten,
  so a gateway loads the whole list in one call (it keeps it in memory: a cached token is
  checked against it on every request).
- `{prefix}:auth:version`: incremented after each change of the above, and announced on the
  pub/sub channel `{prefix}:auth:changed` in the same transaction. Each gateway process
  reloads when an announcement comes and reads the version after (re)subscribing and every
  few seconds besides; while it cannot subscribe it reads it every AUTH_REVOCATION_POLL_S. It
  reloads only when the version moved: a revocation reaches every process at once, and a
  missed message cannot leave one behind (gateway/auth/key_sync.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis


def jwks_key(prefix: str) -> str:
    return f"{prefix}:auth:jwks"


def denied_index_key(prefix: str) -> str:
    return f"{prefix}:auth:denied"


def denied_key(prefix: str, token_id: str) -> str:
    return f"{prefix}:auth:denied:{token_id}"


def version_key(prefix: str) -> str:
    return f"{prefix}:auth:version"


def changes_channel(prefix: str) -> str:
    return f"{prefix}:auth:changed"


async def deny(
    redis: aioredis.Redis, prefix: str, token_ids: Mapping[str, float], now: float | None = None
) -> None:
    """Deny each id until its epoch second (the token's `exp`); ids already past are skipped."""
    now = time.time() if now is None else now
    live = {tid: until for tid, until in token_ids.items() if until > now}
    if not live:
        return
    async with redis.pipeline(transaction=True) as pipe:
        for tid, until in live.items():
            pipe.set(denied_key(prefix, tid), "1", ex=max(1, int(until - now) + 1))
        pipe.zadd(denied_index_key(prefix), {tid: until for tid, until in live.items()})
        pipe.zremrangebyscore(denied_index_key(prefix), "-inf", now)
        pipe.incr(version_key(prefix))
        pipe.publish(changes_channel(prefix), "1")
        await pipe.execute()


async def read_version(redis: aioredis.Redis, prefix: str) -> bytes | None:
    return await redis.get(version_key(prefix))  # type: ignore[no-any-return]


async def read_state(
    redis: aioredis.Redis, prefix: str, now: float | None = None
) -> tuple[bytes | None, dict[str, dict[str, Any]], frozenset[str]]:
    """The version, the published keys (kid -> JWK) and the denied ids, read at one moment."""
    now = time.time() if now is None else now
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(version_key(prefix))
        pipe.hgetall(jwks_key(prefix))
        pipe.zrangebyscore(denied_index_key(prefix), now, "+inf")
        version, raw_keys, denied = await pipe.execute()
    keys: dict[str, dict[str, Any]] = {}
    for kid, raw in raw_keys.items():
        try:
            keys[kid.decode() if isinstance(kid, bytes) else kid] = json.loads(raw)
        except ValueError:
            continue
    return version, keys, frozenset(d.decode() if isinstance(d, bytes) else d for d in denied)


async def sync_keys(
    redis: aioredis.Redis, prefix: str, wanted: Mapping[str, Mapping[str, Any]]
) -> bool:
    """Make the published keys exactly `wanted` (kid -> JWK with `exp_after`); the version
    moves only when something changed, so a periodic publication costs the gateways nothing."""
    held = await redis.hgetall(jwks_key(prefix))
    held_text = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in held.items()
    }
    encoded = {kid: json.dumps(dict(jwk), sort_keys=True) for kid, jwk in wanted.items()}
    changed = {kid: text for kid, text in encoded.items() if held_text.get(kid) != text}
    gone = [kid for kid in held_text if kid not in encoded]
    if not changed and not gone:
        return False
    async with redis.pipeline(transaction=True) as pipe:
        if changed:
            pipe.hset(jwks_key(prefix), mapping=changed)
        if gone:
            pipe.hdel(jwks_key(prefix), *gone)
        pipe.incr(version_key(prefix))
        pipe.publish(changes_channel(prefix), "1")
        await pipe.execute()
    return True
