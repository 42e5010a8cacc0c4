"""The built-in realtime fan-out in Redis, shared by the delivery agent (writer) and the
gateway's event streams (reader); and the delivery claims both delivery paths use.

Per user, one Redis stream (`...:log`) holds the last minutes of messages of all the user's
channels in delivery order, and each message is also published on the user's pub/sub channel
(`...:live:<user>`) for the gateways holding the user's open streams. One Lua script call
delivers up to a thousand messages atomically, for each: claim the message id (a message id
already claimed is not sent again), append to the stream, trim it, publish. A message is
thus in the stream exactly when live subscribers were sent it, and a device that reconnects
with the id of the last message it saw gets what it missed from the stream.

Event ids are `<epoch>:<stream id>`. The epoch is a random tag of the stream's lifetime: when
Redis lost the stream (a restart, or the stream expired after a quiet spell), a reconnecting
device's id names an older epoch and it is told to resync rather than left with a gap.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from schemas.sync import channel_segment

# How far back a reconnecting device is caught up; older ids get a resync.
REPLAY_WINDOW_S = 300
# At most this many messages per user are kept for replay (a flood trims earlier).
REPLAY_MAX_MESSAGES = 1000
# A delivered message id is remembered this long: a redelivery within it is not sent again.
# Longer than any command lives (at most 300 s), so a command is never delivered twice.
CLAIM_TTL_S = 600
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


def _user_key(prefix: str, user_id: str) -> str:
    # A hash tag: all of one user's keys live in one slot of a Redis cluster.
    return f"{prefix}:rt:{{{channel_segment(user_id)}}}"


def log_key(prefix: str, user_id: str) -> str:
    return f"{_user_key(prefix, user_id)}:log"


def epoch_key(prefix: str, user_id: str) -> str:
    return f"{_user_key(prefix, user_id)}:epoch"


def floor_key(prefix: str, user_id: str) -> str:
    """The newest id trimmed for lack of room: a device that saw less missed messages."""
    return f"{_user_key(prefix, user_id)}:floor"


def claim_key(prefix: str, user_id: str, message_id: uuid.UUID) -> str:
    return f"{_user_key(prefix, user_id)}:sent:{message_id}"


def live_channel(prefix: str, user_id: str) -> str:
    return f"{prefix}:rt:live:{channel_segment(user_id)}"


def live_pattern(prefix: str) -> str:
    """The pub/sub pattern of every user's live channel (glob characters escaped)."""
    escaped = "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in prefix)
    return f"{escaped}:rt:live:*"


def segment_of(prefix: str, channel: str) -> str:
    """The user segment of a live channel name."""
    return channel.removeprefix(f"{prefix}:rt:live:")


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to deliver: its id, the user's channel, to whom it is addressed (a device
    id for commands and their results, "" for everyone) and the JSON body."""

    user_id: str
    message_id: uuid.UUID
    channel: str
    addressed_to: str
    body: bytes


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
                _user_key(prefix, m.user_id),
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


async def claim_all(
    redis: aioredis.Redis, prefix: str, user_id: str, message_ids: list[uuid.UUID]
) -> list[bool]:
    """Claim several messages of one user in one transaction (MULTI; one slot, the user's hash
    tag): per message, True if this call claimed it. Two senders of the same messages (the
    command router and the delivery agent) cannot split them: the first takes every one it
    asks for that was free, so a command's result is never sent by the one while the other is
    still sending the command."""
    if not message_ids:
        return []
    async with redis.pipeline(transaction=True) as pipe:
        for message_id in message_ids:
            pipe.set(claim_key(prefix, user_id, message_id), b"1", nx=True, ex=CLAIM_TTL_S)
        results = await pipe.execute()
    return [bool(r) for r in results]


async def release(
    redis: aioredis.Redis, prefix: str, user_id: str, message_ids: list[uuid.UUID]
) -> None:
    """Undo claims whose delivery certainly failed (or was never tried), so a retry sends them."""
    if message_ids:
        await redis.delete(*(claim_key(prefix, user_id, m) for m in message_ids))


async def claimed(
    redis: aioredis.Redis, prefix: str, messages: list[tuple[str, uuid.UUID]]
) -> set[uuid.UUID]:
    """Which of these (user, message id) were claimed: sent, or being sent, on either path."""
    if not messages:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for user_id, message_id in messages:
            pipe.exists(claim_key(prefix, user_id, message_id))
        found = await pipe.execute()
    return {message_id for (_, message_id), n in zip(messages, found, strict=True) if n}


# --- the reading side (gateway) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivered:
    event_id: str
    channel: str
    addressed_to: str
    body: bytes


def parse_live(data: bytes) -> Delivered:
    """A message as published on a live channel."""
    event_id, channel, addressed, body = data.split(b"\n", 3)
    return Delivered(event_id.decode(), channel.decode(), addressed.decode(), body)


# A Redis stream id is two unsigned 64-bit numbers; Redis refuses a larger one in a range.
MAX_ID_PART = 2**64 - 1


def _decimal_up_to(limit: int) -> str:
    """A regular expression of the numbers 0..limit in decimal, without leading zeros (the form
    Redis writes), so the OpenAPI document can state the bound that JSON Schema has no word
    for in a string."""
    digits = str(limit)
    forms = ["0"]
    if len(digits) > 1:
        forms.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}")  # fewer digits than the limit
    for i, digit in enumerate(digits):
        # The limit's first i digits, then a smaller digit, then anything.
        lowest = 1 if i == 0 else 0
        if int(digit) > lowest:
            forms.append(f"{digits[:i]}[{lowest}-{int(digit) - 1}][0-9]{{{len(digits) - i - 1}}}")
    forms.append(digits)
    return "(?:" + "|".join(dict.fromkeys(forms)) + ")"


_ID_PART = _decimal_up_to(MAX_ID_PART)
# The form of an event id, for the OpenAPI document: `{stream epoch}:{ms}-{seq}`.
EVENT_ID_FORM = rf"[^:]+:{_ID_PART}-{_ID_PART}"
_EVENT_ID = re.compile(rf"([^:]+):({_ID_PART})-({_ID_PART})")

StreamId = tuple[int, int]


def _stream_id(event_id: str) -> tuple[str, StreamId] | None:
    match = _EVENT_ID.fullmatch(event_id)
    if match is None:
        return None
    return match[1], (int(match[2]), int(match[3]))


def _redis_id(text: bytes | str) -> StreamId:
    raw = text.decode() if isinstance(text, bytes) else text
    ms, _, seq = raw.partition("-")
    return int(ms), int(seq)


def _following(sid: StreamId) -> StreamId | None:
    """The smallest stream id after `sid`; None after the largest."""
    ms, seq = sid
    if seq < MAX_ID_PART:
        return ms, seq + 1
    return (ms + 1, 0) if ms < MAX_ID_PART else None


def is_event_id(event_id: str) -> bool:
    return _stream_id(event_id) is not None


def newer(a: str, b: str) -> bool:
    """Whether event id `a` comes after `b` (ids of one stream's lifetime)."""
    pa, pb = _stream_id(a), _stream_id(b)
    if pa is None or pb is None:
        return True
    return pa[1] > pb[1]


# Why a device must resync rather than be caught up.
GONE = "messages since your last event id are gone"
AHEAD = "your last event id is ahead of this stream: no message had that id yet"


@dataclass(frozen=True, slots=True)
class Replay:
    """What a device that last saw `after` missed, or why that cannot be told (`gap`): some of
    it is gone (older than the window, trimmed, or Redis lost it), or `after` is ahead of
    every message of the stream, so live messages would all look old to the device."""

    messages: list[Delivered]
    gap: str | None = None

    @property
    def complete(self) -> bool:
        return self.gap is None


async def replay(redis: aioredis.Redis, prefix: str, user_id: str, after: str) -> Replay:
    parsed = _stream_id(after)
    if parsed is None:
        return Replay([], GONE)
    epoch, sid = parsed
    start = _following(sid)
    if start is None:
        return Replay([], AHEAD)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(epoch_key(prefix, user_id))
        pipe.get(floor_key(prefix, user_id))
        pipe.time()
        pipe.xrevrange(log_key(prefix, user_id), max="+", min="-", count=1)
        pipe.xrange(log_key(prefix, user_id), min=f"{start[0]}-{start[1]}", max="+")
        held_epoch, floor, (now_s, now_us), newest, entries = await pipe.execute()
    now_ms = now_s * 1000 + now_us // 1000
    if held_epoch is None or held_epoch.decode() != epoch:
        return Replay([], GONE)
    # Past the newest message, or with none, not before now: the next message would not be
    # newer than `after`.
    if sid > (_redis_id(newest[0][0]) if newest else (now_ms - 1, MAX_ID_PART)):
        return Replay([], AHEAD)
    if sid[0] < now_ms - REPLAY_WINDOW_S * 1000:
        return Replay([], GONE)
    if floor is not None and sid < _redis_id(floor):
        return Replay([], GONE)
    messages = [
        Delivered(f"{epoch}:{raw.decode()}", f[b"c"].decode(), f[b"a"].decode(), f[b"m"])
        for raw, f in entries
    ]
    return Replay(messages)


async def position(redis: aioredis.Redis, prefix: str, user_id: str) -> str:
    """The event id of the user's newest message: where a device that starts listening now
    stands (so its first reconnect can be caught up). Starts an epoch if there is none."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(
            epoch_key(prefix, user_id), secrets.token_hex(4), nx=True, px=REPLAY_WINDOW_S * 1000
        )
        pipe.get(epoch_key(prefix, user_id))
        pipe.xrevrange(log_key(prefix, user_id), max="+", min="-", count=1)
        pipe.time()
        _, epoch, newest, (now_s, now_us) = await pipe.execute()
    if newest:
        last = newest[0][0].decode()
    else:
        # Nothing yet: just before now, so the first message (stamped now or later) is newer.
        last = f"{now_s * 1000 + now_us // 1000 - 1}-{MAX_ID_PART}"
    return f"{epoch.decode()}:{last}"
