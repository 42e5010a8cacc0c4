"""Redis keys, writes and reads of the sync read models (one document per user and view),
shared by the sync agents that write them and the gateway that serves them.

A document is a hash {v: version, doc: JSON}. The write is one Lua script that refuses a
version older than the one held, so a lookup that read PostgreSQL before a merge committed
cannot put its older document over the merge's newer one. Documents expire after a week
without a write; a read that misses asks the sync agent (`sync.lookup`), which loads the user
from PostgreSQL. A user without data gets an empty document, never a missing one, so a miss
always means "not loaded", never "empty".
"""

from __future__ import annotations

import redis.asyncio as aioredis

from agreements.sync_documents import DOCUMENT_TTL_S
from schemas.sync import SyncView

# KEYS[1] the document; ARGV: version, JSON, ttl. Returns the document now held.
_WRITE = """
local held = tonumber(redis.call('HGET', KEYS[1], 'v'))
if held and held > tonumber(ARGV[1]) then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return redis.call('HGET', KEYS[1], 'doc')
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'doc', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return ARGV[2]
"""


def document_key(prefix: str, view: SyncView, user_id: str) -> str:
    # The view before the user id: user ids may contain ':'.
    return f"{prefix}:sync:{view.value}:{user_id}"


async def write_documents(
    redis: aioredis.Redis,
    prefix: str,
    view: SyncView,
    documents: dict[str, tuple[int, bytes]],
) -> dict[str, bytes]:
    """Store each user's (version, document) unless Redis holds a newer one; returns, per user,
    the document Redis holds afterwards (ours, or the newer one)."""
    if not documents:
        return {}
    script = redis.register_script(_WRITE)
    async with redis.pipeline(transaction=False) as pipe:
        users = list(documents)
        for user_id in users:
            version, body = documents[user_id]
            await script(
                keys=[document_key(prefix, view, user_id)],
                args=[version, body, DOCUMENT_TTL_S],
                client=pipe,
            )
        held = await pipe.execute()
    return dict(zip(users, held, strict=True))


async def read_document(
    redis: aioredis.Redis, prefix: str, view: SyncView, user_id: str
) -> bytes | None:
    """The user's document of `view`, None when the read model does not have it (yet)."""
    value: bytes | None = await redis.hget(document_key(prefix, view, user_id), "doc")
    return value
