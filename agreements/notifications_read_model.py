"""The notifications read models in Redis, shared by the notifications agents (write) and the
gateway (read) (docs/NOTIFICATIONS.md):

- `{prefix}:notify:prefs:{user_id}`: the user's `PreferencesDocument` as JSON, rendered when a
  change is applied and, when Redis lost it, on the gateway's miss (`notifications.lookup`);
- `{prefix}:notify:inbox:{user_id}`: a sorted set of notification ids, scored by creation time
  in microseconds (the paging cursor), at most `INBOX_KEPT` kept;
- `{prefix}:notify:items:{user_id}`: a hash notification id -> the `Notification` JSON;
- `{prefix}:notify:unread:{user_id}`: the set of unread notification ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from schemas.notifications import (
    InboxEntry,
    InboxPage,
    Notification,
    PreferencesDocument,
)

INBOX_KEPT = 200
# Keyed per user; a user who hears nothing for this long reloads nothing (the inbox is
# a convenience view: PostgreSQL keeps every notification).
TTL_S = 30 * 86_400


def prefs_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:notify:prefs:{user_id}"


def _inbox(prefix: str, user_id: str) -> tuple[str, str, str]:
    base = f"{prefix}:notify"
    return f"{base}:inbox:{user_id}", f"{base}:items:{user_id}", f"{base}:unread:{user_id}"


async def write_preferences(
    redis: aioredis.Redis,
    prefix: str,
    documents: Iterable[PreferencesDocument],
    *,
    only_missing: bool = False,
) -> None:
    """`only_missing` for a refill: what it read from the table may be older than a change
    applied meanwhile, which has then written its document already; a change always writes."""
    async with redis.pipeline(transaction=False) as pipe:
        for doc in documents:
            pipe.set(prefs_key(prefix, doc.user_id), doc.model_dump_json(), nx=only_missing)
        await pipe.execute()


async def read_preferences(
    redis: aioredis.Redis, prefix: str, user_id: str
) -> tuple[PreferencesDocument | None, bool]:
    """The user's preferences and whether Redis can answer for them: False when it holds
    none and no agent found, a moment ago, that the user has set none (lost or never
    rendered: ask the agents, as for the inbox)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(prefs_key(prefix, user_id))
        pipe.exists(no_preferences_key(prefix, user_id))
        raw, none = await pipe.execute()
    if raw is None:
        return None, bool(none)
    return PreferencesDocument.model_validate_json(raw), True


def score_of(notification: Notification) -> int:
    return score_at(notification.created_at)


def score_at(created_at: datetime) -> int:
    """The inbox score of a notification created then (microseconds)."""
    return int(created_at.timestamp() * 1_000_000)


# A page of entries in one call (EVALSHA: the script is not sent each time). Each is added
# once: a redelivered one (already in the hash) changes nothing, so a notification read in
# between does not come back unread. The user's "no inbox" mark goes when one is added: it was
# true before, and an inbox lost after it must be refilled, not answered empty. With
# ONLY_PRESENT, an entry whose user has no inbox (new, expired, lost) is not added but returned
# (its index): that inbox is refilled from PostgreSQL first, so the unread count is not only
# this alert, and asking in the same call saves the EXISTS round trip.
# The entries come as one JSON array (encoded by orjson, decoded by Redis's cjson), not as
# seven arguments each: redis-py packs every argument in Python, which cost more than the
# script. So the script derives its keys from the prefix (`_inbox`) rather than declaring
# them: a standalone Redis, as the read models use, not a Redis Cluster.
# ARGV: prefix, kept, ttl, only_present, [[user, id, score, json, read], ...].
_ADD_PAGE = """
local prefix, kept, ttl, only = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4] == '1'
local missing = {}
for i, e in ipairs(cjson.decode(ARGV[5])) do
  local inbox = prefix .. ':notify:inbox:' .. e[1]
  local items = prefix .. ':notify:items:' .. e[1]
  local unread = prefix .. ':notify:unread:' .. e[1]
  local id, read = e[2], e[5]
  if only and redis.call('EXISTS', inbox) == 0 then
    missing[#missing + 1] = i - 1
  elseif redis.call('HSETNX', items, id, e[4]) == 1 then
    redis.call('DEL', prefix .. ':notify:none:' .. e[1])
    redis.call('ZADD', inbox, e[3], id)
    if not read then redis.call('SADD', unread, id) end
    local n = redis.call('ZCARD', inbox)
    if n > kept then
      local old = redis.call('ZRANGE', inbox, 0, n - kept - 1)
      redis.call('ZREMRANGEBYRANK', inbox, 0, n - kept - 1)
      redis.call('HDEL', items, unpack(old))
      redis.call('SREM', unread, unpack(old))
    end
    redis.call('EXPIRE', inbox, ttl)
    redis.call('EXPIRE', items, ttl)
    redis.call('EXPIRE', unread, ttl)
  elseif read then
    redis.call('SREM', unread, id)
  end
end
return missing
"""
_ADD_PAGE_SHA = hashlib.sha1(_ADD_PAGE.encode()).hexdigest()
# Entries per call: a call runs alone in Redis, so a page of thousands is cut into a few.
PAGE_CALL = 1000

# (user id, notification id, score, the Notification's JSON, read)
RawEntry = tuple[str, str, int, str, bool]


def raw_entry(user_id: str, notification: Notification, read: bool = False) -> RawEntry:
    return (
        user_id,
        str(notification.notification_id),
        score_of(notification),
        notification.model_dump_json(),
        read,
    )


async def add_page(
    redis: aioredis.Redis, prefix: str, entries: Sequence[RawEntry], only_present: bool
) -> set[str]:
    """Add (user, id, score, json, read) entries in order, a thousand per script call; each
    is added once, and one marked read is taken out of the unread set. `only_present`: those
    of users with no inbox are left out, and their users returned."""
    missing: set[str] = set()
    for start in range(0, len(entries), PAGE_CALL):
        chunk = entries[start : start + PAGE_CALL]
        page = orjson.dumps(
            [
                (user_id, note_id, str(score), body, read)
                for user_id, note_id, score, body, read in chunk
            ]
        )
        args = (prefix, INBOX_KEPT, TTL_S, "1" if only_present else "0", page)
        try:
            left = await redis.evalsha(_ADD_PAGE_SHA, 0, *args)
        except NoScriptError:
            left = await redis.eval(_ADD_PAGE, 0, *args)
        missing.update(chunk[int(i)][0] for i in left)
    return missing


async def mark_read(redis: aioredis.Redis, prefix: str, user_id: str, notification_id: str) -> None:
    await redis.srem(_inbox(prefix, user_id)[2], notification_id)


async def read_inbox(
    redis: aioredis.Redis, prefix: str, user_id: str, limit: int, before: int | None
) -> InboxPage:
    """Newest first, `limit` entries scored below `before` (None: from the newest)."""
    inbox, items, unread = _inbox(prefix, user_id)
    top = f"({before}" if before is not None else "+inf"
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrevrangebyscore(inbox, top, "-inf", start=0, num=limit + 1, withscores=True)
        pipe.scard(unread)
        ranked, unread_count = await pipe.execute()
    page = ranked[:limit]
    ids = [member for member, _ in page]
    bodies = await redis.hmget(items, ids) if ids else []
    flags = await redis.smismember(unread, ids) if ids else []
    entries = [
        InboxEntry(**Notification.model_validate_json(body).model_dump(), read=not flag)
        for body, flag in zip(bodies, flags, strict=True)
        if body is not None
    ]
    cursor = str(int(page[-1][1])) if len(ranked) > limit else None
    return InboxPage(user_id=user_id, unread=unread_count, items=entries, next_cursor=cursor)


async def read_inbox_allowed(
    redis: aioredis.Redis,
    prefix: str,
    user_id: str,
    limit: int,
    before: int | None,
    allowed: Callable[[Notification], bool],
) -> InboxPage:
    """As read_inbox, of only the notifications `allowed` passes (a profile's parental
    controls): the inbox holds at most INBOX_KEPT, so it is read whole and filtered before it
    is paged. Pages, cursors and the unread count are then those of the allowed entries."""
    inbox, items, unread = _inbox(prefix, user_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrevrangebyscore(inbox, "+inf", "-inf", withscores=True)
        pipe.hgetall(items)
        pipe.smembers(unread)
        ranked, bodies, unread_ids = await pipe.execute()
    shown: list[tuple[InboxEntry, int]] = []
    unread_count = 0
    for member, score in ranked:
        body = bodies.get(member)
        if body is None:
            continue
        note = Notification.model_validate_json(body)
        if not allowed(note):
            continue
        flag = member in unread_ids
        unread_count += flag
        if before is None or score < before:
            shown.append((InboxEntry(**note.model_dump(), read=not flag), int(score)))
    page = shown[:limit]
    cursor = str(page[-1][1]) if len(shown) > limit else None
    return InboxPage(
        user_id=user_id, unread=unread_count, items=[e for e, _ in page], next_cursor=cursor
    )


# "This user has no delivered notification", remembered briefly after an agent looked: a user
# never notified has no inbox in Redis either, and without it every GET of theirs would ask
# the agents again. Short, so an inbox lost right after still comes back within a minute
# (an inbox written meanwhile is read first: the mark only answers for a missing one).
NO_INBOX_TTL_S = 60


def no_inbox_key(prefix: str, user_id: str) -> str:
    return f"{prefix}:notify:none:{user_id}"


async def inbox_known(redis: aioredis.Redis, prefix: str, user_id: str) -> bool:
    """Whether Redis can answer for this user's inbox: it holds it, or an agent found the
    user has none a moment ago. False: not loaded (lost, expired), ask the agents."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.exists(_inbox(prefix, user_id)[0])
        pipe.exists(no_inbox_key(prefix, user_id))
        held, none = await pipe.execute()
    return bool(held or none)


async def remember_no_inbox(redis: aioredis.Redis, prefix: str, user_ids: Iterable[str]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.set(no_inbox_key(prefix, user_id), b"1", ex=NO_INBOX_TTL_S)
        await pipe.execute()


def no_preferences_key(prefix: str, user_id: str) -> str:
    """The same brief mark as `no_inbox_key`, for a user who has set no preferences."""
    return f"{prefix}:notify:noprefs:{user_id}"


async def remember_no_preferences(
    redis: aioredis.Redis, prefix: str, user_ids: Iterable[str]
) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.set(no_preferences_key(prefix, user_id), b"1", ex=NO_INBOX_TTL_S)
        await pipe.execute()
