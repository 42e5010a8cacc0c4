"""The built-in fan-out: each message goes to a Redis stream and pub/sub channel per user
(the layout of agreements/sync_realtime.py), where the gateways' event streams pick it up. The
fan-out claims a message id in the same Lua script that delivers, so a message reaches devices
at most once.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis

from agreements.sync_realtime import (
    CLAIM_TTL_S,
    REPLAY_MAX_MESSAGES,
    REPLAY_WINDOW_S,
    Outbound,
    key_base,
    live_channel,
)
from schemas.sync import RealtimeEvent, addressed_to

# Messages per script call: a call blocks Redis while it runs (about 10 to 20 µs a message).
PUBLISH_BATCH = 1000

# One call delivers a batch, in order: the messages as one JSON argument (redis-py packs every
# argument in Python, which for 12 arguments a message cost the sender more CPU than the script
# cost Redis), each message's keys derived from its user's key base (so, like the inbox script,
# this needs a standalone Redis, not a Cluster). Per message: claim the id (skipped, '' in the
# answer, when claimed before), append to the user's stream, trim, publish.
_PUBLISH = """
local messages = cjson.decode(ARGV[1])
local window = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local out = {}
for i, m in ipairs(messages) do
  local base, live, message_id, body, channel, addressed = m[1], m[2], m[3], m[4], m[5], m[6]
  if not redis.call('SET', base .. ':sent:' .. message_id, '1', 'NX', 'EX', ttl) then
    out[i] = ''
  else
    local log, epoch_key, floor = base .. ':log', base .. ':epoch', base .. ':floor'
    local epoch = redis.call('GET', epoch_key)
    if not epoch then
      epoch = ARGV[5]
      redis.call('SET', epoch_key, epoch)
      redis.call('DEL', floor)
    end
    local id = redis.call('XADD', log, '*', 'c', channel, 'a', addressed, 'm', body)
    local ms = tonumber(string.match(id, '^(%d+)-'))
    redis.call('XTRIM', log, 'MINID', tostring(ms - window))
    local n = redis.call('XLEN', log)
    if n > cap then
      local cut = redis.call('XRANGE', log, '-', '+', 'COUNT', n - cap)
      redis.call('SET', floor, cut[#cut][1])
      redis.call('XTRIM', log, 'MAXLEN', cap)
    end
    redis.call('PEXPIRE', log, window)
    redis.call('PEXPIRE', epoch_key, window)
    if redis.call('EXISTS', floor) == 1 then redis.call('PEXPIRE', floor, window) end
    local event_id = epoch .. ':' .. id
    redis.call('PUBLISH', live, event_id .. '\\n' .. channel .. '\\n' .. addressed .. '\\n' .. body)
    out[i] = event_id
  end
end
return out
"""


async def publish(redis: aioredis.Redis, prefix: str, messages: list[Outbound]) -> list[str | None]:
    """Deliver in order; per message the event id, or None when it had been delivered before.
    One script call per PUBLISH_BATCH messages (each call atomic: a batch is claimed and sent
    whole or, failing, not at all)."""
    if not messages:
        return []
    script = redis.register_script(_PUBLISH)
    out: list[str | None] = []
    for start in range(0, len(messages), PUBLISH_BATCH):
        batch = [
            (
                key_base(prefix, m.user_id),
                live_channel(prefix, m.user_id),
                str(m.message_id),
                m.body.decode(),
                m.channel,
                m.addressed_to,
            )
            for m in messages[start : start + PUBLISH_BATCH]
        ]
        # A fresh epoch tag per call: it only names a user's stream that has none (new, or
        # lost), so a stream's next lifetime gets another tag than its last.
        ids = await script(
            args=[
                orjson.dumps(batch),
                REPLAY_WINDOW_S * 1000,
                REPLAY_MAX_MESSAGES,
                CLAIM_TTL_S,
                secrets.token_hex(4),
            ]
        )
        out.extend(i.decode() or None for i in ids)
    return out


def outbound(event: RealtimeEvent) -> Outbound:
    return Outbound(
        user_id=event.user_id,
        message_id=event.message_id,
        channel=event.channel,
        addressed_to=addressed_to(event.message),
        body=event.message.__pydantic_serializer__.to_json(event.message),
    )


class RedisFanout:
    """Redis stream + pub/sub per user, read by the gateway."""

    name = "fanout"

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def deliver(self, events: Sequence[RealtimeEvent]) -> int:
        ids = await publish(self._redis, self._prefix, [outbound(e) for e in events])
        return sum(1 for i in ids if i is not None)

    async def close(self) -> None:
        return None
